/**
 * A stand-in for the Kubernetes API in unit tests: a real HTTP server on 127.0.0.1 (port 0) that
 * answers with whatever the test's handler does, records every request, and hands out a
 * kubeconfig pointing at it. Test-only; not part of the package's entry.
 *
 * @module
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { KubeConfig } from "@kubernetes/client-node";

/** A request the fake API received. */
export interface RecordedRequest {
  readonly method: string;
  readonly url: URL;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

/** How the fake answers: write to `res` (and end it, or keep it open for a watch). */
export type FakeHandler = (req: RecordedRequest, res: http.ServerResponse) => void | Promise<void>;

/** A running fake API. */
export interface FakeApiServer extends AsyncDisposable {
  /** `http://127.0.0.1:PORT`. */
  readonly url: string;
  /** A kubeconfig for it: plain http with insecure-skip-tls-verify, bearer token `token`. */
  readonly kubeConfig: KubeConfig;
  /** Every request so far, in order. */
  readonly requests: RecordedRequest[];
  /** Replaces the handler. */
  handle(handler: FakeHandler): void;
  /** Stops the server, cutting open connections. Idempotent. */
  close(): Promise<void>;
}

/** Bearer token of the fake's kubeconfig. */
export const FAKE_TOKEN = "fake-token";

/** Writes a JSON answer. */
export function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

/** Writes a Status answer, as the API server does for errors. */
export function sendStatus(res: http.ServerResponse, code: number, reason: string, message: string): void {
  sendJson(res, code, { kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message, reason, code });
}

/** Starts the fake on 127.0.0.1, port 0, answering 404 until a handler is set. */
export async function startFakeApiServer(): Promise<FakeApiServer> {
  const requests: RecordedRequest[] = [];
  let handler: FakeHandler = (_req, res) => sendStatus(res, 404, "NotFound", "no handler");
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const recorded: RecordedRequest = {
        method: req.method ?? "",
        url: new URL(req.url ?? "/", "http://fake"),
        headers: req.headers,
        body: Buffer.concat(chunks).toString("utf8"),
      };
      requests.push(recorded);
      Promise.resolve(handler(recorded, res)).catch((err: unknown) => {
        if (!res.headersSent) sendStatus(res, 500, "InternalError", String(err));
        else res.destroy();
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [{ name: "fake", server: url, skipTLSVerify: true }],
    users: [{ name: "fake", token: FAKE_TOKEN }],
    contexts: [{ name: "fake", cluster: "fake", user: "fake" }],
    currentContext: "fake",
  });
  let closed: Promise<void> | undefined;
  const close = () => {
    closed ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
    return closed;
  };
  return {
    url,
    kubeConfig,
    requests,
    handle: (h) => {
      handler = h;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
