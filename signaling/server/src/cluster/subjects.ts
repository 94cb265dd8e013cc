/**
 * NATS subject names and matching. Subjects are `.`-separated tokens; in filters `*` matches one
 * token and `>` (last) one or more.
 */

/** A token safe to put in a subject: cluster, pod, session and room ids are encoded if needed. */
export function subjectToken(value: string): string {
  return /^[A-Za-z0-9_-]+$/.test(value) ? value : `~${Buffer.from(value).toString("base64url")}`;
}

/** True when `subject` matches `filter` (NATS rules). */
export function subjectMatches(filter: string, subject: string): boolean {
  const f = filter.split(".");
  const s = subject.split(".");
  for (let i = 0; i < f.length; i++) {
    const token = f[i];
    if (token === ">") return s.length > i;
    if (i >= s.length) return false;
    if (token !== "*" && token !== s[i]) return false;
  }
  return f.length === s.length;
}

/** The subjects of one cluster (see docs/cluster.md). */
export class ClusterSubjects {
  readonly root: string;

  constructor(cluster: string) {
    this.root = `sb.${subjectToken(cluster)}`;
  }

  /** Every subject of the cluster (the stream's subject filter). */
  get all(): string {
    return `${this.root}.>`;
  }

  /** Commands for the owner `pod` about `key` (a room or call). */
  command(pod: string, key: string): string {
    return `${this.root}.cmd.${subjectToken(pod)}.${subjectToken(key)}`;
  }

  /** Every command for `pod`. */
  commandsFor(pod: string): string {
    return `${this.root}.cmd.${subjectToken(pod)}.>`;
  }

  /** Control messages for `pod` (ring handoffs), consumed apart from its commands. */
  control(pod: string): string {
    return `${this.root}.ctl.${subjectToken(pod)}`;
  }

  controlFor(pod: string): string {
    return this.control(pod);
  }

  /** Events for session `sessionId` on its edge `pod`. */
  event(pod: string, sessionId: string): string {
    return `${this.root}.ev.${subjectToken(pod)}.${subjectToken(sessionId)}`;
  }

  /** Every event for sessions on `pod`. */
  eventsFor(pod: string): string {
    return `${this.root}.ev.${subjectToken(pod)}.>`;
  }

}
