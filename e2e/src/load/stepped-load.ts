import { startTraffic, type Traffic, type TrafficClient, type TrafficReport } from "../pods/failover-traffic.ts";

/**
 * Load in steps for autoscaling: groups of SDK clients (real sockets, through one URL such as a
 * Service) in rooms, every member relaying numbered messages to every other member. A step up
 * connects new groups and starts their traffic; a step down stops the newest groups, waits until
 * what they sent arrived, checks it (lost, duplicated, reordered) and closes them. The accounting of
 * every group ever retired adds up in {@link SteppedLoad.totals}.
 */

/** Options of {@link SteppedLoad}. */
export interface SteppedLoadOptions {
  /** Where clients connect (`ws://host:port/v1/ws`). */
  readonly wsUrl: string;
  /** Prefix of user names and rooms (each group adds `-g<n>`). */
  readonly prefix: string;
  /** Clients per group: steps are whole groups. */
  readonly groupSize: number;
  /** Members per room. */
  readonly roomSize: number;
  /** Pause between two messages of one client, in ms. */
  readonly intervalMs: number;
}

/** Message accounting over groups. */
export interface LoadTotals {
  readonly groups: number;
  readonly clients: number;
  readonly acknowledged: number;
  readonly delivered: number;
  readonly lost: number;
  readonly duplicated: number;
  readonly reordered: number;
  readonly resumes: number;
  readonly sessionsLost: number;
  /** A few streams with a fault, for the diagnosis. */
  readonly examples: readonly string[];
}

const ZERO: LoadTotals = { groups: 0, clients: 0, acknowledged: 0, delivered: 0, lost: 0, duplicated: 0, reordered: 0, resumes: 0, sessionsLost: 0, examples: [] };

function add(t: LoadTotals, r: TrafficReport, clients: readonly TrafficClient[]): LoadTotals {
  return {
    groups: t.groups + 1,
    clients: t.clients + clients.length,
    acknowledged: t.acknowledged + r.acknowledged,
    delivered: t.delivered + r.delivered,
    lost: t.lost + r.lost,
    duplicated: t.duplicated + r.duplicated,
    reordered: t.reordered + r.reordered,
    resumes: t.resumes + clients.reduce((n, c) => n + c.resumes.length, 0),
    sessionsLost: t.sessionsLost + clients.reduce((n, c) => n + c.sessionLost, 0),
    examples: [...t.examples, ...r.examples].slice(0, 8),
  };
}

/** See the module comment. */
export class SteppedLoad {
  readonly #o: SteppedLoadOptions;
  readonly #groups: Traffic[] = [];
  #made = 0;
  #totals: LoadTotals = ZERO;

  constructor(options: SteppedLoadOptions) {
    if (options.groupSize % options.roomSize !== 0) throw new RangeError("groupSize must be a multiple of roomSize");
    this.#o = options;
  }

  /** Clients connected now. */
  get clients(): number {
    return this.#groups.length * this.#o.groupSize;
  }

  /** Every client of the groups running now. */
  get liveClients(): readonly TrafficClient[] {
    return this.#groups.flatMap((g) => g.clients);
  }

  /** Accounting of the groups retired so far. */
  get totals(): LoadTotals {
    return this.#totals;
  }

  /**
   * Adds or retires groups until `clients` (rounded up to whole groups) are connected and sending.
   * Groups retire newest first unless `retire` says `oldest` (to keep the clients that connected
   * last, when they are the ones spread over every pod).
   */
  async setClients(clients: number, options: { retire?: "newest" | "oldest" } = {}): Promise<void> {
    const groups = Math.ceil(clients / this.#o.groupSize);
    while (this.#groups.length < groups) {
      const g = await startTraffic([{ wsUrl: this.#o.wsUrl }], { clients: this.#o.groupSize, roomSize: this.#o.roomSize, prefix: `${this.#o.prefix}-g${this.#made++}` });
      g.start(this.#o.intervalMs);
      this.#groups.push(g);
    }
    while (this.#groups.length > groups) await this.#retire((options.retire === "oldest" ? this.#groups.shift() : this.#groups.pop()) as Traffic);
  }

  /** Retires every group (their accounting ends up in {@link totals}). */
  async close(): Promise<LoadTotals> {
    await this.setClients(0);
    return this.#totals;
  }

  async #retire(g: Traffic): Promise<void> {
    try {
      await g.stop();
      await g.settle(20_000);
      this.#totals = add(this.#totals, g.check(), g.clients);
    } finally {
      await g.close();
    }
  }
}
