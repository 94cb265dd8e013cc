import { readFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";
import type { SignalingServer } from "@switchboard/server";
import { startPod } from "./pod.ts";

/** The URL prefix both PeerJS servers use in the tests: clients pass it as `path`. */
export const PEERJS_PATH = "/peerjs";

/** A PeerJS server under test, as a PeerJS client addresses it. */
export interface PeerJsTarget {
  readonly name: "switchboard" | "peerjs-server";
  readonly host: string;
  readonly port: number;
  readonly path: string;
  readonly key: string;
  /** `GET {path}/{key}/peers` (both servers run with discovery on). */
  peers(): Promise<string[]>;
  close(): Promise<void>;
}

/** A Switchboard pod whose PeerJS face has discovery on (to compare with the reference). */
export async function startSwitchboardTarget(peerjs: Record<string, unknown> = {}): Promise<PeerJsTarget & { pod: SignalingServer }> {
  const pod = await startPod({ peerjs: { allowDiscovery: true, ...peerjs } });
  const port = Number(new URL(pod.httpUrl).port);
  return target("switchboard", port, () => pod.close(), { pod });
}

/** The reference PeerJS server (npm `peer`) in a worker thread of this process. */
export async function startReferenceTarget(): Promise<PeerJsTarget> {
  const worker = new Worker(new URL("./reference-peer-server.ts", import.meta.url), { workerData: { path: PEERJS_PATH } });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("reference PeerJS server did not start in 10 s")), 10_000);
    worker.once("message", (m: { port: number }) => {
      clearTimeout(timer);
      resolve(m.port);
    });
    worker.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
  return target("peerjs-server", port, async () => void (await worker.terminate()), {});
}

function target<T extends object>(name: PeerJsTarget["name"], port: number, close: () => Promise<void>, extra: T): PeerJsTarget & T {
  return {
    name,
    host: "127.0.0.1",
    port,
    path: PEERJS_PATH,
    key: "peerjs",
    async peers() {
      const res = await fetch(`http://127.0.0.1:${port}${PEERJS_PATH}/peerjs/peers`);
      if (res.status !== 200) throw new Error(`peers: HTTP ${res.status}`);
      return (await res.json()) as string[];
    },
    close,
    ...extra,
  };
}

const PEERJS_BUNDLE = createRequire(import.meta.url).resolve("peerjs/dist/peerjs.min.js");

/**
 * A blank page for PeerJS apps at `http://localhost:<port>/` (a secure context, so getUserMedia
 * exists) that loads the peerjs client's browser bundle from node_modules. The caller closes it.
 */
export async function startPageServer(): Promise<{ url: string; close(): Promise<void> }> {
  const bundle = await readFile(PEERJS_BUNDLE);
  const html = '<!doctype html><meta charset="utf-8"><title>peerjs test</title><script src="/peerjs.min.js"></script>';
  const server: Server = createServer((req, res) => {
    if (req.url === "/") {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      res.end(html);
    } else if (req.url === "/peerjs.min.js") {
      res.writeHead(200, { "content-type": "text/javascript; charset=utf-8" });
      res.end(bundle);
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://localhost:${port}/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
