import { createServer, connect, type Server, type Socket } from 'node:net';
import { DiscoveryV1Api, type KubeConfig } from '@kubernetes/client-node';

/**
 * What kube-proxy does for a Service, for tests on the local control plane (which has none): a TCP
 * listener on the host's loopback that forwards each connection to one ready endpoint of a Service,
 * picked at random, from the EndpointSlices the real controller-manager writes (read every
 * `refreshMs`). Clients that reconnect through it land on whatever pods are ready now, as they would
 * through a ClusterIP or a load balancer, so a test can replace every pod under live clients.
 */
export interface ServiceProxy {
  /** `host:port` on 127.0.0.1. */
  readonly address: string;
  /** The ready endpoints (`ip:port`) connections go to now. */
  readonly endpoints: readonly string[];
  /** Connections forwarded so far, by endpoint. */
  readonly forwarded: ReadonlyMap<string, number>;
  /** Stops listening, closes every forwarded connection and the refresh. Idempotent. */
  close(): Promise<void>;
}

/** Options of {@link startServiceProxy}. */
export interface ServiceProxyOptions {
  readonly kubeConfig: KubeConfig;
  readonly namespace: string;
  readonly service: string;
  /** The endpoint port's name in the slices. @default the first port */
  readonly portName?: string;
  /** @default 500 */
  readonly refreshMs?: number;
}

/** Starts a {@link ServiceProxy}; resolves once it listens (endpoints may still be empty). */
export async function startServiceProxy(options: ServiceProxyOptions): Promise<ServiceProxy> {
  const discovery = options.kubeConfig.makeApiClient(DiscoveryV1Api);
  let endpoints: string[] = [];
  const forwarded = new Map<string, number>();
  const sockets = new Set<Socket>();
  let closed = false;

  const refresh = async (): Promise<void> => {
    try {
      const list = await discovery.listNamespacedEndpointSlice({
        namespace: options.namespace,
        labelSelector: `kubernetes.io/service-name=${options.service}`,
      });
      const next: string[] = [];
      for (const slice of list.items) {
        const port = (options.portName ? slice.ports?.find((p) => p.name === options.portName) : slice.ports?.[0])?.port;
        if (port === undefined) continue;
        for (const e of slice.endpoints) {
          if (e.conditions?.ready === false || e.conditions?.terminating === true) continue;
          for (const ip of e.addresses) next.push(`${ip}:${port}`);
        }
      }
      endpoints = next.sort();
    } catch {
      // The API server may be restarting in a test: keep the last endpoints.
    }
  };
  await refresh();
  const timer = setInterval(() => void refresh(), options.refreshMs ?? 500);

  const server: Server = createServer((client) => {
    const target = endpoints[Math.floor(Math.random() * endpoints.length)];
    if (target === undefined || closed) {
      client.destroy();
      return;
    }
    forwarded.set(target, (forwarded.get(target) ?? 0) + 1);
    const [ip, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
    const upstream = connect(port, ip);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => s.destroy());
    }
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;

  return {
    address: `127.0.0.1:${port}`,
    get endpoints() {
      return endpoints;
    },
    forwarded,
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
