/**
 * A minimal browser call with the Switchboard SDK: sign in, call a user (or wait to be called),
 * connect an RTCPeerConnection through the pod's signaling, and say hello over a data channel.
 *
 * Query: `user=alice` (who you are), `call=bob` (call bob once signed in), `signal=<ws url>` (the
 * pod; default: this page's host, port 8080), `token=<jwt>` (default: the user name, which is the
 * token of a pod in insecure dev mode, `make run`; a real app gets a JWT from its backend).
 */
import { SwitchboardClient, negotiateWith } from "@switchboard/client";

const params = new URLSearchParams(location.search);
const user = params.get("user") ?? "alice";
const callee = params.get("call");
const signal = params.get("signal") ?? `${location.protocol === "https:" ? "wss" : "ws"}://${location.hostname}:8080/v1/ws`;

const status = document.getElementById("status") as HTMLElement;
const logList = document.getElementById("log") as HTMLElement;

/** Shows the call's state; `data-state` is what the SDK tests wait for. */
function show(state: string, text: string): void {
  status.dataset["state"] = state;
  status.textContent = text;
}

function log(line: string): void {
  logList.append(Object.assign(document.createElement("li"), { textContent: line }));
}

const client = new SwitchboardClient({ url: signal, token: params.get("token") ?? user });

/**
 * Opens the peer connection of a call. The caller is the impolite side and opens the data channel
 * (its first offer carries it); the callee is polite and receives the channel.
 */
function startCall(callId: string, polite: boolean): void {
  const pc = new RTCPeerConnection({ iceServers: client.session?.iceServers ?? [] });
  const { detach } = negotiateWith(client, { callId }, { pc, polite, onError: (err) => log(`negotiation error: ${String(err)}`) });
  const useChannel = (channel: RTCDataChannel): void => {
    channel.onopen = () => channel.send(`hello from ${user}`);
    channel.onmessage = (e) => {
      log(`received: ${String(e.data)}`);
      show("connected", `in a call, the other side said: ${String(e.data)}`);
    };
  };
  if (polite) pc.ondatachannel = (e) => useChannel(e.channel);
  else useChannel(pc.createDataChannel("chat"));
  pc.onconnectionstatechange = () => log(`peer connection ${pc.connectionState}`);
  const off = client.on("call-ended", (e) => {
    if (e.callId !== callId || e.legOnly) return;
    off();
    detach();
    pc.close();
    show("ended", `call ended: ${e.reason}`);
  });
}

client.on("call-incoming", ({ callId, from }) => {
  log(`${from.userId} is calling`);
  show("ringing", `${from.userId} is calling`);
  // Listen for the caller's offer before accepting: it follows the accept at once.
  startCall(callId, true);
  client.ringing(callId).then(() => client.accept(callId)).catch((err: unknown) => show("failed", `accept failed: ${String(err)}`));
});

client.on("call-accepted", ({ callId, polite }) => {
  startCall(callId, polite);
  client.confirm(callId).catch((err: unknown) => show("failed", `confirm failed: ${String(err)}`));
});

try {
  const welcome = await client.connect();
  show("signed-in", `signed in as ${welcome.userId}`);
  if (callee) {
    const { devices } = await client.invite(callee);
    show("calling", `calling ${callee} (${devices} device${devices === 1 ? "" : "s"})`);
  }
} catch (err) {
  show("failed", `${(err as { code?: string }).code ?? "error"}: ${String(err)}`);
}
