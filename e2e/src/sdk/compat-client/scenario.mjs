/* global process, console, setTimeout, clearTimeout */
// What an app does with the SDK, written against the API of the release in compat/ and run with
// that release installed (plain JavaScript: the current SDK's types do not apply to an old one).
// Prints one JSON line per step; exits 0 when every step passed, 1 at the first failure.
//
//   SWITCHBOARD_URL=ws://…/v1/ws ROOM=compat CURRENT_PEER=<peer id of a current client> node scenario.mjs
//   EXPECT=refused …   (the pod speaks a newer protocol: the old client must be refused cleanly)
import { SwitchboardClient } from "@switchboard/client";
import { PROTOCOL_VERSION } from "@switchboard/protocol";

const url = process.env.SWITCHBOARD_URL;
const room = process.env.ROOM ?? "compat";
const currentPeer = process.env.CURRENT_PEER;
const STEP_TIMEOUT_MS = 5000;

function print(line) {
  console.log(JSON.stringify(line));
}

/** Resolves the next `type` event of `client` that `match` accepts; rejects after STEP_TIMEOUT_MS. */
function next(client, type, match = () => true) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no ${type} event in ${STEP_TIMEOUT_MS} ms`));
    }, STEP_TIMEOUT_MS);
    const off = client.on(type, (e) => {
      if (!match(e)) return;
      clearTimeout(timer);
      off();
      resolve(e);
    });
  });
}

function equal(actual, expected, what) {
  if (JSON.stringify(actual) !== JSON.stringify(expected)) throw new Error(`${what}: got ${JSON.stringify(actual)}, want ${JSON.stringify(expected)}`);
}

let current = "start";
async function step(name, fn) {
  current = name;
  const started = Date.now();
  await fn();
  print({ step: name, ok: true, ms: Date.now() - started });
}

const alice = new SwitchboardClient({ url, token: "alice-old", requestTimeoutMs: STEP_TIMEOUT_MS });
const bob = new SwitchboardClient({ url, token: "bob-old", requestTimeoutMs: STEP_TIMEOUT_MS });
print({ event: "versions", protocol: PROTOCOL_VERSION });

try {
  if (process.env.EXPECT === "refused") {
    await step("refused with SIG_ERR_UNSUPPORTED_VERSION", async () => {
      const outcome = await alice.connect().then(() => "connected", (err) => err.code);
      equal(outcome, "SIG_ERR_UNSUPPORTED_VERSION", "connect");
    });
  } else {
    let a, b;
    await step("connect", async () => {
      [a, b] = await Promise.all([alice.connect(), bob.connect()]);
      equal([a.userId, b.userId], ["alice-old", "bob-old"], "welcome users");
    });
    await step("join: snapshot and peer-joined", async () => {
      await alice.join(room, { name: "alice" });
      const seen = next(alice, "peer-joined", (e) => e.peer.peerId === b.peerId);
      const joined = await bob.join(room, { name: "bob" });
      if (!joined.peers.some((p) => p.peerId === a.peerId)) throw new Error(`bob's snapshot lacks alice: ${JSON.stringify(joined.peers)}`);
      equal((await seen).peer.meta, { name: "bob" }, "peer-joined meta");
    });
    const toBob = { room, to: b.peerId };
    const toAlice = { room, to: a.peerId };
    await step("relay: offer, answer, candidate, end-of-candidates, renegotiate", async () => {
      let got = next(bob, "offer", (e) => e.from === a.peerId);
      await alice.sendOffer(toBob, "v=0 offer-from-alice");
      equal((await got).sdp, "v=0 offer-from-alice", "offer");
      got = next(alice, "answer", (e) => e.from === b.peerId);
      await bob.sendAnswer(toAlice, "v=0 answer-from-bob");
      equal((await got).sdp, "v=0 answer-from-bob", "answer");
      const candidate = { candidate: "candidate:1 1 udp 2122260223 127.0.0.1 40000 typ host", sdpMid: "0", sdpMLineIndex: 0, usernameFragment: "abcd" };
      got = next(bob, "candidate", (e) => e.from === a.peerId);
      await alice.sendCandidate(toBob, candidate);
      equal((await got).candidate, candidate, "candidate");
      got = next(bob, "end-of-candidates", (e) => e.from === a.peerId);
      await alice.sendEndOfCandidates(toBob);
      await got;
      got = next(alice, "renegotiate", (e) => e.from === b.peerId);
      await bob.requestRenegotiation(toAlice, true);
      equal((await got).iceRestart, true, "renegotiate iceRestart");
    });
    await step("app data: broadcast, message, peer-updated", async () => {
      let got = next(bob, "broadcast", (e) => e.from === a.peerId);
      await alice.broadcast(room, { n: 1, nested: { list: [1, "two", null] } });
      equal((await got).data, { n: 1, nested: { list: [1, "two", null] } }, "broadcast");
      got = next(alice, "message", (e) => e.from === b.peerId);
      await bob.message(room, a.peerId, { n: 2 });
      equal((await got).data, { n: 2 }, "message");
      got = next(bob, "peer-updated", (e) => e.peer.peerId === a.peerId);
      await alice.update(room, { name: "alice", mood: "testing" });
      equal((await got).peer.meta, { name: "alice", mood: "testing" }, "peer-updated meta");
    });
    await step("call: invite, ringing, accept, confirm, relay by callId, hangup", async () => {
      const incoming = next(bob, "call-incoming");
      const { callId, devices } = await alice.invite("bob-old");
      equal(devices, 1, "devices rung");
      equal((await incoming).callId, callId, "call-incoming");
      const ringing = next(alice, "call-ringing", (e) => e.callId === callId);
      await bob.ringing(callId);
      await ringing;
      const accepted = next(alice, "call-accepted", (e) => e.callId === callId);
      await bob.accept(callId);
      equal((await accepted).polite, false, "the caller is impolite");
      const confirmed = next(bob, "call-confirmed", (e) => e.callId === callId);
      await alice.confirm(callId);
      equal((await confirmed).polite, true, "the callee is polite");
      const offer = next(bob, "offer", (e) => e.callId === callId);
      await alice.sendOffer({ callId }, "v=0 call-offer");
      equal((await offer).sdp, "v=0 call-offer", "offer in the call");
      const ended = next(bob, "call-ended", (e) => e.callId === callId);
      await alice.hangup(callId);
      equal((await ended).reason, "hangup", "call-ended reason");
    });
    await step("resume: events missed during a drop are replayed once", async () => {
      const resumed = next(alice, "resumed");
      const received = [];
      const off = alice.on("message", (e) => e.data?.n === 3 && received.push(e.seq));
      alice.simulateDrop();
      await bob.message(room, a.peerId, { n: 3 });
      await resumed;
      // A request after the replay: the reply comes after every replayed event.
      await alice.update(room, { name: "alice" });
      off();
      equal(received.length, 1, "the missed message, exactly once");
      equal(alice.session.sessionId, a.sessionId, "same session");
    });
    if (currentPeer) {
      await step("the current SDK in the same room: message both ways", async () => {
        const echo = next(alice, "message", (e) => e.from === currentPeer);
        await alice.message(room, currentPeer, { from: "released client" });
        equal((await echo).data, { echo: { from: "released client" } }, "echo from the current client");
      });
    }
    await step("leave and close", async () => {
      const left = next(alice, "peer-left", (e) => e.peerId === b.peerId);
      await bob.leave(room);
      equal((await left).reason, "left", "peer-left reason");
    });
  }
  await Promise.all([alice.close(), bob.close()]);
  print({ result: "pass" });
  process.exit(0);
} catch (err) {
  print({ result: "fail", step: current, code: err?.code, message: String(err?.message ?? err) });
  await Promise.all([alice.close(), bob.close()]).catch(() => undefined);
  process.exit(1);
}
