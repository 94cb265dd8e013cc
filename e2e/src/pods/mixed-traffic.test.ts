/**
 * Issue 4, cluster test 1: three pod processes over real NATS JetStream and Redis, 300 clients
 * (100 per pod) in 30 rooms of 10, with relay, broadcasts and 1:1 calls across pods at once.
 *
 * Every room has members on all three pods, and the rooms' owners are spread evenly (10 per pod),
 * so a relayed message takes 0, 1 or 2 JetStream hops (sender's edge → owner → receiver's edge).
 * Every room message carries its sender's counters and send time, so the receivers check that
 * each message arrives exactly once and in order per sender → receiver (across relays and
 * broadcasts), and that nothing is missing once the traffic stopped. Every message is sent with an
 * `id` and must be answered `ok`; every client acknowledges its stream like the SDK and checks
 * that `seq` has no gap. Meanwhile 30 pairs of users on different pods make two calls each
 * (invite → ringing → accept → confirm → offer/answer/candidates → hangup, one each way): each
 * side must see exactly the expected events of the call, in order.
 *
 * The relay latency, measured at the receiver by the number of hops (same process, one clock), is
 * printed (lines starting with `#`), not asserted. `MIXED_TRAFFIC_RATE` (msg/s),
 * `MIXED_TRAFFIC_WINDOW` (messages in flight), `MIXED_TRAFFIC_CALL_PAIRS` and `MIXED_TRAFFIC_SEED`
 * change the run.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { loadavg } from "node:os";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { ServerMessage, ServerMessageOf } from "@switchboard/protocol";
import { HashRing, parseRingDocument } from "@switchboard/ring";
import { CountingClient } from "./counting-client.ts";
import { startPodCluster } from "./pod-processes.ts";

const PODS = 3;
const CLIENTS_PER_POD = 100;
const ROOMS = 30;
/** Room messages sent per second, all clients together (broadcasts included). */
const RATE_PER_SECOND = Number(process.env["MIXED_TRAFFIC_RATE"] ?? 500);
const TRAFFIC_MS = 10_000;
/**
 * Room messages sent but not yet received, at most. The rate is open-loop up to this window; a
 * machine too busy for the rate sends less (the figures say how much) instead of building a
 * backlog that only measures queueing and stretches the test.
 */
const MAX_IN_FLIGHT = Number(process.env["MIXED_TRAFFIC_WINDOW"] ?? 100);
/**
 * A sender sends in bursts to one receiver, back to back as a negotiation does, so that several of
 * its messages are in flight on the same path at once (what reordering needs). Every fourth
 * burst has a broadcast in the middle, which the receiver must see between the relays around it.
 */
const BURST: readonly BurstItem[] = ["offer", "candidate", "candidate", "candidate", "answer"];
const BROADCAST_BURST_EVERY = 4;
const BROADCAST_AT = 2;
/** Pairs of users on different pods; each pair makes two calls, one each way. */
const CALL_PAIRS = Number(process.env["MIXED_TRAFFIC_CALL_PAIRS"] ?? 30);
const CANDIDATES_PER_SIDE = 4;
const CONNECT_CONCURRENCY = 12;
/** Bound of every single wait of a call step; generous, the machine is shared. */
const STEP_TIMEOUT_MS = 20_000;
/** Bound of the wait for the last replies and deliveries after the traffic stopped. */
const DRAIN_TIMEOUT_MS = 30_000;

type BurstItem = "offer" | "answer" | "candidate";
const MARK = "x-test:";

/** What a room message carries: sender, its counters, and the send time. */
interface RoomPayload {
  /** Sender's client index. */
  s: number;
  /** Sender's counter over everything it sent in its room (relays and broadcasts). */
  g: number;
  /** Sender's counter of relays to this receiver. */
  k?: number;
  /** Sender's counter of broadcasts. */
  b?: number;
  /** `performance.now()` at the send. */
  t: number;
}

/** What a call relay carries: sender and its counter within the call. */
interface CallPayload {
  s: number;
  c: number;
  t: number;
}

interface Member {
  readonly index: number;
  readonly pod: number;
  readonly userId: string;
  readonly client: CountingClient;
  room: string;
  roomOwner: number;
  /** The other members of the room. */
  peers: Member[];
  /** Sender side: relays sent to each receiver (by index), broadcasts sent, room counter. */
  readonly sentTo: Map<number, number>;
  sentBroadcasts: number;
  sentInRoom: number;
  /** Receiver side, by sender index. */
  readonly got: Map<number, { g: number; k: number; b: number }>;
}

function sdpWith(payload: object): string {
  return `v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=${MARK}${JSON.stringify(payload)}\r\n`;
}

function candidateWith(payload: object): { candidate: string; sdpMid: string; sdpMLineIndex: number } {
  return { candidate: `candidate:1 1 udp 2122260223 127.0.0.1 9 typ host ${MARK}${JSON.stringify(payload)}`, sdpMid: "0", sdpMLineIndex: 0 };
}

/** The payload of a relayed offer/answer/candidate or broadcast, or undefined when it has none. */
function payloadOf(m: ServerMessage): unknown {
  let text: string | undefined;
  if (m.type === "offer" || m.type === "answer") text = m.sdp;
  else if (m.type === "candidate") text = m.candidate.candidate;
  else if (m.type === "broadcast") return (m.data as { test?: unknown } | null)?.test;
  if (text === undefined) return undefined;
  const at = text.indexOf(MARK);
  if (at < 0) return undefined;
  const end = text.indexOf("\r\n", at);
  return JSON.parse(text.slice(at + MARK.length, end < 0 ? undefined : end));
}

/** mulberry32: a seeded generator, so a failing run can be repeated with MIXED_TRAFFIC_SEED. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Runs `fn` over `items` with at most `limit` in flight. */
async function pool<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}

function percentiles(samples: number[]): string {
  if (samples.length === 0) return "n=0";
  const s = samples.slice().sort((a, b) => a - b);
  const q = (p: number) => (s[Math.min(s.length - 1, Math.floor(p * s.length))] as number).toFixed(1);
  return `n=${s.length} p50=${q(0.5)} p90=${q(0.9)} p99=${q(0.99)} max=${(s[s.length - 1] as number).toFixed(1)} ms`;
}

test("3 pods, 300 clients in 30 rooms across pods, relay + broadcast + 1:1 calls at once: every message once and in order per sender → receiver, every call through all its states", async (t) => {
  const seed = Number(process.env["MIXED_TRAFFIC_SEED"] ?? Date.now() % 2 ** 31);
  const random = prng(seed);
  const loadBefore = loadavg();
  const cluster = await startPodCluster(PODS);
  const members: Member[] = [];
  t.after(async () => {
    for (const m of members) m.client.drop();
    await cluster.close();
  });
  const ring = new HashRing(parseRingDocument(await readFile(cluster.ringFile, "utf8")));
  const podIndex = (name: string | undefined) => cluster.pods.findIndex((p) => p.name === name);
  const ownerOf = (key: string) => podIndex(ring.ownerOf(key)?.name);

  // 30 rooms, 10 owned by each pod.
  const rooms: Array<{ id: string; owner: number }> = [];
  const perOwner = new Array<number>(PODS).fill(0);
  for (let k = 0; rooms.length < ROOMS; k++) {
    const id = `mix-${k}`;
    const owner = ownerOf(`room:${id}`);
    if ((perOwner[owner] as number) >= ROOMS / PODS) continue;
    perOwner[owner] = (perOwner[owner] as number) + 1;
    rooms.push({ id, owner });
  }

  // ---- the receivers' checks and the latency samples ----
  const violations: string[] = [];
  /** Deliveries of room messages expected so far (a broadcast counts once per receiver) and made. */
  let expectedDeliveries = 0;
  let deliveries = 0;
  const violation = (text: string) => {
    if (violations.length < 1000) violations.push(text);
  };
  /** Relay latency by JetStream hops (0 = sender, owner and receiver on one pod). */
  const relayLatency: number[][] = [[], [], []];
  const broadcastLatency: number[][] = [[], [], []];
  const callLatency: number[][] = [[], [], []];
  const hops = (from: number, owner: number, to: number) => (from === owner ? 0 : 1) + (owner === to ? 0 : 1);

  function onRoomMessage(receiver: Member, m: ServerMessage, at: number): void {
    const p = payloadOf(m) as RoomPayload | undefined;
    if (!p) return violation(`${receiver.index}: ${m.type} without a test payload`);
    const sender = members[p.s];
    if (!sender || !("from" in m) || m.from !== sender.client.peerId) return violation(`${receiver.index}: ${m.type} from ${"from" in m ? m.from : "?"} claims sender ${p.s}`);
    if (!("room" in m) || m.room !== receiver.room || sender.room !== receiver.room) return violation(`${receiver.index}: ${m.type} from ${p.s} in room ${String("room" in m ? m.room : undefined)}`);
    deliveries++;
    let got = receiver.got.get(p.s);
    if (!got) receiver.got.set(p.s, (got = { g: 0, k: 0, b: 0 }));
    if (p.g <= got.g) violation(`${p.s} → ${receiver.index}: room message ${p.g} after ${got.g} (reordered or repeated)`);
    got.g = Math.max(got.g, p.g);
    const h = hops(sender.pod, receiver.roomOwner, receiver.pod);
    if (m.type === "broadcast") {
      if (p.b !== got.b + 1) violation(`${p.s} → ${receiver.index}: broadcast ${p.b} after ${got.b}`);
      got.b = Math.max(got.b, p.b ?? 0);
      broadcastLatency[h]?.push(at - p.t);
    } else {
      if (p.k !== got.k + 1) violation(`${p.s} → ${receiver.index}: relay ${p.k} after ${got.k}`);
      got.k = Math.max(got.k, p.k ?? 0);
      relayLatency[h]?.push(at - p.t);
    }
  }

  function onCallRelay(receiver: Member, m: ServerMessage, at: number): void {
    const p = payloadOf(m) as CallPayload | undefined;
    const sender = p ? members[p.s] : undefined;
    const callId = "callId" in m ? m.callId : undefined;
    if (!p || !sender || callId === undefined) return;
    callLatency[hops(sender.pod, ownerOf(`call:${callId}`), receiver.pod)]?.push(at - p.t);
  }

  // ---- connect 100 clients per pod, with limited concurrency ----
  for (let pod = 0; pod < PODS; pod++) {
    for (let j = 0; j < CLIENTS_PER_POD; j++) {
      const index = members.length;
      const member: Member = {
        index,
        pod,
        userId: `mix-u${index}`,
        client: new CountingClient(cluster.pods[pod]?.wsUrl ?? "", {
          onEvent: (m, at) => {
            if (m.type === "broadcast") onRoomMessage(member, m, at);
            else if (m.type === "offer" || m.type === "answer" || m.type === "candidate") {
              if (m.room !== undefined) onRoomMessage(member, m, at);
              else onCallRelay(member, m, at);
            }
          },
        }),
        room: "",
        roomOwner: -1,
        peers: [],
        sentTo: new Map(),
        sentBroadcasts: 0,
        sentInRoom: 0,
        got: new Map(),
      };
      members.push(member);
    }
  }
  const connectStart = performance.now();
  await pool(members, CONNECT_CONCURRENCY, async (m) => {
    const welcome = await m.client.connect(m.userId);
    assert.equal(welcome.pod, cluster.pods[m.pod]?.name);
  });
  const connectMs = performance.now() - connectStart;

  // ---- rooms: 10 members each, from every pod (4+3+3), every pod's clients used once ----
  const cursor = new Array<number>(PODS).fill(0);
  rooms.forEach((room, r) => {
    const inRoom: Member[] = [];
    for (let pod = 0; pod < PODS; pod++) {
      const count = (r + pod) % PODS === 0 ? 4 : 3;
      for (let i = 0; i < count; i++) inRoom.push(members[pod * CLIENTS_PER_POD + (cursor[pod] as number)++] as Member);
    }
    for (const m of inRoom) {
      m.room = room.id;
      m.roomOwner = room.owner;
      m.peers = inRoom.filter((o) => o !== m);
    }
  });
  assert.deepEqual(cursor, new Array<number>(PODS).fill(CLIENTS_PER_POD));
  await pool(members, CONNECT_CONCURRENCY, async (m) => {
    const joined = (await m.client.request({ type: "join", room: m.room })) as ServerMessageOf<"joined">;
    assert.equal(joined.type, "joined");
  });

  // ---- calls: pairs on different pods, each pair calls twice (one each way) ----
  interface CallRecord {
    readonly caller: Member;
    readonly callee: Member;
    readonly hangupByCaller: boolean;
    callId?: string;
    readonly callerSaw: string[];
    readonly calleeSaw: string[];
    error?: string;
  }
  const calls: CallRecord[] = [];
  const spareCursor = new Array<number>(PODS).fill(0);
  const pairs: Array<[Member, Member]> = [];
  for (let q = 0; q < CALL_PAIRS; q++) {
    const a = q % PODS;
    const b = (a + 1 + (Math.floor(q / PODS) % 2)) % PODS;
    const pick = (pod: number) => members[pod * CLIENTS_PER_POD + (spareCursor[pod] as number)++] as Member;
    pairs.push([pick(a), pick(b)]);
  }

  const isCallEvent = (callId: string) => (m: ServerMessage) => "callId" in m && m.callId === callId;

  /** One call from invite to hangup; records what each side saw, in order. */
  async function runCall(record: CallRecord): Promise<void> {
    const { caller, callee } = record;
    const incoming = callee.client.next<ServerMessageOf<"call-incoming">>((m) => m.type === "call-incoming" && m.from.userId === caller.userId, STEP_TIMEOUT_MS);
    incoming.catch(() => undefined);
    const trying = (await caller.client.request({ type: "call-invite", to: callee.userId }, STEP_TIMEOUT_MS)) as ServerMessageOf<"call-trying">;
    assert.equal(trying.type, "call-trying");
    assert.equal(trying.devices, 1, "the callee has exactly one device");
    const callId = trying.callId;
    record.callId = callId;
    record.callerSaw.push("trying");
    const seen = (side: string[], m: ServerMessage): string => {
      const name = m.type === "call-ended" ? `ended:${m.reason}${m.legOnly ? ":leg" : ""}` : m.type.replace(/^call-/, "");
      side.push(name);
      return name;
    };
    const nextOn = (who: Member, side: string[]) => who.client.next(isCallEvent(callId), STEP_TIMEOUT_MS).then((m) => ({ m, name: seen(side, m) }));

    const inc = await incoming;
    assert.equal(inc.callId, callId);
    assert.equal(inc.from.peerId, caller.client.peerId);
    record.calleeSaw.push("incoming");
    await callee.client.request({ type: "call-ringing", callId }, STEP_TIMEOUT_MS);
    assert.equal((await nextOn(caller, record.callerSaw)).name, "ringing");
    await callee.client.request({ type: "call-accept", callId }, STEP_TIMEOUT_MS);
    const accepted = await nextOn(caller, record.callerSaw);
    assert.equal(accepted.name, "accepted");
    assert.equal((accepted.m as ServerMessageOf<"call-accepted">).peerId, callee.client.peerId);
    assert.equal((accepted.m as ServerMessageOf<"call-accepted">).polite, false);
    caller.client.sendCounted({ type: "call-confirm", callId });

    // Negotiation: the caller offers and trickles; the callee answers the offer and trickles.
    const send = (from: Member, type: string, c: number) => {
      const payload: CallPayload = { s: from.index, c, t: performance.now() };
      from.client.sendCounted(type === "candidate" ? { type, callId, candidate: candidateWith(payload) } : type === "end-of-candidates" ? { type, callId } : { type, callId, sdp: sdpWith(payload) });
    };
    send(caller, "offer", 1);
    for (let c = 2; c < 2 + CANDIDATES_PER_SIDE; c++) send(caller, "candidate", c);
    send(caller, "end-of-candidates", 0);

    const confirmed = await nextOn(callee, record.calleeSaw);
    assert.equal(confirmed.name, "confirmed");
    assert.equal((confirmed.m as ServerMessageOf<"call-confirmed">).polite, true);
    const offer = await nextOn(callee, record.calleeSaw);
    assert.equal(offer.name, "offer");
    assert.equal((payloadOf(offer.m) as CallPayload).c, 1);
    send(callee, "answer", 1);
    for (let c = 2; c < 2 + CANDIDATES_PER_SIDE; c++) send(callee, "candidate", c);
    send(callee, "end-of-candidates", 0);

    // Each side receives the other's messages in the order sent, then end-of-candidates.
    const receiveAll = async (who: Member, side: string[], from: Member, first: string) => {
      for (let c = first === "offer" ? 2 : 1; c < 2 + CANDIDATES_PER_SIDE; c++) {
        const { m, name } = await nextOn(who, side);
        assert.equal(name, c === 1 ? first : "candidate");
        assert.equal("from" in m ? m.from : undefined, from.client.peerId);
        assert.equal((payloadOf(m) as CallPayload).c, c, `${from.index} → ${who.index} in call ${callId}: message ${c}`);
      }
      assert.equal((await nextOn(who, side)).name, "end-of-candidates");
    };
    await Promise.all([receiveAll(callee, record.calleeSaw, caller, "offer"), receiveAll(caller, record.callerSaw, callee, "answer")]);

    const hanger = record.hangupByCaller ? caller : callee;
    await hanger.client.request({ type: "call-hangup", callId }, STEP_TIMEOUT_MS);
    const [a, b] = await Promise.all([nextOn(caller, record.callerSaw), nextOn(callee, record.calleeSaw)]);
    assert.equal(a.name, "ended:hangup");
    assert.equal(b.name, "ended:hangup");
  }

  async function runPair([x, y]: [Member, Member], startAfterMs: number): Promise<void> {
    await sleep(startAfterMs);
    for (const [caller, callee, hangupByCaller] of [
      [x, y, true],
      [y, x, false],
    ] as const) {
      const record: CallRecord = { caller, callee, hangupByCaller, callerSaw: [], calleeSaw: [] };
      calls.push(record);
      try {
        await runCall(record);
      } catch (err) {
        record.error = (err as Error).message;
        return;
      }
    }
  }

  // ---- traffic: room messages at a fixed total rate, calls started over the first 8 s ----
  const loadAtTraffic = loadavg();
  const callsDone = Promise.all(pairs.map((pair, q) => runPair(pair, Math.floor((q * 8000) / CALL_PAIRS))));
  const order = members.slice();
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j] as Member, order[i] as Member];
  }
  let sends = 0;
  let bursts = 0;
  let broadcasts = 0;
  /** Sends skipped because the window was full (not made up later: no bursts). */
  let skipped = 0;
  const trafficStart = performance.now();
  for (;;) {
    const elapsed = performance.now() - trafficStart;
    if (elapsed >= TRAFFIC_MS) break;
    const due = Math.floor((elapsed * RATE_PER_SECOND) / 1000);
    while (sends + skipped < due) {
      if (expectedDeliveries - deliveries >= MAX_IN_FLIGHT) {
        skipped = due - sends;
        break;
      }
      const sender = order[bursts % order.length] as Member;
      const to = sender.peers[Math.floor(random() * sender.peers.length)] as Member;
      const target = { room: sender.room, to: to.client.peerId };
      const withBroadcast = bursts % BROADCAST_BURST_EVERY === 0;
      bursts++;
      BURST.forEach((type, j) => {
        if (withBroadcast && j === BROADCAST_AT) {
          const payload: RoomPayload = { s: sender.index, g: ++sender.sentInRoom, b: ++sender.sentBroadcasts, t: performance.now() };
          sender.client.sendCounted({ type: "broadcast", room: sender.room, data: { test: payload } });
          expectedDeliveries += sender.peers.length;
          broadcasts++;
          sends++;
        }
        const k = (sender.sentTo.get(to.index) ?? 0) + 1;
        sender.sentTo.set(to.index, k);
        const payload: RoomPayload = { s: sender.index, g: ++sender.sentInRoom, k, t: performance.now() };
        sender.client.sendCounted(type === "candidate" ? { type, ...target, candidate: candidateWith(payload) } : { type, ...target, sdp: sdpWith(payload) });
        expectedDeliveries++;
        sends++;
      });
    }
    await sleep(10);
  }
  const trafficMs = performance.now() - trafficStart;

  // ---- drain: every reply, every delivery, every call ----
  await callsDone;
  const settleStart = performance.now();
  const unsettled = (await Promise.all(members.map((m) => m.client.settled(DRAIN_TIMEOUT_MS)))).filter((ok) => !ok).length;
  const missing = () => {
    const out: string[] = [];
    for (const r of members) {
      for (const s of r.peers) {
        const got = r.got.get(s.index) ?? { k: 0, b: 0 };
        const k = s.sentTo.get(r.index) ?? 0;
        if (got.k !== k || got.b !== s.sentBroadcasts) out.push(`${s.index} → ${r.index}: relays ${got.k}/${k}, broadcasts ${got.b}/${s.sentBroadcasts}`);
      }
    }
    return out;
  };
  while (missing().length > 0 && performance.now() - settleStart < DRAIN_TIMEOUT_MS) await sleep(100);
  const drainMs = performance.now() - settleStart;
  const loadAfter = loadavg();

  // ---- figures ----
  const all = (lists: number[][]) => lists.flat();
  const load = (l: number[]) => l.map((x) => x.toFixed(2)).join(" ");
  console.log(`# mixed traffic: ${PODS} pods, ${members.length} clients, ${ROOMS} rooms of ${ROOMS && members.length / ROOMS}, room owners per pod ${perOwner.join("/")}, seed ${seed}`);
  console.log(`# connected ${members.length} clients in ${connectMs.toFixed(0)} ms (concurrency ${CONNECT_CONCURRENCY})`);
  console.log(
    `# sent ${sends} room messages in bursts of ${BURST.length} to one peer (${broadcasts} broadcasts) in ${(trafficMs / 1000).toFixed(1)} s = ${((sends * 1000) / trafficMs).toFixed(0)} msg/s (target ${RATE_PER_SECOND}, window ${MAX_IN_FLIGHT} in flight, ${skipped} skipped); ${calls.length} calls; drained in ${drainMs.toFixed(0)} ms`,
  );
  console.log(`# load average (1/5/15 min) before ${load(loadBefore)}, at traffic start ${load(loadAtTraffic)}, after ${load(loadAfter)} on ${PODS} pods + NATS + Redis + this process, shared machine`);
  console.log(`# relay latency same-pod  (0 hops: sender, owner, receiver on one pod): ${percentiles(relayLatency[0] ?? [])}`);
  console.log(`# relay latency cross-pod (1 hop):  ${percentiles(relayLatency[1] ?? [])}`);
  console.log(`# relay latency cross-pod (2 hops): ${percentiles(relayLatency[2] ?? [])}`);
  console.log(`# relay latency cross-pod (1–2 hops): ${percentiles(all(relayLatency.slice(1)))}`);
  console.log(`# broadcast latency per receiver: same-pod ${percentiles(broadcastLatency[0] ?? [])}; cross-pod ${percentiles(all(broadcastLatency.slice(1)))}`);
  console.log(`# call relay latency (caller and callee on different pods): 1 hop ${percentiles(callLatency[1] ?? [])}; 2 hops ${percentiles(callLatency[2] ?? [])}`);

  for (const pod of cluster.pods) {
    const errors = pod.output().split("\n").filter((line) => /"level":(50|60)/.test(line));
    if (errors.length > 0) console.log(`# ${pod.name} logged ${errors.length} errors, first: ${errors[0]?.slice(0, 300)}`);
  }

  // ---- assertions ----
  assert.deepEqual(violations.slice(0, 20), [], `${violations.length} order/duplicate violations`);
  const lost = missing();
  assert.deepEqual(lost.slice(0, 20), [], `${lost.length} sender → receiver pairs incomplete after ${DRAIN_TIMEOUT_MS} ms`);
  assert.equal(unsettled, 0, "every message answered");
  const problems = members.flatMap((m) => m.client.problems.map((p) => `${m.index}@pod-${m.pod}: ${p}`));
  assert.deepEqual(problems.slice(0, 20), [], `${problems.length} stream problems (seq gaps, errors, closes)`);
  const candidates = Array.from({ length: CANDIDATES_PER_SIDE }, () => "candidate");
  for (const c of calls) {
    const where = `call ${c.callId ?? "?"} ${c.caller.index}@pod-${c.caller.pod} → ${c.callee.index}@pod-${c.callee.pod}`;
    assert.equal(c.error, undefined, `${where}: ${c.error ?? ""}; caller saw ${c.callerSaw.join(",")}; callee saw ${c.calleeSaw.join(",")}`);
    assert.deepEqual(c.callerSaw, ["trying", "ringing", "accepted", "answer", ...candidates, "end-of-candidates", "ended:hangup"], where);
    assert.deepEqual(c.calleeSaw, ["incoming", "confirmed", "offer", ...candidates, "end-of-candidates", "ended:hangup"], where);
  }
  const expectedOks = members.reduce((n, m) => n + m.sentInRoom, 0) + calls.length * (1 + 2 * (2 + CANDIDATES_PER_SIDE));
  assert.equal(
    members.reduce((n, m) => n + m.client.okCount, 0),
    expectedOks,
    "every room message and call message acknowledged with ok",
  );
  assert.equal(calls.length, 2 * CALL_PAIRS);
  const leftovers = members.flatMap((m) => m.client.queued().map((q) => `${m.index}: ${JSON.stringify(q)}`));
  assert.deepEqual(leftovers.slice(0, 20), [], "no call event beyond the expected ones");
  // The layout gives every path: same pod, one hop and two hops.
  for (const [h, samples] of relayLatency.entries()) assert.ok(samples.length > 0, `relays over ${h} hops were measured`);
});
