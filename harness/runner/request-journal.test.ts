import { describe, expect, it } from 'vitest';
import type { ExchangeResult } from './http-exchange.ts';
import { entryOfRequest, failingRequest, isCancelled, requestIds, streamServiceTime } from './request-journal.ts';
import { latencyHistogram } from './results.ts';

const result = (requestId: string): ExchangeResult => ({ headers: {}, body: Buffer.alloc(0), bodySha256: '', latencyMs: 1, endedAt: 0, aborted: false, requestId });

describe('request journal', () => {
  it('finds the entry of a request by its id header, wherever it is in the journal', () => {
    const entries = [3, 1, 2].map((n) => ({ id: n, requestHeaders: { 'eppkit-request-id': `2.${n}` } }));
    expect(entryOfRequest(entries, '2.1')?.id).toBe(1);
    expect(entryOfRequest(entries, '2.9')).toBeUndefined();
    const next = requestIds(2);
    expect([next(), next()]).toEqual(['2.1', '2.2']);
  });

  it('singles out the request a mismatch names, or the only one', () => {
    expect(failingRequest([{ what: 'aggregate', expected: 1, received: 2 }, { what: 'status', expected: 200, received: 500, request: '1.3' }], [result('1.1'), result('1.3')])).toBe('1.3');
    expect(failingRequest([{ what: 'status', expected: 200, received: 500 }], [result('4.1')])).toBe('4.1');
    expect(failingRequest([{ what: 'backends seen', expected: 2, received: 1 }], [result('1.1'), result('1.2')])).toBeUndefined();
  });

  it("counts a cancelled stream's time until the cancel as EPP time", () => {
    const answered = { answers: [{ serviceTimeMs: 1.5 }, { serviceTimeMs: 0.5 }], phases: [{ atMs: 0 }, { atMs: 3 }], durationMs: 10, end: { how: 'completed' } };
    expect(streamServiceTime(answered)).toBe(2);
    // The EPP held the headers for 200 ms until the plane's timeout cancelled the stream.
    const cancelled = { answers: [], phases: [{ atMs: 0 }], durationMs: 200, end: { how: 'client-cancelled' } };
    expect(streamServiceTime(cancelled)).toBe(200);
    expect(isCancelled(cancelled)).toBe(true);
    expect(isCancelled(answered)).toBe(false);
    expect(streamServiceTime({ answers: [], phases: [] })).toBeUndefined();
  });

  it('keeps latencies as a histogram a quarter octave wide', () => {
    const h = latencyHistogram([1, 1, 1.1, 200, 0]) ?? [];
    expect(h.reduce((a, [, n]) => a + n, 0)).toBe(5);
    expect(h.map(([ub]) => ub)).toEqual([...h.map(([ub]) => ub)].sort((a, b) => a - b));
    expect(h.find(([ub]) => ub === 1)?.[1]).toBe(2);
    expect(h.at(-1)?.[0]).toBeGreaterThanOrEqual(200);
    expect(h.at(-1)?.[0]).toBeLessThan(200 * 2 ** 0.25);
    expect(latencyHistogram([])).toBeUndefined();
  });
});
