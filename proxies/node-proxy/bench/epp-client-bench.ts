// The EPP client's own cost per stream, in isolation: N ext_proc streams (request headers with
// end_of_stream, the pick, half-close, the EPP's status), 16 in flight, through node-proxy's
// EppChannels with each client kind, against the compiled bench EPP (eppkit build bench) so the
// EPP takes little of the machine. CPU per stream = this process's CPU (process.cpuUsage) over
// the run / streams: on a shared machine the figure that neighbours disturb least.
//   node proxies/node-proxy/bench/epp-client-bench.ts [--streams 20000] [--clients wire,http2,grpc-js]
import { parseArgs } from 'node:util';
import { rawHeader } from '../../../core/headers.ts';
import { BENCH_TOOLS, benchToolPath } from '../../../harness/build/bench-tools-build.ts';
import { launch } from '../../../harness/launch/launch.ts';
import { Wait } from '../../../harness/launch/wait-strategy.ts';
import { EppChannels, type EppClientKind } from '../epp-channels.ts';

const { values: a } = parseArgs({ options: { streams: { type: 'string', default: '20000' }, clients: { type: 'string', default: 'wire,http2,grpc-js' }, inflight: { type: 'string', default: '16' } } });
const N = Number(a.streams);
const INFLIGHT = Number(a.inflight);

const epp = await launch(
  { runtime: 'local', workDir: process.cwd() },
  { what: 'bench EPP', image: '', command: [benchToolPath(BENCH_TOOLS.benchEpp), '--listen', '127.0.0.1:0', '--endpoints', '127.0.0.2:8000'], waitFor: Wait.forLogLine(/grpc listening on (\S+)/) },
);
const address = epp.ready[1]!;
const headers = [':method', 'GET', ':path', '/v1/completions', ':authority', 'bench.test', ':scheme', 'http', 'user-agent', 'bench'];
const msg = { request_headers: { headers: { headers: Array.from({ length: headers.length / 2 }, (_, i) => rawHeader(headers[2 * i]!, headers[2 * i + 1]!)) }, end_of_stream: true } };

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

async function run(kind: EppClientKind, n: number): Promise<{ ms: number; errors: number }> {
  const channels = new EppChannels(kind);
  const client = channels.client(address);
  let errors = 0;
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const call = client.Process();
      let picked = false;
      call.on('data', () => {
        picked = true;
        call.end();
      });
      call.on('error', () => {
        errors++;
        resolve();
      });
      call.on('status', () => {
        if (!picked) errors++;
        resolve();
      });
      call.write(msg);
    });
  // Warm-up (connection, JIT), then the measured streams.
  for (let i = 0; i < 500; i += INFLIGHT) await Promise.all(Array.from({ length: INFLIGHT }, one));
  const c0 = cpuMs();
  const t0 = performance.now();
  let started = 0;
  await Promise.all(Array.from({ length: INFLIGHT }, async () => { while (started++ < n) await one(); }));
  const ms = cpuMs() - c0;
  const wall = performance.now() - t0;
  channels.close();
  process.stdout.write(`${kind}: ${n} streams in ${(wall / 1000).toFixed(1)} s, ${errors} errors, client CPU ${((ms * 1000) / n).toFixed(1)} µs per stream\n`);
  return { ms, errors };
}

try {
  for (const k of String(a.clients).split(',') as EppClientKind[]) await run(k, N);
} finally {
  await epp.stop();
}
