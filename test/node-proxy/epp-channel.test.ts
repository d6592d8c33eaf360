// The EPP connection: one HTTP/2 connection per EPP target carries every request's stream
// (counted by a TCP relay in front of the mock), the proxy reconnects after the EPP comes
// back, and TLS to the EPP works with a CA, a server name, or skip-verify, and fails closed
// on a certificate it cannot verify.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MockEpp, type StartedMockEpp } from '../../mock-epp/mock-epp.ts';
import { silentLogger } from '../../core/logger.ts';
import { NodeProxy } from '../../proxies/node-proxy/node-proxy.ts';
import { startEchoBackend, type StartedEchoBackend } from '../../harness/backends/echo-backend.ts';
import { send } from '../../proxies/node-proxy/test-support/http-send.ts';
import { eventually } from '../support/eventually.ts';

/** A TCP relay that counts connections and can refuse (drop) them, to play an EPP that dies. */
async function startRelay(target: () => number) {
  let accepted = 0;
  let refusing = false;
  const live = new Set<net.Socket>();
  const server = net.createServer((c) => {
    accepted++;
    if (refusing) return void c.destroy();
    const up = net.connect(target(), '127.0.0.1');
    live.add(c);
    c.on('close', () => live.delete(c));
    c.pipe(up).pipe(c);
    c.on('error', () => up.destroy());
    up.on('error', () => c.destroy());
    c.on('close', () => up.destroy());
    up.on('close', () => c.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    address: `127.0.0.1:${port}`,
    accepted: () => accepted,
    open: () => live.size,
    /** Drops every connection and refuses new ones. */
    die() {
      refusing = true;
      for (const s of live) s.destroy();
    },
    revive() {
      refusing = false;
    },
    stop: () => new Promise<void>((r) => server.close(() => r())),
  };
}

let backend: StartedEchoBackend;
let epp: StartedMockEpp;

beforeAll(async () => {
  backend = await startEchoBackend();
  epp = await new MockEpp({ endpoints: [backend.address] }).withPort(0).withAdminPort(null).start();
});
afterAll(async () => {
  await epp?.stop();
  await backend?.stop();
});

describe('node-proxy EPP channel', () => {
  it('carries every request on one connection, many streams at once', async () => {
    const relay = await startRelay(() => epp.port);
    try {
      await using p = await new NodeProxy({ listen: '127.0.0.1:0', timeoutMs: 5000, eppAddress: relay.address }).withLogger(silentLogger).start();
      epp.clearJournal();
      const rs = await Promise.all(Array.from({ length: 60 }, (_, i) => send(p.url, { body: `r${i}`, headers: { 'x-eppkit-delay-ms': '20' } })));
      expect(rs.every((r) => r.status === 200)).toBe(true);
      for (let i = 0; i < 20; i++) expect((await send(p.url)).status).toBe(200);
      expect(epp.journal.length).toBe(80);
      expect(relay.accepted()).toBe(1);
    } finally {
      await relay.stop();
    }
  });

  it('reconnects after the EPP comes back; fails per the failure mode while it is gone', async () => {
    const relay = await startRelay(() => epp.port);
    try {
      await using p = await new NodeProxy({ listen: '127.0.0.1:0', timeoutMs: 5000, eppAddress: relay.address, failureMode: 'close' }).withLogger(silentLogger).start();
      expect((await send(p.url)).status).toBe(200);
      relay.die();
      const down = await send(p.url);
      expect(down.status).toBe(500);
      expect(['epp_unavailable', 'epp_grpc_error']).toContain(down.headers['x-eppkit-reason']);
      relay.revive();
      await eventually(async () => (await send(p.url)).status === 200, 'requests succeed again after the EPP is back', 10_000);
      const before = relay.accepted();
      for (let i = 0; i < 10; i++) expect((await send(p.url)).status).toBe(200);
      // Back to one connection: no connection per request after the reconnect.
      expect(relay.accepted()).toBe(before);
      expect(relay.open()).toBe(1);
    } finally {
      await relay.stop();
    }
  });

  it('uses one channel per distinct EPP target across routes', async () => {
    const relay = await startRelay(() => epp.port);
    try {
      await using p = await new NodeProxy({
        listen: '127.0.0.1:0',
        routes: [
          { pathPrefix: '/a', eppAddress: relay.address },
          { pathPrefix: '/b', eppAddress: relay.address },
        ],
      })
        .withLogger(silentLogger)
        .start();
      for (const path of ['/a', '/b', '/a/x', '/b/y']) expect((await send(p.url, { path })).status).toBe(200);
      expect(relay.accepted()).toBe(1);
    } finally {
      await relay.stop();
    }
  });
});

describe('node-proxy TLS to the EPP', () => {
  let dir: string;
  let tlsEpp: StartedMockEpp;
  let caFile: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'node-proxy-tls-'));
    const run = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
    run(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=eppkit test CA']);
    run(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'epp.key', '-out', 'epp.csr', '-subj', '/CN=epp.eppkit.test']);
    writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=DNS:epp.eppkit.test\n');
    run(['x509', '-req', '-in', 'epp.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'epp.pem', '-days', '2', '-extfile', 'ext.cnf']);
    caFile = join(dir, 'ca.pem');
    tlsEpp = await new MockEpp({ endpoints: [backend.address] })
      .withPort(0)
      .withAdminPort(null)
      .withTls({ cert: readFileSync(join(dir, 'epp.pem'), 'utf8'), key: readFileSync(join(dir, 'epp.key'), 'utf8') })
      .start();
  });
  afterAll(async () => {
    await tlsEpp?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('verifies the EPP with the CA and the server name', async () => {
    await using p = await new NodeProxy({
      listen: '127.0.0.1:0',
      timeoutMs: 5000,
      eppAddress: tlsEpp.address,
      eppTls: { caFile, serverName: 'epp.eppkit.test' },
    })
      .withLogger(silentLogger)
      .start();
    const r = await send(p.url);
    expect(r.status).toBe(200);
    expect(r.headers['x-inference-port']).toBe(String(backend.port));
  });

  it('refuses an EPP whose name does not match (fail-close 500)', async () => {
    await using p = await new NodeProxy({
      listen: '127.0.0.1:0',
      timeoutMs: 5000,
      eppAddress: tlsEpp.address,
      eppTls: { caFile, serverName: 'other.eppkit.test' },
    })
      .withLogger(silentLogger)
      .start();
    const r = await send(p.url);
    expect(r.status).toBe(500);
    expect(r.headers['x-eppkit-reason']).toBe('epp_unavailable');
  });

  it('refuses an EPP signed by an unknown CA unless skip-verify is set', async () => {
    await using strict = await new NodeProxy({ listen: '127.0.0.1:0', timeoutMs: 5000, eppAddress: tlsEpp.address, eppTls: { serverName: 'epp.eppkit.test' } })
      .withLogger(silentLogger)
      .start();
    expect((await send(strict.url)).status).toBe(500);
    await using lax = await new NodeProxy({ listen: '127.0.0.1:0', timeoutMs: 5000, eppAddress: tlsEpp.address, eppTls: { insecureSkipVerify: true } })
      .withLogger(silentLogger)
      .start();
    expect((await send(lax.url)).status).toBe(200);
  });

  it('a plaintext proxy cannot talk to a TLS EPP (fail-close 500)', async () => {
    await using p = await new NodeProxy({ listen: '127.0.0.1:0', eppAddress: tlsEpp.address, timeoutMs: 2000 }).withLogger(silentLogger).start();
    expect([500, 504]).toContain((await send(p.url)).status);
  });
});
