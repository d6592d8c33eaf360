import { describe, expect, it } from 'vitest';
import { autocannonOptions, fromAutocannon, type AutocannonSummary } from './autocannon-client.ts';
import type { LoadSpec } from './load-worker.ts';

const spec = (over: Partial<LoadSpec> = {}): LoadSpec => ({
  url: 'http://127.0.0.2:4000/bench',
  method: 'GET',
  headers: { 'x-eppkit-delay-ms': '5' },
  bodyBytes: 0,
  executor: 'constant-vus',
  connections: 8,
  warmupMs: 500,
  durationMs: 2000,
  timeoutMs: 10_000,
  ...over,
});

const summary = (over: Partial<AutocannonSummary> = {}): AutocannonSummary => ({
  duration: 2.01,
  errors: 5,
  timeouts: 2,
  non2xx: 7,
  requests: { total: 4020 },
  throughput: { total: 123_456 },
  latency: { p50: 1, p90: 2, p99: 4, p99_9: 9, max: 12, min: 0, mean: 1.23456, totalCount: 4020 },
  statusCodeStats: { '200': { count: 4013 }, '503': { count: 7 } },
  ...over,
});

describe('fromAutocannon', () => {
  it('converts autocannon results into the per-target LoadResult the thresholds and reports read', () => {
    const r = fromAutocannon(summary(), 0.456);
    expect(r).toEqual({
      latencyMs: { p50: 1, p90: 2, p99: 4, p999: 9, max: 12, min: 0, mean: 1.235, count: 4020 },
      requests: 4020,
      rps: 2000,
      statusCodes: { '200': 4013, '503': 7 },
      non2xx: 7,
      errors: 5,
      errorKinds: { timeout: 2, 'connection error': 3 },
      bytes: 123_456,
      elapsedMs: 2010,
      workerCpu: [0.46],
    });
    // No dropped count: autocannon's rate is a closed-loop limit, nothing is ever dropped.
    expect(r).not.toHaveProperty('dropped');
  });

  it('has no error kinds without errors, skips empty status buckets and counts requests when the latency count is absent', () => {
    const r = fromAutocannon(summary({ errors: 0, timeouts: 0, non2xx: 0, statusCodeStats: { '200': { count: 10 }, '500': {} }, requests: { total: 10 }, latency: { p50: 0, p90: 0, p99: 1, p99_9: 1, max: 1, min: 0, mean: 0.2 } }), 0);
    expect(r.errorKinds).toEqual({});
    expect(r.statusCodes).toEqual({ '200': 10 });
    expect(r.latencyMs.count).toBe(10);
  });
});

describe('autocannonOptions', () => {
  it('sends what the own client sends: method, headers incl. the EPP delay, x-filled body', () => {
    const o = autocannonOptions(spec({ method: 'POST', bodyBytes: 16 }), 1, 2000);
    expect(o).toMatchObject({ url: 'http://127.0.0.2:4000/bench', method: 'POST', connections: 8, duration: 2, timeout: 10 });
    expect(o.headers).toEqual({ 'x-eppkit-delay-ms': '5', 'content-type': 'application/octet-stream' });
    expect(o.body).toBe('x'.repeat(16));
    expect(o.workers).toBeUndefined();
    expect(o.overallRate).toBeUndefined();
  });

  it('uses worker threads when workers > 1 (never more than connections) and splits the rate across them', () => {
    const o = autocannonOptions(spec({ rate: 101, executor: 'constant-arrival-rate' }), 2, 500);
    expect(o.workers).toBe(2);
    expect(o.duration).toBe(0.5);
    // autocannon applies overallRate in every worker thread as given.
    expect(o.overallRate).toBe(51);
    expect(o.ignoreCoordinatedOmission).toBe(true);
    expect(autocannonOptions(spec({ connections: 1 }), 4, 1000).workers).toBeUndefined();
  });
});
