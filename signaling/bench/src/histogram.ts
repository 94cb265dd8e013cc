/**
 * HdrHistogram helpers: one histogram shape for every latency the bench records (microseconds,
 * 1 µs to 60 s, 3 significant digits), merging the workers' encoded histograms, and the summary
 * the report prints.
 *
 * @module
 */
import * as hdr from "hdr-histogram-js";

/** Largest latency recorded, µs; larger values are clamped to it. */
const HIGHEST_US = 60_000_000;

/** A new latency histogram (values in µs). */
export function newHistogram(): hdr.Histogram {
  return hdr.build({ bitBucketSize: 32, lowestDiscernibleValue: 1, highestTrackableValue: HIGHEST_US, numberOfSignificantValueDigits: 3, autoResize: true });
}

/** Adds every encoded histogram (HdrHistogram V2 compressed base64) into one. */
export function mergeEncoded(encoded: readonly (string | undefined)[]): hdr.Histogram {
  const total = newHistogram();
  for (const e of encoded) if (e) total.add(hdr.decodeFromCompressedBase64(e, 32));
  return total;
}

/** Latency summary in milliseconds. */
export interface LatencySummary {
  readonly count: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  readonly maxMs: number;
  /** p99 − p50. */
  readonly jitterMs: number;
  readonly meanMs: number;
}

/** The percentiles the report prints, in ms (3 decimals). */
export function summarize(h: hdr.Histogram): LatencySummary {
  const ms = (us: number) => Math.round(us) / 1000;
  const p50 = h.getValueAtPercentile(50);
  const p99 = h.getValueAtPercentile(99);
  return {
    count: h.totalCount,
    p50Ms: ms(p50),
    p90Ms: ms(h.getValueAtPercentile(90)),
    p99Ms: ms(p99),
    p999Ms: ms(h.getValueAtPercentile(99.9)),
    maxMs: ms(h.maxValue),
    jitterMs: ms(p99 - p50),
    meanMs: ms(h.mean),
  };
}

/** The encoded form of a histogram (kept in the JSON so runs can be re-analysed). */
export function encode(h: hdr.Histogram): string {
  return hdr.encodeIntoCompressedBase64(h);
}
