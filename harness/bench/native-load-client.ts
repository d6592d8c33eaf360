// The run step with the compiled HTTP load client (eppkit-http-load, built by `eppkit build
// bench`; `--http-client native`, the default when built): the Node workers' request on the
// executor every eppkit client shares, in one thread of a few µs per request instead of a Node
// process of 36–55 µs, so the load generator leaves the plane under test the CPU. It returns
// the same tally as a Node worker, merged the same way (loadResultOf).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EppkitError } from '../../core/errors.ts';
import { createHistogram, encodeHistogram } from '../../core/latency-histogram.ts';
import type { Tally } from '../../core/load-tally.ts';
import { BENCH_TOOLS, benchToolPath, builtBenchTool } from '../build/bench-tools-build.ts';
import type { HttpClientKind } from './bench-options.ts';
import { loadResultOf, type LoadResult } from './load-client.ts';
import { loadRequest, type LoadSpec, type WorkerResult } from './load-worker.ts';

/** The compiled client's path, or undefined when `node` was asked for or it is not built. */
export function nativeHttpClient(want: HttpClientKind): string | undefined {
  const bin = builtBenchTool(BENCH_TOOLS.httpLoad);
  if (want === 'native' && !bin) throw new EppkitError('EPPKIT_USAGE', { reason: `--http-client native: ${benchToolPath(BENCH_TOOLS.httpLoad)} is not built; run \`eppkit build bench\`` });
  return want === 'node' ? undefined : bin;
}

/** A compiled client's tally: the histogram as [µs, count] pairs, the rest as a Node worker's. */
export interface NativeTally extends Omit<Tally, 'histogram'> {
  histogram: Array<[number, number]>;
  cpu: number;
  cpuUs: number;
  pid: number;
  rssBytes: number;
}

/** The pairs into eppkit's HDR histogram: the compiled client buckets as HDR does, so nothing moves. */
export function workerResultOf(t: NativeTally): WorkerResult {
  const h = createHistogram();
  for (const [us, n] of t.histogram) h.recordValueWithCount(us, n);
  const { cpuUs: _cpuUs, ...rest } = t;
  const out: WorkerResult = { ...rest, histogram: encodeHistogram(h) };
  h.destroy();
  return out;
}

/**
 * Runs a compiled tool to its end and parses the JSON line it prints last. Its stdin stays open
 * while this process lives: the tool exits when it closes (an interrupted bench).
 */
export function runJsonTool<T>(bin: string, args: string[], what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const c = spawn(bin, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
    c.stdin.on('error', () => {});
    c.once('error', (e) => reject(new EppkitError('EPPKIT_START_FAILED', { what, reason: e.message })));
    c.once('exit', (code, signal) => {
      try {
        resolve(JSON.parse(out.trim().split('\n').pop() ?? '') as T);
      } catch {
        reject(new EppkitError('EPPKIT_START_FAILED', { what, reason: `exited (${signal ?? `code ${code}`}) without a result: ${err.slice(-500)}` }));
      }
    });
  });
}

/** `spec` (whole-client connections and rate) with the compiled client: one process, one thread. */
export async function runNativeLoad(bin: string, spec: LoadSpec): Promise<LoadResult> {
  const { body, headers } = loadRequest(spec);
  const args = ['--url', spec.url, '--method', spec.method, '--executor', spec.executor, '--connections', String(spec.connections), '--warmup-ms', String(spec.warmupMs), '--duration-ms', String(spec.durationMs), '--timeout-ms', String(spec.timeoutMs)];
  if (spec.rate !== undefined) args.push('--rate', String(spec.rate));
  for (const [k, v] of Object.entries(headers)) args.push('--header', `${k}: ${v}`);
  const dir = body ? mkdtempSync(join(tmpdir(), 'eppkit-http-load-')) : undefined;
  try {
    if (dir && body) {
      writeFileSync(join(dir, 'body'), body);
      args.push('--body-file', join(dir, 'body'));
    }
    const t = await runJsonTool<NativeTally>(bin, args, 'the compiled HTTP load client');
    return loadResultOf([workerResultOf(t)]);
  } finally {
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}
