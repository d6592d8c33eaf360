// `eppkit bench [data-planes|nonblocking|mock-epp]`: latency and throughput of the EPP hop.
// Flags (or a YAML/JSON bench file with --file, flags winning) → one zod schema
// (bench-options.ts) → run → report (console table, bench.json, bench.md in --report-dir).
// Exit 1 when a threshold fails or a target could not be measured.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { CommandModule } from 'yargs';
import { chalk } from '../../cli/output.ts';
import { EppkitError } from '../../core/errors.ts';
import { loadPlaneDrivers } from '../data-planes/plane-file-driver.ts';
import { DRIVERS } from '../data-planes/registry.ts';
import { parseBenchOptions } from './bench-options.ts';
import { renderConsole, renderJson, renderMarkdown, type BenchReport } from './bench-report.ts';
import { mergeBenchReports, readMergeInputs } from './bench-merge.ts';
import { runBench } from './bench-runner.ts';
import { runMockEppBench } from './mock-epp-bench.ts';

type Args = Record<string, unknown> & { kind?: string; file?: string; json?: boolean; quiet?: boolean };

function shellQuote(a: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`;
}

/** The command line as typed, for the report (re-runnable as is). */
export function commandLine(argv: readonly string[] = process.argv.slice(2)): string {
  return ['eppkit', ...argv.map(shellQuote)].join(' ');
}

/** yargs keys → bench option keys; only flags the user gave (undefined = not given). */
export function flagsToOptions(a: Args): Record<string, unknown> {
  return {
    mode: a.kind,
    dataPlanes: a['data-plane'],
    direct: a.direct,
    eppDelayMs: a['epp-delay-ms'],
    executor: a.executor,
    client: a.client,
    connections: a.connections,
    rate: a.rate,
    duration: a.duration,
    warmup: a.warmup,
    bodyBytes: a['body-bytes'],
    bodyMode: a['body-mode'],
    bbr: a.bbr,
    workers: a.workers,
    timeout: a.timeout,
    maxErrorRatio: a['max-error-ratio'],
    strict: a.strict,
    path: a.path,
    reportDir: a['report-dir'],
    thresholds: a.threshold,
    runtime: a.runtime,
    streams: a.streams,
    url: a.url,
    directUrl: a['direct-url'],
    shard: a.shard,
    backend: a.backend,
    epp: a.epp,
    headroom: a.headroom,
    extProcClient: a['ext-proc-client'],
    httpClient: a['http-client'],
    baseline: a.baseline,
    rounds: a.rounds,
    cpuHog: a['cpu-hog'],
  };
}

export function writeReports(report: BenchReport, reportDir: string): { json: string; md: string } {
  const dir = resolve(reportDir);
  mkdirSync(dir, { recursive: true });
  const base = report.merged ? 'bench-merged' : report.mode === 'data-planes' ? 'bench' : `bench-${report.mode}`;
  const json = join(dir, `${base}.json`);
  const md = json.replace(/\.json$/, '.md');
  writeFileSync(json, renderJson(report));
  writeFileSync(md, renderMarkdown(report));
  return { json, md };
}

type MergeArgs = { files: string[]; json?: boolean; 'report-dir'?: string };

const mergeCommand: CommandModule<object, MergeArgs> = {
  command: 'merge [files..]',
  describe: 'Join the reports of bench --shard i/n runs into one (counters added, percentiles from the merged histograms)',
  builder: (y) =>
    y
      .positional('files', { type: 'string', array: true, describe: 'bench.json files of the shards; none or - reads standard input (several reports in one stream, e.g. kubectl logs, are fine)' })
      .option('json', { type: 'boolean', describe: 'print the merged JSON report on stdout instead of the table' })
      .option('report-dir', { type: 'string', describe: 'where bench-merged.json and bench-merged.md go (default reports/bench)' })
      .example('eppkit bench merge shard-0.json shard-1.json', 'one report from two load generators')
      .example('kubectl logs -n eppkit -l job-name=eppkit-bench --tail=-1 --max-log-requests=64 | eppkit bench merge -', 'the pods of the Indexed Job in deploy/bench') as never,
  handler: (argv) => {
    // yargs drops a lone `-`: no file at all means standard input too.
    const report = mergeBenchReports(readMergeInputs(argv.files?.length ? argv.files : ['-']), commandLine());
    const files = writeReports(report, argv['report-dir'] ?? 'reports/bench');
    process.stdout.write(argv.json ? renderJson(report) : renderConsole(report));
    process.stderr.write(`${chalk.dim('bench')} wrote ${files.json} and ${files.md}\n`);
    if (!report.ok) process.exitCode = 1;
  },
};

const command: CommandModule<object, Args> = {
  command: 'bench [kind]',
  describe: 'Measure latency and throughput through each data plane and the mock EPP (the EPP hop cost)',
  builder: (y) =>
    y
      .command(mergeCommand)
      .positional('kind', {
        choices: ['data-planes', 'nonblocking', 'mock-epp'],
        describe: 'data-planes (default): every data plane plus direct; nonblocking: one data plane at connections / delay; mock-epp: the mock EPP alone over ext_proc',
      })
      .option('file', { type: 'string', describe: 'YAML/JSON bench file (keys as in docs/bench.md); flags override it' })
      .option('data-plane', { type: 'string', describe: 'comma-separated data planes, or all (default all, or none with --plane)' })
      // Not array: true (it would swallow what follows); repeated = an array.
      .option('plane', { type: 'string', describe: 'a plane file started per target (repeatable; docs/your-data-plane.md), measured beside direct and --data-plane' })
      .option('direct', { type: 'boolean', describe: 'also measure straight to the backend, the baseline of the hop cost (default true; --no-direct)' })
      .option('epp-delay-ms', { type: 'string', describe: 'EPP delay per request, comma-separated runs (default 0; nonblocking 50)' })
      .option('executor', { type: 'string', describe: 'constant-vus (closed loop), constant-arrival-rate (default when --rate is given) or burst (--connections requests at once, every second)' })
      .option('client', { type: 'string', describe: 'load client: eppkit (default; µs latencies, true arrival rate) or autocannon (1 ms resolution; --rate is a closed-loop limit)' })
      .option('connections', { type: 'string', describe: 'connections, or most in flight at a fixed rate (default 32; nonblocking 500)' })
      .option('rate', { type: 'string', describe: 'requests per second, all workers together (arrival rate)' })
      .option('duration', { type: 'string', describe: 'measured time per target (default 10s)' })
      .option('warmup', { type: 'string', describe: 'unmeasured time before it (default 2s)' })
      .option('body-bytes', { type: 'string', describe: 'request body size; 0 = GET without body (default 0)' })
      .option('bbr', { type: 'boolean', describe: 'body-based routing cost: each data plane without and with BBR (<plane>+bbr) on a JSON chat body, with its CPU µs per request' })
      .option('body-mode', { type: 'string', describe: 'how data planes send the body to the EPP: none, buffered, streamed (default buffered)' })
      .option('workers', { type: 'string', describe: 'load worker processes (default 2, at most the cores)' })
      .option('timeout', { type: 'string', describe: 'per-request timeout (default 10s)' })
      .option('path', { type: 'string', describe: 'request path (default /bench)' })
      .option('max-error-ratio', { type: 'string', describe: 'a target with more requests without an HTTP answer (reset, timeout, in flight at close) than this share fails (default 0.01)' })
      .option('strict', { type: 'boolean', describe: "a data plane's leak (RSS or fds growth over its bound) fails the target instead of warning" })
      .option('report-dir', { type: 'string', describe: 'where bench.json, bench.md and logs/ go (default reports/bench)' })
      .option('threshold', { type: 'string', array: true, describe: 'k6-style pass/fail, repeatable: p99<5, rps>=5000, errors<0.1%, nginx:hop<1' })
      .option('runtime', { type: 'string', describe: 'local or docker (default local)' })
      .option('backend', { type: 'string', describe: 'echo backend: auto (default: the compiled one when `eppkit build bench` has run), native or node' })
      .option('epp', { type: 'string', describe: 'EPP of each data plane: auto (default: the compiled bench EPP when built), native or mock (the Node mock EPP)' })
      .option('cpu-hog', { type: 'string', describe: 'start N busy-loop processes beside the bench (stopped by PID at its end): behaviour on a loaded machine' })
      .option('http-client', { type: 'string', describe: "eppkit's HTTP load client: native (compiled eppkit-http-load, one thread), node (worker processes) or auto (default: native when built)" })
      .option('ext-proc-client', { type: 'string', describe: 'mock-epp: load client native (compiled, when built), node, or auto (default)' })
      .option('baseline', { type: 'boolean', describe: 'mock-epp, native client: also measure a do-nothing ext_proc server in the same run (default true; --no-baseline)' })
      .option('rounds', { type: 'string', describe: 'mock-epp with the baseline: measure the do-nothing server and the mock N times, alternated; the ratio is the median of the rounds (default 1)' })
      .option('headroom', { type: 'boolean', describe: 'check the load generator against wrk on direct in the same run (default true; --no-headroom)' })
      .option('streams', { type: 'string', describe: 'mock-epp: concurrent ext_proc streams (default 32)' })
      .option('url', { type: 'string', describe: 'measure a plane that is already running (e.g. a gateway): the full URL; nothing is started' })
      .option('direct-url', { type: 'string', describe: 'with --url: the same request straight to a model server, the hop-cost baseline' })
      .option('shard', { type: 'string', describe: 'i/n: be load generator i (0-based) of n against --url; join them with `eppkit bench merge`' })
      .option('json', { type: 'boolean', describe: 'print the JSON report on stdout instead of the table' })
      .option('quiet', { type: 'boolean', describe: 'no progress lines on stderr' }) as never,
  handler: async (argv) => {
    const planeFiles = argv.plane === undefined ? [] : Array.isArray(argv.plane) ? (argv.plane as string[]) : [String(argv.plane)];
    const planes = loadPlaneDrivers(planeFiles);
    for (const p of planes)
      if (p.plane.url) throw new EppkitError('EPPKIT_USAGE', { reason: `${p.file} describes a plane running at ${p.plane.url}: measure it with eppkit bench --url ${p.plane.url} (--plane starts the plane per target)` });
    const flags = flagsToOptions(argv);
    // --plane alone measures the plane files beside direct; --data-plane adds built-in planes.
    if (planes.length > 0) flags.dataPlanes = [...(typeof argv['data-plane'] === 'string' ? argv['data-plane'].split(',') : []), ...planes.map((p) => p.name)].filter(Boolean).join(',');
    const opts = parseBenchOptions(flags, argv.file);
    const progress = argv.quiet ? undefined : (line: string) => process.stderr.write(`${chalk.dim('bench')} ${line}\n`);
    const run = { command: commandLine(), ...(progress ? { progress } : {}), ...(planes.length ? { drivers: [...DRIVERS, ...planes] } : {}) };
    const report = opts.mode === 'mock-epp' ? await runMockEppBench(opts, run) : await runBench(opts, run);
    const files = writeReports(report, opts.reportDir);
    process.stdout.write(argv.json ? renderJson(report) : renderConsole(report));
    progress?.(`wrote ${files.json} and ${files.md}`);
    if (!report.ok) process.exitCode = 1;
  },
};

export default command;
