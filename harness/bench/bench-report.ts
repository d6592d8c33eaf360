// The report step of the bench pipeline: one BenchReport, rendered three ways — a console table,
// JSON (the machine-readable record; its shape is what tests check) and a Markdown fragment
// ready to paste into docs/BENCHMARKS.md with the exact command line and the machine's facts.
import type { BenchMode, Executor, LoadClientName } from './bench-options.ts';
import type { HeadroomCheck } from './generator-headroom.ts';
import type { LoadResult } from './load-client.ts';
import type { MachineFacts } from './machine-facts.ts';
import type { ThresholdResult } from './thresholds.ts';
import type { PlaneProblem } from '../data-planes/plane-health.ts';
import type { PlaneFootprint } from '../runner/results.ts';
import { processRows, type CpuAttribution } from './process-cpu.ts';

export const REPORT_SCHEMA = 'eppkit-bench/1';

/** What the report says whenever autocannon was the client (`--client autocannon`). */
export const AUTOCANNON_NOTES = {
  resolution: 'load client autocannon: latencies are whole milliseconds (its histogram resolution), so sub-millisecond hops read as 0 or 1 ms; use --client eppkit (µs) for the hop cost.',
  rate: 'load client autocannon: --rate ran as autocannon overallRate, a rate limit on a closed loop of --connections, not an open-loop arrival rate: each connection sends at most its share per second and a slow answer delays the next request, so a stalled server lowers the rate instead of showing in the latency (coordinated omission), and nothing is counted as dropped.',
} as const;

/** A worker above this share of a core may be what limits the numbers. */
export const CLIENT_SATURATED = 0.9;

export interface TargetResult {
  /** `direct`, a data plane name, or `name@Nms` when several EPP delays ran. */
  target: string;
  /** null for `direct` (straight to the echo backend). */
  dataPlane: string | null;
  eppDelayMs: number;
  version?: string;
  /** Set when the target could not be measured (start failed, smoke request failed). */
  failed?: string;
  load?: LoadResult;
  /** EPP hop cost: this target's p50 − direct p50, ms; null (with hopNote) when it cannot be trusted. */
  hopMs?: number | null;
  /** Why hopMs is null (no baseline, a failed target, a negative difference). */
  hopNote?: string;
  /** Where the CPU of the window went, per process of the target (data plane, EPP, backend, load workers). */
  cpu?: CpuAttribution;
  /** The data plane's RSS and open fds after the smoke request and after the window (leak check). */
  footprint?: { before: PlaneFootprint; after: PlaneFootprint };
  /** Crashes, alerts, unexpected exits of the data plane during the target (plane health). */
  planeProblems?: PlaneProblem[];
  /** Not failures, but to be read (a leak over its bound without --strict). */
  warnings?: string[];
  /** nonblocking: connections / delay, req/s, and the share of it achieved, %. */
  boundRps?: number;
  boundPct?: number;
  /**
   * nonblocking: what one worker that blocks on each EPP call could do (1000 / delay, req/s),
   * and how many times that was achieved: above 1 nothing blocked, whatever limited the rest.
   */
  blockingRps?: number;
  blockingX?: number;
  /** mock-epp: the mock's CPU time per stream and its memory over the run, when measured. */
  mockEpp?: {
    cpu?: { totalMs: number; usPerStream: number; impliedStreamsPerCoreSecond: number };
    rssMiB?: { start: number; end: number; max: number };
  };
}

export interface LoadClientFacts {
  /** Which load client ran: eppkit's own or autocannon (mock-epp: the mock's ext_proc client, reported as eppkit). */
  client: LoadClientName;
  kind: string;
  workers: number;
  executor: Executor;
  connections: number;
  rate?: number;
  durationMs: number;
  warmupMs: number;
  method: string;
  path: string;
  bodyBytes: number;
  bodyMode: string;
  timeoutMs: number;
  /** mock-epp: concurrent ext_proc streams. */
  streams?: number;
}

export interface BenchReport {
  schema: typeof REPORT_SCHEMA;
  mode: BenchMode;
  /** Set when this run was shard `index` of `count` (`--shard i/n`): its own share of connections. */
  shard?: { index: number; count: number; connections: number };
  /** Set on a report that `eppkit bench merge` made: how many shard reports it joined, and their files. */
  merged?: { shards: number; sources: string[] };
  /** The exact command line, to re-run it. */
  command: string;
  startedAt: string;
  finishedAt: string;
  machine: MachineFacts;
  loadClient: LoadClientFacts;
  results: TargetResult[];
  skipped: Array<{ target: string; reason: string }>;
  thresholds: ThresholdResult[];
  /** Which echo backend and EPP ran beside the data planes (compiled or Node). */
  helpers?: { backend: string; epp: string };
  /** wrk against direct in the same run (generator-headroom check). */
  headroom?: HeadroomCheck;
  /** Notes worth reading next to the numbers (client saturation, shared machine). */
  notes: string[];
  /** No failed target and no failed threshold. */
  ok: boolean;
}

const num = (n: number | undefined, digits = 3): string => (n === undefined ? '—' : Number(n.toFixed(digits)).toString());
const int = (n: number): string => Math.round(n).toLocaleString('en-US');

function errorCell(r: TargetResult): string {
  const l = r.load;
  if (!l) return '—';
  const kinds = Object.entries(l.errorKinds).map(([k, v]) => `${k}:${v}`).join(' ');
  return kinds ? `${l.errors} (${kinds})` : String(l.errors);
}

function rows(report: BenchReport): string[][] {
  const nonblocking = report.mode === 'nonblocking';
  const header = ['target', 'version', 'EPP delay', report.mode === 'mock-epp' ? 'streams/s' : 'req/s', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'errors', 'non-2xx'];
  // k6's dropped iterations: the arrival rate found every connection busy. autocannon's rate is a
  // closed-loop limit that never drops, so it has no such column.
  const rate = report.loadClient.executor === 'constant-arrival-rate' && report.loadClient.client !== 'autocannon';
  if (rate) header.push('dropped');
  header.push(nonblocking ? '% of bound' : 'EPP hop ms');
  if (nonblocking) header.push('× blocking');
  header.push('client CPU');
  header.push('DP CPU µs/req');
  header.push('verdict');
  const out = [header];
  for (const r of report.results) {
    const l = r.load;
    const row = [r.target, r.version ?? '—', r.dataPlane ? `${r.eppDelayMs} ms` : '—'];
    if (!l) {
      // The whole reason is under the table (FAILED …): keep the table readable.
      const why = (r.failed ?? 'not measured').split('\n')[0] ?? '';
      row.push(`failed: ${why.length > 60 ? `${why.slice(0, 59)}…` : why}`);
      while (row.length < header.length) row.push('');
      out.push(row);
      continue;
    }
    row.push(int(l.rps), num(l.latencyMs.p50), num(l.latencyMs.p90), num(l.latencyMs.p99), num(l.latencyMs.max), errorCell(r), String(l.non2xx));
    if (rate) row.push(l.dropped === undefined ? '—' : String(l.dropped));
    row.push(nonblocking ? (r.boundPct === undefined ? '—' : `${num(r.boundPct, 1)}% of ${int(r.boundRps ?? 0)}`) : typeof r.hopMs === 'number' ? num(r.hopMs) : r.hopNote && r.dataPlane ? 'n/a' : '—');
    if (nonblocking) row.push(r.blockingX === undefined ? '—' : `${num(r.blockingX, 1)}× ${int(r.blockingRps ?? 0)}`);
    row.push(l.workerCpu.length ? l.workerCpu.map((c) => `${Math.round(c * 100)}%`).join('/') : '—');
    row.push(r.cpu?.dataPlaneUsPerRequest == null ? '—' : String(r.cpu.dataPlaneUsPerRequest));
    row.push(r.failed ? 'FAILED' : 'ok');
    out.push(row);
  }
  return out;
}

export function loadClientLine(c: LoadClientFacts): string {
  if (c.streams !== undefined) {
    const exec = c.executor === 'constant-arrival-rate' ? `${int(c.rate ?? 0)} streams/s, at most ${c.streams} in flight` : `closed loop, ${c.streams} streams in flight`;
    return `${c.kind}: ${c.workers} worker thread${c.workers === 1 ? '' : 's'}, ${c.connections} HTTP/2 connections, ${exec}, ${c.durationMs / 1000} s after ${c.warmupMs / 1000} s warmup, request headers + ${c.bodyBytes} B body per stream (body mode ${c.bodyMode})`;
  }
  const ac = c.client === 'autocannon';
  const exec =
    c.executor === 'burst'
      ? `burst: ${c.connections} requests at once (one connection each), every second`
      : c.executor !== 'constant-arrival-rate'
      ? `constant-vus (closed loop) ${c.connections} connections`
      : ac
        ? `closed loop of ${c.connections} connections limited to ${int(c.rate ?? 0)} req/s (autocannon overallRate, not an arrival rate)`
        : `constant-arrival-rate ${int(c.rate ?? 0)} req/s (at most ${c.connections} in flight)`;
  const body = c.bodyBytes > 0 ? `POST ${c.path} with ${c.bodyBytes} B body (EPP body mode ${c.bodyMode})` : `GET ${c.path} (EPP body mode ${c.bodyMode})`;
  const unit = ac ? 'worker thread' : 'worker process';
  return `${c.kind}: ${c.workers} ${unit}${c.workers === 1 ? '' : unit.endsWith('s') ? 'es' : 's'}, ${exec}, ${c.durationMs / 1000} s per target after ${c.warmupMs / 1000} s warmup, ${body}`;
}

export function helpersLine(h: NonNullable<BenchReport['helpers']>): string {
  return `backend: ${h.backend}; EPP: ${h.epp}`;
}

export function machineLine(m: MachineFacts): string {
  const end = m.loadAvg1End === undefined ? '' : `, ${m.loadAvg1End} at end`;
  return `${m.cpuModel}, ${m.cores} cores, ${m.memGiB} GiB, ${m.os}, Node ${m.node}, eppkit ${m.eppkit}; 1-min load average ${m.loadAvg1} at start${end}`;
}

export function renderConsole(report: BenchReport): string {
  const table = rows(report);
  const widths = table[0]!.map((_, i) => Math.max(...table.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string => r.map((c, i) => (i < 3 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  const out = [line(table[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...table.slice(1).map(line)];
  for (const r of report.results) if (r.failed) out.push(`FAILED ${r.target}: ${r.failed.split('\n')[0]}`);
  for (const r of report.results) for (const w of r.warnings ?? []) out.push(`warning ${r.target}: ${w}`);
  for (const r of report.results) if (r.hopNote && r.dataPlane && report.mode !== 'nonblocking') out.push(`hop ${r.target}: n/a — ${r.hopNote}`);
  const cpu = cpuSection(report);
  if (cpu.length) out.push('', ...cpu.map((t) => textTable(t.rows, t.title)), '');
  for (const s of report.skipped) out.push(`skipped ${s.target}: ${s.reason}`);
  for (const t of report.thresholds) {
    const actual = t.actual === undefined ? '' : ` (actual ${num(t.actual)})`;
    out.push(`${t.ok ? 'pass' : 'FAIL'} ${t.target}: ${t.expr}${actual}${t.note ? ` — ${t.note}` : ''}`);
  }
  for (const n of report.notes) out.push(`note: ${n}`);
  out.push(`machine: ${machineLine(report.machine)}`);
  out.push(`load client: ${loadClientLine(report.loadClient)}`);
  if (report.helpers) out.push(`helpers: ${helpersLine(report.helpers)}`);
  return `${out.join('\n')}\n`;
}

/** One table per measured target: every process with its CPU µs/request, share of a core, RSS, fds. */
export function cpuSection(report: BenchReport): Array<{ title: string; rows: string[][] }> {
  return report.results.flatMap((r) => {
    if (!r.cpu || r.cpu.processes.length === 0) return [];
    const head = `${r.target}: ${r.cpu.requests.toLocaleString('en-US')} requests in ${r.cpu.windowMs} ms; data plane ${r.cpu.dataPlaneUsPerRequest ?? '—'} µs CPU/request; bottleneck ${r.cpu.bottleneck ?? '—'}`;
    return [{ title: head, rows: [['role', 'process pid', 'CPU µs/req', '% of a core', 'RSS MiB', 'fds'], ...processRows(r.cpu)] }];
  });
}

function textTable(rows: string[][], title: string): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string => r.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  return [title, ...rows.map((r) => `  ${line(r)}`)].join('\n');
}

export function renderJson(report: BenchReport): string {
  return `${JSON.stringify(report, null, 2)}\n`;
}

const cell = (s: string): string => s.replace(/\|/g, '\\|');

/** A fragment for docs/BENCHMARKS.md: command, machine, client, table, skipped, notes. */
export function renderMarkdown(report: BenchReport): string {
  const table = rows(report);
  const out = [
    `Command: \`${report.command}\``,
    '',
    `Machine: ${machineLine(report.machine)}. Run ${report.startedAt}.`,
    '',
    `Load client: ${loadClientLine(report.loadClient)}.`,
    '',
    ...(report.helpers ? [`Helpers: ${helpersLine(report.helpers)}.`, ''] : []),
    `| ${table[0]!.map(cell).join(' | ')} |`,
    `|${table[0]!.map((_, i) => (i < 3 ? '---' : '---:')).join('|')}|`,
    ...table.slice(1).map((r) => `| ${r.map(cell).join(' | ')} |`),
  ];
  const failedTargets = report.results.filter((r) => r.failed);
  if (failedTargets.length) out.push('', ...failedTargets.map((r) => `**FAILED ${cell(r.target)}**: ${cell(r.failed!.split('\n')[0]!)}`));
  const warned = report.results.filter((r) => r.warnings?.length);
  if (warned.length) out.push('', ...warned.flatMap((r) => (r.warnings ?? []).map((w) => `Warning ${cell(r.target)}: ${cell(w)}`)));
  if (report.mode !== 'nonblocking' && report.results.some((r) => r.hopMs !== undefined)) {
    out.push('', 'EPP hop = the data plane\'s p50 − direct p50 (straight to the echo backend, same run); n/a when either has no valid latencies or the difference is negative (noise larger than the hop).');
    for (const r of report.results) if (r.hopNote && r.dataPlane) out.push(`- hop ${cell(r.target)}: n/a — ${cell(r.hopNote)}`);
  }
  const cpu = cpuSection(report);
  if (cpu.length) {
    out.push('', 'DP CPU µs/req = CPU time of all the data plane\'s processes over the window / completed requests (from /proc): the figure to compare planes on a shared machine. Per process:');
    for (const t of cpu) {
      out.push('', `${t.title}`, '', `| ${t.rows[0]!.map(cell).join(' | ')} |`, `|${t.rows[0]!.map((_, i) => (i < 2 ? '---' : '---:')).join('|')}|`, ...t.rows.slice(1).map((r) => `| ${r.map(cell).join(' | ')} |`));
    }
  }
  if (report.mode === 'nonblocking') {
    out.push(
      '',
      'Bound = connections / EPP delay (what a data plane that never blocks could complete); × blocking = achieved 2xx req/s / (1000 / delay), what ONE worker that blocks on each EPP call could complete. Both count 2xx answers only.',
    );
  }
  if (report.skipped.length > 0) {
    out.push('', 'Skipped:', ...report.skipped.map((s) => `- ${s.target}: ${s.reason}`));
  }
  if (report.notes.length > 0) out.push('', ...report.notes.map((n) => `Note: ${n}`));
  return `${out.join('\n')}\n`;
}
