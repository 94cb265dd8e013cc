/**
 * Child-process entry that runs the reference PeerJS server (npm `peer`, peers/peerjs-server) for
 * the side-by-side runs: `node peerjs-server.ts <port>`. Prints `READY <port>` once listening.
 *
 * Settings: its defaults (key `peerjs`, path `/`, 90 s alive timeout checked every 300 ms, ws with
 * its defaults), except `concurrent_limit`, lifted from 5 000 so it can hold as many sockets as the
 * pod.
 *
 * @module
 */
import type { AddressInfo } from "node:net";
import { PeerServer } from "peer";

const port = Number(process.argv[2] ?? 0);
PeerServer({ host: "127.0.0.1", port, path: "/", concurrent_limit: 1_000_000 }, (server) => {
  process.stdout.write(`READY ${(server.address() as AddressInfo).port}\n`);
});
