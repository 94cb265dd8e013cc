import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { MemoryBus } from "./memory-bus.ts";
import { SessionLog, interpretLog, planLogReplay, type LogEntry } from "./session-log.ts";
import { ClusterSubjects } from "./subjects.ts";

const frame = (epoch: number, seq: number, src = seq * 10): LogEntry => ({ kind: "frame", epoch, seq, frame: `{"seq":${seq}}`, src });

test("frames of the current epoch in sequence; a takeover fences the old edge's later writes", () => {
  const state = interpretLog([
    frame(1, 1),
    frame(1, 2),
    { kind: "takeover", epoch: 2, edge: "b" },
    frame(1, 3), // the old edge had not seen the fence yet: ignored
    frame(2, 3, 99),
    frame(2, 3, 99), // a retried append: ignored
    frame(2, 4, 120),
  ]);
  assert.deepEqual(state.frames.map((f) => f.seq), [1, 2, 3, 4]);
  assert.equal(state.lastSeq, 4);
  assert.equal(state.lastSrc, 120);
  assert.equal(state.epoch, 2);
});

test("replay plans: exactly the frames after lastSeq, gap when the client is ahead", () => {
  const state = interpretLog([frame(1, 1), frame(1, 2), frame(1, 3)]);
  assert.deepEqual(planLogReplay(state, 1), { ok: true, frames: ['{"seq":2}', '{"seq":3}'] });
  assert.deepEqual(planLogReplay(state, 3), { ok: true, frames: [] });
  assert.deepEqual(planLogReplay(state, 4), { ok: false, reason: "gap" });
});

test("property: whatever the interleaving of a fenced writer, valid frames are 1..n with no gap or repeat", () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.boolean(), fc.nat(5)), { maxLength: 60 }), (ops) => {
      const entries: LogEntry[] = [];
      let newSeq = 0;
      let oldSeq = 0;
      let fenced = false;
      for (const [byOld, extra] of ops) {
        if (!fenced && extra === 0) {
          entries.push({ kind: "takeover", epoch: 2, edge: "b" });
          fenced = true;
          newSeq = oldSeq;
        } else if (byOld || !fenced) entries.push(frame(1, ++oldSeq));
        else entries.push(frame(2, ++newSeq));
      }
      const seqs = interpretLog(entries).frames.map((f) => f.seq);
      seqs.forEach((s, i) => assert.equal(s, i + 1));
    }),
  );
});

test("stored on the bus and read back by another reader", async () => {
  const bus = new MemoryBus();
  const log = new SessionLog(bus, new ClusterSubjects("t"));
  await log.append("s1", frame(1, 1) as Extract<LogEntry, { kind: "frame" }>);
  await log.append("s2", frame(1, 1) as Extract<LogEntry, { kind: "frame" }>);
  await log.append("s1", frame(1, 2) as Extract<LogEntry, { kind: "frame" }>);
  await log.markTakeover("s1", 2, "pod-b");
  const state = await log.load("s1");
  assert.equal(state.lastSeq, 2);
  assert.equal(state.epoch, 2);
  await bus.close();
});
