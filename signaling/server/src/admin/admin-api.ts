import { timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { z } from "zod";
import { ERROR_CODES } from "@switchboard/protocol";
import { SignalingError, toSignalingError } from "../errors.ts";
import type { Hub } from "../hub.ts";
import { readJson, sendJson } from "../http/json.ts";
import type { Logger } from "../logger.ts";

const KickBody = z
  .object({
    room: z.string().optional(),
    ban: z.enum(["room", "service"]).optional(),
    banMs: z.number().int().positive().optional(),
  })
  // A room ban without its room would silently ban nothing.
  .refine((b) => b.ban !== "room" || b.room !== undefined, { message: "ban \"room\" needs room", path: ["room"] });

/**
 * The admin HTTP API, behind `Authorization: Bearer <adminToken>`:
 *
 * | method | path | does |
 * |---|---|---|
 * | GET | /admin/rooms | every room with its peer count |
 * | GET | /admin/rooms/:room | the peers of a room |
 * | DELETE | /admin/rooms/:room | closes the room for everyone |
 * | POST | /admin/peers/:peerId/kick | ends that session; body `{ban?: "room"\|"service", room?, banMs?}` |
 * | POST | /admin/peers/:peerId/disconnect | closes its socket (1012); the session stays resumable |
 *
 * Returns false when the path is not an admin path (the caller routes on).
 */
export async function handleAdmin(req: IncomingMessage, res: ServerResponse, path: string, hub: Hub, adminToken: string | undefined, log: Logger): Promise<boolean> {
  if (!path.startsWith("/admin/")) return false;
  if (!adminToken) {
    sendJson(res, 404, { code: "NOT_FOUND", message: "admin API disabled (no admin token configured)" });
    return true;
  }
  if (!authorized(req.headers.authorization, adminToken)) {
    sendJson(res, 401, { code: "SIG_ERR_AUTH_FAILED", message: "admin token required" });
    return true;
  }
  try {
    const parts = path.split("/").filter(Boolean).map(decodePathPart);
    if (parts[1] === "rooms" && parts.length === 2 && req.method === "GET") {
      sendJson(res, 200, { rooms: hub.rooms.list() });
    } else if (parts[1] === "rooms" && parts.length === 3 && req.method === "GET") {
      const members = hub.rooms.members(parts[2] as string);
      if (!members) throw new SignalingError("SIG_ERR_ROOM_NOT_FOUND", "no such room");
      sendJson(res, 200, { room: parts[2], peers: members.map((m) => ({ peerId: m.peerId, userId: m.userId, meta: m.meta, connected: m.connected })) });
    } else if (parts[1] === "rooms" && parts.length === 3 && req.method === "DELETE") {
      const closed = hub.closeRoom(parts[2] as string, "closed by administrator");
      sendJson(res, 200, { closed });
    } else if (parts[1] === "peers" && parts.length === 4 && parts[3] === "kick" && req.method === "POST") {
      const body = KickBody.safeParse(await readJson(req, 4096));
      if (!body.success) throw new SignalingError("SIG_ERR_BAD_MESSAGE", body.error.issues[0]?.message ?? "bad body", { field: body.error.issues[0]?.path.join(".") ?? "" });
      const opts = body.data;
      const kicked = hub.kick(parts[2] as string, { ...(opts.room === undefined ? {} : { room: opts.room }), ...(opts.ban === undefined ? {} : { ban: opts.ban }), ...(opts.banMs === undefined ? {} : { banMs: opts.banMs }) }, Date.now());
      if (!kicked) throw new SignalingError("SIG_ERR_PEER_NOT_FOUND", "no such peer");
      sendJson(res, 200, { kicked: true });
    } else if (parts[1] === "peers" && parts.length === 4 && parts[3] === "disconnect" && req.method === "POST") {
      if (!hub.disconnect(parts[2] as string)) throw new SignalingError("SIG_ERR_PEER_NOT_FOUND", "no such connected peer");
      sendJson(res, 200, { disconnected: true });
    } else {
      sendJson(res, 404, { code: "NOT_FOUND", message: "no such admin route" });
    }
  } catch (err) {
    const e = toSignalingError(err);
    if (e.code === "SIG_ERR_INTERNAL") log.error({ err: e.cause }, "admin API error");
    // The table has no HTTP status for a missing peer (a socket error); here the URL names it: 404.
    const status = e.code === "SIG_ERR_PEER_NOT_FOUND" ? 404 : (ERROR_CODES[e.code].http ?? 400);
    sendJson(res, status, { code: e.code, message: e.message, ...(e.field === undefined ? {} : { field: e.field }) });
  }
  return true;
}

/** A path segment, percent-decoded; a malformed escape is the client's error, not a 500. */
function decodePathPart(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new SignalingError("SIG_ERR_BAD_MESSAGE", "malformed percent-encoding in the path");
  }
}

function authorized(header: string | undefined, adminToken: string): boolean {
  if (!header?.startsWith("Bearer ")) return false;
  const given = Buffer.from(header.slice(7));
  const expected = Buffer.from(adminToken);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
