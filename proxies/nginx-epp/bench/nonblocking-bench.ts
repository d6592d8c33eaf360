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
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { nginxBin } from '../../../core/env.ts';
import { routeWithDefaults } from '../../../core/route-model.ts';
import { benchEppLaunch, planHelpers, startOnBed } from '../../../harness/bench/bench-helpers.ts';
import { IMAGES_BY_ROLE } from '../../../harness/containers/image-roles.ts';
import { NginxDriver } from '../../../harness/data-planes/nginx-driver.ts';
import { UPSTREAM_KEEPALIVE } from '../nginx-epp-config.ts';
import { startNginx } from '../../../harness/data-planes/start-nginx.ts';
import { TestBed } from '../../../harness/launch/test-bed.ts';

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

/** A plain nginx (1 worker) with this server block, on a free port, ready when its pid file is written and it accepts. */
async function plainNginx(bed: TestBed, name: string, server: (port: number) => string): Promise<{ pid: number; port: number }> {
  const workDir = join(bed.workDir, name);
  mkdirSync(workDir);
  const { proc, port } = await startNginx(
    { workDir, runtime: 'local', host: '127.0.0.1' },
    {
      workDir,
      image: IMAGES_BY_ROLE.nginxEpp,
      nginxBin: nginxBin(),
      masterProcess: true,
      renderConfig: (p) => `worker_processes 1; pid ${workDir}/nginx.pid; error_log ${workDir}/error.log warn;
events { worker_connections 8192; }
http { access_log off; ${server(p)} }\n`,
    },
  );
  bed.use(proc);
  return { pid: proc.pid!, port };
}

{
  // Backend, EPP, the plane and the proxy-only baseline: all stopped at the end of this block.
  await using bed = new TestBed({ workDir: mkdtempSync(join(tmpdir(), 'eppkit-nginx-bench-')), runtime: 'local' });
  // Backend: plain nginx, 1 worker, 200 "ok".
  const backend = await plainNginx(bed, 'backend', (p) => `server { listen 127.0.0.1:${p} backlog=4096; keepalive_requests 100000; location / { return 200 "ok\\n"; } }`);
  const backendAddr = `127.0.0.1:${backend.port}`;

  // The compiled bench EPP (as `eppkit bench --epp native`) or the mock, started as the bench starts them.
  const plan = planHelpers({ backend: 'auto', epp: a.epp === 'mock' ? 'mock' : 'native' });
  const epp = await startOnBed(bed, benchEppLaunch(plan, backendAddr, 0, bed.workDir));
  const eppAddress = epp.address;

  const plane = await bed.withDataPlane(new NginxDriver({ form: a.form === 'direct' ? 'direct' : 'ngf', bufferedAccessLog: true }), routeWithDefaults({ eppAddress, timeoutMs: 2000 }));
  const nginxWorkers = childPids(plane.pid!);
  const procs: Record<string, number[]> = {
    'nginx worker (+ its tokio thread)': nginxWorkers,
    [`EPP (${a.epp})`]: [epp.proc.pid!],
    'backend nginx': childPids(backend.pid),
  };
  // Baseline: the same proxying without the module (no EPP at all), same connections: what this
  // machine can do right now, whatever the EPP; run first, 5 s. It keeps backend connections alive
  // as the module's upstream does, so the difference is the EPP hop alone.
  const proxyOnly = await plainNginx(bed, 'proxy-only', (p) => `upstream backend { server ${backendAddr}; keepalive ${UPSTREAM_KEEPALIVE}; } server { listen 127.0.0.1:${p} backlog=4096; location / { proxy_http_version 1.1; proxy_set_header Connection ""; proxy_pass http://backend; } }`);
  const pport = proxyOnly.port;
  const proxyWorkers = childPids(proxyOnly.pid);
  const baseCpu0 = proxyWorkers.reduce((t, p) => t + cpuSeconds(p), 0);
  const base = spawnSync('wrk', [`-t${a.threads}`, `-c${connections}`, '-d5s', '--timeout', '5s', `http://127.0.0.1:${pport}/v1/completions`], { encoding: 'utf8' });
  const baseRps = Number(/Requests\/sec:\s+([\d.]+)/.exec(base.stdout)?.[1] ?? NaN);
  const baseTotal = Number(/(\d+) requests in/.exec(base.stdout)?.[1] ?? NaN);
  const baseCpuPerReq = ((proxyWorkers.reduce((t, p) => t + cpuSeconds(p), 0) - baseCpu0) / baseTotal) * 1e6;
  process.kill(proxyOnly.pid, 'SIGTERM');
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
}
