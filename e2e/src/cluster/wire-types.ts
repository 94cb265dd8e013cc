/**
 * The parts of the Kubernetes wire format (JSON as the API sends it, timestamps as strings) that
 * the node agent reads and writes. `@kubernetes/client-node`'s models type timestamps as `Date`,
 * which raw JSON is not, so the agent keeps its own narrow types.
 */

/** `metadata` of any object. */
export interface ObjectMeta {
  readonly name: string;
  readonly namespace?: string;
  readonly uid: string;
  readonly resourceVersion?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
  readonly deletionTimestamp?: string;
  readonly deletionGracePeriodSeconds?: number;
  readonly ownerReferences?: readonly { readonly kind: string; readonly name: string; readonly controller?: boolean }[];
}

/** A selector of one key of a ConfigMap or Secret. */
export interface KeySelector {
  readonly name: string;
  readonly key: string;
  readonly optional?: boolean;
}

/** One `env` entry of a container. */
export interface EnvVar {
  readonly name: string;
  readonly value?: string;
  readonly valueFrom?: {
    readonly fieldRef?: { readonly fieldPath: string };
    readonly resourceFieldRef?: { readonly containerName?: string; readonly resource: string; readonly divisor?: string };
    readonly configMapKeyRef?: KeySelector;
    readonly secretKeyRef?: KeySelector;
  };
}

/** One `envFrom` entry of a container. */
export interface EnvFromSource {
  readonly prefix?: string;
  readonly configMapRef?: { readonly name: string; readonly optional?: boolean };
  readonly secretRef?: { readonly name: string; readonly optional?: boolean };
}

/** A port given as a number or as the name of a container port. */
export type PortRef = number | string;

/** The action of a probe or lifecycle hook. */
export interface Handler {
  readonly exec?: { readonly command?: readonly string[] };
  readonly httpGet?: {
    readonly path?: string;
    readonly port: PortRef;
    readonly host?: string;
    readonly scheme?: 'HTTP' | 'HTTPS';
    readonly httpHeaders?: readonly { readonly name: string; readonly value: string }[];
  };
  readonly tcpSocket?: { readonly port: PortRef; readonly host?: string };
  readonly grpc?: { readonly port: number; readonly service?: string };
  readonly sleep?: { readonly seconds: number };
}

/** A container probe. */
export interface Probe extends Handler {
  readonly initialDelaySeconds?: number;
  readonly periodSeconds?: number;
  readonly timeoutSeconds?: number;
  readonly successThreshold?: number;
  readonly failureThreshold?: number;
}

/** A declared container port. */
export interface ContainerPort {
  readonly name?: string;
  readonly containerPort: number;
  readonly protocol?: string;
}

/** A container (or init container) of a pod spec. */
export interface Container {
  readonly name: string;
  readonly image: string;
  readonly command?: readonly string[];
  readonly args?: readonly string[];
  readonly env?: readonly EnvVar[];
  readonly envFrom?: readonly EnvFromSource[];
  readonly ports?: readonly ContainerPort[];
  readonly readinessProbe?: Probe;
  readonly livenessProbe?: Probe;
  readonly startupProbe?: Probe;
  readonly lifecycle?: { readonly preStop?: Handler; readonly postStart?: Handler };
  readonly resources?: {
    readonly limits?: Readonly<Record<string, string>>;
    readonly requests?: Readonly<Record<string, string>>;
  };
  /** `Always` on an init container makes it a sidecar. */
  readonly restartPolicy?: string;
}

/** A pod volume; only the service-account token projection matters to the agent. */
export interface Volume {
  readonly name: string;
  readonly projected?: { readonly sources?: readonly { readonly serviceAccountToken?: { readonly expirationSeconds?: number } }[] };
}

/** `spec` of a pod. */
export interface PodSpec {
  readonly nodeName?: string;
  readonly containers: readonly Container[];
  readonly initContainers?: readonly Container[];
  readonly restartPolicy?: 'Always' | 'OnFailure' | 'Never';
  readonly terminationGracePeriodSeconds?: number;
  readonly serviceAccountName?: string;
  readonly volumes?: readonly Volume[];
  readonly readinessGates?: readonly { readonly conditionType: string }[];
  readonly hostNetwork?: boolean;
}

/** One entry of `status.conditions`. */
export interface PodCondition {
  readonly type: string;
  readonly status: 'True' | 'False' | 'Unknown';
  readonly reason?: string | null;
  readonly message?: string | null;
  readonly lastTransitionTime?: string | null;
  readonly lastProbeTime?: string | null;
}

/** The state of a container; exactly one member is non-null. */
export interface ContainerState {
  readonly waiting?: { readonly reason: string; readonly message?: string } | null;
  readonly running?: { readonly startedAt: string } | null;
  readonly terminated?: {
    readonly exitCode: number;
    readonly signal?: number;
    readonly reason: string;
    readonly message?: string;
    readonly startedAt?: string;
    readonly finishedAt: string;
    readonly containerID?: string;
  } | null;
}

/** One entry of `status.containerStatuses`. */
export interface ContainerStatus {
  readonly name: string;
  readonly image: string;
  readonly imageID: string;
  readonly containerID?: string;
  readonly ready: boolean;
  readonly started?: boolean;
  readonly restartCount: number;
  readonly state: ContainerState;
  readonly lastState: ContainerState;
}

/** `status` of a pod. */
export interface PodStatus {
  readonly phase?: 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Unknown';
  readonly podIP?: string;
  readonly podIPs?: readonly { readonly ip: string }[];
  readonly hostIP?: string;
  readonly hostIPs?: readonly { readonly ip: string }[];
  readonly startTime?: string;
  readonly conditions?: readonly PodCondition[];
  readonly containerStatuses?: readonly ContainerStatus[];
  readonly initContainerStatuses?: readonly ContainerStatus[];
  readonly message?: string;
  readonly reason?: string;
}

/** A pod as the API sends it. */
export interface Pod {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata: ObjectMeta;
  readonly spec: PodSpec;
  readonly status?: PodStatus;
}

/** A list answer. */
export interface List<T> {
  readonly metadata: { readonly resourceVersion: string };
  readonly items: readonly T[];
}
