#!/usr/bin/env node
/**
 * The operator's entry point: configuration, the Kubernetes client, leader election, the cluster
 * controller (only while leading) and the health/metrics server. Wiring only.
 */
import { randomUUID } from "node:crypto";
import { createServer } from "node:http";
import { KubeConfig } from "@kubernetes/client-node";
import { pino } from "pino";
import { loadOperatorConfig } from "./config.ts";
import { ClusterController } from "./controller.ts";
import { EventRecorder } from "./kube/events.ts";
import { KubeHttp } from "./kube/http.ts";
import { LeaderElector } from "./leader-election.ts";
import { OperatorMetrics } from "./metrics.ts";

let config;
try {
  config = loadOperatorConfig();
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exit(2);
}
// The Lease identity is this process's, not just the pod's (as client-go's hostname_uuid): a
// container restarted in the same pod must not take the dead process's term as its own and act at
// once; it waits for the Lease like any other candidate.
const identity = `${config.podName}_${randomUUID().slice(0, 8)}`;
const log = pino({ level: config.logLevel, base: { component: "switchboard-operator", pod: config.podName, identity } });
const kc = new KubeConfig();
kc.loadFromDefault();
const client = await KubeHttp.fromKubeConfig(kc);
const metrics = new OperatorMetrics();
const events = new EventRecorder(client, { reportingInstance: config.podName, logger: log });
let controller: ClusterController | null = null;

const elector = new LeaderElector(client, {
  namespace: config.namespace,
  name: config.leaseName,
  identity,
  leaseDurationMs: config.leaseDurationMs,
  renewDeadlineMs: config.renewDeadlineMs,
  retryPeriodMs: config.retryPeriodMs,
  logger: log,
  onNewLeader: (identity) => log.info({ leader: identity }, "leader"),
  onStartedLeading: async (signal) => {
    log.info("started leading");
    metrics.leader.set(1);
    const c = new ClusterController({
      client,
      events,
      metrics,
      log,
      reportIntervalMs: config.reportIntervalMs,
      ...(config.watchNamespace !== undefined ? { namespace: config.watchNamespace } : {}),
    });
    controller = c;
    c.start();
    // Acting stops the moment the Lease is lost: a replica that cannot renew must not write.
    await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
    await c.stop();
    metrics.forgetAllClusters();
    controller = null;
  },
  onStoppedLeading: () => {
    metrics.leader.set(0);
    log.info("stopped leading");
  },
});

const http = createServer((req, res) => {
  const path = new URL(req.url ?? "/", "http://localhost").pathname;
  if (path === "/healthz") return void res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
  if (path === "/readyz") {
    // A standby replica is ready (it serves its metrics and waits for the Lease); a leader once its watches listed.
    const ready = controller === null || controller.synced;
    return void res.writeHead(ready ? 200 : 503, { "content-type": "text/plain" }).end(ready ? "ready\n" : "syncing\n");
  }
  if (path === "/metrics") {
    void metrics.registry.metrics().then(
      (body) => res.writeHead(200, { "content-type": metrics.registry.contentType }).end(body),
      (err: unknown) => res.writeHead(500).end(String(err)),
    );
    return;
  }
  res.writeHead(404).end();
});
await new Promise<void>((resolve) => http.listen(config.port, config.host, resolve));
log.info({ host: config.host, port: config.port, namespace: config.namespace, watch: config.watchNamespace ?? "all namespaces" }, "switchboard operator up");
elector.start();

let stopping = false;
async function stop(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, "stopping");
  try {
    // Releases the Lease once the controller stopped, so the other replica takes over at once.
    await elector.stop();
    await events.close();
    client.close();
    await new Promise<void>((resolve) => http.close(() => resolve()));
  } catch (err) {
    log.error({ err }, "error while stopping");
    process.exitCode = 1;
  }
  log.info("stopped");
}
process.once("SIGTERM", () => void stop("SIGTERM"));
process.once("SIGINT", () => void stop("SIGINT"));
