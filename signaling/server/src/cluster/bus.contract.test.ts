import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, test } from "node:test";
import type { BusMessage, ClusterBus } from "./bus.ts";
import { MemoryBus } from "./memory-bus.ts";
import { NatsBus } from "./nats-bus.ts";

const NATS_URL = process.env["SWITCHBOARD_TEST_NATS"] ?? "nats://127.0.0.1:4222";
const enc = new TextEncoder();
const dec = new TextDecoder();

interface Fixture {
  bus: ClusterBus;
  root: string;
  /** A second bus over the same stream (another pod). */
  reopen(): Promise<ClusterBus>;
  cleanup(): Promise<void>;
}

const adapters: Record<string, () => Promise<Fixture>> = {
  memory: async () => {
    const bus = new MemoryBus({ retryDelayMs: 10 });
    return { bus, root: "sb.t", reopen: async () => bus, cleanup: () => bus.close() };
  },
  nats: async () => {
    const id = randomBytes(6).toString("hex");
    const root = `sbtest${id}`;
    const options = { servers: NATS_URL, stream: `SBTEST_${id}`, subjects: [`${root}.>`], maxAgeMs: 60_000, storage: "memory" as const, retryDelayMs: 10 };
    const bus = await NatsBus.connect(options);
    const others: NatsBus[] = [];
    return {
      bus,
      root,
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
      t.after(() => consumer.stop());
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
      t.after(() => consumer.stop());
      for (const x of ["a", "b", "c"]) await f.bus.publish(`${f.root}.r`, enc.encode(x));
      await done;
      assert.deepEqual(seen, ["a", "b", "b", "b", "c"]);
    });

    test("a durable consumer resumes after its last acknowledged message (another process, same name)", async (t) => {
      const f = await make();
      t.after(() => f.cleanup());
      const first = collector(3);
      const c1 = await f.bus.consume("c3", `${f.root}.s`, first.handler);
      for (const x of ["1", "2", "3"]) await f.bus.publish(`${f.root}.s`, enc.encode(x));
      await first.done;
      await c1.stop();
      for (const x of ["4", "5"]) await f.bus.publish(`${f.root}.s`, enc.encode(x));
      const other = await f.reopen();
      const second = collector(2);
      const c2 = await other.consume("c3", `${f.root}.s`, second.handler);
      t.after(() => c2.stop());
      assert.deepEqual((await second.done).map((m) => dec.decode(m.data)), ["4", "5"]);
    });
  });
}
