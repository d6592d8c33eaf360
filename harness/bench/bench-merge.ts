// `eppkit bench merge`: joins the reports of N load generators that ran `eppkit bench --url U
// --shard i/N` at the same time (N processes here, N containers, or the pods of an Indexed Job)
// into one report. Counters add up; percentiles come from the sum of the shards' raw HDR
// histograms, never from averaged percentiles, so the merge is lossless.
import { hopCost } from './bench-verdict.ts';
import { readFileSync } from 'node:fs';
import { EppkitError } from '../../core/errors.ts';
import { decodeHistogram, encodeHistogram, mergeHistograms, summarize } from '../../core/latency-histogram.ts';
import { addCounts } from '../../core/load-tally.ts';
import { REPORT_SCHEMA, type BenchReport, type TargetResult } from './bench-report.ts';
import type { LoadResult } from './load-client.ts';

/** One input: where it came from (file name, `-` for stdin) and its text. */
export interface MergeInput {
  source: string;
  text: string;
}

/**
 * The bench reports in a text: one JSON document (a bench.json), or several printed one after
 * another among other lines, as `kubectl logs` of several pods gives them. A report is
 * recognised by its schema; everything else is ignored.
 */
export function extractReports(text: string): unknown[] {
  const whole = tryParse(text.trim());
  if (whole !== undefined) return isReport(whole) ? [whole] : [];
  const out: unknown[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    // bench --json prints JSON.stringify(report, null, 2): `{` and `}` alone at column 0.
    if (lines[i] !== '{') continue;
    const end = lines.indexOf('}', i + 1);
    if (end < 0) break;
    const doc = tryParse(lines.slice(i, end + 1).join('\n'));
    if (doc !== undefined && isReport(doc)) out.push(doc);
    i = end;
  }
  return out;
}

function tryParse(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function isReport(x: unknown): x is BenchReport {
  return typeof x === 'object' && x !== null && (x as { schema?: unknown }).schema === REPORT_SCHEMA;
}

export function readMergeInputs(files: readonly string[]): MergeInput[] {
  return files.map((f) => {
    try {
      return { source: f, text: readFileSync(f === '-' ? 0 : f, 'utf8') };
    } catch (e) {
      throw new EppkitError('EPPKIT_CONFIG_UNREADABLE', { source: f, reason: (e as NodeJS.ErrnoException).code ?? String(e) });
    }
  });
}

function usage(reason: string): EppkitError {
  return new EppkitError('EPPKIT_USAGE', { reason });
}

function mergeLoads(loads: readonly LoadResult[]): LoadResult {
  const hist = mergeHistograms(loads.map((l) => l.histogram ?? ''));
  const sumOf = (f: (l: LoadResult) => number | undefined): number => loads.reduce((a, l) => a + (f(l) ?? 0), 0);
  const addUp = (f: (l: LoadResult) => Record<string, number>): Record<string, number> => loads.reduce((a, l) => addCounts(a, f(l)), {});
  const merged: LoadResult = {
    latencyMs: summarize(hist),
    requests: sumOf((l) => l.requests),
    // The shards ran at the same time: the target saw the sum of their rates.
    rps: Math.round(sumOf((l) => l.rps) * 10) / 10,
    statusCodes: addUp((l) => l.statusCodes),
    non2xx: sumOf((l) => l.non2xx),
    errors: sumOf((l) => l.errors),
    errorKinds: addUp((l) => l.errorKinds),
    bytes: sumOf((l) => l.bytes),
    elapsedMs: Math.max(...loads.map((l) => l.elapsedMs)),
    workerCpu: loads.flatMap((l) => l.workerCpu),
    histogram: encodeHistogram(hist),
  };
  if (loads.some((l) => l.dropped !== undefined)) merged.dropped = sumOf((l) => l.dropped);
  hist.destroy();
  return merged;
}

/**
 * Joins shard reports into one. Every shard of 0..n-1 must be there exactly once, of the same
 * run shape (mode, targets, request); anything else is a usage error naming the inputs.
 */
export function mergeBenchReports(inputs: readonly MergeInput[], command: string): BenchReport {
  const found: Array<{ source: string; report: BenchReport }> = [];
  for (const i of inputs) {
    const docs = extractReports(i.text);
    if (docs.length === 0) throw usage(`${i.source}: no eppkit bench report (schema ${REPORT_SCHEMA}) in it`);
    for (const d of docs) found.push({ source: i.source, report: d as BenchReport });
  }
  if (found.length === 0) throw usage('bench merge: no input (give the shards\' bench.json files, or - for standard input)');
  const unsharded = found.filter((f) => !f.report.shard);
  if (unsharded.length > 0) throw usage(`${unsharded.map((f) => f.source).join(', ')}: not a shard report (run bench with --url and --shard i/n)`);
  const n = found[0]!.report.shard!.count;
  const problems: string[] = [];
  const byIndex = new Map<number, string>();
  for (const f of found) {
    const s = f.report.shard!;
    if (s.count !== n) problems.push(`${f.source}: shard ${s.index}/${s.count}, but ${found[0]!.source} is one of ${n}`);
    const twice = byIndex.get(s.index);
    if (twice !== undefined) problems.push(`shard ${s.index}/${n} twice (${twice} and ${f.source})`);
    byIndex.set(s.index, f.source);
  }
  const missing = Array.from({ length: n }, (_, i) => i).filter((i) => !byIndex.has(i));
  if (missing.length > 0) problems.push(`missing shard${missing.length > 1 ? 's' : ''} ${missing.map((i) => `${i}/${n}`).join(', ')}`);
  const first = found[0]!.report;
  const shape = (r: BenchReport): string =>
    JSON.stringify([r.mode, r.results.map((t) => t.target), r.loadClient.method, r.loadClient.path, r.loadClient.bodyBytes, r.loadClient.executor, r.loadClient.durationMs]);
  for (const f of found.slice(1)) {
    if (shape(f.report) !== shape(first)) problems.push(`${f.source}: a different run (mode, targets, request, executor or duration) than ${found[0]!.source}`);
  }
  if (problems.length > 0) throw usage(`bench merge: ${problems.join('; ')}`);

  const shards = [...found].sort((a, b) => a.report.shard!.index - b.report.shard!.index);
  const results: TargetResult[] = first.results.map((t0, ti) => {
    const per = shards.map((s) => s.report.results[ti]!);
    const out: TargetResult = { target: t0.target, dataPlane: t0.dataPlane, eppDelayMs: t0.eppDelayMs };
    if (t0.version) out.version = t0.version;
    const failed = per.flatMap((r, si) => (r.failed || !r.load ? [`shard ${si}: ${r.failed ?? 'not measured'}`] : []));
    if (failed.length > 0) {
      out.failed = failed.join('; ');
      return out;
    }
    const noHist = per.findIndex((r) => !r.load!.histogram);
    if (noHist >= 0) {
      out.failed = `shard ${noHist}: its report has no raw histogram (made by an older eppkit or by autocannon)`;
      return out;
    }
    out.load = mergeLoads(per.map((r) => r.load!));
    return out;
  });
  const directResult = results.find((r) => r.target === 'direct');
  for (const r of results) {
    if (r.load && r.target !== 'direct') {
      const hop = hopCost(r, directResult);
      r.hopMs = hop.hopMs;
      if (hop.hopNote) r.hopNote = hop.hopNote;
    }
  }
  const notes = [
    `merged ${n} shards: counters added, percentiles from the sum of their µs HDR histograms; req/s is the sum of the shards' rates (they ran at the same time). Machine facts are shard 0's.`,
    ...shards.flatMap((s) => (s.report.ok ? [] : [`shard ${s.report.shard!.index}/${n} (${s.source}) was not ok`])),
  ];
  const starts = shards.map((s) => s.report.startedAt).sort();
  const ends = shards.map((s) => s.report.finishedAt).sort();
  return {
    schema: REPORT_SCHEMA,
    mode: first.mode,
    merged: { shards: n, sources: [...new Set(shards.map((s) => s.source))] },
    command,
    startedAt: starts[0]!,
    finishedAt: ends[ends.length - 1]!,
    machine: first.machine,
    loadClient: { ...first.loadClient, workers: shards.reduce((a, s) => a + s.report.loadClient.workers, 0) },
    results,
    skipped: first.skipped,
    // Thresholds were judged per shard; a merged run is judged by its shards and its targets.
    thresholds: [],
    notes,
    ok: shards.every((s) => s.report.ok) && results.every((r) => !r.failed),
  };
}

/** The total count in an encoded histogram (tests compare merged and shard counts). */
export function histogramCount(encoded: string): number {
  const h = decodeHistogram(encoded);
  const n = h.totalCount;
  h.destroy();
  return n;
}
