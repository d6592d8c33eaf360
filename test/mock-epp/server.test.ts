// The mock EPP as a server: TLS, gRPC health, admin API (config swap, journal long-poll,
// metrics, bearer token), stop/drain, and the programmatic API's validation.
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXT_PROC_SERVICE, HealthClient } from '../../core/proto.ts';
import { EppkitError } from '../../core/errors.ts';
import { ExtProcTestClient, envoyHeaders, setHeaderValue } from '../../mock-epp/ext-proc-client.ts';
import { TRANSPORTS } from '../../mock-epp/grpc-transport.ts';
import { MockEpp, type StartedMockEpp } from '../../mock-epp/mock-epp.ts';
import type { JournalEntry } from '../../mock-epp/journal.ts';
import { selfSignedCert, type SelfSignedCert } from '../../mock-epp/self-signed-cert.ts';

async function pick(client: ExtProcTestClient, headers: Record<string, string> = {}): Promise<string | undefined> {
  const s = client.open();
  s.send({ request_headers: { headers: { headers: envoyHeaders(headers) }, end_of_stream: true } });
  const v = setHeaderValue(await s.next(), 'x-gateway-destination-endpoint');
  s.end();
  await s.outcome;
  return v;
}

function healthCheck(address: string, service: string, creds = grpc.credentials.createInsecure()): Promise<{ status?: number; code?: number }> {
  const c = new HealthClient(address, creds) as unknown as grpc.Client & {
    Check: (req: object, cb: (e: grpc.ServiceError | null, r?: { status?: number }) => void) => void;
  };
  return new Promise((resolve) => {
    c.Check({ service }, (e, r) => {
      c.close();
      resolve(e ? { code: e.code } : { status: r?.status ?? 0 });
    });
  });
}

describe.each(TRANSPORTS)('%s transport', (transport) => {
  it('is the transport serving', async () => {
    await using epp = await new MockEpp({}).withAdminPort(null).withTransport(transport).start();
    expect(epp.transport).toBe(transport);
  });

  describe('TLS', () => {
    let cert: SelfSignedCert;
    beforeAll(() => {
      cert = selfSignedCert();
    });
    afterAll(() => cert.dispose());

    it('serves ext_proc and health over TLS with a self-signed pair (files or PEM text)', async () => {
      for (const tls of [{ cert: cert.certFile, key: cert.keyFile }, { cert: cert.cert, key: cert.key }]) {
        await using epp = await new MockEpp({ endpoints: ['127.0.0.2:8000'] }).withTls(tls).withAdminPort(null).withTransport(transport).start();
        expect(epp.tls).toBe(true);
        const creds = grpc.credentials.createSsl(Buffer.from(cert.cert));
        const client = new ExtProcTestClient(epp.address, creds);
        expect(await pick(client)).toBe('127.0.0.2:8000');
        client.close();
        expect(await healthCheck(epp.address, 'readiness', creds)).toEqual({ status: 1 });
        // A plaintext client cannot talk to it.
        const plain = new ExtProcTestClient(epp.address, grpc.credentials.createInsecure(), { 'grpc.initial_reconnect_backoff_ms': 50 });
        const s = plain.open({ deadline: Date.now() + 1500 });
        s.send({ request_headers: { headers: { headers: envoyHeaders({}) }, end_of_stream: true } });
        expect((await s.outcome).code).not.toBe(0);
        plain.close();
      }
    });

    it('an unreadable key file is a clear EppkitError', async () => {
      await expect(new MockEpp({}).withTls({ cert: cert.certFile, key: '/nonexistent/key.pem' }).withTransport(transport).start()).rejects.toMatchObject({ code: 'EPPKIT_CONFIG_UNREADABLE' });
    });
  });

  describe('gRPC health', () => {
    it("answers SERVING for '', liveness, readiness and the ext_proc service; NOT_FOUND otherwise; NOT_SERVING while draining", async () => {
      const epp = await new MockEpp({}).withAdminPort(null).withTransport(transport).start();
      for (const svc of ['', 'liveness', 'readiness', EXT_PROC_SERVICE]) expect(await healthCheck(epp.address, svc)).toEqual({ status: 1 });
      expect(await healthCheck(epp.address, 'nope')).toEqual({ code: grpc.status.NOT_FOUND });
      // Watch sees NOT_SERVING when stop() begins.
      const c = new HealthClient(epp.address, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
        Watch: (req: object) => grpc.ClientReadableStream<{ status?: number }>;
      };
      const seen: number[] = [];
      const w = c.Watch({ service: 'readiness' });
      const ended = new Promise<void>((resolve) => {
        w.on('data', (m: { status?: number }) => {
          seen.push(m.status ?? 0);
          if (seen.length === 1) void epp.stop();
        });
        w.on('error', () => resolve());
        w.on('end', () => resolve());
      });
      await ended;
      c.close();
      expect(seen).toEqual([1, 2]);
    });
  });
});

describe('admin API', () => {
  let epp: StartedMockEpp;
  let client: ExtProcTestClient;
  const TOKEN = 's3cret';
  const auth = { authorization: `Bearer ${TOKEN}` };
  beforeAll(async () => {
    epp = await new MockEpp({ endpoints: ['127.0.0.2:8000'] }).withAdminToken(TOKEN).start();
    client = new ExtProcTestClient(epp.address);
  });
  afterAll(async () => {
    client.close();
    await epp.stop();
  });

  it('is on loopback, needs the bearer token except for /healthz', async () => {
    expect(epp.adminUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect((await fetch(`${epp.adminUrl}/healthz`)).status).toBe(200);
    expect((await fetch(`${epp.adminUrl}/config`)).status).toBe(401);
    expect((await fetch(`${epp.adminUrl}/config`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    expect((await fetch(`${epp.adminUrl}/config`, { headers: auth })).status).toBe(200);
    expect((await fetch(`${epp.adminUrl}/nope`, { headers: auth })).status).toBe(404);
  });

  it('PUT /config swaps atomically (YAML or JSON); an invalid config is 400 listing every problem and keeps the old one', async () => {
    const yaml = 'endpoints:\n  - 127.0.0.9:9000\npicker: random\n';
    const ok = await fetch(`${epp.adminUrl}/config`, { method: 'PUT', headers: auth, body: yaml });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { endpoints: string[] }).endpoints).toEqual(['127.0.0.9:9000']);
    expect(await pick(client)).toBe('127.0.0.9:9000');
    const bad = await fetch(`${epp.adminUrl}/config`, {
      method: 'PUT',
      headers: auth,
      body: JSON.stringify({ endpoints: ['nope', '127.0.0.1:99999'], picker: 'fastest', rules: [{ action: { delay: { ms: -1 } }, extra: 1 }] }),
    });
    expect(bad.status).toBe(400);
    const body = (await bad.json()) as { code: string; problems: Array<{ path: string; message: string; line?: number }> };
    expect(body.code).toBe('EPPKIT_CONFIG_INVALID');
    const paths = body.problems.map((p) => p.path);
    // Each problem at its own path: the unknown key too, not its parent's.
    expect(paths).toEqual(expect.arrayContaining(['endpoints[0]', 'endpoints[1]', 'picker', 'rules[0].action.delay.ms', 'rules[0].extra']));
    expect(body.problems.length).toBeGreaterThanOrEqual(4);
    expect(body.problems.every((p) => typeof p.line === 'number')).toBe(true);
    expect(await pick(client)).toBe('127.0.0.9:9000');
    const cur = (await (await fetch(`${epp.adminUrl}/config`, { headers: auth })).json()) as { picker: { type: string } };
    expect(cur.picker.type).toBe('random');
  });

  it('GET /journal, long-poll ?wait=N, DELETE /journal', async () => {
    expect((await fetch(`${epp.adminUrl}/journal`, { method: 'DELETE', headers: auth })).status).toBe(204);
    const poll = fetch(`${epp.adminUrl}/journal?wait=2&timeoutMs=5000`, { headers: auth });
    await pick(client, { 'x-one': '1' });
    await pick(client, { 'x-two': '2' });
    const res = await poll;
    expect(res.status).toBe(200);
    const entries = (await res.json()) as JournalEntry[];
    expect(entries).toHaveLength(2);
    expect(entries[0]?.requestHeaders?.['x-one']).toBe('1');
    expect(entries[1]?.phases[0]?.headers?.['x-two']).toBe('2');
    expect(entries[0]?.answers[0]?.kind).toBe('request_headers');
    const timeout = await fetch(`${epp.adminUrl}/journal?wait=5&timeoutMs=50`, { headers: auth });
    expect(timeout.status).toBe(504);
    expect((await fetch(`${epp.adminUrl}/journal?wait=x`, { headers: auth })).status).toBe(400);
  });

  it('GET /metrics is Prometheus text with streams, phases, answers and the service-time histogram', async () => {
    await pick(client);
    const res = await fetch(`${epp.adminUrl}/metrics`, { headers: auth });
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await res.text();
    expect(text).toMatch(/^eppkit_mock_streams_total [1-9]\d*$/m);
    expect(text).toMatch(/^eppkit_mock_phases_total\{phase="request_headers"\} [1-9]\d*$/m);
    expect(text).toMatch(/^eppkit_mock_answers_total\{kind="request_headers"\} [1-9]\d*$/m);
    expect(text).toMatch(/^eppkit_mock_service_time_seconds_bucket\{le="\+Inf"\} [1-9]\d*$/m);
    expect(text).toMatch(/^eppkit_mock_service_time_seconds_count [1-9]\d*$/m);
  });
});

describe('programmatic API', () => {
  it('rejects an invalid config with every problem listed', async () => {
    const err = await new MockEpp({ endpoints: ['x'], fallbacks: -1, rules: [{ match: { nth: 0 }, action: { immediate: { status: 2000 } } }] })
      .start()
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EppkitError);
    const paths = (err as EppkitError).problems.map((p) => p.path);
    expect(paths).toEqual(expect.arrayContaining(['endpoints[0]', 'fallbacks', 'rules[0].match.nth', 'rules[0].action.immediate.status']));
  });

  it('setConfig throws EppkitError and keeps the old config', async () => {
    await using epp = await new MockEpp({ endpoints: ['127.0.0.2:8000'] }).withAdminPort(null).start();
    expect(() => epp.setConfig({ endpoints: ['bad'] })).toThrow(EppkitError);
    expect(epp.config.endpoints).toEqual(['127.0.0.2:8000']);
  });

  it.each(TRANSPORTS)('serves on IPv6 loopback too ([::1]:port addresses) (%s transport)', async (transport) => {
    await using epp = await new MockEpp({ endpoints: ['[::1]:8000'] }).withHost('::1').withTransport(transport).start();
    expect(epp.address).toMatch(/^\[::1\]:\d+$/);
    expect(epp.adminUrl).toMatch(/^http:\/\/\[::1\]:\d+$/);
    const client = new ExtProcTestClient(epp.address);
    expect(await pick(client)).toBe('[::1]:8000');
    client.close();
    expect((await fetch(`${epp.adminUrl}/healthz`)).status).toBe(200);
  });

  it.each(TRANSPORTS)('a taken port is EPPKIT_PORT_IN_USE (%s transport)', async (transport) => {
    await using a = await new MockEpp({}).withAdminPort(null).withTransport(transport).start();
    await expect(new MockEpp({}).withPort(a.port).withAdminPort(null).withTransport(transport).start()).rejects.toMatchObject({ code: 'EPPKIT_PORT_IN_USE' });
  });

  it.each(TRANSPORTS)('stop() drains: an open stream may finish (%s transport)', async (transport) => {
    const epp = await new MockEpp({ endpoints: ['127.0.0.2:8000'] }).withAdminPort(null).withTransport(transport).start();
    const client = new ExtProcTestClient(epp.address);
    const s = client.open();
    s.send({ request_headers: { headers: { headers: envoyHeaders({}) }, end_of_stream: true } });
    expect((await s.next())?.response).toBe('request_headers');
    const stopping = epp.stop(3000);
    s.send({ response_headers: { headers: { headers: envoyHeaders({ ':status': '200' }, false) } } });
    expect((await s.next())?.response).toBe('response_headers');
    s.end();
    expect((await s.outcome).code).toBe(0);
    await stopping;
    client.close();
    expect(epp.journal[0]?.end?.how).toBe('completed');
  });

  it('serves on the h2 transport unless told otherwise: a reset is a real RST_STREAM', async () => {
    await using epp = await new MockEpp({ endpoints: ['127.0.0.2:8000'] }).withAdminPort(null).start();
    expect(epp.transport).toBe('h2');
    const client = new ExtProcTestClient(epp.address);
    const s = client.open();
    s.send({ request_headers: { headers: { headers: envoyHeaders({ 'x-eppkit-reset': 'true' }) }, end_of_stream: true } });
    const o = await s.outcome;
    client.close();
    // grpc-js's client text for an RST_STREAM from the server; the grpc-js transport would send a status instead.
    expect(o.details).toMatch(/^Received RST_STREAM with code 2/);
    expect((await epp.waitForJournal(1, 2000))[0]?.end?.detail).toBe('RST_STREAM INTERNAL_ERROR');
  });

  it('withTransport rejects an unknown transport with EPPKIT_USAGE', () => {
    expect(() => new MockEpp({}).withTransport('http3' as never)).toThrow(expect.objectContaining({ code: 'EPPKIT_USAGE' }));
  });
});
