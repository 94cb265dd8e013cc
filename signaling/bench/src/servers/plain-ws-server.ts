/**
 * Child-process entry for the baseline: a plain `ws` server with no Switchboard code, set up like
 * the pod's transport (no compression, no client tracking, 64 KiB frames, sockets in one Set, one
 * shared heartbeat timer pinging each socket every 25 s). `node plain-ws-server.ts <port>` prints
 * `READY <port>` once listening. It answers nothing: it is the floor under the pod's memory and
 * idle CPU, what `ws` and `net.Socket` cost before any session exists.
 *
 * @module
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { WebSocketServer, type WebSocket } from "ws";

const HEARTBEAT_INTERVAL_MS = 25_000;
const port = Number(process.argv[2] ?? 0);
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: false, maxPayload: 64 * 1024 });
/** Each socket with the time its next ping is due. */
const sockets = new Map<WebSocket, number>();

const http = createServer((_req, res) => {
  res.writeHead(404).end();
});
http.on("upgrade", (req, socket, head) => {
  wss.handleUpgrade(req, socket, head, (ws) => {
    sockets.set(ws, Date.now() + HEARTBEAT_INTERVAL_MS);
    ws.on("error", () => ws.terminate());
    ws.on("close", () => sockets.delete(ws));
  });
});
setInterval(() => {
  const now = Date.now();
  for (const [ws, due] of sockets) {
    if (now < due) continue;
    sockets.set(ws, now + HEARTBEAT_INTERVAL_MS);
    ws.ping();
  }
}, 1000);
http.listen(port, "127.0.0.1", () => {
  process.stdout.write(`READY ${(http.address() as AddressInfo).port}\n`);
});
