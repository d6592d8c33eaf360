import { describe, expect, it } from 'vitest';
import { createHistogram, encodeHistogram, mergeHistograms, recordMicros, summarize } from './latency-histogram.ts';

function encoded(values: number[]): string {
  const h = createHistogram();
  for (const v of values) recordMicros(h, v);
  const e = encodeHistogram(h);
  h.destroy();
  return e;
}

describe('latency histograms', () => {
  it('merges workers into one distribution (percentiles of the union, not an average of percentiles)', () => {
    // Worker A saw 99 fast requests, worker B one slow one: the p99 of the union is fast,
    // the max is the slow one, the count is the sum.
    const a = encoded(Array.from({ length: 99 }, () => 200));
    const b = encoded([50_000]);
    const s = summarize(mergeHistograms([a, b, '']));
    expect(s.count).toBe(100);
    expect(s.p50).toBeCloseTo(0.2, 2);
    expect(s.p99).toBeCloseTo(0.2, 2);
    expect(s.max).toBeCloseTo(50, 0);
    expect(s.min).toBeCloseTo(0.2, 2);
  });

  it('keeps microsecond resolution and reports milliseconds', () => {
    const s = summarize(mergeHistograms([encoded([150, 250, 350, 450])]));
    expect(s.p50).toBeCloseTo(0.25, 2);
    expect(s.max).toBeCloseTo(0.45, 2);
    expect(s.mean).toBeCloseTo(0.3, 2);
  });

  it('clamps values outside the trackable range instead of throwing', () => {
    const s = summarize(mergeHistograms([encoded([0, -5, 1e12])]));
    expect(s.count).toBe(3);
    expect(s.min).toBeCloseTo(0.001, 3);
  });

  it('summarizes an empty histogram as zeros', () => {
    expect(summarize(mergeHistograms([]))).toEqual({ p50: 0, p90: 0, p99: 0, p999: 0, max: 0, min: 0, mean: 0, count: 0 });
  });
});
