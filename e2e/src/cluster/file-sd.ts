import { renameSync, writeFileSync } from 'node:fs';
import { resolvePort } from './probe.ts';
import type { Container, Pod } from './wire-types.ts';

/** One target group of Prometheus file-based service discovery. */
export interface TargetGroup {
  readonly targets: readonly string[];
  readonly labels: Readonly<Record<string, string>>;
}

/** A pod with its running containers, as the node agent sees it. */
export interface RunningPod {
  readonly pod: Pod;
  readonly podIP: string;
  readonly containers: readonly Container[];
}

/** Turns a label or annotation name into the part of a Prometheus meta label, as kubernetes_sd does. */
export function sanitizeLabelName(name: string): string {
  return name.replace(/[^a-zA-Z0-9_]/g, '_');
}

/**
 * The scrape target of one pod: the port of the `prometheus.io/port` annotation, else the first
 * container port named `metrics`, else `http`, else the first declared port; `undefined` when the
 * pod declares none or has `prometheus.io/scrape: "false"`. Labels are the
 * `__meta_kubernetes_pod_*` labels that kubernetes_sd_configs (role: pod) gives.
 */
export function podTarget(running: RunningPod, nodeName: string): TargetGroup | undefined {
  const { pod, podIP, containers } = running;
  const annotations = pod.metadata.annotations ?? {};
  if (annotations['prometheus.io/scrape'] === 'false') return undefined;
  const ports = containers.flatMap((c) => (c.ports ?? []).map((p) => ({ c, p })));
  const annotated = annotations['prometheus.io/port'];
  const annotatedPort = annotated === undefined ? undefined : resolvePort(annotated, ports.map((x) => x.p));
  const pick =
    (annotatedPort === undefined ? undefined : ports.find((x) => x.p.containerPort === annotatedPort)) ??
    ports.find((x) => x.p.name === 'metrics') ??
    ports.find((x) => x.p.name === 'http') ??
    ports[0];
  const port = annotatedPort ?? pick?.p.containerPort;
  const container = pick?.c ?? containers[0];
  if (port === undefined || container === undefined) return undefined;
  const labels: Record<string, string> = {
    __meta_kubernetes_namespace: pod.metadata.namespace ?? 'default',
    __meta_kubernetes_pod_name: pod.metadata.name,
    __meta_kubernetes_pod_uid: pod.metadata.uid,
    __meta_kubernetes_pod_ip: podIP,
    __meta_kubernetes_pod_node_name: nodeName,
    __meta_kubernetes_pod_host_ip: pod.status?.hostIP ?? '',
    __meta_kubernetes_pod_container_name: container.name,
    __meta_kubernetes_pod_container_image: container.image,
    __meta_kubernetes_pod_container_port_number: String(port),
    __meta_kubernetes_pod_container_port_name: pick?.p.name ?? '',
    __meta_kubernetes_pod_container_port_protocol: pick?.p.protocol ?? 'TCP',
  };
  const owner = pod.metadata.ownerReferences?.find((o) => o.controller === true);
  if (owner !== undefined) {
    labels['__meta_kubernetes_pod_controller_kind'] = owner.kind;
    labels['__meta_kubernetes_pod_controller_name'] = owner.name;
  }
  for (const [k, v] of Object.entries(pod.metadata.labels ?? {})) {
    labels[`__meta_kubernetes_pod_label_${sanitizeLabelName(k)}`] = v;
    labels[`__meta_kubernetes_pod_labelpresent_${sanitizeLabelName(k)}`] = 'true';
  }
  for (const [k, v] of Object.entries(annotations)) {
    labels[`__meta_kubernetes_pod_annotation_${sanitizeLabelName(k)}`] = v;
    labels[`__meta_kubernetes_pod_annotationpresent_${sanitizeLabelName(k)}`] = 'true';
  }
  return { targets: [`${podIP}:${port}`], labels };
}

/** Writes the target groups to `file` atomically (Prometheus watches it and must never see half). */
export function writeTargets(file: string, groups: readonly TargetGroup[]): void {
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(groups, null, 2)}\n`);
  renameSync(tmp, file);
}
