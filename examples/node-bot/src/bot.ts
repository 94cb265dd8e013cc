/**
 * A Switchboard bot for Node 20 and later: it joins a room and sends every direct message back to
 * its sender, `{ echo: <the data> }`. It prints one JSON line per thing that happens, and leaves
 * (ending its session) on SIGINT or SIGTERM.
 *
 *   SWITCHBOARD_URL=wss://signal.example.com/v1/ws SWITCHBOARD_TOKEN=<jwt> SWITCHBOARD_ROOM=lobby npm start
 *
 * With a pod in insecure dev mode (`make run`) the token is just the user name.
 */
import { SwitchboardClient, SwitchboardError } from "@switchboard/client";
import { WebSocket as WsWebSocket } from "ws";

const url = process.env["SWITCHBOARD_URL"] ?? "ws://127.0.0.1:8080/v1/ws";
const token = process.env["SWITCHBOARD_TOKEN"] ?? "echo-bot";
const room = process.env["SWITCHBOARD_ROOM"] ?? "lobby";

// Node 22+ has a global WebSocket; Node 20 has none, so the SDK is handed the ws package's.
const nativeWebSocket = (globalThis as { WebSocket?: typeof WebSocket }).WebSocket;
const client = new SwitchboardClient({ url, token, WebSocket: nativeWebSocket ?? WsWebSocket });

/** One JSON line per event on stdout (what a log shipper, or the SDK tests, read). */
function print(event: string, fields: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ event, ...fields })}\n`);
}

client.on("state", (state) => print("state", { state }));
client.on("peer-joined", ({ room: r, peer }) => print("peer-joined", { room: r, peerId: peer.peerId, userId: peer.userId }));
client.on("peer-left", ({ room: r, peerId, reason }) => print("peer-left", { room: r, peerId, reason }));
client.on("message", ({ room: r, from, data }) => {
  print("message", { room: r, from, data });
  client.message(r, from, { echo: data }).catch((err: unknown) => print("error", { code: err instanceof SwitchboardError ? err.code : "unknown", message: String(err) }));
});

let stopping = false;
async function stop(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  print("stopping", { signal });
  await client.close();
  process.exit(0);
}
process.on("SIGINT", () => void stop("SIGINT"));
process.on("SIGTERM", () => void stop("SIGTERM"));

try {
  const welcome = await client.connect();
  const joined = await client.join(room, { bot: true });
  print("ready", {
    node: process.version,
    websocket: nativeWebSocket ? "global" : "ws",
    pod: welcome.pod,
    peerId: welcome.peerId,
    room,
    peers: joined.peers.map((p) => p.peerId),
  });
} catch (err) {
  // Match on the stable code: SIG_ERR_AUTH_FAILED, SIG_ERR_FORBIDDEN, SIG_ERR_UNSUPPORTED_VERSION, ...
  print("failed", { code: err instanceof SwitchboardError ? err.code : "unknown", message: String(err) });
  await client.close();
  process.exit(1);
}
