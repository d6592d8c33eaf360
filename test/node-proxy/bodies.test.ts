// Request bodies of 0 B to 8 MiB, binary, with content-length and chunked, reach the backend
// byte for byte in every body mode; the EPP sees what the mode says; the EPP's body
// replacement is applied; responses stream back byte for byte; limits answer 413.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MockEpp, type StartedMockEpp } from '../../mock-epp/mock-epp.ts';
import { silentLogger } from '../../core/logger.ts';
import type { BodyMode } from '../../core/route-model.ts';
import { NodeProxy, type StartedNodeProxy } from '../../proxies/node-proxy/node-proxy.ts';
import { pattern, startEchoBackend, type StartedEchoBackend } from '../../harness/backends/echo-backend.ts';
import { send } from '../../proxies/node-proxy/test-support/http-send.ts';
import { setHeaderOption } from '../../core/headers.ts';
import { startScriptedEpp } from '../../proxies/node-proxy/test-support/scripted-epp.ts';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const MODES: BodyMode[] = ['none', 'buffered', 'streamed'];
const SIZES = [0, 1, 1000, 65_536 + 7, 1024 * 1024, 8 * 1024 * 1024];

let backend: StartedEchoBackend;
let epp: StartedMockEpp;
const proxies = new Map<BodyMode, StartedNodeProxy>();

beforeAll(async () => {
  backend = await startEchoBackend();
  epp = await new MockEpp({
    endpoints: [backend.address],
    rules: [{ match: { path: '/replace' }, action: { replaceBody: 'REPLACED BY EPP' } }],
  })
    .withPort(0)
    .withAdminPort(null)
    .start();
  for (const m of MODES) {
    proxies.set(m, await new NodeProxy({ listen: '127.0.0.1:0', eppAddress: epp.address, bodyMode: m, timeoutMs: 30_000, maxBodyBytes: 9 * 1024 * 1024 }).withLogger(silentLogger).start());
  }
});
afterAll(async () => {
  for (const p of proxies.values()) await p.stop();
  await epp?.stop();
  await backend?.stop();
});

describe.each(MODES)('node-proxy body mode %s', (mode) => {
  it.each(SIZES)('forwards a %i-byte binary body with content-length byte for byte', async (size) => {
    const p = proxies.get(mode) as StartedNodeProxy;
    const body = pattern(size);
    epp.clearJournal();
    const r = await send(p.url, { method: 'POST', path: '/__echo-body', body });
    expect(r.status).toBe(200);
    expect(r.body.length).toBe(size);
    expect(sha(r.body)).toBe(sha(body));
    const [e] = await epp.waitForJournal(1, 10_000);
    expect(e?.end?.how).toBe('completed');
    if (mode === 'none' || size === 0) expect(e?.requestBody?.size ?? 0).toBe(0);
    else {
      expect(e?.requestBody?.size).toBe(size);
      expect(e?.requestBody?.sha256).toBe(sha(body));
    }
    expect(e?.bodyMode.request).toBe({ none: 'NONE', buffered: 'BUFFERED', streamed: 'FULL_DUPLEX_STREAMED' }[mode]);
  });

  it('forwards a chunked body (no content-length) byte for byte', async () => {
    const p = proxies.get(mode) as StartedNodeProxy;
    const parts = [pattern(10), Buffer.from([0, 255, 13, 10, 48, 13, 10]), pattern(70_000), Buffer.from('end')];
    const whole = Buffer.concat(parts);
    const r = await send(p.url, { path: '/__echo-body', chunks: parts });
    expect(r.status).toBe(200);
    expect(sha(r.body)).toBe(sha(whole));
  });

  it('forwards an empty chunked body', async () => {
    const p = proxies.get(mode) as StartedNodeProxy;
    const r = await send(p.url, { path: '/__echo-body', chunks: [] });
    expect(r.status).toBe(200);
    expect(r.body.length).toBe(0);
  });

  it('streams a large response back byte for byte', async () => {
    const p = proxies.get(mode) as StartedNodeProxy;
    const r = await send(p.url, { path: `/__big?bytes=${5 * 1024 * 1024 + 3}` });
    expect(r.body.length).toBe(5 * 1024 * 1024 + 3);
    expect(sha(r.body)).toBe(sha(pattern(5 * 1024 * 1024 + 3)));
  });

  it('answers 413 for a body over the limit (content-length and chunked) and keeps serving', async () => {
    await using small = await new NodeProxy({ listen: '127.0.0.1:0', timeoutMs: 5000, eppAddress: epp.address, bodyMode: mode, maxBodyBytes: 1000 }).withLogger(silentLogger).start();
    const a = await send(small.url, { path: '/__echo-body', body: pattern(1001) });
    expect(a.status).toBe(413);
    expect(a.headers['x-eppkit-reason']).toBe('body_too_large');
    const b = await send(small.url, { path: '/__echo-body', chunks: [pattern(600), pattern(600)] });
    expect(b.status).toBe(413);
    const ok = await send(small.url, { path: '/__echo-body', body: pattern(1000) });
    expect(ok.status).toBe(200);
    expect(ok.body.length).toBe(1000);
    await expectQuiet(small);
  });
});

describe('node-proxy body replacement by the EPP', () => {
  it.each(['buffered', 'streamed'] as const)('%s: the backend receives the body the EPP sent', async (mode) => {
    const p = proxies.get(mode) as StartedNodeProxy;
    const r = await send(p.url, { path: '/replace', chunks: ['original ', 'body'] });
    expect(r.status).toBe(200);
    const seen = r.json<{ request: { bodyBytes: number; bodySha256: string } }>().request;
    expect(seen.bodySha256).toBe(sha(Buffer.from('REPLACED BY EPP')));
  });

  it('none: the EPP never sees the body, the backend gets the original', async () => {
    const p = proxies.get('none') as StartedNodeProxy;
    const r = await send(p.url, { path: '/replace', body: 'original' });
    expect(r.json<{ request: { bodySha256: string } }>().request.bodySha256).toBe(sha(Buffer.from('original')));
  });

  it('streamed with plain per-chunk answers: the chunks are released as the EPP answers them', async () => {
    // A STREAMED-style processor: answers the headers at once, then one CONTINUE per chunk,
    // replacing the chunk that says "secret".
    await using s = await startScriptedEpp((call, msg) => {
      if (msg.request === 'request_headers') {
        call.write({ request_headers: { response: { header_mutation: { set_headers: [setHeaderOption('x-gateway-destination-endpoint', backend.address)] } } } });
      } else if (msg.request === 'request_body') {
        const b = msg.request_body?.body ?? Buffer.alloc(0);
        if (b.toString() === 'secret') call.write({ request_body: { response: { body_mutation: { body: Buffer.from('XXXXXX') } } } });
        else call.write({ request_body: { response: {} } });
      }
    });
    await using p = await new NodeProxy({ listen: '127.0.0.1:0', timeoutMs: 5000, eppAddress: s.address, bodyMode: 'streamed' }).withLogger(silentLogger).start();
    const parts = ['a-', 'secret', '-b'];
    // Separate writes with pauses so they arrive as separate chunks.
    const r = await sendSlowChunks(p.url, parts);
    expect(r).toBe('a-XXXXXX-b');
  });
});

describe('node-proxy streamed body when the EPP closes with OK mid-body', () => {
  it('the rest of the body goes straight through (the EPP is ignored from then on)', async () => {
    let ended = false;
    await using s = await startScriptedEpp((call, msg) => {
      if (msg.request === 'request_headers') {
        call.write({ request_headers: { response: { header_mutation: { set_headers: [setHeaderOption('x-gateway-destination-endpoint', backend.address)] } } } });
      } else if (msg.request === 'request_body' && !ended) {
        // Only the first chunk: on a loaded machine the later ones can reach this EPP before its
        // end went out, and grpc-js never sends the status of a call written to after end().
        ended = true;
        call.write({ request_body: { response: {} } });
        call.end();
      }
    });
    await using p = await new NodeProxy({ listen: '127.0.0.1:0', timeoutMs: 5000, eppAddress: s.address, bodyMode: 'streamed' }).withLogger(silentLogger).start();
    expect(await sendSlowChunks(p.url, ['a-', 'b-', 'c'])).toBe('a-b-c');
  });
});

async function sendSlowChunks(url: string, parts: string[]): Promise<string> {
  const http = await import('node:http');
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, method: 'POST', path: '/__echo-body', headers: { 'transfer-encoding': 'chunked' }, agent: false });
    req.on('error', reject);
    req.on('response', (res) => {
      let t = '';
      res.setEncoding('latin1');
      res.on('data', (d: string) => (t += d));
      res.on('end', () => resolve(t));
    });
    let i = 0;
    const next = (): void => {
      if (i === parts.length) return void req.end();
      req.write(parts[i++]);
      setTimeout(next, 30);
    };
    next();
  });
}

async function expectQuiet(p: StartedNodeProxy): Promise<void> {
  const { eventually } = await import('../support/eventually.ts');
  await eventually(() => p.metrics.data.active.requests === 0 && p.metrics.data.active.eppStreams === 0, 'no request or EPP stream left open');
}
