import { createSignalingServer, type ConfigInput, type SignalingServer } from "@switchboard/server";

/** Admin token of the pods the browser tests start. */
export const TEST_ADMIN_TOKEN = "e2e-admin-token-0123456789";

/** Starts an in-memory pod on a free loopback port with the insecure dev auth the demo uses. */
export async function startPod(config: Partial<ConfigInput> = {}): Promise<SignalingServer> {
  const server = createSignalingServer({
    config: { port: 0, host: "127.0.0.1", logLevel: "warn", auth: { mode: "insecure-dev" }, adminToken: TEST_ADMIN_TOKEN, ...config },
    defaultMetrics: false,
  });
  await server.listen();
  return server;
}

/** Calls the pod's admin API. */
export async function admin(server: SignalingServer, method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${server.httpUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}`, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: await res.json() };
}
