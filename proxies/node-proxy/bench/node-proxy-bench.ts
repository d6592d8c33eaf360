// node-proxy's own measurement: the cost of the EPP hop (docs/BENCHMARKS.md).
//   node proxies/node-proxy/bench/node-proxy-bench.ts [--duration 10] [--rate 1000]
//        [--connections 50] [--workers 1] [--log-level warn] [--delays 0,5] [--epp-client grpc-js|http2]
//        [--body-mode buffered] [--json out.json] [--cpu-prof-dir dir]
// Starts, each as its own process: an echo backend, the mock EPP (eppkit mock-epp), and
// node-proxy (eppkit node-proxy). Then, in this process, for direct-to-backend and for the
// proxy at each EPP delay (x-eppkit-delay-ms):
//   1. max throughput: autocannon, closed loop, --connections, --duration;
//   2. latency at a fixed rate: an open-loop client sending --rate req/s on keep-alive
//      connections, timing each request with process.hrtime (microsecond resolution;
//      autocannon's histogram has 1 ms resolution, too coarse for a sub-millisecond hop).
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { TestBed } from '../../../harness/launch/test-bed.ts';
import { Wait } from '../../../harness/launch/wait-strategy.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const EPPKIT = `${ROOT}bin/eppkit.js`;

const { values: opt } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    rate: { type: 'string', default: '1000' },
    connections: { type: 'string', default: '50' },
    workers: { type: 'string', default: '1' },
    'log-level': { type: 'string', default: 'warn' },
    delays: { type: 'string', default: '0,5' },
    'body-mode': { type: 'string', default: 'buffered' },
    'epp-client': { type: 'string', default: 'http2' },
    json: { type: 'string' },
    'cpu-prof-dir': { type: 'string' },
  },
});
const DURATION = Number(opt.duration);
const RATE = Number(opt.rate);
const CONNECTIONS = Number(opt.connections);

// The backend, the mock EPP and node-proxy, each its own process; stopped together.
const bed = new TestBed({ workDir: mkdtempSync(join(tmpdir(), 'eppkit-node-proxy-bench-')), runtime: 'local' });

/** CPU seconds (user+system) of a process and its children (cluster workers), from /proc. */
function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    let ticks = Number(f[11]) + Number(f[12]);
    const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
    for (const k of kids ? kids.split(' ') : []) ticks += cpuSeconds(Number(k)) * 100;
    return ticks / 100;
  } catch {
    return NaN;
  }
}
/** Starts `node <execArgv> <args>` on the bed; resolves with the match of its ready line. */
async function start(what: string, args: string[], ready: RegExp, env: Record<string, string> = {}, execArgv: string[] = []): Promise<{ match: RegExpMatchArray; pid: number }> {
  const proc = await bed.withLaunched({ what, image: '', command: [process.execPath, ...execArgv, ...args], env: { NO_COLOR: '1', ...env }, waitFor: Wait.forLogLine(ready) });
  return { match: proc.ready, pid: proc.pid as number };
}

interface Throughput {
  rps: number;
  requests: number;
  /** CPU µs per request of each of our processes during the run (contention-robust). */
  cpuUsPerReq: Record<string, number>;
  p50ms: number;
  p99ms: number;
  non2xx: number;
  errors: number;
}
const pids: Record<string, number> = {};
async function maxThroughput(url: string, headers: Record<string, string>): Promise<Throughput> {
  const before = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuSeconds(pid)]));
  const r = await autocannon({ url, connections: CONNECTIONS, duration: DURATION, headers, pipelining: 1 });
  const cpuUsPerReq: Record<string, number> = {};
  for (const [k, pid] of Object.entries(pids)) cpuUsPerReq[k] = Math.round(((cpuSeconds(pid) - (before[k] as number)) * 1e6) / Math.max(1, r.requests.total));
  return { rps: r.requests.average, requests: r.requests.total, cpuUsPerReq, p50ms: r.latency.p50, p99ms: r.latency.p99, non2xx: r.non2xx, errors: r.errors + r.timeouts };
}

interface FixedRate {
  sent: number;
  ok: number;
  failed: number;
  p50us: number;
  p90us: number;
  p99us: number;
  maxus: number;
}
/** Open loop: one request every 1/rate s regardless of answers (no coordinated omission). */
async function fixedRate(url: string, headers: Record<string, string>): Promise<FixedRate> {
  const u = new URL(url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const lat: number[] = [];
  let sent = 0;
  let failed = 0;
  const total = RATE * DURATION;
  const t0 = process.hrtime.bigint();
  const intervalNs = BigInt(Math.round(1e9 / RATE));
  await new Promise<void>((resolve) => {
    let done = 0;
    const fire = (): void => {
      const start = process.hrtime.bigint();
      sent++;
      const req = http.request({ host: u.hostname, port: u.port, path: '/bench', headers, agent }, (res) => {
        res.resume();
        res.on('end', () => {
          if (res.statusCode === 200) lat.push(Number(process.hrtime.bigint() - start) / 1000);
          else failed++;
          if (++done === total) resolve();
        });
      });
      req.on('error', () => {
        failed++;
        if (++done === total) resolve();
      });
      req.end();
    };
    const tick = (): void => {
      const due = Number((process.hrtime.bigint() - t0) / intervalNs) + 1;
      while (sent < Math.min(due, total)) fire();
      if (sent < total) setTimeout(tick, 1);
    };
    tick();
  });
  agent.destroy();
  lat.sort((a, b) => a - b);
  const q = (p: number): number => Math.round(lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? NaN);
  return { sent, ok: lat.length, failed, p50us: q(0.5), p90us: q(0.9), p99us: q(0.99), maxus: Math.round(lat[lat.length - 1] ?? NaN) };
}

async function main(): Promise<void> {
  const facts = { node: process.version, cpus: cpus().length, cpuModel: cpus()[0]?.model, loadavgAtStart: loadavg().map((x) => x.toFixed(2)) };
  const b = await start('echo backend', [`${ROOT}proxies/node-proxy/bench/echo-server.ts`], /echo listening on (\S+)/);
  const backend = b.match[1];
  const e = await start('mock EPP', [EPPKIT, 'mock-epp', '--port', '0', '--admin-port', '0', '--endpoints', backend as string], /grpc listening on 127\.0\.0\.1:(\d+)/, {
    EPPKIT_LOG_LEVEL: 'warn',
  });
  const eppPort = e.match[1];
  const profArgs = opt['cpu-prof-dir'] ? ['--cpu-prof', `--cpu-prof-dir=${opt['cpu-prof-dir']}`] : [];
  const np = await start(
    'node-proxy',
    [EPPKIT, 'node-proxy', '--listen', '127.0.0.1:0', '--epp', `127.0.0.1:${eppPort}`, '--workers', opt.workers as string, '--body-mode', opt['body-mode'] as string, '--timeout-ms', '1000', '--epp-client', opt['epp-client'] as string],
    /listening on (http:\/\/\S+)/,
    { EPPKIT_LOG_LEVEL: opt['log-level'] as string },
    profArgs,
  );
  const proxyUrl = np.match[1];
  Object.assign(pids, { 'echo backend': b.pid, 'mock EPP': e.pid, 'node-proxy': np.pid });
  const targets: Array<{ name: string; url: string; headers: Record<string, string> }> = [{ name: 'direct to backend', url: `http://${backend}`, headers: {} }];
  for (const d of (opt.delays as string).split(',')) {
    targets.push({ name: `node-proxy, EPP delay ${d} ms`, url: proxyUrl as string, headers: d === '0' ? {} : { 'x-eppkit-delay-ms': d } });
  }
  // Warm up every path (JIT, connection pools, the EPP channel).
  for (const t of targets) await autocannon({ url: `${t.url}/warm`, connections: 10, amount: 2000, headers: t.headers });

  const rows: Array<{ target: string; throughput: Throughput; fixed: FixedRate }> = [];
  for (const t of targets) {
    const throughput = await maxThroughput(`${t.url}/bench`, t.headers);
    const fixed = await fixedRate(t.url, t.headers);
    rows.push({ target: t.name, throughput, fixed });
    process.stderr.write(`${t.name}: ${JSON.stringify({ throughput, fixed })}\n`);
  }
  await bed[Symbol.asyncDispose]();
  const result = { facts: { ...facts, loadavgAtEnd: loadavg().map((x) => x.toFixed(2)) }, options: opt, rows };
  if (opt.json) writeFileSync(opt.json, JSON.stringify(result, null, 2));

  const lines = [
    `| target | max req/s (c=${CONNECTIONS}) | p50 / p99 ms at max | p50 / p90 / p99 µs at ${RATE} req/s | failed | CPU µs/req: proxy / EPP / backend |`,
    '|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.target} | ${Math.round(r.throughput.rps)} | ${r.throughput.p50ms} / ${r.throughput.p99ms} | ${r.fixed.p50us} / ${r.fixed.p90us} / ${r.fixed.p99us} | ${r.throughput.non2xx + r.throughput.errors + r.fixed.failed} | ${r.target.startsWith('direct') ? '-' : r.throughput.cpuUsPerReq['node-proxy']} / ${r.target.startsWith('direct') ? '-' : r.throughput.cpuUsPerReq['mock EPP']} / ${r.throughput.cpuUsPerReq['echo backend']} |`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n\nconditions: ${JSON.stringify(result.facts)}\n`);
}

main().catch(async (e: unknown) => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
  await bed[Symbol.asyncDispose]();
  process.exit(1);
});
