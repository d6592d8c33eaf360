// Non-blocking proof for ngx_http_rust_epp_module: ONE nginx worker, an EPP that takes
// `--delay` ms per pick, `--connections` concurrent keep-alive clients (wrk). A worker that
// blocked on the EPP would serve 1000/delay req/s; a non-blocking one approaches the bound
// connections / delay (500 / 50 ms = 10,000 req/s) until something else runs out of CPU.
// CPU seconds of each process are sampled from /proc to show which one that is.
//
//   node proxies/nginx-epp/bench/nonblocking-bench.ts [--epp rust|mock] [--connections 500]
//        [--delay 50] [--duration 10] [--form ngf|direct]
//
// `--epp rust` uses the compiled bench EPP (bench-tools' eppkit-bench-epp, built by `eppkit
// build bench`; `eppkit bench --epp native` runs the same one); `--epp mock` the eppkit MockEpp
// (Node, one process). The backend is a plain nginx answering 200 (no Node in the data path).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { routeWithDefaults } from '../../../core/route-model.ts';
import { BENCH_TOOLS, benchToolPath } from '../../../harness/build/bench-tools-build.ts';
import { NginxDriver } from '../../../harness/data-planes/nginx-driver.ts';
import { freePort } from '../../../core/net.ts';

const { values: a } = parseArgs({
  options: {
    epp: { type: 'string', default: 'rust' },
    connections: { type: 'string', default: '500' },
    delay: { type: 'string', default: '50' },
    duration: { type: 'string', default: '10' },
    form: { type: 'string', default: 'ngf' },
    threads: { type: 'string', default: '2' },
  },
});
const connections = Number(a.connections);
const delay = Number(a.delay);
const duration = Number(a.duration);

function waitLine(child: ChildProcess, re: RegExp, ms = 20_000): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const t = setTimeout(() => reject(new Error(`no ${re} within ${ms} ms: ${buf}`)), ms);
    child.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = re.exec(buf);
      if (m) {
        clearTimeout(t);
        resolve(m);
      }
    });
  });
}

/** utime+stime of a process and its threads, in seconds. */
function cpuSeconds(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return NaN;
  }
}

function childPids(pid: number): number[] {
  const r = spawnSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' });
  return r.stdout.split('\n').filter(Boolean).map(Number);
}

const work = mkdtempSync(join(tmpdir(), 'eppkit-nginx-bench-'));
const children: ChildProcess[] = [];
try {
  // Backend: plain nginx, 1 worker, 200 "ok".
  const bport = await freePort();
  const bdir = join(work, 'backend');
  mkdirSync(bdir);
  writeFileSync(
    join(bdir, 'nginx.conf'),
    `worker_processes 1; pid ${bdir}/nginx.pid; error_log ${bdir}/error.log warn;
events { worker_connections 8192; }
http { access_log off; server { listen 127.0.0.1:${bport} backlog=4096; keepalive_requests 100000; location / { return 200 "ok\\n"; } } }\n`,
  );
  const backend = spawn('/usr/sbin/nginx', ['-p', `${bdir}/`, '-c', join(bdir, 'nginx.conf'), '-e', join(bdir, 'error.log'), '-g', 'daemon off;'], { stdio: 'ignore' });
  children.push(backend);
  const backendAddr = `127.0.0.1:${bport}`;

  let epp: ChildProcess;
  let eppAddress: string;
  if (a.epp === 'mock') {
    epp = spawn(process.execPath, ['cli/eppkit.ts', 'mock-epp', '--port', '0', '--admin-port', '0', '--endpoints', backendAddr], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, LOG_LEVEL: 'warn' } });
    children.push(epp);
    eppAddress = (await waitLine(epp, /grpc listening on (\S+)/))[1]!;
  } else {
    epp = spawn(benchToolPath(BENCH_TOOLS.benchEpp), ['--listen', '127.0.0.1:0', '--endpoints', backendAddr], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(epp);
    eppAddress = (await waitLine(epp, /grpc listening on (\S+)/))[1]!;
  }
  await sleep(300);

  const plane = await new NginxDriver({ form: a.form === 'direct' ? 'direct' : 'ngf', bufferedAccessLog: true }).start(routeWithDefaults({ eppAddress, timeoutMs: 2000 }), {
    workDir: join(work, 'nginx'),
    runtime: 'local',
    host: '127.0.0.1',
  });
  const nginxWorkers = childPids(plane.pid!);
  const procs: Record<string, number[]> = {
    'nginx worker (+ its tokio thread)': nginxWorkers,
    [`EPP (${a.epp})`]: [epp.pid!],
    'backend nginx': childPids(backend.pid!),
  };
  // Baseline: the same proxying without the module (no EPP at all), same connections: what this
  // machine can do right now, whatever the EPP; run first, 5 s.
  const pport = await freePort();
  const pdir = join(work, 'proxy-only');
  mkdirSync(pdir);
  writeFileSync(
    join(pdir, 'nginx.conf'),
    `worker_processes 1; pid ${pdir}/nginx.pid; error_log ${pdir}/error.log warn;
events { worker_connections 8192; }
http { access_log off; server { listen 127.0.0.1:${pport} backlog=4096; location / { proxy_http_version 1.1; proxy_set_header Connection ""; proxy_pass http://${backendAddr}; } } }\n`,
  );
  const proxyOnly = spawn('/usr/sbin/nginx', ['-p', `${pdir}/`, '-c', join(pdir, 'nginx.conf'), '-e', join(pdir, 'error.log'), '-g', 'daemon off;'], { stdio: 'ignore' });
  children.push(proxyOnly);
  await sleep(500);
  const proxyWorkers = childPids(proxyOnly.pid!);
  const baseCpu0 = proxyWorkers.reduce((t, p) => t + cpuSeconds(p), 0);
  const base = spawnSync('wrk', [`-t${a.threads}`, `-c${connections}`, '-d5s', '--timeout', '5s', `http://127.0.0.1:${pport}/v1/completions`], { encoding: 'utf8' });
  const baseRps = Number(/Requests\/sec:\s+([\d.]+)/.exec(base.stdout)?.[1] ?? NaN);
  const baseTotal = Number(/(\d+) requests in/.exec(base.stdout)?.[1] ?? NaN);
  const baseCpuPerReq = ((proxyWorkers.reduce((t, p) => t + cpuSeconds(p), 0) - baseCpu0) / baseTotal) * 1e6;
  proxyOnly.kill('SIGTERM');
  // Warm-up: connections to the EPP and backend exist before the measurement.
  spawnSync('wrk', ['-t1', '-c20', '-d2s', '-H', `x-eppkit-delay-ms: ${delay}`, `${plane.url}/v1/completions`], { encoding: 'utf8' });
  const before = Object.fromEntries(Object.entries(procs).map(([k, ps]) => [k, ps.reduce((s, p) => s + cpuSeconds(p), 0)]));
  const wrk = spawnSync('wrk', [`-t${a.threads}`, `-c${connections}`, `-d${duration}s`, '--latency', '--timeout', '5s', '-H', `x-eppkit-delay-ms: ${delay}`, `${plane.url}/v1/completions`], {
    encoding: 'utf8',
  });
  const after = Object.fromEntries(Object.entries(procs).map(([k, ps]) => [k, ps.reduce((s, p) => s + cpuSeconds(p), 0)]));
  const out = wrk.stdout;
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN);
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0);
  const total = Number(/(\d+) requests in/.exec(out)?.[1] ?? NaN);
  const bound = connections / (delay / 1000);
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  const lines = [
    `nginx-epp non-blocking bench: form ${a.form}, EPP ${a.epp}, delay ${delay} ms, ${connections} connections, ${duration} s, 1 nginx worker`,
    `requests ${total}, non-2xx ${non2xx}, ${rps.toFixed(0)} req/s = ${((100 * rps) / bound).toFixed(1)} % of the bound ${bound.toFixed(0)} req/s (a blocking worker: ${(1000 / delay).toFixed(0)} req/s)`,
    `baseline, same nginx proxying WITHOUT the module or any EPP, same ${connections} connections: ${baseRps.toFixed(0)} req/s (the machine's ceiling for this path right now), nginx worker CPU ${baseCpuPerReq.toFixed(0)} µs/request`,
    ...out.split('\n').filter((l) => /^\s+(50|90|99)%/.test(l)).map((l) => `latency ${l.trim()}`),
    `CPU seconds during the run (of ${duration} s wall, 2 cores shared):`,
    ...Object.keys(procs).map((k) => `  ${k}: ${(after[k]! - before[k]!).toFixed(2)} s = ${(((after[k]! - before[k]!) / total) * 1e6).toFixed(0)} µs/request`),
    `load average at the end: ${load}`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  await plane.stop();
} finally {
  for (const c of children) c.kill('SIGTERM');
}
