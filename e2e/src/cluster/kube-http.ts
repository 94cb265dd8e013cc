import type { IncomingMessage } from 'node:http';
import https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import { ClusterError } from './errors.ts';

/** One event of a watch stream (`ERROR` carries a Status object). */
export interface WatchEvent {
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  readonly object: Record<string, unknown>;
}

/** Options of one API request. */
export interface RequestOptions {
  /** JSON body; sent as `contentType`. */
  readonly body?: unknown;
  /** @default 'application/json' */
  readonly contentType?: string;
  readonly signal?: AbortSignal;
  /** Fails the request when no answer came in this time. @default 30000 */
  readonly timeoutMs?: number;
}

/** Kubernetes API status object, as returned on errors. */
interface ApiStatus {
  readonly kind?: string;
  readonly message?: string;
  readonly reason?: string;
  readonly code?: number;
}

/** @default per-request timeout in milliseconds */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

/**
 * A small client for the Kubernetes API: JSON requests and watch streams over HTTPS with the
 * credentials of a kubeconfig. It exists beside `@kubernetes/client-node` so that the node agent
 * sees every status code and every malformed watch line instead of having them swallowed.
 */
export class KubeHttp {
  readonly server: URL;
  readonly #agent: https.Agent;
  readonly #headers: Record<string, string>;

  private constructor(server: URL, agent: https.Agent, headers: Record<string, string>) {
    this.server = server;
    this.#agent = agent;
    this.#headers = headers;
  }

  /** Builds a client from a loaded kubeconfig's current context. */
  static async fromKubeConfig(kc: KubeConfig): Promise<KubeHttp> {
    const cluster = kc.getCurrentCluster();
    if (cluster === null) throw new ClusterError('CLUSTER_ERR_LIFECYCLE', 'kubeconfig has no current cluster');
    const opts: https.RequestOptions = { headers: {} };
    await kc.applyToHTTPSOptions(opts);
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(opts.headers ?? {})) if (typeof v === 'string') headers[k] = v;
    const agent = new https.Agent({
      keepAlive: true,
      ...(opts.ca === undefined ? {} : { ca: opts.ca }),
      ...(opts.cert === undefined ? {} : { cert: opts.cert }),
      ...(opts.key === undefined ? {} : { key: opts.key }),
    });
    return new KubeHttp(new URL(cluster.server), agent, headers);
  }

  /**
   * Sends one request and resolves with the parsed JSON answer.
   * Rejects with `CLUSTER_ERR_API` (with `status` and `reason`) on a non-2xx answer.
   */
  async request<T = Record<string, unknown>>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const timeoutSignal = AbortSignal.timeout(options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS);
    const signal = options.signal === undefined ? timeoutSignal : AbortSignal.any([options.signal, timeoutSignal]);
    const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
    const res = await this.#send(method, path, payload, options.contentType ?? 'application/json', signal);
    const text = await readAll(res, signal);
    const status = res.statusCode ?? 0;
    if (status < 200 || status > 299) throw apiError(method, path, status, text);
    return (text === '' ? {} : JSON.parse(text)) as T;
  }

  /**
   * Opens a watch (`path` must carry `watch=1`) and calls `onEvent` for each event in order.
   * Resolves when the server ends the stream or `signal` aborts; rejects with `CLUSTER_ERR_API`
   * when the watch is refused and `CLUSTER_ERR_WATCH` when a line is not a watch event.
   */
  async watch(path: string, onEvent: (event: WatchEvent) => void, signal: AbortSignal): Promise<void> {
    let res: IncomingMessage;
    try {
      res = await this.#send('GET', path, undefined, 'application/json', signal);
    } catch (err) {
      if (signal.aborted) return;
      throw err;
    }
    const status = res.statusCode ?? 0;
    if (status !== 200) throw apiError('GET', path, status, await readAll(res, signal));
    let buffered = '';
    try {
      for await (const chunk of res) {
        buffered += (chunk as Buffer).toString('utf8');
        let nl: number;
        while ((nl = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, nl).trim();
          buffered = buffered.slice(nl + 1);
          if (line !== '') onEvent(parseWatchLine(line));
        }
      }
    } catch (err) {
      if (signal.aborted) return;
      // What onEvent or the line parser threw (an ERROR event's 410 above all) goes to the caller
      // as it is: wrapped, a 410 read as a broken stream was retried from the same expired
      // resourceVersion for ever (seen after an API server restart: the agent never saw a pod again).
      if (err instanceof ClusterError) throw err;
      throw new ClusterError('CLUSTER_ERR_WATCH', `watch ${path} broke`, { cause: err });
    }
  }

  /** Closes pooled connections. */
  close(): void {
    this.#agent.destroy();
  }

  #send(
    method: string,
    path: string,
    payload: string | undefined,
    contentType: string,
    signal: AbortSignal,
  ): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string> = { ...this.#headers, accept: 'application/json' };
      if (payload !== undefined) {
        headers['content-type'] = contentType;
        headers['content-length'] = String(Buffer.byteLength(payload));
      }
      const req = https.request(
        {
          protocol: 'https:',
          hostname: this.server.hostname,
          port: this.server.port === '' ? 443 : Number(this.server.port),
          path,
          method,
          headers,
          agent: this.#agent,
          signal,
        },
        resolve,
      );
      req.on('error', (err) =>
        reject(signal.aborted ? signal.reason : new ClusterError('CLUSTER_ERR_API', `${method} ${path}: ${err.message}`, { cause: err })),
      );
      req.end(payload);
    });
  }
}

function parseWatchLine(line: string): WatchEvent {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch (err) {
    throw new ClusterError('CLUSTER_ERR_WATCH', `watch sent a line that is not JSON: ${line.slice(0, 200)}`, { cause: err });
  }
  const ev = parsed as { type?: unknown; object?: unknown };
  const types = ['ADDED', 'MODIFIED', 'DELETED', 'BOOKMARK', 'ERROR'];
  if (typeof ev.type !== 'string' || !types.includes(ev.type) || typeof ev.object !== 'object' || ev.object === null) {
    throw new ClusterError('CLUSTER_ERR_WATCH', `watch sent something that is not an event: ${line.slice(0, 200)}`);
  }
  return ev as WatchEvent;
}

async function readAll(res: IncomingMessage, signal: AbortSignal): Promise<string> {
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of res) chunks.push(chunk as Buffer);
  } catch (err) {
    throw signal.aborted ? signal.reason : err;
  }
  return Buffer.concat(chunks).toString('utf8');
}

function apiError(method: string, path: string, status: number, text: string): ClusterError {
  let body: ApiStatus;
  try {
    body = JSON.parse(text) as ApiStatus;
  } catch {
    // Not a Status object (a proxy's or a crashed server's answer): its text is the message.
    body = { message: text.slice(0, 500) };
  }
  return new ClusterError('CLUSTER_ERR_API', `${method} ${path}: ${status} ${body.reason ?? ''} ${body.message ?? ''}`.trim(), {
    status,
    ...(body.reason === undefined ? {} : { reason: body.reason }),
  });
}
