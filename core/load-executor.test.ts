import { describe, expect, it } from 'vitest';
import { decodeHistogram } from './latency-histogram.ts';
import { IN_FLIGHT_AT_CLOSE, runExecutor, type Outcome } from './load-executor.ts';
import { mergeTallies } from './load-tally.ts';

const answered = (status = 200): (() => Promise<Outcome>) => () => new Promise((r) => setImmediate(() => r({ status, bytes: 10 })));
const never = (): Promise<Outcome> => new Promise(() => {});

describe('runExecutor', () => {
  it('constant-vus: every answered iteration of the window in the histogram, statuses and bytes counted', async () => {
    const t = await runExecutor({ executor: 'constant-vus', slots: 2, warmupMs: 20, durationMs: 60, timeoutMs: 1000 }, answered());
    expect(t.requests).toBeGreaterThan(0);
    expect(t.errors).toBe(0);
    expect(t.statusCodes).toEqual({ 200: t.requests });
    expect(t.bytes).toBe(10 * t.requests);
    // Warm-up iterations ended but are not measured.
    expect(t.iterations).toBeGreaterThan(t.requests);
    const h = decodeHistogram(t.histogram);
    expect(h.totalCount).toBe(t.requests);
    h.destroy();
  });

  it('non-2xx and errors are counted apart, by kind', async () => {
    let i = 0;
    const fire = (): Promise<Outcome> => Promise.resolve(i++ % 2 ? { status: 503, bytes: 0 } : { error: 'ECONNRESET' });
    const t = await runExecutor({ executor: 'constant-vus', slots: 1, warmupMs: 0, durationMs: 30, timeoutMs: 1000 }, () => new Promise((r) => setImmediate(() => r(fire()))));
    expect(t.non2xx).toBe(t.requests);
    expect(t.errorKinds).toEqual({ ECONNRESET: t.errors });
    expect(t.errors).toBeGreaterThan(0);
  });

  it('a hung iteration is a timeout at window close, never silence', async () => {
    const t = await runExecutor({ executor: 'constant-vus', slots: 3, warmupMs: 0, durationMs: 30, timeoutMs: 10 }, never);
    expect(t.requests).toBe(0);
    expect(t.inFlightAtClose).toBe(3);
    expect(t.errorKinds).toEqual({ [IN_FLIGHT_AT_CLOSE]: 3 });
  });

  it('constant-arrival-rate: iterations due while every slot is busy are dropped, not queued', async () => {
    const t = await runExecutor({ executor: 'constant-arrival-rate', slots: 1, rate: 1000, warmupMs: 0, durationMs: 50, timeoutMs: 10 }, never);
    expect(t.dropped).toBeGreaterThan(0);
    expect(t.inFlightAtClose).toBe(1);
  });

  it('maxIterations stops the run before the window ends', async () => {
    const t = await runExecutor({ executor: 'constant-vus', slots: 4, warmupMs: 0, durationMs: 60_000, timeoutMs: 1000, maxIterations: 50 }, answered());
    expect(t.iterations).toBe(50);
    expect(t.requests).toBe(50);
    expect(t.elapsedMs).toBeLessThan(60_000);
  });

  it('burst: slots iterations at once, measured from the burst start', async () => {
    const t = await runExecutor({ executor: 'burst', slots: 25, warmupMs: 0, durationMs: 100, timeoutMs: 1000 }, answered());
    expect(t.requests).toBe(25);
  });
});

describe('mergeTallies', () => {
  it('adds up counters and histograms; the window is the longest', async () => {
    const a = await runExecutor({ executor: 'constant-vus', slots: 1, warmupMs: 0, durationMs: 20, timeoutMs: 1000, maxIterations: 7 }, answered(200));
    const b = await runExecutor({ executor: 'constant-vus', slots: 1, warmupMs: 0, durationMs: 20, timeoutMs: 1000, maxIterations: 5 }, answered(404));
    const m = mergeTallies([a, b]);
    expect(m.requests).toBe(12);
    expect(m.statusCodes).toEqual({ 200: 7, 404: 5 });
    expect(m.non2xx).toBe(5);
    expect(m.latencyMs.count).toBe(12);
    expect(m.elapsedMs).toBe(Math.max(a.elapsedMs, b.elapsedMs));
  });
});
