import { describe, expect, it } from 'vitest';
import type { LoadResult } from './load-client.ts';
import { hopCost, judgeTarget } from './bench-verdict.ts';

function load(p50: number, o: Partial<LoadResult> = {}): LoadResult {
  return {
    latencyMs: { p50, p90: p50, p99: p50, max: p50, mean: p50 } as LoadResult['latencyMs'],
    requests: 1000,
    rps: 100,
    statusCodes: { 200: 1000 },
    non2xx: 0,
    errors: 0,
    errorKinds: {},
    bytes: 0,
    elapsedMs: 10_000,
    workerCpu: [0.1],
    ...o,
  };
}

describe('judgeTarget', () => {
  it('passes a healthy target', () => {
    expect(judgeTarget({ load: load(1), maxErrorRatio: 0.01 })).toEqual({ warnings: [] });
  });

  it('fails no completed request, naming what the requests got instead', () => {
    const j = judgeTarget({ load: load(0, { requests: 0, errors: 32, errorKinds: { 'timeout (in flight at window close)': 32 } }), maxErrorRatio: 0.01 });
    expect(j.failed).toBe('no request completed in the window (32 without an answer: timeout (in flight at window close): 32)');
  });

  it('fails an error ratio over the limit, not one under it', () => {
    expect(judgeTarget({ load: load(1, { errors: 20, errorKinds: { ECONNRESET: 20 } }), maxErrorRatio: 0.01 }).failed).toBe('error ratio 2% (20 of 1020: ECONNRESET: 20) over the limit 1%');
    expect(judgeTarget({ load: load(1, { errors: 5, errorKinds: { ECONNRESET: 5 } }), maxErrorRatio: 0.01 }).failed).toBeUndefined();
  });

  it('puts a crash first, and a leak is a warning unless strict', () => {
    const health = { ok: false, problems: [{ kind: 'crash' as const, source: 'nginx error.log', line: 'worker process 7 exited on signal 11' }] };
    expect(judgeTarget({ load: load(1), maxErrorRatio: 0.01, health }).failed).toBe('data plane crash — nginx error.log: worker process 7 exited on signal 11');
    const footprint = { before: { rssBytes: 0, fds: 10, processes: 1 }, after: { rssBytes: 0, fds: 500, processes: 1 } };
    expect(judgeTarget({ load: load(1), maxErrorRatio: 0.01, footprint }).warnings[0]).toMatch(/open fds 10 → 500 \(\+490 > 128\)/);
    // An upstream pool as large as the load's connections is not a leak; beyond it, it is.
    const pool = { before: { rssBytes: 0, fds: 10, processes: 1 }, after: { rssBytes: 0, fds: 210, processes: 1 } };
    expect(judgeTarget({ load: load(1), maxErrorRatio: 0.01, footprint: pool, connections: 200 }).warnings).toEqual([]);
    expect(judgeTarget({ load: load(1), maxErrorRatio: 0.01, footprint: pool, connections: 50 }).warnings[0]).toMatch(/\+200 > 178/);
    expect(judgeTarget({ load: load(1), maxErrorRatio: 0.01, footprint, strict: true }).failed).toMatch(/--strict/);
  });
});

describe('hopCost', () => {
  it('is the difference of p50s when both are valid', () => {
    expect(hopCost({ load: load(1.5) }, { load: load(0.5) })).toEqual({ hopMs: 1 });
  });
  it('is never negative: null with the reason', () => {
    const h = hopCost({ load: load(0.4) }, { load: load(0.5) });
    expect(h.hopMs).toBeNull();
    expect(h.hopNote).toMatch(/noise/);
  });
  it('is null for a failed target or without a baseline', () => {
    expect(hopCost({ load: load(9), failed: 'crash' }, { load: load(0.5) }).hopMs).toBeNull();
    expect(hopCost({ load: load(9) }, undefined).hopNote).toBe('no direct baseline in this run');
  });
});
