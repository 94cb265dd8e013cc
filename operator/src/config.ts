/**
 * The operator's configuration, from its environment (set by its Deployment: docs/operator.md).
 *
 * @module
 */
import { hostname } from "node:os";
import { z } from "zod";

const ms = (fallback: number) => z.coerce.number().int().min(1).default(fallback);

/** The operator's settings. */
export const OperatorConfig = z.object({
  /** This replica's pod name (its identity in the leader Lease is `<podName>_<random>`: see main.ts). */
  podName: z.string().min(1),
  /** Namespace of the leader Lease (the operator's own). */
  namespace: z.string().min(1).default("default"),
  /** Watch SignalingClusters of this namespace only; every namespace when absent. */
  watchNamespace: z.string().min(1).optional(),
  /** Address and port of `/metrics`, `/healthz`, `/readyz`. */
  host: z.string().default("0.0.0.0"),
  port: z.coerce.number().int().min(0).max(65_535).default(8081),
  leaseName: z.string().min(1).default("switchboard-operator"),
  leaseDurationMs: ms(15_000),
  renewDeadlineMs: ms(10_000),
  retryPeriodMs: ms(2000),
  /** How often each pod's report (`GET /status`) is read. */
  reportIntervalMs: ms(2000),
  logLevel: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
});
export type OperatorConfig = z.infer<typeof OperatorConfig>;

/** Environment variables of the operator and the settings they fill. */
export const OPERATOR_ENV: Readonly<Record<string, keyof OperatorConfig>> = {
  POD_NAME: "podName",
  POD_NAMESPACE: "namespace",
  SWITCHBOARD_OPERATOR_WATCH_NAMESPACE: "watchNamespace",
  SWITCHBOARD_OPERATOR_HOST: "host",
  SWITCHBOARD_OPERATOR_PORT: "port",
  SWITCHBOARD_OPERATOR_LEASE_NAME: "leaseName",
  SWITCHBOARD_OPERATOR_LEASE_DURATION_MS: "leaseDurationMs",
  SWITCHBOARD_OPERATOR_RENEW_DEADLINE_MS: "renewDeadlineMs",
  SWITCHBOARD_OPERATOR_RETRY_PERIOD_MS: "retryPeriodMs",
  SWITCHBOARD_OPERATOR_REPORT_INTERVAL_MS: "reportIntervalMs",
  SWITCHBOARD_OPERATOR_LOG_LEVEL: "logLevel",
};

/**
 * Reads the configuration from `env`; the pod name defaults to the hostname.
 *
 * @throws {Error} with one `VARIABLE: problem` line per bad variable
 */
export function loadOperatorConfig(env: NodeJS.ProcessEnv = process.env): OperatorConfig {
  const input: Record<string, string> = { podName: hostname() };
  for (const [name, key] of Object.entries(OPERATOR_ENV)) {
    const value = env[name];
    if (value !== undefined && value !== "") input[key] = value;
  }
  const parsed = OperatorConfig.safeParse(input);
  if (parsed.success) return parsed.data;
  const byKey = Object.fromEntries(Object.entries(OPERATOR_ENV).map(([name, key]) => [key, name]));
  const lines = parsed.error.issues.map((i) => `  ${byKey[String(i.path[0])] ?? String(i.path[0])}: ${i.message}`);
  throw new Error(`invalid operator configuration:\n${lines.join("\n")}`);
}
