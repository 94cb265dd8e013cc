import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { MemoryDirectory } from "./memory-directory.ts";
import { serializeRingDocument, type RingDocument } from "@switchboard/ring";
import { FileRingSource } from "./ring-source.ts";
import { RingView, ringConverged } from "./ring-view.ts";

function doc(version: number, members: Array<[string, "JOINING" | "ACTIVE" | "LEAVING"]>): RingDocument {
  return { version, members: members.map(([name, state]) => ({ name, address: `127.0.0.1:${8000 + version}`, state })) };
}

async function until(cond: () => boolean | Promise<boolean>, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error("condition not reached");
    await new Promise((r) => setTimeout(r, 20));
  }
}

test("pods apply new ring versions, report them, and converge; ownership follows ACTIVE members only", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "ringview-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, "ring.json");
  const v1 = doc(1, [["pod-a", "ACTIVE"], ["pod-b", "ACTIVE"]]);
  await writeFile(path, serializeRingDocument(v1));
  const directory = new MemoryDirectory();
  const applied: Record<string, number[]> = { "pod-a": [], "pod-b": [] };
  const changes: number[] = [];
  const views = ["pod-a", "pod-b"].map(
    (podName) =>
      new RingView({
        podName,
        source: new FileRingSource(path, { pollMs: 50 }),
        directory,
        onApplied: (v) => applied[podName]?.push(v),
        onChange: (next, prev) => podName === "pod-a" && changes.push(prev.version * 10 + next.version),
      }),
  );
  for (const v of views) await v.start();
  t.after(() => Promise.all(views.map((v) => v.stop())));
  await until(() => ringConverged(directory, v1));

  const [a, b] = views as [RingView, RingView];
  const rooms = Array.from({ length: 200 }, (_, i) => `room:r${i}`);
  for (const r of rooms) {
    assert.equal(a.ownerOf(r)?.name, b.ownerOf(r)?.name, "both pods agree");
    assert.ok(a.owns(r) !== b.owns(r), "exactly one owns each room");
  }

  const v2 = doc(2, [["pod-a", "ACTIVE"], ["pod-b", "LEAVING"], ["pod-c", "JOINING"]]);
  await writeFile(path, serializeRingDocument(v2));
  await until(() => a.version === 2 && b.version === 2);
  assert.equal(await ringConverged(directory, v2), false, "pod-c has not reported");
  for (const r of rooms) assert.equal(a.ownerOf(r)?.name, "pod-a", "only ACTIVE members own rooms");
  assert.equal(b.selfState, "LEAVING");
  assert.deepEqual(applied["pod-a"], [1, 2]);
  assert.deepEqual(changes, [12]);
});
