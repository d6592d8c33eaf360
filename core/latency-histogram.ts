// Latencies recorded in microseconds in an HDR histogram (loopback hops are sub-millisecond,
// so whole milliseconds would hide them), sent from each load worker as compressed base64 and
// merged in the parent. Shared by `eppkit bench` and the mock EPP's ext_proc load client.
import * as hdr from 'hdr-histogram-js';

/** 1 µs to 5 min at 3 significant digits: every latency a bench can see, at 0.1 % resolution. */
const HIGHEST_US = 300_000_000;

export type Histogram = hdr.Histogram;

export function createHistogram(): Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: HIGHEST_US, numberOfSignificantValueDigits: 3, bitBucketSize: 32 });
}

/** Records one latency in microseconds (clamped to the trackable range). */
export function recordMicros(h: Histogram, us: number): void {
  h.recordValue(Math.min(HIGHEST_US, Math.max(1, Math.round(us))));
}

export function encodeHistogram(h: Histogram): string {
  return hdr.encodeIntoCompressedBase64(h);
}

export function decodeHistogram(encoded: string): Histogram {
  return hdr.decodeFromCompressedBase64(encoded);
}

/** One histogram holding every value of all the given encoded histograms. */
export function mergeHistograms(encoded: readonly string[]): Histogram {
  const out = createHistogram();
  for (const e of encoded) {
    if (!e) continue;
    const h = decodeHistogram(e);
    out.add(h);
    h.destroy();
  }
  return out;
}

export interface LatencySummary {
  /** Milliseconds, with microsecond precision. */
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  min: number;
  mean: number;
  count: number;
}

const ms = (us: number): number => Math.round(us) / 1000;

export function summarize(h: Histogram): LatencySummary {
  if (h.totalCount === 0) return { p50: 0, p90: 0, p99: 0, p999: 0, max: 0, min: 0, mean: 0, count: 0 };
  return {
    p50: ms(h.getValueAtPercentile(50)),
    p90: ms(h.getValueAtPercentile(90)),
    p99: ms(h.getValueAtPercentile(99)),
    p999: ms(h.getValueAtPercentile(99.9)),
    max: ms(h.maxValue),
    min: ms(h.minNonZeroValue),
    mean: ms(h.mean),
    count: h.totalCount,
  };
}
