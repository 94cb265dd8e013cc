/**
 * A load worker: a child process (forked by the runner) that holds a share of the client sockets
 * and drives them on command. The runner spreads clients over several workers because one process
 * may hold at most 20 000 open files, and so that the send schedule is not bound to one core.
 *
 * Both ends of every pair or room live in the same worker, so send and receive times are read from
 * the same clock (`performance.now()`). Sending is open-loop: message `i` is due at
 * `t0 + i / rate`, whatever happened to earlier messages, and carries that intended time; a worker
 * that falls behind sends the overdue messages at once and their latency includes the delay
 * (no coordinated omission).
 *
 * Commands and replies: {@link WorkerCommand}, {@link WorkerReply}.
 *
 * @module
 */
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import * as hdr from "hdr-histogram-js";
import { WebSocket } from "ws";
import { DEFAULT_ACK_AFTER_BYTES, DEFAULT_ACK_AFTER_EVENTS, PROTOCOL_VERSION, WS_SUBPROTOCOL_V1 } from "@switchboard/protocol";
import type {
  ClientProtocol,
  ConnectCommand,
  ConnectResult,
  FanoutCommand,
  LayoutCommand,
  LayoutResult,
  LoadResult,
  RelayCommand,
  WorkerCommand,
  WorkerReply,
} from "./ipc.ts";
import { readStamp, stamp, stampedCandidateJson, stampedSdpJson } from "./payloads.ts";
import { newHistogram } from "../histogram.ts";

/** One client socket and what the worker tracks about it. */
interface Client {
  readonly index: number;
  readonly protocol: ClientProtocol;
  readonly userId: string;
  ws: WebSocket;
  /** Switchboard: the peer id from `welcome`; PeerJS: the client id. */
  peerId: string;
  /** Switchboard: highest `seq` received and highest acknowledged. */
  lastSeq: number;
  ackedSeq: number;
  /** Characters of the frames received since the last acknowledgement. */
  unackedChars: number;
  room: string;
  /** Replies awaited by request id (Switchboard `join`). */
  readonly waiting: Map<string, (frame: Record<string, unknown>) => void>;
  /** Resolves the handshake (welcome / OPEN). */
  onReady: ((error: string | null) => void) | null;
}

/** The run in progress: counters and histograms every delivery goes into. */
interface Run {
  readonly fromIntended: hdr.Histogram;
  readonly fromActual: hdr.Histogram;
  readonly allDelivered: hdr.Histogram | null;
  /** Fan-out: deliveries still expected per broadcast number. */
  readonly pending: Map<number, number>;
  readonly receiversPerMessage: number;
  received: number;
  closed: number;
  readonly errors: Record<string, number>;
}

const clients: Client[] = [];
/** Pairs or rooms from the last layout, as client indexes into `clients`. */
let groups: Client[][] = [];
let run: Run | null = null;
let slotTimer: ReturnType<typeof setInterval> | null = null;
let requestCounter = 0;
let acksSent = 0;

function reply(message: WorkerReply): void {
  process.send?.(message);
}

process.on("message", (command: WorkerCommand) => {
  void handle(command).then(reply, (err: unknown) => reply({ ev: "failed", message: err instanceof Error ? (err.stack ?? err.message) : String(err) }));
});
process.on("disconnect", () => process.exit(0));

async function handle(command: WorkerCommand): Promise<WorkerReply> {
  switch (command.cmd) {
    case "connect":
      return connectAll(command);
    case "layout":
      return layout(command);
    case "relay":
      return relay(command);
    case "fanout":
      return fanout(command);
    case "close":
      closeAll();
      return { ev: "closed" };
  }
}

// ---------------------------------------------------------------------------------------------
// Connecting

async function connectAll(c: ConnectCommand): Promise<ConnectResult> {
  const started = performance.now();
  const failures: string[] = [];
  let failed = 0;
  let opened = 0;
  const base = clients.length;
  let next = 0;
  const one = async (): Promise<void> => {
    while (next < c.count) {
      const i = next++;
      const url = c.urls[i % c.urls.length] as string;
      let error: string | null = "not tried";
      for (let attempt = 0; attempt < 4 && error !== null; attempt++) {
        if (attempt > 0) await sleep(200 * 2 ** attempt + Math.random() * 200);
        error = await connectOne(c, base + i, url);
      }
      if (error === null) opened++;
      else {
        failed++;
        if (failures.length < 5) failures.push(error);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(c.concurrency, c.count) }, one));
  // Clients are kept in index order so that layouts pair neighbours deterministically.
  clients.sort((a, b) => a.index - b.index);
  startTimers(c);
  return { ev: "connected", opened, failed, failures, elapsedMs: performance.now() - started };
}

/** Opens one socket and completes the protocol's handshake; resolves null or an error text. */
function connectOne(c: ConnectCommand, index: number, url: string): Promise<string | null> {
  const userId = `${c.idPrefix}u${index}`;
  let target: string;
  let protocols: string[] = [];
  if (c.protocol === "peerjs") {
    target = `${url}/peerjs?key=peerjs&id=${userId}&token=t${index}`;
  } else {
    target = url;
    if (c.protocol === "switchboard") protocols = [WS_SUBPROTOCOL_V1];
  }
  return new Promise((resolve) => {
    const ws = new WebSocket(target, protocols, {
      localAddress: c.localAddress,
      perMessageDeflate: false,
      handshakeTimeout: 30_000,
      // An all-zero masking key: frames stay valid (masked, the server still unmasks them, so its
      // cost is unchanged) but ws skips masking on the client side. The generator shares the two
      // cores with the server under test, so its own per-message cost is kept down.
      generateMask: (mask: Buffer) => void mask.fill(0),
    });
    const client: Client = {
      index,
      protocol: c.protocol,
      userId,
      ws,
      peerId: c.protocol === "peerjs" ? userId : "",
      lastSeq: 0,
      ackedSeq: 0,
      unackedChars: 0,
      room: "",
      waiting: new Map(),
      onReady: null,
    };
    let settled = false;
    const settle = (error: string | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      client.onReady = null;
      if (error === null) clients.push(client);
      else ws.terminate();
      resolve(error);
    };
    const timer = setTimeout(() => settle("handshake timeout"), 30_000);
    client.onReady = settle;
    ws.on("error", (err) => settle(`socket error: ${err.message}`));
    ws.on("unexpected-response", (_req, res) => settle(`upgrade refused: HTTP ${res.statusCode}`));
    ws.on("close", (code) => {
      settle(`closed during handshake: ${code}`);
      if (run) run.closed++;
    });
    ws.on("message", (data: Buffer) => onFrame(client, data.toString("utf8")));
    ws.on("open", () => {
      if (c.protocol === "switchboard") ws.send(JSON.stringify({ type: "hello", v: PROTOCOL_VERSION, token: userId, textHeartbeat: true }));
      else if (c.protocol === "plain") settle(null);
      // PeerJS: the server speaks first (OPEN).
    });
  });
}

/** Period of the worker's slot timer, ms: the resolution of acknowledgements and heartbeats. */
const SLOT_MS = 10;

/**
 * The Switchboard acknowledgements and the PeerJS heartbeats, from one 10 ms timer per worker.
 *
 * Real clients run these timers independently, each at its own phase; one timer per worker that
 * served every client at once would send them in synchronized bursts the server never sees in
 * production (and that would show up as latency spikes). So the period is cut in 10 ms slots and
 * client `i` is served in slot `i mod slots`: every client keeps its period, the phases are spread.
 */
function startTimers(c: ConnectCommand): void {
  if (slotTimer) return;
  const ackSlots = Math.max(1, Math.round(c.ackIntervalMs / SLOT_MS));
  const heartbeatSlots = Math.max(1, Math.round(c.peerjsHeartbeatMs / SLOT_MS));
  let tick = 0;
  slotTimer = setInterval(() => {
    tick++;
    if (c.protocol === "switchboard") {
      // What the SDK does: acknowledge the highest seq every ackIntervalMs when events arrived.
      for (let i = tick % ackSlots; i < clients.length; i += ackSlots) {
        const client = clients[i] as Client;
        if (client.lastSeq > client.ackedSeq) sendAck(client);
      }
    } else if (c.protocol === "peerjs") {
      // What the PeerJS client does: a HEARTBEAT every 5 s.
      for (let i = tick % heartbeatSlots; i < clients.length; i += heartbeatSlots) {
        const ws = (clients[i] as Client).ws;
        if (ws.readyState === WebSocket.OPEN) ws.send('{"type":"HEARTBEAT"}');
      }
    }
  }, SLOT_MS);
}

/** The Switchboard pod's heartbeat frame (sessions that said `textHeartbeat`, as the SDK does). */
const HEARTBEAT_PING = '{"type":"ping"}';

function sendAck(client: Client): void {
  if (client.ws.readyState !== WebSocket.OPEN) return;
  client.ackedSeq = client.lastSeq;
  client.unackedChars = 0;
  client.ws.send(`{"type":"ack","seq":${client.lastSeq}}`);
  acksSent++;
}

// ---------------------------------------------------------------------------------------------
// Receiving

function onFrame(client: Client, text: string): void {
  const now = performance.now();
  if (text === HEARTBEAT_PING) {
    // The pod's heartbeat: answered at once, with the acknowledgement when one is due (the SDK).
    if (client.ws.readyState !== WebSocket.OPEN) return;
    if (client.lastSeq > client.ackedSeq) {
      client.ackedSeq = client.lastSeq;
      client.unackedChars = 0;
      client.ws.send(`{"type":"pong","ack":${client.lastSeq}}`);
    } else client.ws.send('{"type":"pong"}');
    return;
  }
  if (client.protocol === "switchboard" && text.startsWith('{"seq":')) {
    // Events arrive in seq order; read the number without parsing the whole frame.
    let seq = 0;
    for (let i = 7; i < text.length; i++) {
      const ch = text.charCodeAt(i);
      if (ch < 48 || ch > 57) break;
      seq = seq * 10 + (ch - 48);
    }
    client.lastSeq = seq;
    // What the SDK does besides the timer: acknowledge at once when many events or many
    // characters of them are unacknowledged.
    client.unackedChars += text.length;
    if (client.lastSeq - client.ackedSeq >= DEFAULT_ACK_AFTER_EVENTS || client.unackedChars >= DEFAULT_ACK_AFTER_BYTES) sendAck(client);
  }
  const s = run ? readStamp(text) : null;
  if (s && run) {
    run.received++;
    run.fromIntended.recordValue(Math.max(1, Math.round(now * 1000 - s.intendedUs)));
    run.fromActual.recordValue(Math.max(1, Math.round(now * 1000 - s.actualUs)));
    if (run.allDelivered && s.tag >= 0) {
      const left = (run.pending.get(s.tag) ?? run.receiversPerMessage) - 1;
      if (left <= 0) {
        run.pending.delete(s.tag);
        run.allDelivered.recordValue(Math.max(1, Math.round(now * 1000 - s.intendedUs)));
      } else run.pending.set(s.tag, left);
    }
    return;
  }
  onControlFrame(client, text);
}

function onControlFrame(client: Client, text: string): void {
  let frame: Record<string, unknown>;
  try {
    frame = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return;
  }
  const type = frame["type"];
  if (client.protocol === "peerjs") {
    if (type === "OPEN") client.onReady?.(null);
    else if (type === "ERROR" || type === "ID-TAKEN") {
      const msg = (frame["payload"] as { msg?: string } | undefined)?.msg ?? String(type);
      if (client.onReady) client.onReady(`peerjs ${String(type)}: ${msg}`);
      else countError(`peerjs:${msg}`);
    }
    return;
  }
  if (type === "welcome") {
    client.peerId = String(frame["peerId"]);
    client.onReady?.(null);
    return;
  }
  const id = frame["id"];
  if (typeof id === "string") {
    const waiter = client.waiting.get(id);
    if (waiter) {
      client.waiting.delete(id);
      waiter(frame);
      return;
    }
  }
  if (type === "error") {
    if (client.onReady) client.onReady(`error ${String(frame["code"])}: ${String(frame["message"])}`);
    else countError(String(frame["code"]));
  }
}

function countError(code: string): void {
  if (run) run.errors[code] = (run.errors[code] ?? 0) + 1;
}

// ---------------------------------------------------------------------------------------------
// Layout

async function layout(c: LayoutCommand): Promise<LayoutResult> {
  const started = performance.now();
  const k = c.layout.kind === "pairs" ? 2 : c.layout.k;
  groups = [];
  for (let i = 0; i + k <= clients.length; i += k) groups.push(clients.slice(i, i + k));
  const failures: string[] = [];
  let failed = 0;
  if (clients[0]?.protocol === "switchboard") {
    let next = 0;
    const one = async (): Promise<void> => {
      while (next < groups.length) {
        const g = next++;
        const group = groups[g] as Client[];
        const room = `${group[0]?.userId ?? "r"}.room`;
        try {
          // Join one after another: the room is created by its first member, as in a real call.
          for (const member of group) await join(member, room);
        } catch (err) {
          failed++;
          if (failures.length < 5) failures.push((err as Error).message);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(c.concurrency, groups.length) }, one));
  }
  return { ev: "laid-out", groups: groups.length, failed, failures, elapsedMs: performance.now() - started };
}

function join(client: Client, room: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const id = `j${++requestCounter}`;
    const timer = setTimeout(() => {
      client.waiting.delete(id);
      reject(new Error(`join ${room} timed out`));
    }, 30_000);
    client.waiting.set(id, (frame) => {
      clearTimeout(timer);
      if (frame["type"] === "joined") {
        client.room = room;
        resolve();
      } else reject(new Error(`join ${room}: ${String(frame["code"])} ${String(frame["message"])}`));
    });
    client.ws.send(JSON.stringify({ type: "join", id, room }));
  });
}

// ---------------------------------------------------------------------------------------------
// Open-loop runs

/**
 * Calls `send(i, intendedMs)` for i = 0 … total−1 at `t0 + i × periodMs`, open-loop: overdue
 * messages are sent at once (each keeping its own intended time). Resolves with the largest send
 * lag and the time of the last send.
 */
function schedule(total: number, ratePerSec: number, startAtEpochMs: number, send: (i: number, intendedMs: number) => void): Promise<{ maxLagUs: number; windowMs: number }> {
  const periodMs = 1000 / ratePerSec;
  return new Promise((resolve) => {
    if (total === 0) return resolve({ maxLagUs: 0, windowMs: 0 });
    let i = 0;
    let maxLagMs = 0;
    let t0 = 0;
    const tick = (): void => {
      const now = performance.now();
      const due = Math.min(total, Math.floor((now - t0) / periodMs) + 1);
      for (; i < due; i++) {
        const intended = t0 + i * periodMs;
        send(i, intended);
        const lag = performance.now() - intended;
        if (lag > maxLagMs) maxLagMs = lag;
      }
      if (i < total) setTimeout(tick, Math.max(0, t0 + i * periodMs - performance.now()));
      else resolve({ maxLagUs: Math.round(maxLagMs * 1000), windowMs: performance.now() - t0 });
    };
    setTimeout(() => {
      t0 = performance.now();
      tick();
    }, Math.max(0, startAtEpochMs - Date.now()));
  });
}

function beginRun(receiversPerMessage: number, fanout: boolean): Run {
  run = {
    fromIntended: newHistogram(),
    fromActual: newHistogram(),
    allDelivered: fanout ? newHistogram() : null,
    pending: new Map(),
    receiversPerMessage,
    received: 0,
    closed: 0,
    errors: {},
  };
  return run;
}

async function finishRun(r: Run, ev: LoadResult["ev"], sent: number, expected: number, timing: { maxLagUs: number; windowMs: number }, drainMs: number, loop: ReturnType<typeof monitorEventLoopDelay>): Promise<LoadResult> {
  const drainUntil = performance.now() + drainMs;
  while (r.received < expected && performance.now() < drainUntil) await sleep(20);
  loop.disable();
  run = null;
  const result: LoadResult = {
    ev,
    sent,
    expected,
    received: r.received,
    errors: r.errors,
    closed: r.closed,
    latencyFromIntended: hdr.encodeIntoCompressedBase64(r.fromIntended),
    latencyFromActual: hdr.encodeIntoCompressedBase64(r.fromActual),
    ...(r.allDelivered ? { allDelivered: hdr.encodeIntoCompressedBase64(r.allDelivered) } : {}),
    sendWindowMs: timing.windowMs,
    maxSendLagUs: timing.maxLagUs,
    workerLoopDelayP99Us: Math.round(loop.percentile(99) / 1000),
    acksSent,
  };
  return result;
}

/** Step `s` of a pair's exchange: an offer, its answer, then four trickled candidates. */
const EXCHANGE: readonly { readonly type: "offer" | "answer" | "candidate"; readonly fromB: boolean }[] = [
  { type: "offer", fromB: false },
  { type: "answer", fromB: true },
  { type: "candidate", fromB: false },
  { type: "candidate", fromB: true },
  { type: "candidate", fromB: false },
  { type: "candidate", fromB: true },
];

const PEERJS_TYPES = { offer: "OFFER", answer: "ANSWER", candidate: "CANDIDATE" } as const;

async function relay(c: RelayCommand): Promise<LoadResult> {
  const pairs = groups.filter((g) => g.length === 2);
  const total = pairs.length === 0 ? 0 : Math.round((c.ratePerSec * c.durationMs) / 1000);
  const r = beginRun(1, false);
  const loop = monitorEventLoopDelay({ resolution: 2 });
  loop.enable();
  acksSent = 0;
  let sent = 0;
  const timing = await schedule(total, c.ratePerSec, c.startAtEpochMs, (i, intendedMs) => {
    const pair = pairs[i % pairs.length] as Client[];
    const step = EXCHANGE[Math.floor(i / pairs.length) % EXCHANGE.length] as (typeof EXCHANGE)[number];
    const from = (step.fromB ? pair[1] : pair[0]) as Client;
    const to = (step.fromB ? pair[0] : pair[1]) as Client;
    const st = stamp(Math.round(intendedMs * 1000), Math.round(performance.now() * 1000));
    sent++;
    if (from.ws.readyState !== WebSocket.OPEN) return;
    from.ws.send(relayFrame(from, to, step.type, st, i % pairs.length));
  });
  return finishRun(r, "relayed", sent, sent, timing, c.drainMs, loop);
}

function relayFrame(from: Client, to: Client, type: "offer" | "answer" | "candidate", st: string, pairIndex: number): string {
  if (from.protocol === "peerjs") {
    const payload =
      type === "candidate"
        ? `{"candidate":${stampedCandidateJson(st)},"type":"media","connectionId":"mc_${pairIndex}"}`
        : `{"sdp":{"type":"${type}","sdp":${stampedSdpJson(st)}},"type":"media","connectionId":"mc_${pairIndex}","browser":"bench"}`;
    return `{"type":"${PEERJS_TYPES[type]}","dst":"${to.peerId}","payload":${payload}}`;
  }
  // Piggyback the acknowledgement, as the SDK does when it has something to send anyway.
  let ack = "";
  if (from.lastSeq > from.ackedSeq) {
    from.ackedSeq = from.lastSeq;
    from.unackedChars = 0;
    ack = `,"ack":${from.lastSeq}`;
  }
  const body = type === "candidate" ? `"candidate":${stampedCandidateJson(st)}` : `"sdp":${stampedSdpJson(st)}`;
  return `{"type":"${type}","room":"${from.room}","to":"${to.peerId}",${body}${ack}}`;
}

async function fanout(c: FanoutCommand): Promise<LoadResult> {
  const rooms = groups.filter((g) => g.length >= 2);
  const k = rooms[0]?.length ?? 0;
  const total = rooms.length === 0 ? 0 : Math.round((c.ratePerSec * c.durationMs) / 1000);
  const r = beginRun(k - 1, true);
  const loop = monitorEventLoopDelay({ resolution: 2 });
  loop.enable();
  acksSent = 0;
  let sent = 0;
  const timing = await schedule(total, c.ratePerSec, c.startAtEpochMs, (i, intendedMs) => {
    const room = rooms[i % rooms.length] as Client[];
    const sender = room[0] as Client;
    const st = stamp(Math.round(intendedMs * 1000), Math.round(performance.now() * 1000), i);
    sent++;
    if (sender.ws.readyState !== WebSocket.OPEN) return;
    let ack = "";
    if (sender.lastSeq > sender.ackedSeq) {
      sender.ackedSeq = sender.lastSeq;
      sender.unackedChars = 0;
      ack = `,"ack":${sender.lastSeq}`;
    }
    sender.ws.send(`{"type":"broadcast","room":"${sender.room}","data":"${st}"${ack}}`);
  });
  return finishRun(r, "fanned-out", sent, sent * (k - 1), timing, c.drainMs, loop);
}

function closeAll(): void {
  if (slotTimer) clearInterval(slotTimer);
  slotTimer = null;
  for (const client of clients) client.ws.terminate();
  clients.length = 0;
  groups = [];
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
