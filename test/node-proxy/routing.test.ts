// node-proxy follows the EPP: header or metadata pick (metadata wins), comma-separated
// fallback lists tried in order, the allowlist, header mutations, hop-by-hop removal,
// X-Forwarded-*, byte-exact paths and queries, routes by path prefix, the served endpoint,
// the subset hint and IPv6 endpoints. All over real sockets against the real mock EPP.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MockEpp, type StartedMockEpp } from '../../mock-epp/mock-epp.ts';
import { silentLogger } from '../../core/logger.ts';
import { NodeProxy } from '../../proxies/node-proxy/node-proxy.ts';
import type { NodeProxyInput } from '../../proxies/node-proxy/node-proxy-config.ts';
import { startEchoBackend, type ReceivedRequest, type StartedEchoBackend } from '../../harness/backends/echo-backend.ts';
import { send } from '../../proxies/node-proxy/test-support/http-send.ts';
import { lbMetadata, startScriptedEpp } from '../../proxies/node-proxy/test-support/scripted-epp.ts';
import { setHeaderOption } from '../../core/headers.ts';

let b1: StartedEchoBackend;
let b2: StartedEchoBackend;
let epp: StartedMockEpp;

beforeAll(async () => {
  b1 = await startEchoBackend();
  b2 = await startEchoBackend();
  epp = await new MockEpp({ endpoints: [b1.address, b2.address] }).withHost('127.0.0.1').withPort(0).withAdminPort(null).start();
});
afterAll(async () => {
  await epp?.stop();
  await b1?.stop();
  await b2?.stop();
});

function proxy(extra: Partial<NodeProxyInput> = {}) {
  return new NodeProxy({ listen: '127.0.0.1:0', timeoutMs: 5000, eppAddress: epp.address, ...extra }).withLogger(silentLogger).start();
}

/** What b1 or b2 received last for this request target (the echo keeps raw header lines there). */
function seenAt(url: string): ReceivedRequest {
  const r = [...b1.received, ...b2.received].filter((x) => x.url === url).at(-1);
  if (!r) throw new Error(`no backend received ${url}`);
  return r;
}

function header(r: ReceivedRequest, name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < r.rawHeaders.length; i += 2) if (r.rawHeaders[i]?.toLowerCase() === name) out.push(r.rawHeaders[i + 1] as string);
  return out;
}

describe('node-proxy routing', () => {
  it('sends each request to the endpoint the EPP picked', async () => {
    await using p = await proxy();
    epp.clearJournal();
    for (const target of [b2, b1, b2]) {
      const r = await send(p.url, { path: '/pick', headers: { 'test-epp-endpoint-selection': target.address } });
      expect(r.status).toBe(200);
      expect(r.headers['x-inference-port']).toBe(String(target.port));
    }
    const journal = await epp.waitForJournal(3, 5000);
    expect(journal.map((e) => e.pick?.value)).toEqual([b2.address, b1.address, b2.address]);
    expect(journal.every((e) => e.end?.how === 'completed')).toBe(true);
  });

  it('tries a comma-separated list in order when a connection fails', async () => {
    await using p = await proxy({ responseProcessing: true });
    epp.clearJournal();
    // Port 1 on loopback refuses; the second entry serves.
    const r = await send(p.url, { headers: { 'x-eppkit-endpoint': `127.0.0.1:1,${b2.address},${b1.address}` } });
    expect(r.status).toBe(200);
    expect(r.headers['x-inference-port']).toBe(String(b2.port));
    const [e] = await epp.waitForJournal(1, 5000);
    expect(e?.servedEndpoint).toBe(b2.address);
  });

  it('answers 502 when no entry of the list accepts a connection', async () => {
    await using p = await proxy();
    const r = await send(p.url, { headers: { 'x-eppkit-endpoint': '127.0.0.1:1,127.0.0.1:2' } });
    expect(r.status).toBe(502);
    expect(r.headers['x-eppkit-reason']).toBe('upstream_connect_failed');
  });

  it('reports the served endpoint on the response-headers phase when asked', async () => {
    await using p = await proxy({ responseProcessing: true });
    epp.clearJournal();
    const r = await send(p.url, { headers: { 'test-epp-endpoint-selection': b1.address } });
    expect(r.status).toBe(200);
    const [e] = await epp.waitForJournal(1, 5000);
    expect(e?.servedEndpoint).toBe(b1.address);
    expect(e?.phases.map((ph) => ph.phase)).toContain('response_headers');
    expect(e?.phases.find((ph) => ph.phase === 'response_headers')?.headers?.[':status']).toBe('200');
  });

  it('does not run the response phase unless asked', async () => {
    await using p = await proxy();
    epp.clearJournal();
    await send(p.url);
    const [e] = await epp.waitForJournal(1, 5000);
    expect(e?.phases.map((ph) => ph.phase)).not.toContain('response_headers');
    expect(e?.servedEndpoint).toBeUndefined();
  });

  it('sends the subset hint as envoy.lb.subset_hint metadata', async () => {
    await using p = await proxy({ subsetHint: [b2.address] });
    epp.clearJournal();
    const r = await send(p.url);
    expect(r.headers['x-inference-port']).toBe(String(b2.port));
    const [e] = await epp.waitForJournal(1, 5000);
    expect(e?.subsetHint).toEqual([b2.address]);
  });

  it('applies the allowlist: ip:port entries and CIDRs; refuses endpoints outside it', async () => {
    await using strict = await proxy({ allow: [b1.address] });
    const refused = await send(strict.url, { headers: { 'x-eppkit-endpoint': b2.address } });
    expect(refused.status).toBe(500);
    expect(refused.headers['x-eppkit-reason']).toBe('endpoint_not_allowed');
    expect(b2.received.some((r) => r.url === '/allow-leak')).toBe(false);
    // An allowed entry later in the list is used; the refused one is skipped.
    const mixed = await send(strict.url, { headers: { 'x-eppkit-endpoint': `${b2.address},${b1.address}` } });
    expect(mixed.headers['x-inference-port']).toBe(String(b1.port));
    await using cidr = await proxy({ allow: ['127.0.0.0/8'] });
    const ok = await send(cidr.url, { headers: { 'x-eppkit-endpoint': b2.address } });
    expect(ok.headers['x-inference-port']).toBe(String(b2.port));
    await using other = await proxy({ allow: ['10.0.0.0/8'] });
    const no = await send(other.url, { headers: { 'x-eppkit-endpoint': b2.address } });
    expect(no.status).toBe(500);
  });

  it("applies the EPP's other header mutations to the upstream request", async () => {
    await using e2 = await new MockEpp({
      endpoints: [b1.address],
      rules: [{ match: { path: '/mutate' }, action: { setHeaders: { 'x-added': 'by-epp', 'x-replaced': 'new' }, removeHeaders: ['x-remove-me'] } }],
    })
      .withPort(0)
      .withAdminPort(null)
      .start();
    await using p = await new NodeProxy({ listen: '127.0.0.1:0', timeoutMs: 5000, eppAddress: e2.address }).withLogger(silentLogger).start();
    const r = await send(p.url, { path: '/mutate', headers: ['X-Remove-Me', '1', 'X-Replaced', 'old', 'X-Keep', 'k'] });
    expect(r.status).toBe(200);
    const seen = seenAt('/mutate');
    expect(header(seen, 'x-added')).toEqual(['by-epp']);
    expect(header(seen, 'x-replaced')).toEqual(['new']);
    expect(header(seen, 'x-remove-me')).toEqual([]);
    expect(header(seen, 'x-keep')).toEqual(['k']);
    expect(header(seen, 'x-gateway-destination-endpoint')).toEqual([b1.address]);
  });

  it('removes hop-by-hop headers (also those named in Connection) and adds X-Forwarded-*', async () => {
    await using p = await proxy();
    epp.clearJournal();
    const r = await send(p.url, {
      path: '/hop',
      headers: [
        'Connection', 'keep-alive, X-Hop-Custom',
        'Keep-Alive', 'timeout=5',
        'X-Hop-Custom', 'secret',
        'TE', 'trailers',
        'Proxy-Connection', 'keep-alive',
        'Upgrade', 'h2c',
        'X-Forwarded-For', '203.0.113.7',
        'X-Dup', 'one',
        'X-Dup', 'two',
      ],
    });
    expect(r.status).toBe(200);
    const seen = seenAt('/hop');
    for (const h of ['keep-alive', 'x-hop-custom', 'te', 'proxy-connection', 'upgrade']) expect(header(seen, h)).toEqual([]);
    expect(header(seen, 'x-forwarded-for')).toEqual(['203.0.113.7, 127.0.0.1']);
    expect(header(seen, 'x-forwarded-proto')).toEqual(['http']);
    expect(header(seen, 'x-dup')).toEqual(['one', 'two']);
    // The EPP sees Envoy's form: pseudo-headers, lower-case keys, no hop-by-hop headers.
    const [e] = await epp.waitForJournal(1, 5000);
    const h = e?.requestHeaders ?? {};
    expect(h[':method']).toBe('GET');
    expect(h[':path']).toBe('/hop');
    expect(h[':authority']).toBe(new URL(p.url).host);
    expect(h[':scheme']).toBe('http');
    expect(h['x-dup']).toBe('one,two');
    expect(Object.keys(h).every((k) => k === k.toLowerCase())).toBe(true);
    expect(h['x-hop-custom']).toBeUndefined();
    expect(h['keep-alive']).toBeUndefined();
  });

  it('answers Expect: 100-continue itself and sends the body upstream without it', async () => {
    await using p = await proxy();
    const r = await send(p.url, { path: '/__echo-body', headers: { Expect: '100-continue' }, body: 'continued body' });
    expect(r.status).toBe(200);
    expect(r.text()).toBe('continued body');
    const last = b1.received.concat(b2.received).find((x) => x.url === '/__echo-body' && x.bodyBytes === 14);
    expect(last && header(last, 'expect')).toEqual([]);
  });

  it('forwards method, path and query byte for byte, and the Host header', async () => {
    await using p = await proxy();
    epp.clearJournal();
    const path = "/v1/a%2Fb/../c;p=1?q=%41%zz&q=2&&e=&sp=a+b%20c&u=%E2%82%AC&x=[1]";
    const r = await send(p.url, { method: 'PATCH', path, headers: { Host: 'model.example:8080' }, body: 'x' });
    expect(r.status).toBe(200);
    const seen = seenAt(path);
    expect(seen.url).toBe(path);
    expect(seen.method).toBe('PATCH');
    expect(header(seen, 'host')).toEqual(['model.example:8080']);
    const [e] = await epp.waitForJournal(1, 5000);
    expect(e?.requestHeaders?.[':path']).toBe(path);
    expect(e?.requestHeaders?.[':authority']).toBe('model.example:8080');
  });

  it('routes by path prefix, element by element, to each route’s EPP', async () => {
    await using eppA = await new MockEpp({ endpoints: [b1.address] }).withPort(0).withAdminPort(null).start();
    await using eppB = await new MockEpp({ endpoints: [b2.address] }).withPort(0).withAdminPort(null).start();
    await using p = await new NodeProxy({
      listen: '127.0.0.1:0',
      timeoutMs: 5000,
      routes: [
        { pathPrefix: '/', eppAddress: eppB.address },
        { pathPrefix: '/a', eppAddress: eppA.address },
      ],
    })
      .withLogger(silentLogger)
      .start();
    expect((await send(p.url, { path: '/a' })).headers['x-inference-port']).toBe(String(b1.port));
    expect((await send(p.url, { path: '/a/x?y' })).headers['x-inference-port']).toBe(String(b1.port));
    expect((await send(p.url, { path: '/ab' })).headers['x-inference-port']).toBe(String(b2.port));
    expect((await send(p.url, { path: '/' })).headers['x-inference-port']).toBe(String(b2.port));
    expect(eppA.journal.length).toBe(2);
    expect(eppB.journal.length).toBe(2);
  });

  it('answers 404 when no route matches', async () => {
    await using p = await new NodeProxy({ listen: '127.0.0.1:0', timeoutMs: 5000, eppAddress: epp.address, pathPrefix: '/only' }).withLogger(silentLogger).start();
    const r = await send(p.url, { path: '/other' });
    expect(r.status).toBe(404);
    expect(r.headers['x-eppkit-reason']).toBe('no_route');
  });

  it('proxies to an IPv6 endpoint written [v6]:port', async (ctx) => {
    let b6: StartedEchoBackend;
    try {
      b6 = await startEchoBackend('::1');
    } catch {
      ctx.skip();
      return;
    }
    await using _b6 = b6;
    await using p = await proxy();
    const r = await send(p.url, { headers: { 'x-eppkit-endpoint': b6.address } });
    expect(r.status).toBe(200);
    expect(r.headers['x-inference-port']).toBe(String(b6.port));
  });
});

describe('node-proxy endpoint sources (scripted EPP)', () => {
  function answer(value: { header?: string; metadata?: string }) {
    return startScriptedEpp((call, msg) => {
      if (msg.request !== 'request_headers') return;
      const set = value.header ? [setHeaderOption('x-gateway-destination-endpoint', value.header)] : [];
      call.write({
        request_headers: { response: { header_mutation: { set_headers: set } } },
        ...(value.metadata ? { dynamic_metadata: lbMetadata(value.metadata) } : {}),
      });
    });
  }

  it('takes the endpoint from envoy.lb metadata alone', async () => {
    await using s = await answer({ metadata: b2.address });
    await using p = await new NodeProxy({ listen: '127.0.0.1:0', timeoutMs: 5000, eppAddress: s.address, bodyMode: 'none' }).withLogger(silentLogger).start();
    expect((await send(p.url)).headers['x-inference-port']).toBe(String(b2.port));
  });

  it('takes the endpoint from the header mutation alone', async () => {
    await using s = await answer({ header: b1.address });
    await using p = await new NodeProxy({ listen: '127.0.0.1:0', timeoutMs: 5000, eppAddress: s.address, bodyMode: 'none' }).withLogger(silentLogger).start();
    expect((await send(p.url)).headers['x-inference-port']).toBe(String(b1.port));
  });

  it('prefers metadata when header and metadata disagree, and logs the disagreement', async () => {
    await using s = await answer({ header: b1.address, metadata: b2.address });
    const lines: string[] = [];
    const { pino } = await import('pino');
    const log = pino({ level: 'info' }, { write: (l: string) => lines.push(l) });
    await using p = await new NodeProxy({ listen: '127.0.0.1:0', timeoutMs: 5000, eppAddress: s.address, bodyMode: 'none' }).withLogger(log).start();
    expect((await send(p.url)).headers['x-inference-port']).toBe(String(b2.port));
    expect(lines.some((l) => l.includes('endpoint_disagreement') && l.includes(b1.address) && l.includes(b2.address))).toBe(true);
  });
});
