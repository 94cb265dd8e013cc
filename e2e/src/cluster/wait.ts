import { setTimeout as delay } from 'node:timers/promises';
import { ClusterError } from './errors.ts';

/** Options of {@link waitFor}. */
export interface WaitOptions {
  /** Gives up after this long. @default 60000 */
  readonly timeoutMs?: number;
  /** Time between tries. @default 250 */
  readonly intervalMs?: number;
  readonly signal?: AbortSignal;
}

/**
 * Polls `check` until it returns a value other than `undefined` and resolves with that value.
 * Rejects with `CLUSTER_ERR_TIMEOUT` naming `what` (and the last error `check` threw) when time
 * runs out.
 */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined> | T | undefined, options: WaitOptions = {}): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  let lastError: unknown;
  for (;;) {
    options.signal?.throwIfAborted();
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const detail = lastError === undefined ? '' : `: last error: ${(lastError as Error).message}`;
      throw new ClusterError('CLUSTER_ERR_TIMEOUT', `timed out waiting for ${what}${detail}`, { cause: lastError });
    }
    await delay(options.intervalMs ?? 250, undefined, options.signal === undefined ? {} : { signal: options.signal });
  }
}
