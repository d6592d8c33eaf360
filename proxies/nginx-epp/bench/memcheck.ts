// Memory safety and leak check of ngx_http_rust_epp_module.
//   --mode valgrind: nginx (single process, so valgrind sees the module's worker code) under
//     valgrind memcheck through the scenarios (routing, bodies from memory and temp files,
//     immediate responses, gRPC errors, timeouts, garbage picks, fail-open) and many client
//     aborts while the EPP call is in flight; then reads valgrind's error and leak summary.
//   --mode rss: nginx (master + 1 worker, no valgrind) through rounds of the same traffic;
//     prints the worker's RSS after each round.
//
//   node proxies/nginx-epp/bench/memcheck.ts --mode valgrind --requests 2000 --aborts 2000
//   node proxies/nginx-epp/bench/memcheck.ts --mode valgrind --form direct --served --requests 1000 --aborts 2000
//   node proxies/nginx-epp/bench/memcheck.ts --mode rss --rounds 10 --requests 5000 --aborts 1000
//   node proxies/nginx-epp/bench/memcheck.ts --mode valgrind --bbr --requests 1000 --aborts 1000
//     (--bbr: body-based routing on, BBR bodies in memory and in temp files, and clients that
//     drop the connection in the middle of the body while BBR reads it; --bbr-require: the
//     same with epp_bbr_require_model on, so bodies without a model are answered 400)
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { BBR_DEFAULTS, routeWithDefaults, type FailureMode } from '../../../core/route-model.ts';
import { chatBody } from '../../../harness/runner/request-body.ts';
import { EchoBackend } from '../../../harness/backends/echo-backend.ts';
import { defaultNginxModulePath } from '../../../harness/build/nginx-module-build.ts';
import { MockEpp } from '../../../mock-epp/mock-epp.ts';
import { nginxBin } from '../../../core/env.ts';
import { TestBed } from '../../../harness/launch/test-bed.ts';
import { Wait } from '../../../harness/launch/wait-strategy.ts';
import { renderNginxEppConfig, type NginxEppForm } from '../nginx-epp-config.ts';
import { freePort } from '../../../core/net.ts';

const { values: a } = parseArgs({
  options: {
    mode: { type: 'string', default: 'valgrind' },
    form: { type: 'string', default: 'ngf' },
    failure: { type: 'string', default: 'close' },
    requests: { type: 'string', default: '2000' },
    aborts: { type: 'string', default: '2000' },
    rounds: { type: 'string', default: '5' },
    concurrency: { type: 'string', default: '20' },
    /** Route with response processing (epp_report_served: the stream stays open until the log phase). */
    served: { type: 'boolean', default: false },
    bbr: { type: 'boolean', default: false },
    'bbr-require': { type: 'boolean', default: false },
  },
});
const valgrind = a.mode === 'valgrind';
const bbr = a.bbr || a['bbr-require'];

const dir = mkdtempSync(join(tmpdir(), `eppkit-nginx-memcheck-${a.mode}-`));
// Backends, the EPP and nginx: stopped together at the end.
await using bed = new TestBed({ workDir: dir, runtime: 'local' });
const backend = await bed.withEchoBackend(new EchoBackend('a'));
const fallback = await bed.withEchoBackend(new EchoBackend('fallback'));
const epp = await new MockEpp({
  endpoints: [backend.address],
  rules: [{ match: { headers: { 'x-case': 'immediate' } }, action: { immediate: { status: 503, headers: { 'x-why': 'busy' }, body: 'busy' } } }],
  journal: { maxEntries: 1000 },
})
  .withHost('127.0.0.1')
  .withPort(0)
  .withAdminPort(null)
  .start();
bed.use(epp);
const port = await freePort();
const route = routeWithDefaults({
  eppAddress: epp.address,
  failureMode: a.failure as FailureMode,
  timeoutMs: valgrind ? 3000 : 500,
  fallbackEndpoints: [fallback.address],
  responseProcessing: a.served,
  ...(bbr ? { bbr: { ...BBR_DEFAULTS, requireModel: a['bbr-require'] } } : {}),
});
writeFileSync(
  join(dir, 'nginx.conf'),
  renderNginxEppConfig(route, {
    workDir: dir,
    listenHost: '127.0.0.1',
    listenPort: port,
    modulePath: defaultNginxModulePath(),
    form: a.form as NginxEppForm,
    runAsRoot: process.getuid?.() === 0,
    bodyBufferSize: '1k',
    bufferedAccessLog: true,
  }),
);
const nginxArgs = ['-p', `${dir}/`, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')];
// Single process under valgrind (so it sees the module's worker code), master + worker for RSS.
const nginx = await bed.withLaunched({
  what: valgrind ? 'nginx under valgrind' : 'nginx',
  image: '',
  command: valgrind
    ? [
        'valgrind',
        '--tool=memcheck',
        '--leak-check=full',
        '--show-leak-kinds=definite,indirect,possible',
        '--errors-for-leak-kinds=definite',
        '--track-origins=no',
        `--suppressions=${fileURLToPath(new URL('./nginx.supp', import.meta.url))}`,
        `--log-file=${join(dir, 'valgrind.log')}`,
        nginxBin(),
        ...nginxArgs,
        '-g',
        'daemon off; master_process off;',
      ]
    : [nginxBin(), ...nginxArgs, '-g', 'daemon off; master_process on;'],
  logFile: join(dir, 'nginx.out'),
  // valgrind makes nginx start slowly.
  waitFor: Wait.forTcp('127.0.0.1', port),
  startupTimeoutMs: 120_000,
});
const url = `http://127.0.0.1:${port}/v1/completions`;

const SCENARIOS: Array<{ headers?: Record<string, string>; body?: Buffer }> = [
  {},
  { body: Buffer.from('{"model":"m"}') },
  { body: Buffer.alloc(100 * 1024, 7) }, // temp file (client_body_buffer_size 1k)
  { body: Buffer.alloc(2 * 1024 * 1024, 9) },
  { headers: { 'x-case': 'immediate' } },
  { headers: { 'x-eppkit-grpc-error': 'INTERNAL' } },
  { headers: { 'x-eppkit-endpoint': 'garbage' } },
  { headers: { 'x-eppkit-reset': 'true' } },
  { headers: { 'x-eppkit-hang': 'true' } }, // times out
  ...(bbr
    ? [
        { body: Buffer.from('{"messages":[{"role":"user","content":"hi"}],"model":"llama-3-8b"}') },
        { body: chatBody(100 * 1024, 'llama-3-8b', true) }, // model found in the temp file
        { body: chatBody(100 * 1024, undefined, true) }, // no model (400 with --bbr-require)
        { body: Buffer.from('{"model":42,"prompt":"x"}') },
        { body: Buffer.from('{"model":"x\\u0000y"}') }, // not a header value
        { body: Buffer.from('{"model":"trunc') }, // not JSON
        { headers: { 'x-gateway-model-name': 'spoofed' }, body: Buffer.from('{"model":"m"}') },
        { headers: { 'x-case': 'immediate' }, body: Buffer.from('{"model":"m"}') },
      ]
    : []),
];

const statuses = new Map<number, number>();
async function traffic(n: number): Promise<void> {
  let next = 0;
  const conc = Number(a.concurrency);
  await Promise.all(
    Array.from({ length: conc }, async () => {
      while (next < n) {
        const i = next++;
        const s = SCENARIOS[i % SCENARIOS.length]!;
        try {
          const r = await fetch(url, { method: s.body ? 'POST' : 'GET', headers: s.headers, body: s.body, signal: AbortSignal.timeout(60_000) });
          await r.arrayBuffer();
          statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
        } catch {
          statuses.set(0, (statuses.get(0) ?? 0) + 1);
        }
      }
    }),
  );
}

/** Clients that send a whole request and drop the connection while the EPP call is in flight. */
async function aborts(n: number): Promise<void> {
  const batch = 50;
  for (let done = 0; done < n; done += batch) {
    const before = epp.metrics ? epp.journal.length : 0;
    const k = Math.min(batch, n - done);
    const socks = Array.from({ length: k }, (_, i) => {
      const s = connect({ host: '127.0.0.1', port });
      s.on('error', () => undefined);
      const body = i % 2 ? 'x'.repeat(3000) : '{"model":"m"}'; // half from the temp file
      s.write(`POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\nx-eppkit-delay-ms: 2000\r\n\r\n${body}`);
      return s;
    });
    const deadline = Date.now() + (valgrind ? 20_000 : 3000);
    while (epp.journal.length < Math.min(before + k, 1000) && Date.now() < deadline) await sleep(10);
    for (const s of socks) s.destroy();
  }
}

/** Clients that send the headers and half the body, then drop the connection while nginx reads it (BBR). */
async function midBodyAborts(n: number): Promise<void> {
  const batch = 50;
  for (let done = 0; done < n; done += batch) {
    const k = Math.min(batch, n - done);
    const socks = Array.from({ length: k }, (_, i) => {
      const s = connect({ host: '127.0.0.1', port });
      s.on('error', () => undefined);
      const body = chatBody(i % 2 ? 64 * 1024 : 512, 'm', true); // half of them past the 1k memory buffer
      s.write(`POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n`);
      s.write(body.subarray(0, body.length >> 1));
      return s;
    });
    await sleep(valgrind ? 500 : 50);
    for (const s of socks) s.destroy();
  }
}

function workerRss(): number {
  const pids = readFileSync(join(dir, 'nginx.pid'), 'utf8').trim();
  const kids = readFileSync(`/proc/${pids}/task/${pids}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
  const w = kids[0] ?? pids;
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${w}/status`, 'utf8'));
  return Number(m?.[1] ?? NaN);
}

const t0 = Date.now();
if (valgrind) {
  await traffic(Number(a.requests));
  await aborts(Number(a.aborts));
  if (bbr) await midBodyAborts(Number(a.aborts));
  await traffic(SCENARIOS.length * 2);
} else {
  console.log(`round 0 worker RSS ${workerRss()} kB`);
  for (let r = 1; r <= Number(a.rounds); r++) {
    await traffic(Number(a.requests));
    await aborts(Number(a.aborts));
    if (bbr) await midBodyAborts(Number(a.aborts));
    await sleep(600);
    console.log(`round ${r}: ${r * Number(a.requests)} requests + ${r * Number(a.aborts)} aborts, worker RSS ${workerRss()} kB`);
  }
}
console.log(`statuses ${JSON.stringify(Object.fromEntries(statuses))}, ${((Date.now() - t0) / 1000).toFixed(0)} s`);
// valgrind writes its leak summary on the way out: give it time before SIGKILL.
await nginx.stop(valgrind ? 300_000 : 10_000);
if (valgrind) {
  const log = readFileSync(join(dir, 'valgrind.log'), 'utf8');
  const pick = (re: RegExp): string => re.exec(log)?.[0] ?? '(not found)';
  console.log(pick(/ERROR SUMMARY: .*/));
  console.log(pick(/definitely lost: .*/));
  console.log(pick(/indirectly lost: .*/));
  console.log(pick(/possibly lost: .*/));
  console.log(`valgrind log: ${join(dir, 'valgrind.log')}`);
}
const errs = readFileSync(join(dir, 'error.log'), 'utf8').split('\n').filter((l) => /\[(alert|emerg|crit)\]/.test(l));
console.log(`error.log alert/crit/emerg lines: ${errs.length}${errs.length ? `\n${errs.slice(0, 5).join('\n')}` : ''}`);

