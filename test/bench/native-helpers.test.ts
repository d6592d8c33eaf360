// Proves the compiled bench helpers (`eppkit build bench`) answer what `eppkit bench` relies on:
// the echo backend's identity headers and echo, and the bench EPP's pick over real ext_proc on
// real HTTP/2 in each body mode the data planes use (headers only, BUFFERED with the headers
// answer held until the body ended, FULL_DUPLEX_STREAMED with the body streamed back), the
// response phase, and the delay directive; the compiled HTTP load client sends the Node workers'
// request and counts answers (chunked, close, non-2xx), hangs and refusals as they do. In CI a missing binary fails (CI builds them).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BENCH_TOOLS, builtBenchTool } from '../../harness/build/bench-tools-build.ts';
import { startHelper, type StartedHelper } from '../../harness/bench/bench-helpers.ts';
import { ExtProcTestClient, envoyHeaders, lbMetadataValue, setHeaderValue } from '../../mock-epp/ext-proc-client.ts';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { BenchReport } from '../../harness/bench/bench-report.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { IN_FLIGHT_AT_CLOSE } from '../../core/load-executor.ts';
import { runLoad } from '../../harness/bench/load-client.ts';
import type { LoadSpec } from '../../harness/bench/load-worker.ts';
import { runNativeLoad } from '../../harness/bench/native-load-client.ts';
import { FLOOR_LABEL } from '../../harness/bench/mock-epp-native-load.ts';

const echoBin = builtBenchTool(BENCH_TOOLS.echoBackend);
const eppBin = builtBenchTool(BENCH_TOOLS.benchEpp);
const loadBin = builtBenchTool(BENCH_TOOLS.extProcLoad);
const httpLoadBin = builtBenchTool(BENCH_TOOLS.httpLoad);
if (process.env.CI && (!echoBin || !eppBin || !loadBin || !httpLoadBin)) throw new Error('CI: the compiled bench helpers are not built (eppkit build bench)');
const dir = mkdtempSync(join(tmpdir(), 'eppkit-bench-helpers-'));

describe.skipIf(!echoBin || !eppBin)('compiled bench helpers', () => {
  let echo: StartedHelper;
  let epp: StartedHelper;
  let client: ExtProcTestClient;
  beforeAll(async () => {
    echo = await startHelper('echo backend', echoBin!, ['--listen', '127.0.0.2:0', '--name', 'pod-n'], /listening on http:\/\/(\S+)/, join(dir, 'echo.log'));
    epp = await startHelper('bench EPP', eppBin!, ['--listen', '127.0.0.1:0', '--endpoints', `${echo.address},127.0.0.3:9`], /grpc listening on (\S+)/, join(dir, 'epp.log'));
    client = new ExtProcTestClient(epp.address);
  });
  afterAll(async () => {
    client?.close();
    await epp?.proc.stop();
    await echo?.proc.stop();
  });

  it('echo backend: identity headers, X-Echo-Set-Header, injected status, body size and sha256, keep-alive', async () => {
    const url = `http://${echo.address}/v1/chat/completions?a=1&b=x%20y`;
    const res = await fetch(url, { method: 'POST', body: 'hello', headers: { 'x-echo-set-header': 'x-served:yes', 'x-echo-status': '429' } });
    expect(res.status).toBe(429);
    expect(res.headers.get('x-inference-pod')).toBe('pod-n');
    expect(res.headers.get('x-inference-port')).toBe(echo.address.split(':')[1]);
    expect(res.headers.get('x-served')).toBe('yes');
    const body = (await res.json()) as { backend: { name: string; address: string }; request: Record<string, unknown>; object: string; error: unknown };
    expect(body.backend).toMatchObject({ name: 'pod-n', address: echo.address });
    expect(body.request).toMatchObject({ method: 'POST', path: '/v1/chat/completions', query: [['a', '1'], ['b', 'x y']], bodyBytes: 5, chunked: false });
    expect(body.request.bodySha256).toBe('2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824');
    expect(body.object).toBe('chat.completion');
    expect(body.error).toBeDefined();
    // A second request on the same keep-alive connection, chunked this time.
    const chunked = await fetch(`http://${echo.address}/x`, { method: 'POST', body: new Blob(['a'.repeat(70_000)]).stream(), duplex: 'half' } as RequestInit);
    const cb = (await chunked.json()) as { request: { bodyBytes: number; chunked: boolean } };
    expect(chunked.status).toBe(200);
    expect(cb.request).toMatchObject({ bodyBytes: 70_000, chunked: true });
    expect((await fetch(`http://${echo.address}/health`)).status).toBe(200);
  });

  it('bench EPP: headers only → the pick at once, as header (raw_value, append false) and envoy.lb metadata, round-robin', async () => {
    const picks: string[] = [];
    for (let i = 0; i < 2; i++) {
      const s = client.open();
      s.send({ request_headers: { headers: { headers: envoyHeaders({ ':method': 'GET' }) }, end_of_stream: true } });
      const a = await s.next();
      expect(a?.request_headers?.response?.clear_route_cache).toBe(true);
      const opt = a?.request_headers?.response?.header_mutation?.set_headers?.[0];
      expect(opt?.append?.value ?? false).toBe(false);
      expect(opt?.header?.value ?? '').toBe('');
      const v = setHeaderValue(a, 'x-gateway-destination-endpoint');
      expect(lbMetadataValue(a)).toBe(v);
      picks.push(v!);
      s.end();
      expect((await s.outcome).code).toBe(0);
    }
    expect(new Set(picks)).toEqual(new Set([echo.address, '127.0.0.3:9']));
  });

  it('bench EPP: BUFFERED without waiting → headers answer held until the body ended, then the body answer; response phase answered', async () => {
    const s = client.open();
    s.send({ request_headers: { headers: { headers: envoyHeaders({}) }, end_of_stream: false } });
    s.send({ request_body: { body: Buffer.from('{"model":"m"}'), end_of_stream: true } });
    const h = await s.next();
    expect(h?.request_headers).toBeDefined();
    expect(setHeaderValue(h, 'x-gateway-destination-endpoint')).toMatch(/:/);
    const b = await s.next();
    expect(b?.request_body).toBeDefined();
    s.send({ response_headers: { headers: { headers: envoyHeaders({ ':status': '200' }, false) }, end_of_stream: true } });
    expect((await s.next())?.response_headers).toBeDefined();
    s.end();
    expect((await s.outcome).code).toBe(0);
  });

  it('bench EPP: FULL_DUPLEX_STREAMED → pick after the last chunk, the whole body streamed back', async () => {
    const s = client.open();
    s.send({ protocol_config: { request_body_mode: 4, response_body_mode: 4 }, request_headers: { headers: { headers: envoyHeaders({}) }, end_of_stream: false } });
    s.send({ request_body: { body: Buffer.from('abc'), end_of_stream: false } });
    s.send({ request_body: { body: Buffer.from('def'), end_of_stream: true } });
    const h = await s.next();
    expect(h?.request_headers).toBeDefined();
    const b = await s.next();
    expect(b?.request_body?.response?.body_mutation?.streamed_response?.end_of_stream).toBe(true);
    expect(Buffer.from(b!.request_body!.response!.body_mutation!.streamed_response!.body!).toString()).toBe('abcdef');
    s.end();
    expect((await s.outcome).code).toBe(0);
  });

  it('bench EPP: BUFFERED from a client that waits → the headers answer first; x-eppkit-delay-ms holds it', async () => {
    const s = client.open();
    const t0 = performance.now();
    s.send({ protocol_config: { request_body_mode: 2 }, request_headers: { headers: { headers: envoyHeaders({ 'x-eppkit-delay-ms': '120' }) }, end_of_stream: false } });
    const h = await s.next();
    expect(h?.request_headers).toBeDefined();
    // The delay is a behaviour (the answer is held), not a timing claim about speed.
    expect(performance.now() - t0).toBeGreaterThanOrEqual(100);
    s.send({ request_body: { body: Buffer.from('x'), end_of_stream: true } });
    expect((await s.next())?.request_body).toBeDefined();
    s.end();
    expect((await s.outcome).code).toBe(0);
  });
});

describe.skipIf(!loadBin)('eppkit bench mock-epp with the compiled ext_proc client', () => {
  it('measures the compiled floor, the do-nothing server and the mock under the same fixed rate, with CPU per stream and the ratio', () => {
    const dir = mkdtempSync(join(tmpdir(), 'eppkit-bench-mock-native-'));
    const bin = fileURLToPath(new URL('../../bin/eppkit.js', import.meta.url));
    const r = spawnSync(process.execPath, [bin, 'bench', 'mock-epp', '--rate', '1000', '--streams', '64', '--duration', '1s', '--warmup', '200ms', '--report-dir', dir, '--json', '--quiet'], { encoding: 'utf8', timeout: 90_000 });
    expect(r.status).toBe(0);
    const report = JSON.parse(r.stdout) as BenchReport;
    expect(report.loadClient.kind).toMatch(/^compiled ext_proc client/);
    // The compiled bench EPP, when built, runs first: the machine's latency floor.
    expect(report.results.map((x) => x.target)).toEqual([...(eppBin ? [FLOOR_LABEL] : []), 'do-nothing h2 server', 'mock-epp']);
    for (const x of report.results) {
      expect(x.load!.requests).toBeGreaterThan(0);
      expect(x.load!.errors).toBe(0);
      // /proc counts CPU in 10 ms ticks: the compiled floor's 1,200 streams (~20 µs each) may
      // round to one tick or none; the Node servers' (~80 µs each) always show.
      if (x.target === FLOOR_LABEL) expect(x.mockEpp?.cpu?.usPerStream).toBeGreaterThanOrEqual(0);
      else expect(x.mockEpp?.cpu?.usPerStream).toBeGreaterThan(0);
    }
    expect(report.notes.some((n) => n.startsWith('mock EPP / do-nothing server CPU per stream:'))).toBe(true);
  }, 120_000);
});

describe.skipIf(!httpLoadBin || !echoBin)('compiled HTTP load client (eppkit-http-load)', () => {
  let echo: StartedHelper;
  let server: Server;
  let base = '';
  const seen: Array<{ method?: string; url?: string; headers: Record<string, unknown>; body: string }> = [];
  beforeAll(async () => {
    echo = await startHelper('echo backend', echoBin!, ['--listen', '127.0.0.2:0', '--name', 'pod-h'], /listening on http:\/\/(\S+)/, join(dir, 'echo-h.log'));
    // Answers the compiled echo backend never gives: chunked, connection close, a hang, a 503.
    server = createServer((req, res) => {
      const body: Buffer[] = [];
      req.on('data', (c: Buffer) => body.push(c));
      req.on('end', () => {
        if (req.url?.startsWith('/record')) {
          const { host: _host, ...headers } = req.headers;
          seen.push({ method: req.method, url: req.url, headers, body: Buffer.concat(body).toString() });
          res.end('ok');
        } else if (req.url === '/chunked') {
          res.write('abc');
          setImmediate(() => res.end('defg'));
        } else if (req.url === '/close') {
          res.setHeader('connection', 'close');
          res.end('xy');
        } else if (req.url === '/close-idle') {
          res.end('k');
        } else if (req.url === '/unavailable') {
          res.statusCode = 503;
          res.end('no');
        }
        // /hang: no answer at all.
      });
    });
    // Idle keep-alive connections closed soon (Node adds a 1 s buffer): the reuse test below.
    server.keepAliveTimeout = 100;
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server?.closeAllConnections();
    server?.close();
    await echo?.proc.stop();
  });
  // A fixed rate: iterations due in the window start even when a busy machine wakes the client
  // late (a closed loop that first runs after the window would send nothing).
  const spec = (url: string, over: Partial<LoadSpec> = {}): LoadSpec => ({ url, method: 'GET', headers: {}, bodyBytes: 0, executor: 'constant-arrival-rate', rate: 100, connections: 4, warmupMs: 100, durationMs: 600, timeoutMs: 2000, ...over });

  it('sends the Node workers\' request (method, path, headers, body), every answer counted once', async () => {
    const s = spec(`${base}/record?q=1`, { method: 'POST', headers: { 'x-eppkit-delay-ms': '0' }, bodyBytes: 300, bodyModel: 'm-1', executor: 'constant-arrival-rate', rate: 200, connections: 16 });
    const native = await runNativeLoad(httpLoadBin!, s);
    const nativeSaw = seen.splice(0);
    const node = await runLoad(s, 1);
    const nodeSaw = seen.splice(0);
    for (const r of [native, node]) {
      expect(r.errors).toBe(0);
      expect(r.requests).toBeGreaterThan(0);
      expect(r.statusCodes).toEqual({ 200: r.requests });
      expect(r.latencyMs.count).toBe(r.requests);
      expect(r.bytes).toBe(2 * r.requests);
    }
    expect(nativeSaw[0]).toEqual(nodeSaw[0]);
    expect(nativeSaw[0]).toMatchObject({ method: 'POST', url: '/record?q=1', headers: { 'x-eppkit-delay-ms': '0', 'content-type': 'application/octet-stream', 'content-length': '300' } });
    expect(native.workerPids).toHaveLength(1);
  });

  it('chunked answers, connection: close and non-2xx are read to their end and counted', async () => {
    const chunked = await runNativeLoad(httpLoadBin!, spec(`${base}/chunked`));
    expect(chunked.errors).toBe(0);
    expect(chunked.bytes).toBe(7 * chunked.requests);
    const close = await runNativeLoad(httpLoadBin!, spec(`${base}/close`));
    expect(close.errors).toBe(0);
    expect(close.bytes).toBe(2 * close.requests);
    const unavailable = await runNativeLoad(httpLoadBin!, spec(`${base}/unavailable`));
    expect(unavailable.statusCodes).toEqual({ 503: unavailable.requests });
    expect(unavailable.non2xx).toBe(unavailable.requests);
  });

  it('a hang is a timeout at window close, a refused port ECONNREFUSED, as with the Node workers', async () => {
    const hang = await runNativeLoad(httpLoadBin!, spec(`${base}/hang`, { timeoutMs: 30_000 }));
    expect(hang.requests).toBe(0);
    expect(hang.inFlightAtClose).toBe(4);
    expect(hang.errorKinds).toEqual({ [IN_FLIGHT_AT_CLOSE]: 4 });
    expect(hang.dropped).toBeGreaterThan(0);
    const refused = await runNativeLoad(httpLoadBin!, spec('http://127.0.0.1:1/x'));
    expect(refused.requests).toBe(0);
    expect(refused.errors).toBeGreaterThan(0);
    expect(Object.keys(refused.errorKinds)).toEqual(['ECONNREFUSED']);
  });

  it('a keep-alive connection the server closed while idle is not reused: no error for the plane', async () => {
    // One request every 2.5 s on 2 connections: each waits longer than the server keeps it.
    const r = await runNativeLoad(httpLoadBin!, spec(`${base}/close-idle`, { executor: 'constant-arrival-rate', rate: 0.4, connections: 2, warmupMs: 0, durationMs: 6000 }));
    expect(r.requests).toBeGreaterThanOrEqual(2);
    expect(r.errorKinds).toEqual({});
  }, 30_000);

  it('burst: --connections requests at once every second, measured from the burst start', async () => {
    const r = await runNativeLoad(httpLoadBin!, spec(`http://${echo.address}/b`, { executor: 'burst', connections: 20, warmupMs: 0, durationMs: 1500 }));
    // Two bursts in 1.5 s (one if the machine woke the client late): whole bursts only.
    expect(r.requests % 20).toBe(0);
    expect(r.requests).toBeGreaterThanOrEqual(20);
    expect(r.errors).toBe(0);
  });
});
