/**
 * Wire payloads of the load generator: realistic SDP and ICE candidate strings with the send
 * times written into them, and the parser the receiving side uses to read them back.
 *
 * Every relayed message carries `x-sent:<intendedUs>;<actualUs>[;<tag>]`: the time the open-loop
 * schedule meant to send it and the time it was handed to the socket, both in microseconds of the
 * worker's `performance.now()`. Both ends of a pair live in the same worker, so the clocks match.
 * Latency from the intended time is the headline figure (no coordinated omission); latency from
 * the actual send time shows how much of it the generator's own scheduling added.
 *
 * SDP and candidates are opaque to both servers, so the stamp rides inside them unchanged.
 *
 * @module
 */

/** Marker that precedes the stamp in every relayed payload. */
export const STAMP_MARKER = "x-sent:";

/**
 * An SDP offer shaped like a browser's (one audio, one video and one data section, bundled),
 * about 1.9 KB. Its last attribute line is replaced by the stamp.
 */
const SDP_LINES = [
  "v=0",
  "o=- 4611731400430051336 2 IN IP4 127.0.0.1",
  "s=-",
  "t=0 0",
  "a=group:BUNDLE 0 1 2",
  "a=extmap-allow-mixed",
  "a=msid-semantic: WMS 5d2c6a4e-bench",
  "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126",
  "c=IN IP4 0.0.0.0",
  "a=rtcp:9 IN IP4 0.0.0.0",
  "a=ice-ufrag:Kq3b",
  "a=ice-pwd:Zf0cQm5m1x9bq3Hk2Yw8vT7n",
  "a=ice-options:trickle",
  "a=fingerprint:sha-256 7B:8C:23:9E:0A:11:5D:F4:C8:9A:3B:2E:61:7F:D0:44:95:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67",
  "a=setup:actpass",
  "a=mid:0",
  "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
  "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
  "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
  "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
  "a=sendrecv",
  "a=msid:5d2c6a4e-bench 1f6b2c1e-audio",
  "a=rtcp-mux",
  "a=rtpmap:111 opus/48000/2",
  "a=rtcp-fb:111 transport-cc",
  "a=fmtp:111 minptime=10;useinbandfec=1",
  "a=rtpmap:63 red/48000/2",
  "a=fmtp:63 111/111",
  "a=ssrc:1001 cname:benchcname",
  "m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103",
  "c=IN IP4 0.0.0.0",
  "a=rtcp:9 IN IP4 0.0.0.0",
  "a=ice-ufrag:Kq3b",
  "a=ice-pwd:Zf0cQm5m1x9bq3Hk2Yw8vT7n",
  "a=ice-options:trickle",
  "a=fingerprint:sha-256 7B:8C:23:9E:0A:11:5D:F4:C8:9A:3B:2E:61:7F:D0:44:95:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67",
  "a=setup:actpass",
  "a=mid:1",
  "a=extmap:14 urn:ietf:params:rtp-hdrext:toffset",
  "a=extmap:13 urn:3gpp:video-orientation",
  "a=sendrecv",
  "a=msid:5d2c6a4e-bench 7a9e4f00-video",
  "a=rtcp-mux",
  "a=rtcp-rsize",
  "a=rtpmap:96 VP8/90000",
  "a=rtcp-fb:96 goog-remb",
  "a=rtcp-fb:96 transport-cc",
  "a=rtcp-fb:96 ccm fir",
  "a=rtcp-fb:96 nack",
  "a=rtcp-fb:96 nack pli",
  "a=rtpmap:97 rtx/90000",
  "a=fmtp:97 apt=96",
  "a=rtpmap:102 H264/90000",
  "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f",
  "a=rtpmap:103 rtx/90000",
  "a=fmtp:103 apt=102",
  "a=ssrc-group:FID 2001 2002",
  "a=ssrc:2001 cname:benchcname",
  "a=ssrc:2002 cname:benchcname",
  "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
  "c=IN IP4 0.0.0.0",
  "a=ice-ufrag:Kq3b",
  "a=ice-pwd:Zf0cQm5m1x9bq3Hk2Yw8vT7n",
  "a=ice-options:trickle",
  "a=fingerprint:sha-256 7B:8C:23:9E:0A:11:5D:F4:C8:9A:3B:2E:61:7F:D0:44:95:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67",
  "a=setup:actpass",
  "a=mid:2",
  "a=sctp-port:5000",
  "a=max-message-size:262144",
];

/** The SDP body before the stamp line (each line ends in CRLF). */
const SDP_PREFIX = SDP_LINES.map((l) => `${l}\r\n`).join("");

/** A host candidate as Chrome writes it; the stamp is appended as an extension attribute. */
const CANDIDATE_PREFIX = "candidate:842163049 1 udp 2122260223 127.0.0.1 50123 typ host generation 0 ufrag Kq3b network-id 1 ";

/** `x-sent:<intendedUs>;<actualUs>` (plus `;<tag>` when given). */
export function stamp(intendedUs: number, actualUs: number, tag?: number): string {
  return tag === undefined ? `${STAMP_MARKER}${intendedUs};${actualUs}` : `${STAMP_MARKER}${intendedUs};${actualUs};${tag}`;
}

/** An SDP (offer or answer shape) whose last line is the stamp. */
export function stampedSdp(stampText: string): string {
  return `${SDP_PREFIX}a=${stampText}\r\n`;
}

/** An ICE candidate line that ends with the stamp. */
export function stampedCandidate(stampText: string): string {
  return `${CANDIDATE_PREFIX}${stampText}`;
}

/** Size of a stamped SDP, in characters (for the docs and the JSON). */
export const SDP_BYTES = stampedSdp(stamp(1e12, 1e12)).length;
/** Size of a stamped candidate line, in characters. */
export const CANDIDATE_BYTES = stampedCandidate(stamp(1e12, 1e12)).length;

/** The SDP prefix as the start of a JSON string literal (opening quote, CRLFs escaped). */
const SDP_PREFIX_JSON = JSON.stringify(SDP_PREFIX).slice(0, -1);
const CANDIDATE_PREFIX_JSON = JSON.stringify(CANDIDATE_PREFIX).slice(0, -1);

/**
 * `stampedSdp(stampText)` as a JSON string literal, without re-escaping the 1.9 KB body per
 * message (the generator shares the box with the server, so its own cost matters).
 */
export function stampedSdpJson(stampText: string): string {
  return `${SDP_PREFIX_JSON}a=${stampText}\\r\\n"`;
}

/** An `RTCIceCandidateInit` as JSON, its candidate line ending with the stamp. */
export function stampedCandidateJson(stampText: string): string {
  return `{"candidate":${CANDIDATE_PREFIX_JSON}${stampText}","sdpMid":"0","sdpMLineIndex":0}`;
}

/** A stamp read back from a received frame. */
export interface Stamp {
  readonly intendedUs: number;
  readonly actualUs: number;
  /** The optional third field (fan-out message number), or -1. */
  readonly tag: number;
}

/**
 * Finds the stamp in a received frame (raw JSON text: the stamp contains no characters JSON
 * escapes, so it reads the same escaped or not). Returns null when the frame carries none.
 */
export function readStamp(frame: string): Stamp | null {
  const at = frame.lastIndexOf(STAMP_MARKER);
  if (at < 0) return null;
  let i = at + STAMP_MARKER.length;
  const fields = [0, 0, -1];
  for (let f = 0; f < 3; f++) {
    let value = 0;
    let digits = 0;
    for (; i < frame.length; i++) {
      const c = frame.charCodeAt(i);
      if (c < 48 || c > 57) break;
      value = value * 10 + (c - 48);
      digits++;
    }
    if (digits === 0) return f < 2 ? null : { intendedUs: fields[0] as number, actualUs: fields[1] as number, tag: -1 };
    fields[f] = value;
    if (frame.charCodeAt(i) !== 59 /* ; */) break;
    i++;
  }
  return { intendedUs: fields[0] as number, actualUs: fields[1] as number, tag: fields[2] as number };
}
