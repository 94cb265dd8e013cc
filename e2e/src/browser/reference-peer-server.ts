/**
 * Worker entry that runs the reference PeerJS server (npm `peer`, peers/peerjs-server) on
 * 127.0.0.1 with a free port and posts `{ port }` to its parent. It runs in a worker because the
 * reference server starts timers it never stops; terminating the worker ends them. Tests only.
 */
import type { AddressInfo } from "node:net";
import { parentPort, workerData } from "node:worker_threads";
import { PeerServer } from "peer";

const { path } = workerData as { path: string };
PeerServer(
  {
    host: "127.0.0.1",
    port: 0,
    path,
    // The same settings the Switchboard pod uses in the differential tests.
    allow_discovery: true,
    concurrent_limit: 1000,
    alive_timeout: 60_000,
  },
  (server) => parentPort?.postMessage({ port: (server.address() as AddressInfo).port }),
);
