// `eppkit bench mock-epp` with the compiled ext_proc client (eppkit-ext-proc-load): at a fixed
// 5,000 streams/s it uses about a third of a core (60-75 µs per stream, streams sent one by one
// at their intended times), so the mock gets most of what the machine has, and the report shows
// the client's own CPU to prove it. With `baseline` (the default), a
// do-nothing ext_proc server on the mock's own transport (mock-epp/load/baselines/
// minimal-h2-server.ts: an empty answer per message) runs first under the same load, so the
// mock's CPU per stream is compared with the floor of its transport in one run; before it, the
// compiled bench EPP (when built) gives the latency floor of the machine and client.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EppkitError } from '../../core/errors.ts';
import { cpuMs, rssMiB } from '../../mock-epp/load/ext-proc-load.ts';
import { BENCH_TOOLS, benchToolPath, builtBenchTool } from '../build/bench-tools-build.ts';
import { eppkitCommand } from '../launch/launch.ts';
import { startHelper } from './bench-helpers.ts';
import type { BenchOptions } from './bench-options.ts';
import type { TargetResult } from './bench-report.ts';
import { loadResultOf } from './load-client.ts';
import type { WorkerResult } from './load-worker.ts';
import { runJsonTool, workerResultOf, type NativeTally } from './native-load-client.ts';

const BASELINE_SERVER = fileURLToPath(new URL('../../mock-epp/load/baselines/minimal-h2-server.ts', import.meta.url));
/**
 * V8 flags of both servers (the same for both, so the ratio compares code, not runtimes).
 * Allocation-site pretenuring: the journal's entries live for 10,000 streams (2 s at 5,000/s),
 * so V8 soon pretenures the allocation sites that build them (allocates straight in the old
 * generation), and the young objects such old ones point to, dead or not, survive every
 * scavenge until the next full GC (our reading of the numbers). Measured under this bench (--trace-gc-nvp): 9.6 MB survived each scavenge (every ~0.5 s),
 * pauses 12-22 ms and p99 15-18 ms; without pretenuring 3.7-4.3 MB (the journal itself), pauses
 * ~5 ms, p99 7 ms. The do-nothing server allocates nothing long-lived and is unchanged by it.
 * A larger young generation (--max-semi-space-size=128) made pauses longer (12-15 ms), not rarer
 * enough, so it is not used.
 */
export const BENCH_SERVER_NODE_FLAGS: readonly string[] = ['--no-allocation-site-pretenuring'];
const BODY_MODES = { none: 'none', buffered: 'BUFFERED', streamed: 'FULL_DUPLEX_STREAMED' } as const;

/** The compiled client's path, or undefined when `node` was asked for or it is not built. */
export function nativeExtProcClient(want: BenchOptions['extProcClient']): string | undefined {
  const bin = builtBenchTool(BENCH_TOOLS.extProcLoad);
  if (want === 'native' && !bin) throw new EppkitError('EPPKIT_USAGE', { reason: `--ext-proc-client native: ${benchToolPath(BENCH_TOOLS.extProcLoad)} is not built; run \`eppkit build bench\`` });
  return want === 'node' ? undefined : bin;
}

/** One run of the compiled client against `target`: its tally, as a Node worker's. */
async function runClient(bin: string, target: string, o: BenchOptions): Promise<{ tally: WorkerResult; cpuUs: number }> {
  const args = ['--target', target, '--concurrency', String(o.streams), '--connections', String(o.connections), '--duration-ms', String(o.duration), '--warmup-ms', String(o.warmup), '--body-bytes', String(o.bodyBytes), '--body-mode', BODY_MODES[o.bodyMode], '--timeout-ms', String(o.timeout)];
  if (o.rate !== undefined) args.push('--rate', String(o.rate));
  const t = await runJsonTool<NativeTally>(bin, args, 'the compiled ext_proc load client');
  return { tally: workerResultOf(t), cpuUs: t.cpuUs };
}

export interface NativeMockEppRun {
  results: TargetResult[];
  notes: string[];
}

export const FLOOR_LABEL = 'compiled ext_proc server (floor)' as const;
const BENCH_ENDPOINTS = '127.0.0.2:8000,127.0.0.3:8000,127.0.0.4:8000,127.0.0.5:8000';

export interface BenchServer {
  label: typeof FLOOR_LABEL | 'do-nothing h2 server' | 'mock-epp';
  command: string;
  args: string[];
}

/**
 * The servers of one run, each started fresh: with the baseline, first the compiled bench EPP
 * (Rust, no garbage collector: the latency floor of this machine and client, so a p99 target
 * can be judged against what any server gets here) when it is built, then the do-nothing Node
 * server; then the mock.
 */
export function benchServers(o: Pick<BenchOptions, 'baseline'>, benchEpp: string | null = builtBenchTool(BENCH_TOOLS.benchEpp) ?? null): BenchServer[] {
  const node = eppkitCommand();
  return [
    ...(o.baseline && benchEpp ? [{ label: FLOOR_LABEL, command: benchEpp, args: ['--endpoints', BENCH_ENDPOINTS, '--listen', '127.0.0.1:0'] }] : []),
    ...(o.baseline ? [{ label: 'do-nothing h2 server' as const, command: process.execPath, args: [...BENCH_SERVER_NODE_FLAGS, BASELINE_SERVER] }] : []),
    // process.execPath is a Node that bin/eppkit.js runs in place (it re-spawns only an older
    // one), so the flags reach the mock's own process.
    { label: 'mock-epp', command: node.command, args: [...BENCH_SERVER_NODE_FLAGS, ...node.args, 'mock-epp', '--host', '127.0.0.1', '--port', '0', '--admin-port', '0', '--endpoints', BENCH_ENDPOINTS] },
  ];
}

/** One measurement: a server, and its round when the do-nothing server and the mock alternate. */
export interface BenchStep {
  server: BenchServer;
  round: number;
  /** Target name in the report: the server's label, with its round when there are several. */
  target: string;
}

/**
 * The order of the measurements: the floor once, then `rounds` times the do-nothing server and
 * the mock, alternated, so a minute of the machine's drift weighs on both alike.
 */
export function benchSteps(servers: readonly BenchServer[], rounds: number): BenchStep[] {
  const floor = servers.filter((s) => s.label === FLOOR_LABEL);
  const paired = servers.filter((s) => s.label !== FLOOR_LABEL);
  const steps: BenchStep[] = floor.map((server) => ({ server, round: 1, target: server.label }));
  for (let round = 1; round <= rounds; round++) {
    for (const server of paired) steps.push({ server, round, target: rounds > 1 ? `${server.label} #${round}` : server.label });
  }
  return steps;
}

/** The median of the rounds' ratios (mock / do-nothing CPU per stream), and each round's. */
export function roundRatios(perStream: ReadonlyArray<{ round: number; label: BenchServer['label']; us: number }>): { ratios: number[]; median: number } | undefined {
  const ratios: number[] = [];
  for (const round of [...new Set(perStream.map((p) => p.round))].sort((a, b) => a - b)) {
    const base = perStream.find((p) => p.round === round && p.label === 'do-nothing h2 server')?.us;
    const mock = perStream.find((p) => p.round === round && p.label === 'mock-epp')?.us;
    if (base && mock) ratios.push(Math.round((mock / base) * 100) / 100);
  }
  if (ratios.length === 0) return undefined;
  const sorted = [...ratios].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 === 1 ? sorted[mid]! : Math.round(((sorted[mid - 1]! + sorted[mid]!) / 2) * 100) / 100;
  return { ratios, median };
}

/**
 * Reads a process's CPU time once `ms` have passed (the end of the client's warm-up: the
 * client starts its schedule as soon as it is spawned, after this is armed). `value()` is
 * undefined when it has not fired (the client ended first) or the process is gone.
 */
export function cpuAfter(pid: number, ms: number, read: (pid: number) => number | undefined = cpuMs): { value: () => number | undefined; cancel: () => void } {
  let v: number | undefined;
  const t = setTimeout(() => (v = read(pid)), ms);
  return { value: () => v, cancel: () => clearTimeout(t) };
}

/**
 * A server's CPU per stream in the measured part of the run: CPU from the end of the warm-up to
 * the end over the streams the client measured (those after the warm-up). The warm-up holds
 * one-time costs (JIT compilation of the server's code, heap growth: 114-151 µs per stream in
 * the first 2 s against 72-94 after, 2026-11-30), larger for the server with more code, so the
 * whole-run figure overstates the steady cost per stream. Both are returned; the whole run's is
 * used when the warm-up reading is missing.
 */
export function serverCpuPerStream(x: { cpuStart: number; cpuAtWarmupEnd: number | undefined; cpuEnd: number; streams: number; measuredStreams: number }): { us: number; measuredMs: number; wholeRunUs: number } {
  const round1 = (v: number) => Math.round(v * 10) / 10;
  const wholeMs = x.cpuEnd - x.cpuStart;
  const wholeRunUs = x.streams > 0 ? round1((wholeMs * 1000) / x.streams) : 0;
  if (x.cpuAtWarmupEnd === undefined || x.measuredStreams <= 0) return { us: wholeRunUs, measuredMs: wholeMs, wholeRunUs };
  const measuredMs = x.cpuEnd - x.cpuAtWarmupEnd;
  return { us: round1((measuredMs * 1000) / x.measuredStreams), measuredMs, wholeRunUs };
}

/** Runs the baseline (optional) and the mock, each a fresh process, under the compiled client. */
export async function runNativeMockEppLoad(bin: string, o: BenchOptions, progress: (line: string) => void): Promise<NativeMockEppRun> {
  const dir = mkdtempSync(join(tmpdir(), 'eppkit-bench-mock-epp-'));
  const servers = benchServers(o);
  const results: TargetResult[] = [];
  const notes: string[] = [`both servers run under Node with ${BENCH_SERVER_NODE_FLAGS.join(' ')} (the journal defeats V8's pretenuring: harness/bench/mock-epp-native-load.ts).`];
  const perStream: Array<{ round: number; label: BenchServer['label']; us: number }> = [];
  const wholeRun: Array<{ round: number; label: BenchServer['label']; us: number }> = [];
  const VERSIONS: Record<BenchServer['label'], string> = {
    [FLOOR_LABEL]: 'eppkit-bench-epp (Rust, tonic, one thread)',
    'do-nothing h2 server': `mock-epp/load/baselines/minimal-h2-server.ts on Node ${process.version}`,
    'mock-epp': `eppkit mock EPP on Node ${process.version}`,
  };
  const p99: Record<string, number> = {};
  for (const { server: s, round, target } of benchSteps(servers, o.rounds)) {
    progress(`${target}: starting, then ${o.duration / 1000} s under the compiled ext_proc client`);
    const h = await startHelper(s.label, s.command, s.args, /grpc listening on (\S+)/, join(dir, `${target.replace(/\W+/g, '-')}.log`));
    try {
      const pid = h.proc.pid!;
      const cpu0 = cpuMs(pid) ?? 0;
      const rss0 = rssMiB(pid) ?? 0;
      const atWarmupEnd = cpuAfter(pid, o.warmup);
      const { tally, cpuUs: clientCpuUs } = await runClient(bin, h.address, o).finally(atWarmupEnd.cancel);
      const load = loadResultOf([tally]);
      const cpuEnd = cpuMs(pid) ?? cpu0;
      const rss1 = rssMiB(pid) ?? 0;
      const cpu = serverCpuPerStream({ cpuStart: cpu0, cpuAtWarmupEnd: atWarmupEnd.value(), cpuEnd, streams: tally.iterations, measuredStreams: load.requests });
      const us = cpu.us;
      const cpuTotal = cpu.measuredMs;
      const clientUsPerStream = load.requests > 0 ? Math.round((clientCpuUs / load.requests) * 10) / 10 : 0;
      perStream.push({ round, label: s.label, us });
      wholeRun.push({ round, label: s.label, us: cpu.wholeRunUs });
      p99[s.label] = load.latencyMs.p99;
      results.push({
        target,
        dataPlane: null,
        eppDelayMs: 0,
        version: VERSIONS[s.label],
        load,
        mockEpp: { cpu: { totalMs: cpuTotal, usPerStream: us, impliedStreamsPerCoreSecond: us > 0 ? Math.round(1e6 / us) : 0 }, rssMiB: { start: rss0, end: rss1, max: Math.max(rss0, rss1) } },
      });
      notes.push(`${target}: ${us} µs of server CPU per stream over the ${load.requests.toLocaleString('en-US')} measured streams (after the warm-up; ${cpu.wholeRunUs} µs over all ${tally.iterations.toLocaleString('en-US')}, warm-up included); the compiled client used ${clientUsPerStream} µs per stream (${Math.round(tally.cpu * 100)} % of a core).`);
    } finally {
      await h.proc.stop();
    }
  }
  const r = roundRatios(perStream);
  if (r && o.rounds > 1) {
    const w = roundRatios(wholeRun);
    notes.push(
      `mock EPP / do-nothing server CPU per stream: ${r.median}× after the warm-up, the median of ${r.ratios.length} alternated rounds (${r.ratios.map((x) => `${x}×`).join(', ')}), same client, same run${w ? `; over the whole runs, warm-up included: ${w.median}× (${w.ratios.map((x) => `${x}×`).join(', ')})` : ''}.`,
    );
  } else if (r) {
    const us = (label: BenchServer['label']): number | undefined => perStream.find((p) => p.label === label)?.us;
    notes.push(`mock EPP / do-nothing server CPU per stream: ${r.median}× after the warm-up (${us('mock-epp')} / ${us('do-nothing h2 server')} µs), same client, same run.`);
  }
  const floor = p99[FLOOR_LABEL];
  if (floor !== undefined) notes.push(`latency floor: the compiled ext_proc server's p99 was ${floor} ms under the same client and schedule (no GC; what any server gets from this machine and its load now); the Node servers' p99 above it is theirs.`);
  return { results, notes };
}
