/**
 * The objects a SignalingCluster is made of, as the operator applies them (server-side apply, field
 * manager {@link FIELD_MANAGER}): the pods' ServiceAccount, Role and RoleBinding (read the ring
 * ConfigMap), the ring ConfigMap, the client and headless Services, the PodDisruptionBudget and the
 * StatefulSet. Each is owned by the SignalingCluster, so deleting it deletes them all.
 *
 * Why a StatefulSet: ring members are hashed by name, so pod names must be stable (`<name>-0…`),
 * and scale-down removes the highest ordinal, which the operator drains first. Its update strategy
 * is `OnDelete`: the operator replaces pods itself, one at a time, each LEAVING and drained first
 * (a RollingUpdate would kill pods that still own rooms). `podManagementPolicy: Parallel` lets a
 * scale-up start every new pod at once.
 *
 * @module
 */
import { RING_DOCUMENT_KEY, serializeRingDocument, type RingDocument } from "@switchboard/ring";
import { SIGNALING_CLUSTER_API_VERSION, SIGNALING_CLUSTER_KIND, type SignalingCluster, type SecretKeyRef, type Endpoint } from "../api/signaling-cluster.ts";
import type { ApplyObject } from "../kube/apply.ts";
import { SIGNALING_CONTAINER, SIGNALING_PORT, clusterId, clusterNames, ownedLabels, selectorLabels } from "./names.ts";

/** A Kubernetes object as applied: apiVersion, kind, metadata and the rest. */
export type KubeObject = ApplyObject;

/** Extra time past the drain timeout before the pod is killed (the drain's own close and exit). */
export const TERMINATION_GRACE_EXTRA_SECONDS = 15;

type EnvVar = { name: string; value?: string; valueFrom?: Record<string, unknown> };

function metadata(cluster: SignalingCluster, name: string, extra: { labels?: Record<string, string>; annotations?: Record<string, string> } = {}) {
  return {
    name,
    namespace: cluster.metadata.namespace,
    labels: { ...(extra.labels ?? {}), ...ownedLabels(cluster.metadata.name) },
    ...(extra.annotations ? { annotations: extra.annotations } : {}),
    ownerReferences: [
      {
        apiVersion: SIGNALING_CLUSTER_API_VERSION,
        kind: SIGNALING_CLUSTER_KIND,
        name: cluster.metadata.name,
        uid: cluster.metadata.uid,
        controller: true,
        blockOwnerDeletion: true,
      },
    ],
  };
}

const secretEnv = (name: string, ref: SecretKeyRef): EnvVar => ({ name, valueFrom: { secretKeyRef: { name: ref.name, key: ref.key } } });
const valueEnv = (name: string, value: string | number): EnvVar => ({ name, value: String(value) });
const endpointEnv = (name: string, e: Endpoint): EnvVar[] => (e.url !== undefined ? [valueEnv(name, e.url)] : e.urlSecretRef ? [secretEnv(name, e.urlSecretRef)] : []);

/** The signaling container's environment: the pod's settings from the spec, then the spec's own `env` (which wins). */
export function signalingEnv(cluster: SignalingCluster): EnvVar[] {
  const { spec, metadata: meta } = cluster;
  const names = clusterNames(meta.name);
  const env: EnvVar[] = [
    { name: "SWITCHBOARD_POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
    { name: "SWITCHBOARD_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
    valueEnv("SWITCHBOARD_HOST", "0.0.0.0"),
    valueEnv("SWITCHBOARD_PORT", SIGNALING_PORT),
    valueEnv("SWITCHBOARD_LOG_LEVEL", spec.logLevel),
    valueEnv("SWITCHBOARD_CLUSTER_NAME", clusterId(meta.name, meta.uid)),
    valueEnv("SWITCHBOARD_RING_CONFIGMAP", names.ringConfigMap),
    ...endpointEnv("SWITCHBOARD_NATS_URL", spec.nats),
    ...endpointEnv("SWITCHBOARD_REDIS_URL", spec.redis),
    valueEnv("SWITCHBOARD_AUTH_MODE", spec.auth.mode),
    valueEnv("SWITCHBOARD_RESUME_WINDOW_MS", spec.resumeWindowSeconds * 1000),
    valueEnv("SWITCHBOARD_DRAIN_TIMEOUT_MS", spec.drainTimeoutSeconds * 1000),
  ];
  const { auth, turn } = spec;
  if (auth.audience !== undefined) env.push(valueEnv("SWITCHBOARD_JWT_AUDIENCE", auth.audience));
  if (auth.issuer !== undefined) env.push(valueEnv("SWITCHBOARD_JWT_ISSUER", auth.issuer));
  if (auth.hs256SecretRef) env.push(secretEnv("SWITCHBOARD_JWT_HS256_SECRET", auth.hs256SecretRef));
  if (auth.publicKeysSecretRef) env.push(secretEnv("SWITCHBOARD_JWT_PUBLIC_KEYS", auth.publicKeysSecretRef));
  if (auth.jwksUrl !== undefined) env.push(valueEnv("SWITCHBOARD_JWKS_URL", auth.jwksUrl));
  if (spec.adminTokenSecretRef) env.push(secretEnv("SWITCHBOARD_ADMIN_TOKEN", spec.adminTokenSecretRef));
  if (turn) {
    env.push(secretEnv("SWITCHBOARD_TURN_SECRET", turn.secretRef), valueEnv("SWITCHBOARD_TURN_URLS", turn.urls.join(",")), valueEnv("SWITCHBOARD_TURN_TTL_SEC", turn.ttlSeconds));
  }
  if (spec.stunUrls?.length) env.push(valueEnv("SWITCHBOARD_STUN_URLS", spec.stunUrls.join(",")));
  if (spec.allowedOrigins?.length) env.push(valueEnv("SWITCHBOARD_ALLOWED_ORIGINS", spec.allowedOrigins.join(",")));
  const own = new Set((spec.env ?? []).map((e) => e.name));
  return [...env.filter((e) => !own.has(e.name)), ...(spec.env ?? []).map((e) => ({ ...e }) as EnvVar)];
}

/** The StatefulSet of the signaling pods, with `replicas` pods. */
export function statefulSet(cluster: SignalingCluster, replicas: number): KubeObject {
  const { spec, metadata: meta } = cluster;
  const names = clusterNames(meta.name);
  const selector = selectorLabels(meta.name);
  const overrides = spec.pod ?? {};
  const podSpec: Record<string, unknown> = {
    serviceAccountName: names.serviceAccount,
    terminationGracePeriodSeconds: spec.drainTimeoutSeconds + TERMINATION_GRACE_EXTRA_SECONDS,
    securityContext: { runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, seccompProfile: { type: "RuntimeDefault" } },
    containers: [
      {
        name: SIGNALING_CONTAINER,
        image: spec.image,
        ...(spec.imagePullPolicy ? { imagePullPolicy: spec.imagePullPolicy } : {}),
        env: signalingEnv(cluster),
        ports: [{ name: "http", containerPort: SIGNALING_PORT, protocol: "TCP" }],
        readinessProbe: { httpGet: { path: "/readyz", port: "http" }, periodSeconds: 2, failureThreshold: 2, timeoutSeconds: 2 },
        livenessProbe: { httpGet: { path: "/healthz", port: "http" }, periodSeconds: 10, failureThreshold: 3, timeoutSeconds: 5 },
        ...(spec.resources ? { resources: spec.resources } : {}),
        securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } },
      },
    ],
    ...(spec.imagePullSecrets ? { imagePullSecrets: spec.imagePullSecrets } : {}),
    ...(overrides.nodeSelector ? { nodeSelector: overrides.nodeSelector } : {}),
    ...(overrides.tolerations ? { tolerations: overrides.tolerations } : {}),
    ...(overrides.affinity ? { affinity: overrides.affinity } : {}),
    ...(overrides.topologySpreadConstraints ? { topologySpreadConstraints: overrides.topologySpreadConstraints } : {}),
    ...(overrides.priorityClassName ? { priorityClassName: overrides.priorityClassName } : {}),
  };
  return {
    apiVersion: "apps/v1",
    kind: "StatefulSet",
    metadata: metadata(cluster, names.statefulSet),
    spec: {
      replicas,
      serviceName: names.headlessService,
      podManagementPolicy: "Parallel",
      updateStrategy: { type: "OnDelete" },
      selector: { matchLabels: selector },
      template: {
        metadata: {
          labels: { ...(overrides.labels ?? {}), ...selector },
          annotations: {
            ...(overrides.annotations ?? {}),
            "prometheus.io/scrape": "true",
            "prometheus.io/port": String(SIGNALING_PORT),
            "prometheus.io/path": "/metrics",
          },
        },
        spec: podSpec,
      },
    },
  };
}

/** The ring ConfigMap holding `doc`; `resourceVersion` (of the observed one) makes the write conditional. */
export function ringConfigMap(cluster: SignalingCluster, doc: RingDocument, resourceVersion: string | undefined): KubeObject {
  const meta = metadata(cluster, clusterNames(cluster.metadata.name).ringConfigMap);
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { ...meta, ...(resourceVersion !== undefined ? { resourceVersion } : {}) },
    data: { [RING_DOCUMENT_KEY]: serializeRingDocument(doc) },
  };
}

/** Everything but the StatefulSet and the ring: identity and RBAC of the pods, Services, PDB. */
export function supportingObjects(cluster: SignalingCluster): KubeObject[] {
  const { spec, metadata: meta } = cluster;
  const names = clusterNames(meta.name);
  const selector = selectorLabels(meta.name);
  return [
    { apiVersion: "v1", kind: "ServiceAccount", metadata: metadata(cluster, names.serviceAccount) },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "Role",
      metadata: metadata(cluster, names.serviceAccount),
      // The pods read (and watch) their ring ConfigMap, and nothing else.
      rules: [{ apiGroups: [""], resources: ["configmaps"], resourceNames: [names.ringConfigMap], verbs: ["get", "list", "watch"] }],
    },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: metadata(cluster, names.serviceAccount),
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: names.serviceAccount },
      subjects: [{ kind: "ServiceAccount", name: names.serviceAccount, namespace: meta.namespace }],
    },
    {
      apiVersion: "v1",
      kind: "Service",
      metadata: metadata(cluster, names.service, spec.service.annotations ? { annotations: spec.service.annotations } : {}),
      spec: {
        type: spec.service.type,
        selector,
        ports: [
          {
            name: "http",
            port: spec.service.port,
            targetPort: "http",
            protocol: "TCP",
            ...(spec.service.nodePort !== undefined ? { nodePort: spec.service.nodePort } : {}),
          },
        ],
      },
    },
    {
      apiVersion: "v1",
      kind: "Service",
      metadata: metadata(cluster, names.headlessService),
      spec: {
        clusterIP: "None",
        // Peers and the operator find every pod, ready or not (JOINING pods are not ready to clients yet).
        publishNotReadyAddresses: true,
        selector,
        ports: [{ name: "http", port: SIGNALING_PORT, targetPort: "http", protocol: "TCP" }],
      },
    },
    {
      apiVersion: "policy/v1",
      kind: "PodDisruptionBudget",
      metadata: metadata(cluster, names.pdb),
      spec: { maxUnavailable: 1, selector: { matchLabels: selector } },
    },
  ];
}
