import { describe, expect, it } from 'vitest';
import { REPORT_SCHEMA, renderConsole, renderJson, renderMarkdown, type BenchReport, type TargetResult } from './bench-report.ts';
import type { LoadResult } from './load-client.ts';

const load = (p50: number, over: Partial<LoadResult> = {}): LoadResult => ({
  latencyMs: { p50, p90: p50 * 2, p99: p50 * 4, p999: p50 * 5, max: p50 * 10, min: p50 / 2, mean: p50 * 1.1, count: 1000 },
  requests: 1000,
  rps: 4321.5,
  statusCodes: { '200': 1000 },
  non2xx: 0,
  errors: 0,
  errorKinds: {},
  dropped: 0,
  bytes: 1000,
  elapsedMs: 10_000,
  workerCpu: [0.41, 0.95],
  ...over,
});

function report(results: TargetResult[], over: Partial<BenchReport> = {}): BenchReport {
  return {
    schema: REPORT_SCHEMA,
    mode: 'data-planes',
    command: "eppkit bench --data-plane node-proxy,nginx --threshold 'p99<5'",
    startedAt: '2026-01-01T00:00:00.000Z',
    finishedAt: '2026-01-01T00:01:00.000Z',
    machine: { cpuModel: 'Test CPU', cores: 2, memGiB: 8, os: 'Linux', node: 'v24.0.0', eppkit: '0.1.0', loadAvg1: 0.5, loadAvg1End: 3.25 },
    loadClient: {
      client: 'eppkit',
      kind: 'eppkit load workers',
      workers: 2,
      executor: 'constant-vus',
      connections: 32,
      durationMs: 10_000,
      warmupMs: 2000,
      method: 'GET',
      path: '/bench',
      bodyBytes: 0,
      bodyMode: 'buffered',
      timeoutMs: 10_000,
    },
    results,
    skipped: [{ target: 'envoy', reason: 'envoy not found | install it' }],
    thresholds: [{ expr: 'p99<5', target: 'node-proxy', actual: 6.4, ok: false }],
    notes: ['node-proxy: 1 load worker(s) used ≥90% of a core'],
    ok: false,
    ...over,
  };
}

const results: TargetResult[] = [
  { target: 'direct', dataPlane: null, eppDelayMs: 0, load: load(0.5) },
  { target: 'node-proxy', dataPlane: 'node-proxy', eppDelayMs: 5, version: 'eppkit 0.1.0', load: load(1.6, { errors: 3, errorKinds: { ECONNRESET: 3 }, non2xx: 2 }), hopMs: 1.1 },
  { target: 'nginx', dataPlane: 'nginx', eppDelayMs: 5, failed: 'smoke request answered 502 | bad gateway' },
];

describe('bench report rendering', () => {
  it('console: one aligned row per target, failures, skips, thresholds and notes', () => {
    const text = renderConsole(report(results));
    const lines = text.split('\n');
    expect(lines[0]).toMatch(/^target\s+version\s+EPP delay\s+req\/s\s+p50 ms/);
    const np = lines.find((l) => l.startsWith('node-proxy'))!;
    expect(np).toContain('4,322');
    expect(np).toContain('1.6');
    expect(np).toContain('3 (ECONNRESET:3)');
    expect(np).toContain('1.1');
    expect(np).toContain('41%/95%');
    expect(lines.find((l) => l.startsWith('direct'))).toMatch(/—\s+—/);
    expect(text).toContain('failed: smoke request answered 502');
    expect(text).toContain('skipped envoy: envoy not found | install it');
    expect(text).toContain('FAIL node-proxy: p99<5 (actual 6.4)');
    expect(text).toContain('note: node-proxy: 1 load worker(s)');
    expect(text).toMatch(/machine: Test CPU, 2 cores/);
    expect(text).toMatch(/load client: eppkit load workers: 2 worker processes, constant-vus \(closed loop\) 32 connections, 10 s per target after 2 s warmup, GET \/bench/);
  });

  it('markdown: the exact command, machine facts and a well-formed table', () => {
    const md = renderMarkdown(report(results));
    expect(md).toContain("Command: `eppkit bench --data-plane node-proxy,nginx --threshold 'p99<5'`");
    expect(md).toContain('Machine: Test CPU, 2 cores, 8 GiB, Linux, Node v24.0.0, eppkit 0.1.0; 1-min load average 0.5 at start, 3.25 at end');
    const table = md.split('\n').filter((l) => l.startsWith('|'));
    expect(table).toHaveLength(2 + results.length);
    const columns = table.map((l) => l.split(/(?<!\\)\|/).length);
    expect(new Set(columns).size).toBe(1);
    expect(md).toContain('EPP hop = the data plane');
    // A pipe inside a cell is escaped so the table stays a table (column count above).
    expect(md).toContain('failed: smoke request answered 502 \\| bad gateway');
    expect(md).toContain('- envoy: envoy not found | install it');
  });

  it('nonblocking: shows the share of the bound instead of the hop', () => {
    const nb = report([{ target: 'nginx', dataPlane: 'nginx', eppDelayMs: 50, load: load(51, { rps: 9500 }), boundRps: 10_000, boundPct: 95, blockingRps: 20, blockingX: 475 }], { mode: 'nonblocking' });
    expect(renderConsole(nb)).toContain('95% of 10,000');
    expect(renderConsole(nb)).toContain('475× 20');
    expect(renderMarkdown(nb)).toContain('% of bound');
    expect(renderMarkdown(nb)).toContain('what ONE worker that blocks');
  });

  it('json: round-trips the report', () => {
    const r = report(results);
    expect(JSON.parse(renderJson(r))).toEqual(r);
  });
});

describe('bench report rendering at a fixed arrival rate', () => {
  it('adds the dropped column (requests not sent because every connection was busy)', () => {
    const r = report(results);
    r.loadClient = { ...r.loadClient, executor: 'constant-arrival-rate', rate: 500 };
    r.results = [{ target: 'envoy', dataPlane: 'envoy', eppDelayMs: 0, load: load(1, { dropped: 17 }), hopMs: 0.5 }, results[2]!];
    const md = renderMarkdown(r);
    const table = md.split('\n').filter((l) => l.startsWith('|'));
    const header = table[0]!.split(' | ');
    const row = table[2]!.split(' | ');
    expect(row[header.indexOf('dropped')]).toBe('17');
    expect(new Set(table.map((l) => l.split(/(?<!\\)\|/).length)).size).toBe(1);
    expect(md).toContain('constant-arrival-rate 500 req/s (at most 32 in flight)');
  });
});

describe('bench report rendering with autocannon as the client', () => {
  it('says autocannon ran, calls its rate a closed-loop limit and has no dropped column', () => {
    const r = report(results);
    r.loadClient = { ...r.loadClient, client: 'autocannon', kind: 'autocannon 9.0.0 (worker threads, latency in whole ms)', executor: 'constant-arrival-rate', rate: 500 };
    r.results = [{ target: 'envoy', dataPlane: 'envoy', eppDelayMs: 0, load: load(1, { dropped: undefined }), hopMs: 0 }];
    const md = renderMarkdown(r);
    const header = md.split('\n').find((l) => l.startsWith('| target'))!;
    expect(header).not.toContain('dropped');
    expect(md).toContain('Load client: autocannon 9.0.0 (worker threads, latency in whole ms): 2 worker threads, closed loop of 32 connections limited to 500 req/s (autocannon overallRate, not an arrival rate)');
    expect(renderConsole(r)).toContain('load client: autocannon');
  });
});
