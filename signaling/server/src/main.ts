#!/usr/bin/env node
/**
 * The pod's entry point: configuration, tracing, the server, and signal handling. Wiring only.
 */
import { setFlagsFromString } from "node:v8";
import { createSignalingServer } from "./app.ts";
import { connectCluster } from "./cluster/connect.ts";
import { ConfigError, loadConfig } from "./config.ts";
import { createLogger } from "./logger.ts";
import { PodMetrics } from "./observability/metrics.ts";
import { startTracing } from "./observability/tracing.ts";

let config;
try {
  config = loadConfig();
} catch (err) {
  if (err instanceof ConfigError) {
    process.stderr.write(`${err.message}\n`);
    process.exit(2);
  }
  throw err;
}
// A process-wide GC setting, so the pod process sets it (not the server, which tests embed).
if (config.gcHeapGrowingPercent > 0) setFlagsFromString(`--heap-growing-percent=${config.gcHeapGrowingPercent}`);
const log = createLogger(config.logLevel, { pod: config.podName });
const tracing = await startTracing("switchboard-signaling");
// Built before the server: the cluster connection reports into it from the start.
const metrics = new PodMetrics(config.podName);
const cluster = await connectCluster(config, log, { metrics: () => metrics.cluster() });
const server = createSignalingServer({ config, log, metrics, ...(cluster ? { cluster: cluster.makeNode } : {}) });
await server.listen();
log.info({ url: server.httpUrl, ws: server.wsUrl, auth: config.auth.mode, cluster: config.cluster.name ?? null }, "switchboard pod up");

let stopping = false;
async function stop(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, "stopping");
  try {
    if (signal === "SIGTERM") await server.drain();
    await server.close();
    await cluster?.close();
    metrics.close();
    await tracing?.shutdown();
  } catch (err) {
    log.error({ err }, "error while stopping");
    process.exitCode = 1;
  }
  log.info("stopped");
}
process.once("SIGTERM", () => void stop("SIGTERM"));
process.once("SIGINT", () => void stop("SIGINT"));
