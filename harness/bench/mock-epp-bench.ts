// `eppkit bench mock-epp`: the mock EPP alone, driven over ext_proc by the load client of
// mock-epp/load/ (owned by the mock EPP: worker threads, raw HTTP/2 gRPC framing). The mock
// runs as a child process (spawnMock), so it does not share an event loop with the client.
// This file maps bench options onto that client and its result onto the bench report.
import { EXT_PROC_METHOD_PATH } from '../../core/proto.ts';
import { runExtProcLoad, type ExtProcLoadOptions } from '../../mock-epp/load/ext-proc-load.ts';
import type { BenchOptions } from './bench-options.ts';
import { REPORT_SCHEMA, type BenchReport, type LoadClientFacts, type TargetResult } from './bench-report.ts';
import type { BenchRunOptions } from './bench-runner.ts';
import { currentLoadAvg, machineFacts } from './machine-facts.ts';
import { nativeExtProcClient, runNativeMockEppLoad } from './mock-epp-native-load.ts';
import { evaluateThresholds } from './thresholds.ts';

const BODY_MODES = { none: 'none', buffered: 'BUFFERED', streamed: 'FULL_DUPLEX_STREAMED' } as const;

/** The load client's options for these bench options (exported for its test). */
export function extProcLoadOptions(o: BenchOptions): ExtProcLoadOptions {
  const workers = Math.max(1, Math.min(o.workers, o.connections));
  const opts: ExtProcLoadOptions = {
    spawnMock: true,
    workers,
    // connections is the total; the client takes HTTP/2 connections per worker.
    connections: Math.max(1, Math.ceil(o.connections / workers)),
    concurrency: o.streams,
    duration: o.duration,
    warmup: o.warmup,
    bodyBytes: o.bodyBytes,
    bodyMode: BODY_MODES[o.bodyMode],
    timeoutMs: o.timeout,
  };
  if (o.rate !== undefined) opts.rate = o.rate;
  return opts;
}

export async function runMockEppBench(o: BenchOptions, run: BenchRunOptions): Promise<BenchReport> {
  const progress = run.progress ?? (() => {});
  const startedAt = new Date().toISOString();
  const machine = machineFacts();
  const native = nativeExtProcClient(o.extProcClient);
  if (native) {
    const n = await runNativeMockEppBench(native, o, run, startedAt, machine, progress);
    return n;
  }
  const opts = extProcLoadOptions(o);
  progress(`mock-epp: measuring for ${o.duration / 1000} s`);
  const r = await runExtProcLoad(opts, { onProgress: (p) => progress(`mock-epp: ${Math.round(p.elapsedMs / 1000)} s${p.rssMiB !== undefined ? `, mock RSS ${p.rssMiB} MiB` : ''}`) });
  machine.loadAvg1End = currentLoadAvg();

  const result: TargetResult = {
    target: 'mock-epp',
    dataPlane: null,
    eppDelayMs: 0,
    version: `eppkit ${machine.eppkit} mock EPP on Node ${process.version}`,
    load: {
      latencyMs: r.serviceTime,
      requests: r.streams,
      rps: r.rate,
      statusCodes: {},
      non2xx: 0,
      errors: r.errors,
      errorKinds: r.errorsByKind,
      dropped: 0,
      bytes: 0,
      elapsedMs: r.elapsedMs,
      workerCpu: [],
    },
  };
  if (r.mockCpu || r.mockRss) {
    result.mockEpp = {};
    if (r.mockCpu) result.mockEpp.cpu = r.mockCpu;
    if (r.mockRss) result.mockEpp.rssMiB = { start: r.mockRss.startMiB, end: r.mockRss.endMiB, max: r.mockRss.maxMiB };
  }
  const l = result.load!;
  const thresholds = evaluateThresholds(o.thresholds, [{ target: 'mock-epp', latencyMs: l.latencyMs, rps: l.rps, requests: l.requests, errors: l.errors, non2xx: 0 }]);

  const notes: string[] = ['latency here is the service time of one ext_proc stream: stream start (or its scheduled start at a fixed rate) to the last answer.'];
  if (r.mockCpu) notes.push(`mock EPP CPU: ${r.mockCpu.usPerStream} µs per stream (≈ ${r.mockCpu.impliedStreamsPerCoreSecond.toLocaleString('en-US')} streams/s per fully used core), the figure least sensitive to neighbours.`);
  if (r.mockRss) notes.push(`mock EPP RSS: ${r.mockRss.startMiB} MiB at start, ${r.mockRss.endMiB} MiB at end, ${r.mockRss.maxMiB} MiB max.`);
  if (machine.cores <= 4) notes.push(`this machine has ${machine.cores} cores shared by the load client and the mock EPP: absolute numbers are low and noisy.`);

  const loadClient: LoadClientFacts = {
    client: 'eppkit',
    kind: 'mock-epp/load ext_proc client (worker threads, raw HTTP/2 gRPC framing, HDR histograms in µs)',
    workers: r.client.workers,
    executor: o.executor,
    connections: r.client.workers * r.client.connections,
    durationMs: o.duration,
    warmupMs: o.warmup,
    method: 'POST',
    path: EXT_PROC_METHOD_PATH,
    bodyBytes: o.bodyBytes,
    bodyMode: String(opts.bodyMode),
    timeoutMs: o.timeout,
    streams: o.streams,
  };
  if (o.rate !== undefined) loadClient.rate = o.rate;

  return {
    schema: REPORT_SCHEMA,
    mode: 'mock-epp',
    command: run.command,
    startedAt,
    finishedAt: new Date().toISOString(),
    machine,
    loadClient,
    results: [result],
    skipped: [],
    thresholds,
    notes,
    ok: thresholds.every((t) => t.ok),
  };
}

/** The same report from the compiled client (and the do-nothing baseline in the same run). */
async function runNativeMockEppBench(bin: string, o: BenchOptions, run: BenchRunOptions, startedAt: string, machine: ReturnType<typeof machineFacts>, progress: (l: string) => void): Promise<BenchReport> {
  const r = await runNativeMockEppLoad(bin, o, progress);
  machine.loadAvg1End = currentLoadAvg();
  const thresholds = evaluateThresholds(
    o.thresholds,
    r.results.map((x) => ({ target: x.target, latencyMs: x.load!.latencyMs, rps: x.load!.rps, requests: x.load!.requests, errors: x.load!.errors, non2xx: 0 })),
  );
  const notes = ['latency here is the service time of one ext_proc stream: its scheduled start (fixed rate) or start to the last answer.', ...r.notes];
  if (machine.cores <= 4) notes.push(`this machine has ${machine.cores} cores shared by the load client and the server: absolute numbers are low and noisy.`);
  const loadClient: LoadClientFacts = {
    client: 'eppkit',
    kind: 'compiled ext_proc client (eppkit-ext-proc-load: h2, one thread, latencies in µs)',
    workers: 1,
    executor: o.executor,
    connections: o.connections,
    durationMs: o.duration,
    warmupMs: o.warmup,
    method: 'POST',
    path: EXT_PROC_METHOD_PATH,
    bodyBytes: o.bodyBytes,
    bodyMode: BODY_MODES[o.bodyMode],
    timeoutMs: o.timeout,
    streams: o.streams,
  };
  if (o.rate !== undefined) loadClient.rate = o.rate;
  return { schema: REPORT_SCHEMA, mode: 'mock-epp', command: run.command, startedAt, finishedAt: new Date().toISOString(), machine, loadClient, results: r.results, skipped: [], thresholds, notes, ok: r.results.every((x) => !x.failed) && thresholds.every((t) => t.ok) };
}
