/**
 * Server-to-client WebSocket text frames (RFC 6455 §5.2: FIN set, opcode 1, unmasked), encoded once
 * into one buffer, header and payload together.
 *
 * The pod keeps every sequenced event until the client acknowledges it. Kept as a JavaScript
 * string, each one was copied by every young-generation GC it lived through (thousands of 1–2 KB
 * SDPs per scavenge on a busy pod); kept as the bytes that go on the wire, it lives outside the V8
 * heap, is encoded once, and is written with one `write` (no per-send header, no `writev`). `ws`
 * still parses every inbound frame and writes its own control frames on the same socket; it queues
 * nothing of its own while compression is off (the pod never enables it), so frames stay in order.
 *
 * @module
 */

/** A complete text frame, as written to the socket. */
export type TextFrame = Buffer;

/** Bytes of the header of a frame whose payload is `payloadBytes` long. */
function headerBytes(payloadBytes: number): number {
  return payloadBytes < 126 ? 2 : payloadBytes < 65_536 ? 4 : 10;
}

/** Allocates a frame for `payloadBytes` bytes of payload and writes its header. */
function allocFrame(payloadBytes: number): { frame: Buffer; offset: number } {
  const offset = headerBytes(payloadBytes);
  // Not from Node's shared 8 KiB pool: a kept frame would pin a whole slab until it is acknowledged.
  const frame = Buffer.allocUnsafeSlow(offset + payloadBytes);
  frame[0] = 0x81;
  if (offset === 2) frame[1] = payloadBytes;
  else if (offset === 4) {
    frame[1] = 126;
    frame.writeUInt16BE(payloadBytes, 2);
  } else {
    frame[1] = 127;
    frame.writeUInt32BE(Math.floor(payloadBytes / 2 ** 32), 2);
    frame.writeUInt32BE(payloadBytes >>> 0, 6);
  }
  return { frame, offset };
}

/** Encodes `text` as one text frame. */
export function encodeTextFrame(text: string): TextFrame {
  const { frame, offset } = allocFrame(Buffer.byteLength(text));
  frame.write(text, offset, "utf8");
  return frame;
}

/**
 * Encodes the event `eventJson` (a JSON object, `{"type":…}`) with `seq` as its first member:
 * `{"seq":<seq>,"type":…}`, without building the joined string.
 */
export function encodeSequencedFrame(seq: number, eventJson: string): TextFrame {
  const head = `{"seq":${seq}`;
  const { frame, offset } = allocFrame(head.length + Buffer.byteLength(eventJson));
  frame.write(head, offset, "latin1");
  const at = offset + head.length;
  frame.write(eventJson, at, "utf8");
  frame[at] = 0x2c; // the event's "{" becomes the "," after seq
  return frame;
}

/** The payload of a frame made here (what a client receives as the message). */
export function framePayload(frame: TextFrame): Buffer {
  const len = frame[1] as number;
  return frame.subarray(len < 126 ? 2 : len === 126 ? 4 : 10);
}

/** The heartbeat's WebSocket ping (opcode 9, empty), for clients that did not ask for text pings. */
export const PING_FRAME: Buffer = Buffer.from([0x89, 0x00]);

/** The heartbeat's text `ping` (not sequenced), for clients that said `textHeartbeat`. */
export const TEXT_PING_FRAME: TextFrame = encodeTextFrame('{"type":"ping"}');

/** The bare answer to it, as a client's frame payload (anything else is decoded in full). */
export const BARE_PONG: Buffer = Buffer.from('{"type":"pong"}');
