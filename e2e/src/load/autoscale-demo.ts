/**
 * Watch autoscaling happen (`make autoscale-demo`): on the local control plane of `make cluster-up`,
 * installs the CRD and the operator as users do, applies examples/signalingcluster-autoscaling.yaml,
 * then steps a load of SDK clients (rooms across pods, relaying) up and down through the Service
 * while it prints what the operator wants, what is ready and each ring member's state. At the end
 * (or on Ctrl-C) the load stops and the message accounting is printed; the cluster stays up
 * (`make cluster-down` stops it).
 *
 *   node e2e/src/load/autoscale-demo.ts [--steps 12:30,36:60,12:90] [--keep]
 *
 * `--steps` is clients:seconds, in order; `--keep` leaves the SignalingCluster in place at the end.
 */
import { parseArgs } from "node:util";
import { setTimeout as sleep } from "node:timers/promises";
import { useSharedCluster } from "../cluster/local-cluster.ts";
import { startServiceProxy } from "../cluster/service-proxy.ts";
import { exampleManifest, installOperator, tempManifest } from "../operator/harness.ts";
import { ClusterTimeline, describeRing, type ClusterSample } from "./cluster-timeline.ts";
import { SteppedLoad } from "./stepped-load.ts";

const NS = "default";
const NAME = "demo";
const { values } = parseArgs({ options: { steps: { type: "string", default: "12:30,36:60,12:90" }, keep: { type: "boolean", default: false } } });
const steps = values.steps.split(",").map((s) => {
  const [clients, seconds] = s.split(":").map(Number);
  if (!Number.isInteger(clients) || !Number.isFinite(seconds) || clients! < 0 || seconds! <= 0) throw new Error(`bad step ${s}: expected clients:seconds`);
  return { clients: clients!, seconds: seconds! };
});

const t0 = performance.now();
const say = (line: string) => process.stdout.write(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${line}\n`);

const cluster = await useSharedCluster();
const abort = new AbortController();
process.once("SIGINT", () => abort.abort());
let load: SteppedLoad | undefined;
let timeline: ClusterTimeline | undefined;
let proxy: Awaited<ReturnType<typeof startServiceProxy>> | undefined;
try {
  say("installing the CRD and the operator (kubectl apply -f crds/ operator/deploy/)");
  await installOperator(cluster);
  say(`applying examples/signalingcluster-autoscaling.yaml; in another shell: eval "$(make -s cluster-env)" && kubectl get signalingclusters -w`);
  await cluster.kubectl(["apply", "-f", tempManifest(exampleManifest(cluster, { name: NAME, namespace: NS, file: "examples/signalingcluster-autoscaling.yaml" }))]);
  await cluster.kubectl(["-n", NS, "wait", "--for=condition=Ready", `signalingcluster/${NAME}`, "--timeout=180s"]);
  timeline = new ClusterTimeline(cluster, NS, NAME);
  let previous = "";
  timeline.start(500, (s: ClusterSample) => {
    const line = `desired ${s.desired ?? "-"} ready ${s.ready ?? "-"} connections ${s.connections ?? "-"}/${s.capacity ?? "-"} ring v${s.ring?.version ?? "-"} ${describeRing(s.ring)}${[...s.pods].filter(([, p]) => p.terminating).map(([n]) => ` ${n}:draining`).join("")}`;
    if (line !== previous) say(`${line}${s.lastScaleReason !== undefined ? `   (last scale: ${s.lastScaleReason})` : ""}`);
    previous = line;
  });
  proxy = await startServiceProxy({ kubeConfig: cluster.kubeConfig, namespace: NS, service: NAME, portName: "http", refreshMs: 250 });
  load = new SteppedLoad({ wsUrl: `ws://${proxy.address}/v1/ws`, prefix: `demo-${Date.now().toString(36)}`, groupSize: 12, roomSize: 3, intervalMs: 200 });
  for (const step of steps) {
    if (abort.signal.aborted) break;
    say(`load: ${step.clients} clients for ${step.seconds} s`);
    await load.setClients(step.clients, { retire: "oldest" });
    await sleep(step.seconds * 1000, undefined, { signal: abort.signal }).catch(() => undefined);
  }
} finally {
  if (load !== undefined) {
    say("stopping the load");
    const t = await load.close();
    say(`messages: ${t.acknowledged} acknowledged, ${t.delivered} delivered, ${t.lost} lost, ${t.duplicated} duplicated, ${t.reordered} reordered; ${t.resumes} resumes, ${t.sessionsLost} sessions lost`);
  }
  await timeline?.stop();
  await proxy?.close();
  if (!values.keep) await cluster.kubectl(["-n", NS, "delete", "signalingcluster", NAME, "--ignore-not-found", "--wait=true"]).catch(() => undefined);
  await cluster.close();
}
