/**
 * The demo page: join a room or call a user, see and hear each other, chat over a data channel,
 * hang up. It shows the signaling state and reconnects (and resumes) by itself. Everything a user
 * can do is also reachable as `window.demo` so the browser tests drive the same code.
 *
 * Query options: `token=` (a JWT; without it the name is the token, for the insecure dev mode),
 * `loopbackOnly=1` (send only 127.0.0.1 candidates; the tests use it), `relay=1` (TURN only),
 * `iceServers=<JSON>` (replace the pod's ICE servers).
 */
import { SwitchboardClient, negotiateWith, type RelayTarget } from "@switchboard/client";

const params = new URLSearchParams(location.search);
const loopbackOnly = params.get("loopbackOnly") === "1";
const relayOnly = params.get("relay") === "1";
/** `iceServers=<JSON>` replaces the pod's ICE servers (for debugging TURN setups). */
const iceServersOverride: unknown = params.has("iceServers") ? JSON.parse(params.get("iceServers") as string) : null;

interface Peer {
  readonly key: string;
  readonly target: RelayTarget;
  readonly pc: RTCPeerConnection;
  readonly chat: () => RTCDataChannel | null;
  readonly polite: boolean;
  readonly restartIce: () => void;
  readonly detach: () => void;
  readonly tile: HTMLElement;
  readonly remote: MediaStream;
}

interface ActiveCall {
  callId: string;
  role: "caller" | "callee";
  state: string;
  peerKey: string | null;
}

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
const logLines: string[] = [];
const chatReceived: string[] = [];
/** Error codes reported by ICE servers (401 = TURN refused the credentials). */
const iceErrors: number[] = [];
const peers = new Map<string, Peer>();
let client: SwitchboardClient | null = null;
let localStream: MediaStream | null = null;
let room: string | null = null;
let call: ActiveCall | null = null;
let incoming: { callId: string; from: string } | null = null;
let lastCallEnd: string | null = null;

function log(text: string): void {
  const line = `${new Date().toISOString().slice(11, 23)} ${text}`;
  logLines.push(line);
  const el = $("log");
  el.textContent += `${line}\n`;
  el.scrollTop = el.scrollHeight;
}

function setCallState(text: string): void {
  $("call-state").textContent = text;
}

function refreshButtons(): void {
  const open = client?.state === "open" || client?.state === "reconnecting";
  ($("connect") as HTMLButtonElement).disabled = client !== null;
  ($("user") as HTMLInputElement).disabled = client !== null;
  ($("join") as HTMLButtonElement).disabled = !open || room !== null;
  ($("leave") as HTMLButtonElement).disabled = room === null;
  ($("call") as HTMLButtonElement).disabled = !open || call !== null;
  ($("hangup") as HTMLButtonElement).disabled = call === null;
  ($("send") as HTMLButtonElement).disabled = peers.size === 0;
  $("incoming").hidden = incoming === null;
}

async function getLocalStream(): Promise<MediaStream | null> {
  if (localStream) return localStream;
  if (!navigator.mediaDevices?.getUserMedia) return null;
  try {
    localStream = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
  } catch {
    try {
      localStream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (err) {
      log(`no camera or microphone (${(err as Error).name}); chat only`);
      return null;
    }
  }
  ($("local") as HTMLVideoElement).srcObject = localStream;
  return localStream;
}

function isLoopbackCandidate(c: RTCIceCandidateInit): boolean {
  return / 127\.0\.0\.1 /.test(c.candidate ?? "");
}

/**
 * Opens a peer connection to one remote party. With `mediaAfterOffer` (the callee of a call) the
 * local media and the data channel are added only once the caller's first offer is answered, so
 * the first negotiation is the caller's alone and no offers collide.
 */
async function startPeer(key: string, target: RelayTarget, polite: boolean, label: string, mediaAfterOffer = false): Promise<Peer> {
  const existing = peers.get(key);
  if (existing) return existing;
  const c = client as SwitchboardClient;
  const pc = new RTCPeerConnection({
    iceServers: (iceServersOverride ?? c.session?.iceServers ?? []) as RTCIceServer[],
    iceTransportPolicy: relayOnly ? "relay" : "all",
  });
  // A pre-negotiated channel (same id on both sides) needs no signaling of its own and cannot race.
  let chat: RTCDataChannel | null = null;
  const openChat = () => {
    chat = pc.createDataChannel("chat", { negotiated: true, id: 0 });
    chat.onmessage = (e) => {
      chatReceived.push(String(e.data));
      log(`${label}: ${String(e.data)}`);
    };
  };
  const remote = new MediaStream();
  const tile = document.createElement("div");
  tile.className = "tile";
  const video = document.createElement("video");
  video.autoplay = true;
  video.playsInline = true;
  video.srcObject = remote;
  tile.append(video, Object.assign(document.createElement("span"), { textContent: label }));
  $("videos").append(tile);
  pc.ontrack = (e) => {
    remote.addTrack(e.track);
    log(`${label}: ${e.track.kind} track arrived`);
  };
  pc.oniceconnectionstatechange = () => log(`${label}: ICE ${pc.iceConnectionState}`);
  pc.onicecandidateerror = (e) => {
    iceErrors.push(e.errorCode);
    log(`${label}: ICE server error ${e.errorCode} ${e.errorText} (${e.url})`);
  };
  const { negotiator, detach } = negotiateWith(c, target, {
    pc,
    polite,
    ...(loopbackOnly ? { filterCandidate: isLoopbackCandidate } : {}),
    onError: (err) => log(`${label}: negotiation error ${(err as Error).message}`),
  });
  const peer: Peer = { key, target, pc, chat: () => chat, polite, restartIce: () => negotiator.restartIce(), detach, tile, remote };
  peers.set(key, peer);
  const stream = await getLocalStream();
  const addMedia = () => {
    openChat();
    if (stream) for (const track of stream.getTracks()) pc.addTrack(track, stream);
    refreshButtons();
  };
  if (!mediaAfterOffer) addMedia();
  else {
    const onState = () => {
      if (pc.signalingState !== "stable" || !pc.remoteDescription) return;
      pc.removeEventListener("signalingstatechange", onState);
      addMedia();
    };
    pc.addEventListener("signalingstatechange", onState);
  }
  refreshButtons();
  return peer;
}

function stopPeer(key: string): void {
  const peer = peers.get(key);
  if (!peer) return;
  peers.delete(key);
  peer.detach();
  peer.pc.close();
  peer.tile.remove();
  refreshButtons();
}

async function connect(user: string): Promise<void> {
  if (client) return;
  const token = params.get("token") ?? user;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  let device = localStorage.getItem("switchboard.device");
  if (!device) {
    device = crypto.randomUUID();
    localStorage.setItem("switchboard.device", device);
  }
  const c = new SwitchboardClient({ url: `${scheme}://${location.host}/v1/ws`, token, device });
  client = c;
  refreshButtons();
  c.on("state", (s) => {
    const el = $("state");
    el.dataset["state"] = s;
    el.textContent = s;
    log(`signaling ${s}`);
    refreshButtons();
  });
  c.on("session", (w) => {
    $("pod").textContent = `(pod ${w.pod}, you are ${w.userId} / ${w.peerId})`;
  });
  c.on("resumed", (r) => {
    log(`session resumed, ${r.replayCount} missed events replayed`);
    // The network may have changed under us: restart ICE on every connection.
    for (const peer of peers.values()) if (!peer.polite) peer.restartIce();
  });
  c.on("session-lost", ({ reason }) => log(`session lost (${reason}); rejoining`));
  c.on("peer-joined", (e) => {
    if (e.room !== room) return;
    log(`${e.peer.userId} joined`);
    void startPeer(`room:${e.peer.peerId}`, { room: e.room, to: e.peer.peerId }, (c.session?.peerId ?? "") < e.peer.peerId, e.peer.userId);
  });
  c.on("peer-left", (e) => {
    log(`${e.peerId} left (${e.reason})`);
    stopPeer(`room:${e.peerId}`);
  });
  c.on("peer-updated", (e) => log(`${e.peer.userId} is ${e.peer.connected ? "connected" : "reconnecting"}`));
  c.on("call-incoming", (e) => {
    incoming = { callId: e.callId, from: e.from.userId };
    $("caller").textContent = e.from.userId;
    log(`incoming call from ${e.from.userId}`);
    void c.ringing(e.callId).catch(() => undefined);
    refreshButtons();
  });
  c.on("call-ringing", (e) => {
    if (call?.callId !== e.callId) return;
    call.state = "ringing";
    setCallState("ringing…");
  });
  c.on("call-accepted", (e) => {
    if (call?.callId !== e.callId) return;
    call.state = "accepted";
    setCallState("connecting…");
    void c.confirm(e.callId).then(
      () => {
        if (call?.callId !== e.callId) return;
        call.state = "active";
        setCallState("in call");
      },
      (err: Error) => log(`confirm failed: ${err.message}`),
    );
    call.peerKey = `call:${e.callId}`;
    void startPeer(call.peerKey, { callId: e.callId }, e.polite, "callee");
  });
  c.on("call-confirmed", (e) => {
    if (call?.callId !== e.callId) return;
    call.state = "active";
    setCallState("in call");
  });
  c.on("call-ended", (e) => {
    if (incoming?.callId === e.callId) incoming = null;
    if (call?.callId === e.callId) {
      if (call.peerKey) stopPeer(call.peerKey);
      call = null;
    }
    lastCallEnd = e.reason;
    setCallState(`call ended: ${e.reason}`);
    log(`call ended (${e.reason}${e.legOnly ? ", this device" : ""})`);
    refreshButtons();
  });
  await c.connect();
}

async function joinRoom(name: string): Promise<void> {
  const c = client as SwitchboardClient;
  const joined = await c.join(name, { name: c.session?.userId ?? "" });
  room = name;
  log(`joined ${name} with ${joined.peers.length} other(s)`);
  for (const p of joined.peers) {
    void startPeer(`room:${p.peerId}`, { room: name, to: p.peerId }, joined.self.peerId < p.peerId, p.userId);
  }
  refreshButtons();
}

async function leaveRoom(): Promise<void> {
  if (!room || !client) return;
  await client.leave(room);
  for (const key of [...peers.keys()]) if (key.startsWith("room:")) stopPeer(key);
  room = null;
  refreshButtons();
}

async function callUser(user: string): Promise<string> {
  const c = client as SwitchboardClient;
  const { callId, devices } = await c.invite(user);
  call = { callId, role: "caller", state: "inviting", peerKey: null };
  lastCallEnd = null;
  setCallState(devices > 0 ? `calling ${user} (${devices} device${devices > 1 ? "s" : ""})…` : `${user} is not online`);
  refreshButtons();
  return callId;
}

async function acceptCall(): Promise<void> {
  if (!incoming || !client) return;
  const { callId } = incoming;
  incoming = null;
  await client.accept(callId);
  call = { callId, role: "callee", state: "accepted", peerKey: `call:${callId}` };
  setCallState("connecting…");
  await startPeer(call.peerKey as string, { callId }, true, "caller", true);
  call.state = "active";
  setCallState("in call");
}

async function declineCall(): Promise<void> {
  if (!incoming || !client) return;
  const { callId } = incoming;
  incoming = null;
  refreshButtons();
  await client.reject(callId, "declined");
}

async function hangUp(): Promise<void> {
  if (!call || !client) return;
  const { callId } = call;
  await client.hangup(callId);
}

function sendChat(text: string): number {
  let sent = 0;
  for (const peer of peers.values()) {
    const chat = peer.chat();
    if (chat?.readyState === "open") {
      chat.send(text);
      sent += 1;
    }
  }
  log(`me: ${text}`);
  return sent;
}

/** Connection facts the tests read. */
function snapshot(): object {
  return {
    signaling: client?.state ?? "idle",
    session: client?.session ? { peerId: client.session.peerId, userId: client.session.userId, pod: client.session.pod } : null,
    room,
    call: call ? { ...call } : null,
    incoming,
    lastCallEnd,
    chatReceived: [...chatReceived],
    iceErrors: [...iceErrors],
    peers: [...peers.values()].map((p) => ({
      key: p.key,
      ice: p.pc.iceConnectionState,
      connection: p.pc.connectionState,
      chat: p.chat()?.readyState ?? "none",
      remoteTracks: p.remote.getTracks().map((t) => t.kind),
      localUfrag: /a=ice-ufrag:(\S+)/.exec(p.pc.localDescription?.sdp ?? "")?.[1] ?? null,
    })),
  };
}

async function selectedCandidatePairs(): Promise<Array<{ local: string; remote: string; localType: string }>> {
  const out: Array<{ local: string; remote: string; localType: string }> = [];
  for (const peer of peers.values()) {
    const stats = await peer.pc.getStats();
    stats.forEach((s: { type: string; selectedCandidatePairId?: string }) => {
      if (s.type !== "transport" || !s.selectedCandidatePairId) return;
      const pair = stats.get(s.selectedCandidatePairId) as { localCandidateId?: string; remoteCandidateId?: string } | undefined;
      const local = stats.get(pair?.localCandidateId ?? "") as { address?: string; candidateType?: string } | undefined;
      const remote = stats.get(pair?.remoteCandidateId ?? "") as { address?: string } | undefined;
      out.push({ local: local?.address ?? "", remote: remote?.address ?? "", localType: local?.candidateType ?? "" });
    });
  }
  return out;
}

$("connect").onclick = () => void connect(($("user") as HTMLInputElement).value.trim() || "guest").catch((e: Error) => log(`connect failed: ${e.message}`));
$("join").onclick = () => void joinRoom(($("room") as HTMLInputElement).value.trim()).catch((e: Error) => log(`join failed: ${e.message}`));
$("leave").onclick = () => void leaveRoom().catch((e: Error) => log(`leave failed: ${e.message}`));
$("call").onclick = () => void callUser(($("callee") as HTMLInputElement).value.trim()).catch((e: Error) => log(`call failed: ${e.message}`));
$("hangup").onclick = () => void hangUp().catch((e: Error) => log(`hangup failed: ${e.message}`));
$("accept").onclick = () => void acceptCall().catch((e: Error) => log(`accept failed: ${e.message}`));
$("decline").onclick = () => void declineCall().catch((e: Error) => log(`decline failed: ${e.message}`));
$("send").onclick = () => {
  const input = $("chat") as HTMLInputElement;
  if (input.value) sendChat(input.value);
  input.value = "";
};

Object.assign(window, {
  demo: { connect, joinRoom, leaveRoom, callUser, acceptCall, declineCall, hangUp, sendChat, snapshot, selectedCandidatePairs, get client() { return client; }, log: logLines },
});
