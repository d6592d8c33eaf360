// Both lean ext_proc clients (`eppClient: wire`, the default, and `eppClient: http2`) behave like the grpc-js one on every
// path that depends on the transport: picks, bodies in each mode, each kind of stream end
// (error status, trailers-only, OK close, reset, timeout, unreachable), client aborts (RST),
// one connection for all streams and reconnection, TLS, and shim mode.
import * as net from 'node:net';
import * as http2 from 'node:http2';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MockEpp, type StartedMockEpp } from '../../mock-epp/mock-epp.ts';
import { silentLogger } from '../../core/logger.ts';
import { NodeProxy, type StartedNodeProxy } from '../../proxies/node-proxy/node-proxy.ts';
import type { NodeProxyInput } from '../../proxies/node-proxy/node-proxy-config.ts';
import { pattern, startEchoBackend, type StartedEchoBackend } from '../../harness/backends/echo-backend.ts';
import { send } from '../../proxies/node-proxy/test-support/http-send.ts';
import { eventually } from '../support/eventually.ts';
import { startScriptedEpp } from '../../proxies/node-proxy/test-support/scripted-epp.ts';
import { encodeGrpcFrame } from '../../core/grpc-frame.ts';

/** A bare HTTP/2 server standing in for the EPP: `answer` writes whatever bytes and trailers a case needs. */
async function rawEpp(answer: (stream: http2.ServerHttp2Stream) => void): Promise<{ address: string } & AsyncDisposable> {
  const server = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
  });
  server.on('stream', (stream: http2.ServerHttp2Stream) => {
    stream.on('error', () => undefined);
    // Answer once the request headers message arrived (as an EPP would).
    stream.once('data', () => answer(stream));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    address: `127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    [Symbol.asyncDispose]: () =>
      new Promise<void>((r) => {
        for (const s of sessions) s.destroy();
        server.close(() => r());
      }),
  };
}

let backend: StartedEchoBackend;
let fallback: StartedEchoBackend;
let epp: StartedMockEpp;

beforeAll(async () => {
  backend = await startEchoBackend();
  fallback = await startEchoBackend();
  epp = await new MockEpp({
    endpoints: [backend.address],
    rules: [{ match: { path: { regex: 'wrong-phase' } }, action: { malformed: 'wrong-phase' } }],
  })
    .withPort(0)
    .withAdminPort(null)
    .start();
});
afterAll(async () => {
  await epp?.stop();
  await backend?.stop();
  await fallback?.stop();
});

function proxyWith(eppClient: 'wire' | 'http2', extra: Partial<NodeProxyInput> = {}): Promise<StartedNodeProxy> {
  return new NodeProxy({ listen: '127.0.0.1:0', eppAddress: epp.address, eppClient, timeoutMs: 1000, ...extra })
    .withLogger(silentLogger)
    .start();
}

async function quiet(p: StartedNodeProxy): Promise<void> {
  await eventually(() => {
    const d = p.metrics.data;
    return d.active.requests === 0 && d.active.eppStreams === 0 && d.eppStreamsOpened === d.eppStreamsClosed;
  }, `nothing open: ${JSON.stringify(p.metrics.data.active)}`);
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe.each(['wire', 'http2'] as const)('eppClient %s', (eppClient) => {
  const proxy = (extra: Partial<NodeProxyInput> = {}): Promise<StartedNodeProxy> => proxyWith(eppClient, extra);
  it.each(['none', 'buffered', 'streamed'] as const)('%s: routes and forwards a 2 MiB body byte for byte', async (bodyMode) => {
    await using p = await proxy({ bodyMode, timeoutMs: 30_000, responseProcessing: true });
    epp.clearJournal();
    const body = pattern(2 * 1024 * 1024 + 5);
    const r = await send(p.url, { path: '/__echo-body', body });
    expect(r.status).toBe(200);
    expect(sha(r.body)).toBe(sha(body));
    const [e] = await epp.waitForJournal(1, 10_000);
    expect(e?.end?.how).toBe('completed');
    expect(e?.servedEndpoint).toBe(backend.address);
    await quiet(p);
  });

  it.each([
    ['gRPC error status', { 'x-eppkit-grpc-error': 'INTERNAL' }, 'epp_grpc_error', 500],
    ['stream reset', { 'x-eppkit-reset': 'true' }, 'epp_grpc_error', 500],
    ['OK close before deciding', { 'x-eppkit-close': 'true' }, 'epp_closed', 500],
    ['timeout', { 'x-eppkit-hang': 'true' }, 'epp_timeout', 504],
    ['garbage endpoint', { 'x-eppkit-endpoint': 'garbage' }, 'endpoint_invalid', 500],
    ['immediate response', { 'x-eppkit-immediate': '429' }, undefined, 429],
  ] as const)('%s: fail-close answers as the table says', async (_n, headers, reason, status) => {
    await using p = await proxy();
    const r = await send(p.url, { headers, body: 'x' });
    expect(r.status).toBe(status);
    expect(r.headers['x-eppkit-reason']).toBe(reason);
    expect((await send(p.url)).status).toBe(200);
    await quiet(p);
  });

  it('an answer of the wrong phase: fail-open goes to the fallback', async () => {
    await using p = await proxy({ failureMode: 'open', fallbackEndpoints: [fallback.address] });
    const r = await send(p.url, { path: '/wrong-phase', body: 'x' });
    expect(r.headers['x-inference-port']).toBe(String(fallback.port));
    await quiet(p);
  });

  it('an unreachable EPP: epp_unavailable, and fail-open keeps serving', async () => {
    const s = net.createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const port = (s.address() as net.AddressInfo).port;
    await new Promise<void>((r) => s.close(() => r()));
    await using closed = await proxy({ eppAddress: `127.0.0.1:${port}` });
    const r = await send(closed.url);
    expect(r.status).toBe(500);
    expect(r.headers['x-eppkit-reason']).toBe('epp_unavailable');
    await using open = await proxy({ eppAddress: `127.0.0.1:${port}`, failureMode: 'open', fallbackEndpoints: [fallback.address] });
    for (let i = 0; i < 3; i++) expect((await send(open.url)).headers['x-inference-port']).toBe(String(fallback.port));
  });

  it('a client abort mid-body resets the EPP stream', async () => {
    await using s = await startScriptedEpp(() => undefined);
    await using p = await proxy({ eppAddress: s.address, timeoutMs: 10_000 });
    const u = new URL(p.url);
    const c = net.connect(Number(u.port), u.hostname, () => c.write(`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n${'b'.repeat(3000)}`));
    await eventually(() => s.streams.length === 1, 'stream open at the EPP');
    c.destroy();
    await eventually(() => s.ends[0] !== 'open', 'stream ended at the EPP');
    expect(s.ends[0]).toBe('cancelled');
    await quiet(p);
  });

  it('one connection for all streams; reconnects after the EPP comes back', async () => {
    let accepted = 0;
    let refusing = false;
    const live = new Set<net.Socket>();
    const relay = net.createServer((c) => {
      accepted++;
      if (refusing) return void c.destroy();
      const up = net.connect(epp.port, '127.0.0.1');
      live.add(c);
      c.pipe(up).pipe(c);
      const kill = (): void => {
        live.delete(c);
        c.destroy();
        up.destroy();
      };
      c.on('error', kill);
      up.on('error', kill);
      c.on('close', kill);
      up.on('close', kill);
    });
    await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
    try {
      await using p = await proxy({ eppAddress: `127.0.0.1:${(relay.address() as net.AddressInfo).port}` });
      const rs = await Promise.all(Array.from({ length: 40 }, () => send(p.url, { body: 'x' })));
      expect(rs.every((r) => r.status === 200)).toBe(true);
      expect(accepted).toBe(1);
      refusing = true;
      for (const c of live) c.destroy();
      expect((await send(p.url)).status).toBe(500);
      refusing = false;
      await eventually(async () => (await send(p.url)).status === 200, 'serving again', 10_000);
      const before = accepted;
      for (let i = 0; i < 10; i++) expect((await send(p.url)).status).toBe(200);
      expect(accepted).toBe(before);
    } finally {
      await new Promise<void>((r) => relay.close(() => r()));
    }
  });

  it('TLS with a CA and server name; refuses a wrong name', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'np-h2-tls-'));
    try {
      const run = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
      run(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=eppkit test CA']);
      run(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'epp.key', '-out', 'epp.csr', '-subj', '/CN=epp.eppkit.test']);
      writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=DNS:epp.eppkit.test\n');
      run(['x509', '-req', '-in', 'epp.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'epp.pem', '-days', '2', '-extfile', 'ext.cnf']);
      await using tlsEpp = await new MockEpp({ endpoints: [backend.address] })
        .withPort(0)
        .withAdminPort(null)
        .withTls({ cert: readFileSync(join(dir, 'epp.pem'), 'utf8'), key: readFileSync(join(dir, 'epp.key'), 'utf8') })
        .start();
      const caFile = join(dir, 'ca.pem');
      await using good = await proxy({ eppAddress: tlsEpp.address, eppTls: { caFile, serverName: 'epp.eppkit.test' } });
      expect((await send(good.url)).status).toBe(200);
      await using bad = await proxy({ eppAddress: tlsEpp.address, eppTls: { caFile, serverName: 'other.eppkit.test' } });
      const r = await send(bad.url);
      expect(r.status).toBe(500);
      expect(r.headers['x-eppkit-reason']).toBe('epp_unavailable');
      await using lax = await proxy({ eppAddress: tlsEpp.address, eppTls: { insecureSkipVerify: true } });
      expect((await send(lax.url)).status).toBe(200);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('shim mode returns the pick and maps failures', async () => {
    await using shim = await new NodeProxy({ listen: '127.0.0.1:0', shim: true, eppClient, timeoutMs: 1000 }).withLogger(silentLogger).start();
    const h = { 'X-EPP-Host': '127.0.0.1', 'X-EPP-Port': String(epp.port) };
    const ok = await send(shim.url, { headers: h, body: '{"model":"m"}' });
    expect(ok.status).toBe(200);
    expect(ok.headers['x-gateway-destination-endpoint']).toBe(backend.address);
    expect((await send(shim.url, { headers: { ...h, 'x-eppkit-grpc-error': 'INTERNAL' } })).status).toBe(500);
    expect((await send(shim.url, { headers: { ...h, 'x-eppkit-hang': 'true' } })).status).toBe(504);
  });

  it('an EPP answer whose length prefix declares 4 GiB fails the stream with RESOURCE_EXHAUSTED at once, nothing buffered', async () => {
    await using raw = await rawEpp((stream) => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
      // The prefix, then a little of the "message"; the stream then stays open.
      stream.write(Buffer.concat([Buffer.from([0, 0xff, 0xff, 0xff, 0xff]), Buffer.alloc(1000)]));
    });
    await using p = await proxy({ eppAddress: raw.address, timeoutMs: 30_000 });
    const r = await send(p.url, { body: 'x' });
    expect(r.status).toBe(500);
    expect(r.headers['x-eppkit-reason']).toBe('epp_grpc_error');
    await quiet(p);
  });

  it('a grpc-message the EPP percent-encoded badly ("100%") is a defined failure, not a crash', async () => {
    await using raw = await rawEpp((stream) => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '13', 'grpc-message': 'broken 100% %zz' }, { endStream: true });
    });
    await using p = await proxy({ eppAddress: raw.address });
    for (let i = 0; i < 2; i++) {
      const r = await send(p.url, { body: 'x' });
      expect(r.status).toBe(500);
      expect(r.headers['x-eppkit-reason']).toBe('epp_grpc_error');
    }
    await quiet(p);
  });

  it('answers split at every byte and several answers in one DATA frame decode alike', async () => {
    // The headers answer with the pick, sent one byte per write.
    const { messageTypes } = await import('../../core/proto.ts');
    const codec = (messageTypes as unknown as Record<string, { serialize: (m: object) => Buffer }>)['envoy.service.ext_proc.v3.ProcessingResponse'];
    const answer = encodeGrpcFrame(
      codec!.serialize({
        request_headers: { response: { header_mutation: { set_headers: [{ header: { key: 'x-gateway-destination-endpoint', raw_value: Buffer.from(backend.address) } }] } } },
      }),
    );
    await using raw = await rawEpp((stream) => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      let i = 0;
      const drip = (): void => {
        if (stream.destroyed) return;
        if (i === answer.length) return void stream.end();
        stream.write(answer.subarray(i, ++i), drip);
      };
      drip();
    });
    await using p = await proxy({ eppAddress: raw.address, bodyMode: 'none' });
    const r = await send(p.url);
    expect(r.status).toBe(200);
    expect(r.headers['x-inference-port']).toBe(String(backend.port));
    await quiet(p);
  });
});

