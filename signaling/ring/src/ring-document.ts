/**
 * The ring document: the one format that says who is in the ring. The operator writes it as the
 * key {@link RING_DOCUMENT_KEY} of the ring ConfigMap; runs without Kubernetes read the same text
 * from a file or from the Redis key `sb:<cluster>:ring`. Example:
 *
 * ```json
 * {
 *   "version": 7,
 *   "vnodes": 4096,
 *   "members": [
 *     { "name": "switchboard-0", "address": "10.0.0.5:8080", "state": "ACTIVE", "uid": "0b9d2f4e-5c1a-4e7b-9f3d-2a8c6e1b7d40", "since": "2025-01-01T00:00:00Z" },
 *     { "name": "switchboard-1", "address": "10.0.0.6:8080", "state": "JOINING" }
 *   ]
 * }
 * ```
 *
 * Member states follow dskit's `InstanceDesc` (Cortex/Loki/Mimir):
 *
 * | state   | owns new rooms | meaning                                                        |
 * |---------|----------------|----------------------------------------------------------------|
 * | JOINING | no             | started; warming up, not yet in the hash                       |
 * | ACTIVE  | yes            | in the hash: rooms hash over ACTIVE members only               |
 * | LEAVING | no             | draining: out of the hash, hands its rooms to the new owners   |
 *
 * A member that has left is simply absent from the next version.
 *
 * @module
 */
import { z } from "zod";

/** The ConfigMap key (and file name) that holds the document. */
export const RING_DOCUMENT_KEY = "ring.json";

/**
 * Largest document accepted, in bytes of text. A ConfigMap holds at most 1 MiB; 1 000 members take
 * about 120 KiB.
 */
export const MAX_RING_DOCUMENT_BYTES = 1024 * 1024;

/** Most members a document may list (the ring stores a member index in 16 bits). */
export const MAX_RING_MEMBERS = 10_000;

/** Most virtual nodes per member; the ring holds about 6 bytes per vnode of every ACTIVE member. */
export const MAX_RING_VNODES = 16_384;

/** The states of a ring member; only `ACTIVE` members own rooms. */
export const RingMemberState = z.enum(["JOINING", "ACTIVE", "LEAVING"]);
/** One of `JOINING`, `ACTIVE`, `LEAVING`. */
export type RingMemberState = z.infer<typeof RingMemberState>;

// A Kubernetes pod name (DNS label or subdomain) or a hostname; the name is hashed, so it is the
// member's identity on the ring: renaming a member moves its rooms.
const NAME_PATTERN = /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,251}[A-Za-z0-9])?$/;
const HOST_PORT_PATTERN = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?):(\d{1,5})$/;
// Kubernetes UIDs are RFC 4122 UUIDs; accept any dash-separated alphanumeric token of that kind.
const UID_PATTERN = /^[A-Za-z0-9-]{1,128}$/;
const URL_SCHEMES = new Set(["http:", "https:", "ws:", "wss:"]);

function isAddress(value: string): boolean {
  const hostPort = HOST_PORT_PATTERN.exec(value);
  if (hostPort) {
    const port = Number(hostPort[1]);
    return port >= 1 && port <= 65_535;
  }
  // Only absolute http(s)/ws(s) URLs with a host: anything else is almost surely a typo.
  const url = URL.parse(value);
  return url !== null && URL_SCHEMES.has(url.protocol) && url.host !== "";
}

/** One ring member: a pod. */
export const RingMember = z.object({
  /** The pod name; its hash places the member's virtual nodes on the ring. */
  name: z.string().regex(NAME_PATTERN, "expected a pod name: 1-253 chars of A-Z a-z 0-9 . _ -, alphanumeric at both ends"),
  /** Where the pod's HTTP/WebSocket server listens: `host:port` or an http(s)/ws(s) URL. */
  address: z.string().max(2048).refine(isAddress, "expected host:port or an http(s)/ws(s) URL"),
  /** Whether the member owns rooms (only `ACTIVE` does). */
  state: RingMemberState,
  /**
   * The Kubernetes pod UID, written by the operator so that it can tell a pod recreated under the
   * same name from the old one. Pods ignore it: the name alone places the member on the ring.
   */
  uid: z.string().regex(UID_PATTERN, "expected a pod UID: 1-128 chars of A-Z a-z 0-9 -").optional(),
  /** When the member entered its current state (ISO 8601); informational. */
  since: z.iso.datetime({ offset: true }).optional(),
});
/** One ring member: a pod. */
export type RingMember = z.infer<typeof RingMember>;

/**
 * The whole document. Unknown fields are ignored (and dropped), so a newer operator can add fields
 * without breaking older pods.
 */
export const RingDocument = z
  .object({
    /** Raised by the writer on every change; pods report the version they applied. */
    version: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
    /**
     * Virtual nodes per member. Every pod must use the same count, and changing it moves nearly
     * every room: set it once per cluster. Absent means {@link DEFAULT_RING_VNODES} of `ring.ts`.
     */
    vnodes: z.number().int().min(1).max(MAX_RING_VNODES).optional(),
    /** The members, in any order; names are unique. */
    members: z.array(RingMember).max(MAX_RING_MEMBERS),
  })
  .superRefine((doc, ctx) => {
    const seen = new Set<string>();
    doc.members.forEach((member, index) => {
      if (seen.has(member.name)) {
        ctx.addIssue({ code: "custom", path: ["members", index, "name"], message: `duplicate member name "${member.name}"` });
      }
      seen.add(member.name);
    });
  });
/** The whole ring document. */
export type RingDocument = z.infer<typeof RingDocument>;

/**
 * Thrown by {@link parseRingDocument}; the message has one line per bad field, and `issues` holds
 * the same lines.
 */
export class RingDocumentError extends Error {
  override readonly name = "RingDocumentError";
  /** Stable code to match on. */
  readonly code = "RING_ERR_INVALID_DOCUMENT";
  /** One `path: problem` line per bad field. */
  readonly issues: readonly string[];

  constructor(issues: readonly string[], options?: { cause?: unknown }) {
    super(`invalid ring document:\n${issues.map((line) => `  ${line}`).join("\n")}`, options);
    this.issues = issues;
  }
}

/**
 * Parses and validates the text of a ring document (the ConfigMap value, the file, the Redis value).
 *
 * @param text the JSON text, at most {@link MAX_RING_DOCUMENT_BYTES} long
 * @returns the document; members keep their order, unknown fields are dropped
 * @throws {RingDocumentError} for text that is not JSON or breaks the schema, one line per bad field
 */
export function parseRingDocument(text: string): RingDocument {
  // Length in UTF-16 units is at most the UTF-8 length, so this never rejects a document that fits.
  if (text.length > MAX_RING_DOCUMENT_BYTES) {
    throw new RingDocumentError([`(root): document longer than ${MAX_RING_DOCUMENT_BYTES} bytes`]);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new RingDocumentError([`(root): not valid JSON: ${(err as Error).message}`], { cause: err });
  }
  return toRingDocument(json);
}

/**
 * Validates an already decoded value as a ring document.
 *
 * @param value any value, e.g. the result of `JSON.parse`
 * @returns the document
 * @throws {RingDocumentError} one line per bad field
 */
export function toRingDocument(value: unknown): RingDocument {
  const parsed = RingDocument.safeParse(value);
  if (parsed.success) return parsed.data;
  throw new RingDocumentError(parsed.error.issues.map((issue) => `${issue.path.join(".") || "(root)"}: ${issue.message}`));
}

/**
 * Writes a document as deterministic JSON text: fixed key order (`version`, `vnodes`, `members`;
 * in a member `name`, `address`, `state`, `uid`, `since`), members sorted by name,
 * two-space indent, trailing newline. The same ring always gives the same bytes, so the
 * ConfigMap changes only when the ring does and its content hash can serve as a version check.
 *
 * @param doc a valid document (not validated again)
 * @returns the text for the ConfigMap key {@link RING_DOCUMENT_KEY}
 */
export function serializeRingDocument(doc: RingDocument): string {
  const members = [...doc.members]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((m) => ({
      name: m.name,
      address: m.address,
      state: m.state,
      ...(m.uid === undefined ? {} : { uid: m.uid }),
      ...(m.since === undefined ? {} : { since: m.since }),
    }));
  const ordered = { version: doc.version, ...(doc.vnodes === undefined ? {} : { vnodes: doc.vnodes }), members };
  return `${JSON.stringify(ordered, null, 2)}\n`;
}
