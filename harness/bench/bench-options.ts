// The parse step of the bench pipeline: every option of `eppkit bench` (from flags or a YAML/JSON
// bench file, flags winning) validated by ONE zod schema, every problem reported at once, the
// result frozen. Defaults live here and only here (docs/bench.md repeats them).
import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { parseText, readTextFile, validate } from '../../core/config-file.ts';
import { EXECUTORS, type Executor } from '../../core/load-executor.ts';
import { BACKEND_KINDS, EPP_KINDS } from './bench-helpers.ts';
import { parseThreshold, type Threshold } from './thresholds.ts';

export const BENCH_MODES = ['data-planes', 'nonblocking', 'mock-epp'] as const;
export type BenchMode = (typeof BENCH_MODES)[number];
export { EXECUTORS, type Executor };
export const CLIENTS = ['eppkit', 'autocannon'] as const;
export const HTTP_CLIENT_KINDS = ['auto', 'native', 'node'] as const;
export type HttpClientKind = (typeof HTTP_CLIENT_KINDS)[number];
export type LoadClientName = (typeof CLIENTS)[number];

/** `10s`, `500ms`, `1m`, `1m30s`, or a number of seconds. */
export function parseDuration(v: string | number): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) && v >= 0 ? Math.round(v * 1000) : undefined;
  const text = v.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  let total = 0;
  let end = 0;
  for (const m of text.matchAll(re)) {
    const n = Number(m[1]);
    total += m[2] === 'ms' ? n : m[2] === 's' ? n * 1000 : m[2] === 'm' ? n * 60_000 : n * 3_600_000;
    end = (m.index ?? 0) + m[0].length;
  }
  return end === text.length && end > 0 ? Math.round(total) : undefined;
}

const duration = (what: string) =>
  z.union([z.number(), z.string()]).transform((v, ctx) => {
    const ms = parseDuration(v);
    if (ms === undefined) {
      ctx.addIssue({ code: 'custom', message: `${what} "${v}" is not a duration; write e.g. 10s, 500ms, 1m30s` });
      return z.NEVER;
    }
    return ms;
  });

/** Flags give `a,b`; files give lists or `a,b`. Both become a list. */
const listOf = <T extends z.ZodType>(item: T) =>
  z.preprocess((v) => {
    if (typeof v === 'string') return v.split(',').map((s) => s.trim()).filter(Boolean);
    if (typeof v === 'number') return [v];
    if (Array.isArray(v)) return v.flatMap((x) => (typeof x === 'string' ? x.split(',').map((s) => s.trim()).filter(Boolean) : [x]));
    return v;
  }, z.array(item));

const intFrom = z.preprocess((v) => (typeof v === 'string' && /^\s*-?\d+(\.\d+)?\s*$/.test(v) ? Number(v) : v), z.number());

export const BenchOptionsSchema = z
  .strictObject({
    mode: z.enum(BENCH_MODES).default('data-planes'),
    /** Data plane names of the registry, or `all`. */
    dataPlanes: listOf(z.string().regex(/^[a-z0-9-]+$/, 'a data plane name, e.g. node-proxy')).default(['all']),
    /** Also measure straight to the echo backend, the baseline for the EPP hop cost. */
    direct: z.boolean().default(true),
    /** EPP delay per request (the mock's x-eppkit-delay-ms directive); each value is one run. */
    // Default 0, 50 in nonblocking (applied in the transform: the default depends on the mode).
    eppDelayMs: listOf(intFrom.pipe(z.number().int().min(0).max(60_000))).optional(),
    /**
     * Load client: eppkit's own (µs latencies, true arrival rate) or autocannon (whole-ms
     * latencies; a rate is a closed-loop limit). Not in mock-epp, which has its own ext_proc client.
     */
    client: z.enum(CLIENTS).default('eppkit'),
    /** constant-vus = closed loop, N connections as fast as they go; constant-arrival-rate = fixed req/s. */
    executor: z.enum(EXECUTORS).optional(),
    /**
     * Concurrent connections (closed loop) or the most in flight (arrival rate). Default 32; 500 in
     * nonblocking; in mock-epp the HTTP/2 connections to the mock (default 4, spread over the workers).
     */
    connections: intFrom.pipe(z.number().int().min(1).max(20_000)).optional(),
    /** Requests per second across all workers; implies constant-arrival-rate. */
    rate: intFrom.pipe(z.number().positive().max(1_000_000)).optional(),
    duration: duration('duration').default(10_000),
    warmup: duration('warmup').default(2_000),
    /** 0 = GET without a body; N = POST with N bytes. Default 0; 1024 in mock-epp. */
    bodyBytes: intFrom.pipe(z.number().int().min(0).max(64 * 1024 * 1024)).optional(),
    /**
     * Body-based routing cost: every data plane runs twice, without BBR and with it
     * (`<plane>+bbr`), on an OpenAI chat body of bodyBytes (model last, default 1024) sent to
     * all targets; the report adds each plane's CPU µs per request.
     */
    bbr: z.boolean().default(false),
    /** How the data planes send the body to the EPP (route model bodyMode). */
    bodyMode: z.enum(['none', 'buffered', 'streamed']).default('buffered'),
    /** Load worker processes (each its own event loop). Default: 2, at most the cores. */
    workers: intFrom.pipe(z.number().int().min(1).max(64)).optional(),
    /** Per-request timeout; a request slower than this counts as an error. */
    timeout: duration('timeout').default(10_000),
    /**
     * A target whose requests without an HTTP answer (resets, refusals, timeouts, in flight at
     * window close) exceed this share of all sent fails (ok: false, exit 1). 0.01 = 1 %.
     */
    maxErrorRatio: z.coerce.number().min(0).max(1).default(0.01),
    /** A data plane's leak (RSS or fds growth over its bound across a target) fails it instead of warning. */
    strict: z.boolean().default(false),
    path: z.string().startsWith('/').default('/bench'),
    reportDir: z.string().min(1).default('reports/bench'),
    thresholds: listOf(
      z.string().superRefine((t, ctx) => {
        const r = parseThreshold(t);
        if (typeof r === 'string') ctx.addIssue({ code: 'custom', message: r });
      }),
    ).default([]),
    runtime: z.enum(['local', 'docker']).default('local'),
    /**
     * The echo backend and the EPP of each target: compiled (`native`, built by `eppkit build
     * bench`), eppkit's Node ones (`node`, `mock`), or `auto` (compiled when built).
     */
    backend: z.enum(BACKEND_KINDS).default('auto'),
    epp: z.enum(EPP_KINDS).default('auto'),
    /**
     * CPU hog processes (busy loops) started beside the bench for the whole run and stopped by
     * PID at its end: proves behaviour under a loaded machine (load average ≈ hogs + bench).
     */
    cpuHog: intFrom.pipe(z.number().int().min(0).max(64)).default(0),
    /**
     * mock-epp: the ext_proc load client — `native` (compiled, eppkit-ext-proc-load: a few µs per
     * stream, so it is not the limit), `node` (mock-epp/load worker threads), `auto` = native when built.
     */
    extProcClient: z.enum(['auto', 'native', 'node']).default('auto'),
    /**
     * eppkit's own HTTP load client: `native` (compiled, eppkit-http-load: one thread, a few µs
     * per request), `node` (worker processes, --workers), `auto` = native when built.
     */
    httpClient: z.enum(HTTP_CLIENT_KINDS).default('auto'),
    /** mock-epp with the native client: measure a do-nothing ext_proc server first, the same way. */
    baseline: z.boolean().default(true),
    /**
     * mock-epp with the native client and the baseline: the do-nothing server and the mock are
     * measured this many times, alternated, and the ratio is the median of the rounds' ratios
     * (each server's own CPU per stream moves by ±10 % between minutes on a shared machine).
     */
    rounds: intFrom.pipe(z.number().int().min(1).max(20)).default(1),
    /** Generator-headroom check: wrk against direct right after the client measured it. */
    headroom: z.boolean().default(true),
    /** mock-epp mode: concurrent ext_proc streams. */
    streams: intFrom.pipe(z.number().int().min(1).max(10_000)).default(32),
    /**
     * Measure a plane that is already running (a gateway in a cluster, a plane you started):
     * the full URL requests go to. Nothing is started; data planes are not run.
     */
    url: z.url({ protocol: /^https?$/, error: 'url must be an http:// or https:// URL' }).optional(),
    /** With url: the same request straight to a model server, the baseline of the hop cost. */
    directUrl: z.url({ protocol: /^https?$/, error: 'directUrl must be an http:// or https:// URL' }).optional(),
    /**
     * `i/n`: this process is shard i (0-based) of n load generators against one url; it sends
     * its share of the connections and rate and records raw histograms for `eppkit bench merge`.
     */
    shard: z
      .string()
      .regex(/^\d+\/\d+$/, 'shard is i/n, e.g. 0/4 (i from 0 to n-1)')
      .transform((v) => {
        const [i, n] = v.split('/').map(Number) as [number, number];
        return { index: i, count: n };
      })
      .optional(),
  })
  .superRefine((o, ctx) => {
    if (o.executor === 'constant-arrival-rate' && o.rate === undefined) {
      ctx.addIssue({ code: 'custom', path: ['rate'], message: 'constant-arrival-rate needs a rate (requests per second)' });
    }
    if (o.executor === 'burst' && (o.client === 'autocannon' || o.mode === 'mock-epp')) {
      ctx.addIssue({ code: 'custom', path: ['executor'], message: "burst runs with eppkit's own HTTP client (data-planes and nonblocking)" });
    }
    if (o.executor === 'burst' && o.rate !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['executor'], message: 'burst sends --connections requests at once every second; drop rate' });
    }
    if (o.executor === 'constant-vus' && o.rate !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['executor'], message: 'constant-vus runs as fast as it can; drop rate or use constant-arrival-rate' });
    }
    if (o.httpClient === 'native' && o.client !== 'eppkit') {
      ctx.addIssue({ code: 'custom', path: ['httpClient'], message: "httpClient native is eppkit's own client compiled; it does not combine with client autocannon" });
    }
    if (o.mode === 'mock-epp' && o.client !== 'eppkit') {
      ctx.addIssue({ code: 'custom', path: ['client'], message: 'mock-epp speaks ext_proc with its own load client; autocannon only runs in data-planes and nonblocking' });
    }
    if (o.duration < 100) ctx.addIssue({ code: 'custom', path: ['duration'], message: 'duration must be at least 100ms' });
    if (o.shard && (o.shard.count < 1 || o.shard.index >= o.shard.count)) {
      ctx.addIssue({ code: 'custom', path: ['shard'], message: `shard ${o.shard.index}/${o.shard.count}: i must be 0 to n-1` });
    }
    if (o.shard && !o.url) {
      ctx.addIssue({ code: 'custom', path: ['shard'], message: 'shards only make sense against one running target: give url (the gateway every shard loads)' });
    }
    if (o.shard && o.client !== 'eppkit') {
      ctx.addIssue({ code: 'custom', path: ['client'], message: 'shards need the eppkit client (its µs HDR histograms are what bench merge adds up)' });
    }
    if (o.shard && o.connections !== undefined && o.connections < o.shard.count) {
      ctx.addIssue({ code: 'custom', path: ['connections'], message: `${o.shard.count} shards need at least ${o.shard.count} connections (one each)` });
    }
    if (o.rounds > 1 && (o.mode !== 'mock-epp' || !o.baseline)) {
      ctx.addIssue({ code: 'custom', path: ['rounds'], message: 'rounds alternates the do-nothing server and the mock: it needs mock-epp with the baseline' });
    }
    if (o.directUrl && !o.url) ctx.addIssue({ code: 'custom', path: ['directUrl'], message: 'directUrl is the baseline of url: give url too' });
    if (o.url && o.mode !== 'data-planes') ctx.addIssue({ code: 'custom', path: ['url'], message: `url measures a running plane; it does not combine with ${o.mode}` });
    if (o.bbr && o.mode !== 'data-planes') ctx.addIssue({ code: 'custom', path: ['bbr'], message: `bbr measures data planes; it does not combine with ${o.mode}` });
    if (o.bbr && o.url) ctx.addIssue({ code: 'custom', path: ['bbr'], message: 'bbr starts each plane with and without BBR; it does not combine with url' });
    if (o.bbr && o.bodyBytes === 0) ctx.addIssue({ code: 'custom', path: ['bodyBytes'], message: 'bbr needs a body: give bodyBytes > 0 (e.g. 1024 or 65536)' });
    if (o.mode === 'nonblocking' && o.eppDelayMs !== undefined && !o.eppDelayMs.some((d) => d > 0)) {
      ctx.addIssue({ code: 'custom', path: ['eppDelayMs'], message: 'nonblocking needs an EPP delay > 0 (the bound is connections / delay)' });
    }
  })
  .transform((o) => {
    const executor: Executor = o.executor ?? (o.rate !== undefined ? 'constant-arrival-rate' : 'constant-vus');
    const connections = o.connections ?? (o.mode === 'nonblocking' ? 500 : o.mode === 'mock-epp' ? 4 : 32);
    const bodyBytes = o.bodyBytes ?? (o.mode === 'mock-epp' || o.bbr ? 1024 : 0);
    const workers = o.workers ?? Math.max(1, Math.min(2, availableParallelism()));
    const thresholds = o.thresholds.map((t) => parseThreshold(t) as Threshold);
    // nonblocking is a closed loop at a fixed delay: the bound is connections / delay.
    const eppDelayMs = o.mode === 'nonblocking' ? [o.eppDelayMs?.find((d) => d > 0) ?? 50] : [...new Set(o.eppDelayMs ?? [0])];
    return { ...o, executor, connections, bodyBytes, workers, thresholds, eppDelayMs, direct: o.mode === 'nonblocking' ? false : o.direct };
  });

export type BenchOptionsInput = z.input<typeof BenchOptionsSchema>;
export type BenchOptions = z.output<typeof BenchOptionsSchema>;

/**
 * Merges a bench file (optional) and the flags the user gave (undefined = not given), then
 * validates once. Problems name the file's line when the value came from the file.
 */
export function parseBenchOptions(flags: Record<string, unknown>, file?: string): BenchOptions {
  let fromFile: Record<string, unknown> = {};
  let lineOf: ((p: ReadonlyArray<PropertyKey>) => number | undefined) | undefined;
  if (file) {
    const parsed = parseText(readTextFile(file), file);
    if (parsed.data !== null && parsed.data !== undefined) {
      if (typeof parsed.data !== 'object' || Array.isArray(parsed.data)) {
        return validate(BenchOptionsSchema, parsed.data, file);
      }
      fromFile = parsed.data as Record<string, unknown>;
    }
    lineOf = parsed.lineOf;
  }
  const given = Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined));
  const merged = { ...fromFile, ...given };
  const source = file ? `${file} and command-line flags` : 'command-line flags';
  return validate(BenchOptionsSchema, merged, source, {
    lineOf: lineOf ? (p) => (p.length > 0 && !(String(p[0]) in given) ? lineOf(p) : undefined) : undefined,
  });
}
