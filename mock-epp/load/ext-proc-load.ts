// The ext_proc load client: one stream per simulated request (request headers + a JSON body
// of --body-bytes, as a data plane sends them), N worker threads over a few HTTP/2
// connections each, raw gRPC framing, an HDR histogram of service time (stream start to the
// last expected answer). Pipeline: parse -> run -> histogram -> report.
//
//   node mock-epp/load/ext-proc-load.ts --help
//   node mock-epp/load/ext-proc-load.ts --spawn-mock --mock-cpus 0 --duration 10s --rate 5000
//
// `runExtProcLoad()` is what `eppkit bench mock-epp` calls.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { LatencySummary } from '../../core/latency-histogram.ts';
import { addCounts, mergeTallies, type Tally } from '../../core/load-tally.ts';
import { z } from 'zod';
import { validate } from '../../core/config-file.ts';
import { EppkitError, isEppkitError } from '../../core/errors.ts';
import { encodeGrpcFrame } from '../../core/grpc-frame.ts';
import { rawHeader } from '../../core/headers.ts';
import { BodySendMode, messageTypes, type ProcessingRequest } from '../../core/proto.ts';
import type { WorkerConfig } from './ext-proc-load-worker.ts';
import { env } from '../../core/env.ts';
import { launch, type Launched } from '../../harness/launch/launch.ts';
import { Wait } from '../../harness/launch/wait-strategy.ts';

const durationSchema = z.union([
  z.number().int().nonnegative(),
  z
    .string()
    .regex(/^\d+(ms|s|m)?$/, 'a duration like 500ms, 10s or 2m')
    .transform((s) => {
      const n = Number.parseInt(s, 10);
      return s.endsWith('ms') ? n : s.endsWith('m') ? n * 60_000 : s.endsWith('s') ? n * 1000 : n;
    }),
]);

export const extProcLoadOptionsSchema = z
  .object({
    /** host:port of the ext_proc server. Required unless spawnMock. */
    target: z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[^:\s]+):\d{1,5}$/, 'host:port').optional(),
    /** PEM CA file for TLS targets (plaintext h2c without it). */
    tlsCa: z.string().optional(),
    /** Worker threads, each with its own connections. */
    workers: z.number().int().min(1).max(64).default(2),
    /** HTTP/2 connections per worker. */
    connections: z.number().int().min(1).max(64).default(2),
    /** In-flight streams (total over all workers). */
    concurrency: z.number().int().min(1).max(100_000).default(64),
    /** Streams per second (total); absent = closed loop, as fast as the in-flight slots allow. */
    rate: z.number().positive().optional(),
    /** Measured duration (after the warm-up), ms or '10s'. */
    duration: durationSchema.default(10_000),
    /** Stop after this many streams in total (the soak form); the duration still bounds it. */
    streams: z.number().int().positive().optional(),
    warmup: durationSchema.default(1000),
    /** Body bytes per request (a JSON object with a `model`, padded). 0 = headers only. */
    bodyBytes: z.number().int().min(0).max(64 * 1024 * 1024).default(1024),
    /** protocol_config request body mode to announce; `none` sends no protocol_config (a shim-like client). */
    bodyMode: z.enum(['none', 'BUFFERED', 'FULL_DUPLEX_STREAMED']).default('none'),
    timeoutMs: z.number().int().positive().default(5000),
    /** Start `eppkit mock-epp` in a child process for the run (pinned with taskset when mockCpus is set). */
    spawnMock: z.boolean().default(false),
    mockCpus: z.string().regex(/^[\d,-]+$/).optional(),
    /** Extra mock-epp CLI args (e.g. ['--config', 'f.yaml']). */
    mockArgs: z.array(z.string()).default([]),
    /** Sample the mock's RSS (Linux /proc) every this many ms; needs mockPid or spawnMock. */
    rssEveryMs: z.number().int().positive().default(1000),
    mockPid: z.number().int().positive().optional(),
  })
  .strict()
  .refine((o) => o.target !== undefined || o.spawnMock, { message: 'give target (host:port) or spawnMock', path: ['target'] });

export type ExtProcLoadOptions = z.input<typeof extProcLoadOptionsSchema>;
type Parsed = z.output<typeof extProcLoadOptionsSchema>;

export interface ExtProcLoadResult {
  target: string;
  options: Omit<Parsed, 'mockArgs'> & { mockArgs: string[] };
  /** Streams closed in total (warm-up included) and measured (after warm-up). */
  streamsTotal: number;
  streams: number;
  errors: number;
  errorsByKind: Record<string, number>;
  /** Measured streams per second. */
  rate: number;
  elapsedMs: number;
  /** Service time in ms (stream start, or intended start at a fixed rate, to the last expected answer). */
  serviceTime: LatencySummary;
  /** Compressed base64 HDR histogram (microseconds), mergeable. */
  histogram: string;
  /**
   * The mock's CPU time over the whole run (warm-up included) per stream, when its pid is known:
   * robust on a shared machine, where wall-clock throughput depends on the neighbours.
   */
  mockCpu?: { totalMs: number; usPerStream: number; impliedStreamsPerCoreSecond: number };
  /** The mock's RSS over the run (MiB), when known. */
  mockRss?: { startMiB: number; endMiB: number; maxMiB: number; samples: Array<{ atMs: number; streams: number; rssMiB: number }> };
  client: { workers: number; connections: number; cpus: number };
}

/** The two request frames every stream sends, encoded once. */
function buildPayload(o: Parsed): { payload: Buffer; expectedAnswers: number } {
  const codec = (messageTypes as unknown as Record<string, { serialize: (m: object) => Buffer }>)['envoy.service.ext_proc.v3.ProcessingRequest'];
  if (!codec) throw new Error('ProcessingRequest type missing from the proto loader');
  const hasBody = o.bodyBytes > 0;
  const headers: ProcessingRequest = {
    request_headers: {
      headers: {
        headers: [
          rawHeader(':method', 'POST'),
          rawHeader(':path', '/v1/completions'),
          rawHeader(':authority', 'bench.test'),
          rawHeader(':scheme', 'http'),
          rawHeader('content-type', 'application/json'),
          rawHeader('content-length', String(o.bodyBytes)),
          rawHeader('user-agent', 'eppkit-ext-proc-load'),
        ],
      },
      end_of_stream: !hasBody,
    },
  };
  if (o.bodyMode !== 'none') {
    const mode = o.bodyMode === 'BUFFERED' ? BodySendMode.BUFFERED : BodySendMode.FULL_DUPLEX_STREAMED;
    // send_body_without_waiting: the client sends both frames at once, so the mock must not wait for it.
    headers.protocol_config = { request_body_mode: mode, response_body_mode: BodySendMode.NONE, send_body_without_waiting_for_header_response: true };
  }
  const frames = [codec.serialize(headers)];
  if (hasBody) {
    const head = '{"model":"bench-model","prompt":"';
    const tail = '"}';
    const pad = Math.max(0, o.bodyBytes - head.length - tail.length);
    const body = Buffer.from(head + 'x'.repeat(pad) + tail).subarray(0, Math.max(o.bodyBytes, 0));
    frames.push(codec.serialize({ request_body: { body, end_of_stream: true } }));
  }
  const out = Buffer.concat(frames.map((f) => encodeGrpcFrame(f)));
  return { payload: out, expectedAnswers: frames.length };
}

/** utime + stime of a process in ms (Linux /proc; clock ticks assumed 100/s, as on every Linux kernel build in use). */
export function cpuMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return undefined;
  }
}

export function rssMiB(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round((Number(m[1]) / 1024) * 10) / 10 : undefined;
  } catch {
    return undefined;
  }
}

async function spawnMock(o: Parsed): Promise<{ proc: Launched<RegExpMatchArray>; address: string }> {
  const cli = fileURLToPath(new URL('../../cli/eppkit.ts', import.meta.url));
  const args = [cli, 'mock-epp', '--host', '127.0.0.1', '--port', '0', '--admin-port', '0', ...(o.mockArgs.length ? o.mockArgs : ['--endpoints', '127.0.0.2:8000,127.0.0.3:8000,127.0.0.4:8000,127.0.0.5:8000'])];
  let cmd = process.execPath;
  let argv = args;
  if (o.mockCpus !== undefined) {
    if (spawnSync('taskset', ['-V']).status !== 0) throw new EppkitError('EPPKIT_TOOL_MISSING', { tool: 'taskset', reason: 'install util-linux or drop mockCpus' });
    cmd = 'taskset';
    argv = ['-c', o.mockCpus, process.execPath, ...args];
  }
  const proc = await launch(
    { runtime: 'local', workDir: process.cwd() },
    {
      what: 'mock EPP',
      image: '',
      command: [cmd, ...argv],
      env: { EPPKIT_LOG_LEVEL: env().EPPKIT_LOG_LEVEL ?? 'warn' },
      waitFor: Wait.forLogLine(/grpc listening on (\S+)/),
      startupTimeoutMs: 30_000,
    },
  );
  return { proc, address: proc.ready[1] ?? '' };
}

export interface ExtProcLoadHooks {
  /** Called about once a second with streams done so far. */
  onProgress?(p: { streams: number; elapsedMs: number; rssMiB?: number }): void;
}

/** Runs the load; throws EppkitError for bad options (every problem listed). */
export async function runExtProcLoad(input: ExtProcLoadOptions, hooks: ExtProcLoadHooks = {}): Promise<ExtProcLoadResult> {
  const o = validate(extProcLoadOptionsSchema, input, 'ext_proc load options') as Parsed;
  let mock: { proc: Launched; address: string } | undefined;
  if (o.spawnMock) mock = await spawnMock(o);
  const target = mock?.address ?? (o.target as string);
  const mockPid = mock?.proc.pid ?? o.mockPid;
  const { payload, expectedAnswers } = buildPayload(o);
  const tlsCa = o.tlsCa ? readFileSync(o.tlsCa, 'utf8') : undefined;
  const workerUrl = new URL('./ext-proc-load-worker.ts', import.meta.url);
  const per = (n: number, i: number) => Math.floor(n / o.workers) + (i < n % o.workers ? 1 : 0);
  const samples: Array<{ atMs: number; streams: number; rssMiB: number }> = [];
  const t0 = performance.now();
  const perWorker = new Array<number>(o.workers).fill(0);
  let progressStreams = 0;
  const sampler = setInterval(() => {
    const rss = mockPid ? rssMiB(mockPid) : undefined;
    const atMs = Math.round(performance.now() - t0);
    if (rss !== undefined) samples.push({ atMs, streams: progressStreams, rssMiB: rss });
    hooks.onProgress?.({ streams: progressStreams, elapsedMs: atMs, ...(rss !== undefined ? { rssMiB: rss } : {}) });
  }, o.rssEveryMs);
  const rssStart = mockPid ? rssMiB(mockPid) : undefined;
  const cpuStart = mockPid ? cpuMs(mockPid) : undefined;
  try {
    const results = await Promise.all(
      Array.from({ length: o.workers }, (_, i) => {
        const cfg: WorkerConfig = {
          target,
          connections: o.connections,
          concurrency: Math.max(1, per(o.concurrency, i)),
          durationMs: o.duration,
          payload,
          expectedAnswers,
          timeoutMs: o.timeoutMs,
          warmupMs: o.warmup,
          ...(tlsCa ? { tlsCa } : {}),
          ...(o.rate !== undefined ? { rate: o.rate / o.workers } : {}),
          ...(o.streams !== undefined ? { maxStreams: Math.max(1, per(o.streams, i)) } : {}),
        };
        return new Promise<Tally>((resolve, reject) => {
          const w = new Worker(workerUrl, { workerData: { eppkitExtProcLoad: true, config: cfg } });
          w.on('message', (m: { ok?: boolean; progress?: number; result?: Tally; error?: string }) => {
            if (m.progress !== undefined) {
              perWorker[i] = m.progress;
              progressStreams = perWorker.reduce((a, b) => a + b, 0);
              return;
            }
            if (m.ok && m.result) {
              perWorker[i] = m.result.iterations;
              progressStreams = perWorker.reduce((a, b) => a + b, 0);
              resolve(m.result);
            } else reject(new EppkitError('EPPKIT_START_FAILED', { what: `load worker ${i}`, reason: m.error ?? 'unknown' }));
            void w.terminate();
          });
          w.on('error', (e: Error) => reject(new EppkitError('EPPKIT_START_FAILED', { what: `load worker ${i}`, reason: e.message })));
        });
      }),
    );
    // One merge for every load client: histograms summed, counters added up.
    const m = mergeTallies(results);
    // Streams the executor dropped because every in-flight slot was busy: errors of the client, by name.
    const errorsByKind = m.dropped > 0 ? addCounts({ ...m.errorKinds }, { 'client-concurrency-limit': m.dropped }) : m.errorKinds;
    const streamsTotal = m.iterations;
    const streams = m.requests + m.errors - m.inFlightAtClose;
    const elapsedMs = m.elapsedMs;
    const rssEnd = mockPid ? rssMiB(mockPid) : undefined;
    const cpuEnd = mockPid ? cpuMs(mockPid) : undefined;
    const result: ExtProcLoadResult = {
      target,
      options: o,
      streamsTotal,
      streams,
      errors: Object.values(errorsByKind).reduce((a, b) => a + b, 0),
      errorsByKind,
      rate: elapsedMs > 0 ? Math.round((streams / elapsedMs) * 1000) : 0,
      elapsedMs: Math.round(elapsedMs),
      serviceTime: m.latencyMs,
      histogram: m.histogram,
      client: { workers: o.workers, connections: o.connections, cpus: availableParallelism() },
    };
    if (cpuStart !== undefined && cpuEnd !== undefined && streamsTotal > 0) {
      const totalMs = cpuEnd - cpuStart;
      const us = (totalMs * 1000) / streamsTotal;
      result.mockCpu = { totalMs, usPerStream: Math.round(us * 10) / 10, impliedStreamsPerCoreSecond: us > 0 ? Math.round(1e6 / us) : 0 };
    }
    if (rssStart !== undefined && rssEnd !== undefined) {
      result.mockRss = { startMiB: rssStart, endMiB: rssEnd, maxMiB: Math.max(rssStart, rssEnd, ...samples.map((s) => s.rssMiB)), samples };
    }
    return result;
  } finally {
    clearInterval(sampler);
    await mock?.proc.stop();
  }
}

export function formatExtProcLoadResult(r: ExtProcLoadResult): string {
  const st = r.serviceTime;
  const lines = [
    `ext_proc load against ${r.target}: ${r.streams} streams measured (${r.streamsTotal} total) in ${(r.elapsedMs / 1000).toFixed(1)} s = ${r.rate} streams/s, ${r.errors} errors`,
    `service time ms: p50 ${st.p50}  p90 ${st.p90}  p99 ${st.p99}  p99.9 ${st.p999}  max ${st.max}  (n=${st.count})`,
    `client: ${r.client.workers} worker threads x ${r.client.connections} HTTP/2 connections, ${r.options.concurrency} in flight${r.options.rate ? `, target rate ${r.options.rate}/s` : ', closed loop'}, body ${r.options.bodyBytes} B, bodyMode ${r.options.bodyMode}`,
  ];
  if (r.errors) lines.push(`errors: ${JSON.stringify(r.errorsByKind)}`);
  if (r.mockCpu) lines.push(`mock CPU: ${r.mockCpu.totalMs} ms for ${r.streamsTotal} streams = ${r.mockCpu.usPerStream} us/stream (=> ${r.mockCpu.impliedStreamsPerCoreSecond} streams/s per fully used core)`);
  if (r.mockRss) lines.push(`mock RSS MiB: start ${r.mockRss.startMiB}, end ${r.mockRss.endMiB}, max ${r.mockRss.maxMiB}`);
  return lines.join('\n');
}

// ---- direct CLI: node mock-epp/load/ext-proc-load.ts --help ----

const HELP = `Usage: node mock-epp/load/ext-proc-load.ts [options]

ext_proc load client: one gRPC stream per simulated request (request headers + a JSON body),
worker threads over a few HTTP/2 connections, HDR histogram of service time.

  --target host:port     ext_proc server (or --spawn-mock)
  --spawn-mock           start \`eppkit mock-epp\` in a child process for the run
  --mock-cpus LIST       pin that child with taskset (e.g. 0)
  --mock-arg ARG         extra mock-epp CLI argument (repeatable)
  --mock-pid PID         a server process started elsewhere: report its CPU per stream and RSS
  --tls-ca FILE          PEM CA for a TLS target
  --workers N            worker threads (default 2)
  --connections N        HTTP/2 connections per worker (default 2)
  --concurrency N        streams in flight, total (default 64)
  --rate N               streams/s, total (default: closed loop, as fast as possible)
  --duration D           measured time, e.g. 10s (default 10s)
  --streams N            stop after N streams in total (soak form)
  --warmup D             warm-up before measuring (default 1s)
  --body-bytes N         request body size (default 1024; 0 = headers only)
  --body-mode M          none (no protocol_config, default) | BUFFERED | FULL_DUPLEX_STREAMED
  --timeout-ms N         per-stream timeout (default 5000)
  --json                 print the result as JSON
  --help
`;

function parseArgv(argv: string[]): { opts: Record<string, unknown>; json: boolean; help: boolean } {
  const opts: Record<string, unknown> = {};
  let json = false;
  let help = false;
  const num = (k: string, v: string | undefined) => {
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n)) throw new EppkitError('EPPKIT_USAGE', { reason: `--${k} needs a number` });
    return n;
  };
  const map: Record<string, string> = {
    target: 'target', 'tls-ca': 'tlsCa', 'mock-cpus': 'mockCpus', duration: 'duration', warmup: 'warmup', 'body-mode': 'bodyMode',
  };
  const nums: Record<string, string> = {
    'mock-pid': 'mockPid', workers: 'workers', connections: 'connections', concurrency: 'concurrency', rate: 'rate', streams: 'streams', 'body-bytes': 'bodyBytes', 'timeout-ms': 'timeoutMs',
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    const [flag, inline] = a.startsWith('--') ? (a.slice(2).split(/=(.*)/s) as [string, string | undefined]) : [a, undefined];
    const val = () => inline ?? argv[++i];
    if (flag === 'help' || flag === 'h') help = true;
    else if (flag === 'json') json = true;
    else if (flag === 'spawn-mock') opts.spawnMock = true;
    else if (flag === 'mock-arg') (opts.mockArgs = (opts.mockArgs as string[] | undefined) ?? []).push(val() as string);
    else if (map[flag]) opts[map[flag] as string] = val();
    else if (nums[flag]) opts[nums[flag] as string] = num(flag, val());
    else throw new EppkitError('EPPKIT_USAGE', { reason: `unknown option ${a} (see --help)` });
  }
  return { opts, json, help };
}

if (import.meta.main) {
  try {
    const { opts, json, help } = parseArgv(process.argv.slice(2));
    if (help) process.stdout.write(HELP);
    else {
      const r = await runExtProcLoad(opts as ExtProcLoadOptions, {
        onProgress: (p) => {
          if (!json) process.stderr.write(`  ${(p.elapsedMs / 1000).toFixed(0)} s, ${p.streams} streams${p.rssMiB !== undefined ? `, mock RSS ${p.rssMiB} MiB` : ''}\n`);
        },
      });
      process.stdout.write(json ? `${JSON.stringify({ ...r, histogram: undefined }, null, 2)}\n` : `${formatExtProcLoadResult(r)}\n`);
    }
  } catch (e) {
    if (isEppkitError(e)) {
      process.stderr.write(`error ${e.format()}\n`);
      process.exitCode = e.exitCode;
    } else throw e;
  }
}
