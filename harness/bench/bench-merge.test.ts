import { describe, expect, it } from 'vitest';
import { createHistogram, encodeHistogram, recordMicros, summarize } from '../../core/latency-histogram.ts';
import { extractReports, histogramCount, mergeBenchReports } from './bench-merge.ts';
import { REPORT_SCHEMA, type BenchReport } from './bench-report.ts';
import type { LoadResult } from './load-client.ts';

/** A load result whose histogram holds exactly `values` (µs). */
function load(values: number[], over: Partial<LoadResult> = {}): LoadResult {
  const h = createHistogram();
  for (const v of values) recordMicros(h, v);
  const out: LoadResult = {
    latencyMs: summarize(h),
    requests: values.length,
    rps: values.length / 2,
    statusCodes: { '200': values.length },
    non2xx: 0,
    errors: 0,
    errorKinds: {},
    bytes: values.length * 10,
    elapsedMs: 2000,
    workerCpu: [0.1],
    histogram: encodeHistogram(h),
    ...over,
  };
  h.destroy();
  return out;
}

function shard(index: number, count: number, values: number[], over: Partial<BenchReport> = {}): BenchReport {
  return {
    schema: REPORT_SCHEMA,
    mode: 'data-planes',
    shard: { index, count, connections: 2 },
    command: `eppkit bench --url http://127.0.0.1:1/v1 --shard ${index}/${count}`,
    startedAt: `2026-01-01T00:00:0${index}.000Z`,
    finishedAt: `2026-01-01T00:01:0${index}.000Z`,
    machine: { cpuModel: 'T', cores: 2, memGiB: 8, os: 'Linux', node: 'v24', eppkit: '0.1.0', loadAvg1: 0.1 },
    loadClient: { client: 'eppkit', kind: 'k', workers: 1, executor: 'constant-vus', connections: 8, durationMs: 2000, warmupMs: 0, method: 'GET', path: '/v1', bodyBytes: 0, bodyMode: 'buffered', timeoutMs: 1000 },
    results: [{ target: 'url', dataPlane: 'http://127.0.0.1:1/v1', eppDelayMs: 0, load: load(values) }],
    skipped: [],
    thresholds: [],
    notes: [],
    ok: true,
    ...over,
  };
}

const json = (r: BenchReport): string => `${JSON.stringify(r, null, 2)}\n`;

describe('extractReports', () => {
  it('finds one report in a file and several among log lines (kubectl logs of several pods)', () => {
    expect(extractReports(json(shard(0, 2, [100])))).toHaveLength(1);
    const stream = `starting\n${json(shard(0, 2, [100]))}{"level":30,"msg":"x"}\n${json(shard(1, 2, [200]))}done\n`;
    expect(extractReports(stream).map((r) => (r as BenchReport).shard?.index)).toEqual([0, 1]);
    expect(extractReports('{"schema":"something-else"}')).toEqual([]);
  });
});

describe('mergeBenchReports', () => {
  it('adds counters and takes percentiles from the union of the histograms, not from averages', () => {
    // Shard 0: 900 fast answers; shard 1: 100 slow ones. Averaging the p99s would give ~25 ms;
    // the true p99 of the 1000 requests is in the slow group.
    const a = Array.from({ length: 900 }, () => 1000);
    const b = Array.from({ length: 100 }, () => 50_000);
    const m = mergeBenchReports([{ source: 'a.json', text: json(shard(0, 2, a)) }, { source: 'b.json', text: json(shard(1, 2, b)) }], 'eppkit bench merge a.json b.json');
    const l = m.results[0]!.load!;
    expect(l.requests).toBe(1000);
    expect(histogramCount(l.histogram!)).toBe(1000);
    expect(l.statusCodes['200']).toBe(1000);
    expect(l.rps).toBe(500);
    expect(l.latencyMs.p50).toBeCloseTo(1, 2);
    expect(l.latencyMs.p99).toBeCloseTo(50, 0);
    expect(l.latencyMs.max).toBeCloseTo(50, 0);
    expect(m.merged).toEqual({ shards: 2, sources: ['a.json', 'b.json'] });
    expect(m.ok).toBe(true);
  });

  it('refuses missing, duplicate and foreign shards, naming them', () => {
    const s0 = { source: 'a', text: json(shard(0, 3, [1])) };
    expect(() => mergeBenchReports([s0], 'x')).toThrow(/missing shards 1\/3, 2\/3/);
    expect(() => mergeBenchReports([s0, { source: 'b', text: json(shard(0, 3, [1])) }], 'x')).toThrow(/shard 0\/3 twice \(a and b\)/);
    expect(() => mergeBenchReports([s0, { source: 'c', text: json(shard(1, 2, [1])) }], 'x')).toThrow(/shard 1\/2, but a is one of 3/);
    const other = shard(1, 2, [1]);
    other.loadClient = { ...other.loadClient, path: '/other' };
    expect(() => mergeBenchReports([{ source: 'a', text: json(shard(0, 2, [1])) }, { source: 'd', text: json(other) }], 'x')).toThrow(/d: a different run/);
    expect(() => mergeBenchReports([{ source: 'e', text: json({ ...shard(0, 1, [1]), shard: undefined } as BenchReport) }], 'x')).toThrow(/not a shard report/);
    expect(() => mergeBenchReports([{ source: 'f', text: 'nothing here' }], 'x')).toThrow(/f: no eppkit bench report/);
  });

  it('a failed or not-ok shard makes the merged report not ok', () => {
    const bad = shard(1, 2, [1], { ok: false });
    bad.results[0] = { ...bad.results[0]!, load: undefined, failed: 'smoke request answered 502' } as never;
    const m = mergeBenchReports([{ source: 'a', text: json(shard(0, 2, [1])) }, { source: 'b', text: json(bad) }], 'x');
    expect(m.ok).toBe(false);
    expect(m.results[0]!.failed).toMatch(/shard 1: smoke request answered 502/);
  });
});
