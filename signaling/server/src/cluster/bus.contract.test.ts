import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, test } from "node:test";
import type { BusLog, BusMessage, ClusterBus } from "./bus.ts";
import { MemoryBus } from "./memory-bus.ts";
import { NatsBus } from "./nats-bus.ts";

const NATS_URL = process.env["SWITCHBOARD_TEST_NATS"] ?? "nats://127.0.0.1:4222";
const enc = new TextEncoder();
const dec = new TextDecoder();

/** One line a bus logged. */
interface LogLine {
  readonly level: "debug" | "warn" | "error";
  readonly obj: Record<string, unknown>;
  readonly msg: string;
}

/** A bus log that keeps its lines. */
function recordingLog(): BusLog & { readonly lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at = (level: LogLine["level"]) => (obj: object, msg: string) => void lines.push({ level, obj: obj as Record<string, unknown>, msg });
  return { lines, debug: at("debug"), warn: at("warn"), error: at("error") };
}

/** Attempts the fixtures' buses make at a failing message. */
const ATTEMPTS = 3;

interface Fixture {
  bus: ClusterBus;
  root: string;
  /** What the bus logged. */
  log: ReturnType<typeof recordingLog>;
  /** A second bus over the same stream (another pod). */
  reopen(): Promise<ClusterBus>;
  cleanup(): Promise<void>;
}

const adapters: Record<string, () => Promise<Fixture>> = {
  memory: async () => {
    const log = recordingLog();
    const bus = new MemoryBus({ retryDelayMs: 10, maxHandlerAttempts: ATTEMPTS, log });
    return { bus, root: "sb.t", log, reopen: async () => bus, cleanup: () => bus.close() };
  },
  nats: async () => {
    const id = randomBytes(6).toString("hex");
    const root = `sbtest${id}`;
    const log = recordingLog();
    const options = { servers: NATS_URL, stream: `SBTEST_${id}`, subjects: [`${root}.>`], maxAgeMs: 60_000, storage: "memory" as const, retryDelayMs: 10, maxHandlerAttempts: ATTEMPTS, log };
    const bus = await NatsBus.connect(options);
    const others: NatsBus[] = [];
    return {
      bus,
      root,
      log,
      reopen: async () => {
        const other = await NatsBus.connect(options);
        others.push(other);
        return other;
      },
      cleanup: async () => {
        await bus.deleteStream();
        for (const o of others) await o.close();
        await bus.close();
      },
    };
  },
};

/** Collects messages from a consumer until `count` arrived (or times out). */
function collector(count: number, timeoutMs = 5000): { handler: (m: BusMessage) => void; done: Promise<BusMessage[]> } {
  const got: BusMessage[] = [];
  let resolve!: (v: BusMessage[]) => void;
  let reject!: (e: Error) => void;
  const done = new Promise<BusMessage[]>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  const timer = setTimeout(() => reject(new Error(`only ${got.length} of ${count} messages arrived`)), timeoutMs);
  return {
    handler: (m) => {
      got.push(m);
      if (got.length === count) {
        clearTimeout(timer);
        resolve(got);
      }
    },
    done,
  };
}

for (const [name, make] of Object.entries(adapters)) {
  describe(`ClusterBus contract: ${name}`, () => {
    test("publish stores in order; read returns the matching messages from a sequence on, with headers", async (t) => {
      const f = await make();
      t.after(() => f.cleanup());
      const seqs: number[] = [];
      for (let i = 0; i < 5; i++) seqs.push(await f.bus.publish(`${f.root}.a.${i % 2}`, enc.encode(`m${i}`), { "x-i": String(i) }));
      for (let i = 1; i < seqs.length; i++) assert.ok((seqs[i] as number) > (seqs[i - 1] as number));
      const odd = await f.bus.read(`${f.root}.a.1`, 0);
      assert.deepEqual(odd.map((m) => dec.decode(m.data)), ["m1", "m3"]);
      assert.equal(odd[0]?.headers["x-i"], "1");
      const tail = await f.bus.read(`${f.root}.a.*`, seqs[3] as number);
      assert.deepEqual(tail.map((m) => dec.decode(m.data)), ["m3", "m4"]);
      assert.deepEqual(await f.bus.read(`${f.root}.none`, 0), []);
    });

    test("a durable consumer gets its filter's messages once, in order, including ones stored before it started", async (t) => {
      const f = await make();
      t.after(() => f.cleanup());
      await f.bus.publish(`${f.root}.q.x`, enc.encode("early"));
      await f.bus.publish(`${f.root}.other`, enc.encode("not mine"));
      const c = collector(51);
      const consumer = await f.bus.consume("c1", `${f.root}.q.>`, c.handler);
      t.after(() => consumer.close());
      for (let i = 0; i < 50; i++) await f.bus.publish(`${f.root}.q.${i % 3}`, enc.encode(String(i)));
      const got = await c.done;
      assert.deepEqual(got.map((m) => dec.decode(m.data)), ["early", ...Array.from({ length: 50 }, (_, i) => String(i))]);
    });

    test("a failing handler sees the same message again before any later one", async (t) => {
      const f = await make();
      t.after(() => f.cleanup());
      const seen: string[] = [];
      let failures = 2;
      let resolve!: () => void;
      const done = new Promise<void>((r) => (resolve = r));
      const consumer = await f.bus.consume("c2", `${f.root}.r`, (m) => {
        const text = dec.decode(m.data);
        seen.push(text);
        if (text === "b" && failures-- > 0) throw new Error("transient");
        if (text === "c") resolve();
      });
      t.after(() => consumer.close());
      for (const x of ["a", "b", "c"]) await f.bus.publish(`${f.root}.r`, enc.encode(x));
      await done;
      assert.deepEqual(seen, ["a", "b", "b", "b", "c"]);
      assert.deepEqual(
        f.log.lines.map((l) => [l.level, l.obj["attempt"], l.obj["streamSeq"]]),
        [
          ["warn", 1, 2],
          ["debug", 2, 2],
        ],
        "each failure is logged with its attempt and message",
      );
    });

    for (const keyed of [false, true]) {
      test(`a handler that keeps failing is given up after the last attempt, logged, and never delivered again (${keyed ? "keyed" : "one at a time"})`, async (t) => {
        const f = await make();
        t.after(() => f.cleanup());
        const subject = `${f.root}.poison.k1`;
        const attempts = new Map<string, number>();
        const after = collector(2);
        const handler = (m: BusMessage): void => {
          const text = dec.decode(m.data);
          attempts.set(text, (attempts.get(text) ?? 0) + 1);
          if (text === "poison") throw new Error("this message can never be applied");
          after.handler(m);
        };
        const options = keyed ? { keyOf: (m: BusMessage) => m.subject.slice(m.subject.lastIndexOf(".") + 1) } : {};
        const consumer = await f.bus.consume("c-poison", `${f.root}.poison.>`, handler, options);
        for (const x of ["poison", "next"]) await f.bus.publish(subject, enc.encode(x));
        await f.bus.publish(`${f.root}.poison.k2`, enc.encode("other key"));
        // The messages behind it (of its key too) go on once it is given up.
        assert.deepEqual((await after.done).map((m) => dec.decode(m.data)).sort(), ["next", "other key"]);
        assert.equal(attempts.get("poison"), ATTEMPTS, "attempted exactly maxHandlerAttempts times");
        const failures = f.log.lines.filter((l) => l.obj["consumer"] === "c-poison");
        assert.deepEqual(
          failures.map((l) => [l.level, l.obj["attempt"]]),
          [
            ["warn", 1],
            ["debug", 2],
            ["error", 3],
          ],
        );
        assert.match(failures[2]?.msg ?? "", /given up/);
        assert.equal((failures[2]?.obj["err"] as Error).message, "this message can never be applied");
        assert.equal(failures[2]?.obj["subject"], subject);

        // Given up means acknowledged for good: the consumer of record does not see it again,
        // not even after a restart (another pod taking the same durable consumer).
        await consumer.close();
        // Acks and terminations are not confirmed: JetStream may apply them a moment later.
        const settled = Date.now() + 5000;
        while ((await f.bus.pending("c-poison")) > 0 && Date.now() < settled) await new Promise((r) => setTimeout(r, 10));
        assert.equal(await f.bus.pending("c-poison"), 0);
        const other = await f.reopen();
        const again: string[] = [];
        const resumed = await other.consume("c-poison", `${f.root}.poison.>`, (m) => void again.push(dec.decode(m.data)), options);
        t.after(() => resumed.close());
        await f.bus.publish(subject, enc.encode("last"));
        const deadline = Date.now() + 5000;
        while (!again.includes("last") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
        assert.deepEqual(again, ["last"]);
      });
    }

    test("a durable consumer resumes after its last acknowledged message (another process, same name)", async (t) => {
      const f = await make();
      t.after(() => f.cleanup());
      const first = collector(3);
      const c1 = await f.bus.consume("c3", `${f.root}.s`, first.handler);
      for (const x of ["1", "2", "3"]) await f.bus.publish(`${f.root}.s`, enc.encode(x));
      await first.done;
      await c1.close();
      for (const x of ["4", "5"]) await f.bus.publish(`${f.root}.s`, enc.encode(x));
      const other = await f.reopen();
      const second = collector(2);
      const c2 = await other.consume("c3", `${f.root}.s`, second.handler);
      t.after(() => c2.close());
      assert.deepEqual((await second.done).map((m) => dec.decode(m.data)), ["4", "5"]);
    });
  });
}
