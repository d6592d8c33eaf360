// `eppkit bench mock-epp` with the compiled ext_proc client (eppkit-ext-proc-load): the client
// costs a few µs per stream, so a fixed 5,000 streams/s leaves the mock most of what the machine
// has, and the report shows the client's own CPU to prove it. With `baseline` (the default), a
// do-nothing ext_proc server on the mock's own transport (mock-epp/load/baselines/
// minimal-h2-server.ts: an empty answer per message) runs first under the same load, so the
// mock's CPU per stream is compared with the floor of its transport in one run.
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EppkitError } from '../../core/errors.ts';
import type { LatencySummary } from '../../core/latency-histogram.ts';
import { cpuMs, rssMiB } from '../../mock-epp/load/ext-proc-load.ts';
import { BENCH_TOOLS, benchToolPath, builtBenchTool } from '../build/bench-tools-build.ts';
import { eppkitCommand } from '../launch/launch.ts';
import { startHelper } from './bench-helpers.ts';
import type { BenchOptions } from './bench-options.ts';
import type { TargetResult } from './bench-report.ts';

const BASELINE_SERVER = fileURLToPath(new URL('../../mock-epp/load/baselines/minimal-h2-server.ts', import.meta.url));
const BODY_MODES = { none: 'none', buffered: 'BUFFERED', streamed: 'FULL_DUPLEX_STREAMED' } as const;

interface NativeLoadOut {
  streams: number;
  streamsTotal: number;
  errors: number;
  dropped: number;
  elapsedMs: number;
  rate: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  clientCpuUs: number;
  clientUsPerStream: number;
}

/** The compiled client's path, or undefined when `node` was asked for or it is not built. */
export function nativeExtProcClient(want: BenchOptions['extProcClient']): string | undefined {
  const bin = builtBenchTool(BENCH_TOOLS.extProcLoad);
  if (want === 'native' && !bin) throw new EppkitError('EPPKIT_USAGE', { reason: `--ext-proc-client native: ${benchToolPath(BENCH_TOOLS.extProcLoad)} is not built; run \`eppkit build bench\`` });
  return want === 'node' ? undefined : bin;
}

function runClient(bin: string, target: string, o: BenchOptions): Promise<NativeLoadOut> {
  const args = ['--target', target, '--concurrency', String(o.streams), '--connections', String(o.connections), '--duration-ms', String(o.duration), '--warmup-ms', String(o.warmup), '--body-bytes', String(o.bodyBytes), '--body-mode', BODY_MODES[o.bodyMode]];
  if (o.rate !== undefined) args.push('--rate', String(o.rate));
  return new Promise((resolve, reject) => {
    const c = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr.on('data', (d: Buffer) => (err += d.toString()));
    c.once('error', (e) => reject(new EppkitError('EPPKIT_START_FAILED', { what: 'the compiled ext_proc load client', reason: e.message })));
    c.once('exit', (code) => {
      try {
        resolve(JSON.parse(out.trim().split('\n').pop() ?? '') as NativeLoadOut);
      } catch {
        reject(new EppkitError('EPPKIT_START_FAILED', { what: 'the compiled ext_proc load client', reason: `exited ${code} without a result: ${err.slice(-500)}` }));
      }
    });
  });
}

export interface NativeMockEppRun {
  results: TargetResult[];
  notes: string[];
}

/** Runs the baseline (optional) and the mock, each a fresh process, under the compiled client. */
export async function runNativeMockEppLoad(bin: string, o: BenchOptions, progress: (line: string) => void): Promise<NativeMockEppRun> {
  const dir = mkdtempSync(join(tmpdir(), 'eppkit-bench-mock-epp-'));
  const node = eppkitCommand();
  const servers = [
    ...(o.baseline ? [{ label: 'do-nothing h2 server', command: process.execPath, args: [BASELINE_SERVER] }] : []),
    { label: 'mock-epp', command: node.command, args: [...node.args, 'mock-epp', '--host', '127.0.0.1', '--port', '0', '--admin-port', '0', '--endpoints', '127.0.0.2:8000,127.0.0.3:8000,127.0.0.4:8000,127.0.0.5:8000'] },
  ];
  const results: TargetResult[] = [];
  const notes: string[] = [];
  const perStream: Record<string, number> = {};
  for (const s of servers) {
    progress(`${s.label}: starting, then ${o.duration / 1000} s under the compiled ext_proc client`);
    const h = await startHelper(s.label, s.command, s.args, /grpc listening on (\S+)/, join(dir, `${s.label.replace(/\W+/g, '-')}.log`));
    try {
      const pid = h.proc.pid!;
      const cpu0 = cpuMs(pid) ?? 0;
      const rss0 = rssMiB(pid) ?? 0;
      const r = await runClient(bin, h.address, o);
      const cpuTotal = (cpuMs(pid) ?? cpu0) - cpu0;
      const rss1 = rssMiB(pid) ?? 0;
      const us = r.streamsTotal > 0 ? Math.round(((cpuTotal * 1000) / r.streamsTotal) * 10) / 10 : 0;
      perStream[s.label] = us;
      const latencyMs: LatencySummary = { p50: r.p50, p90: r.p90, p99: r.p99, p999: r.p999, max: r.max, min: 0, mean: 0, count: r.streams } as LatencySummary;
      results.push({
        target: s.label,
        dataPlane: null,
        eppDelayMs: 0,
        version: s.label === 'mock-epp' ? `eppkit mock EPP on Node ${process.version}` : `mock-epp/load/baselines/minimal-h2-server.ts on Node ${process.version}`,
        load: { latencyMs, requests: r.streams, rps: r.rate, statusCodes: {}, non2xx: 0, errors: r.errors, errorKinds: r.errors ? { stream: r.errors } : {}, dropped: r.dropped, bytes: 0, elapsedMs: r.elapsedMs, workerCpu: [Math.round((r.clientCpuUs / 1000 / Math.max(1, o.duration)) * 100) / 100] },
        mockEpp: { cpu: { totalMs: cpuTotal, usPerStream: us, impliedStreamsPerCoreSecond: us > 0 ? Math.round(1e6 / us) : 0 }, rssMiB: { start: rss0, end: rss1, max: Math.max(rss0, rss1) } },
      });
      notes.push(`${s.label}: ${us} µs of server CPU per stream over ${r.streamsTotal.toLocaleString('en-US')} streams (warm-up included); the compiled client used ${r.clientUsPerStream} µs per stream (${Math.round((r.clientCpuUs / 1000 / Math.max(1, o.duration)) * 100)} % of a core).`);
    } finally {
      await h.proc.stop();
    }
  }
  const base = perStream['do-nothing h2 server'];
  const mock = perStream['mock-epp'];
  if (base && mock) notes.push(`mock EPP / do-nothing server CPU per stream: ${Math.round((mock / base) * 100) / 100}× (${mock} / ${base} µs), same client, same run.`);
  return { results, notes };
}
