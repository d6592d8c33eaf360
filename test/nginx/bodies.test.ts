// Request bodies through the native nginx EPP module: 0 B to 8 MiB, from nginx's memory buffer
// and from its temp file (client_body_buffer_size 1k here), fixed-length and chunked uploads,
// in the three body modes. The EPP must see exactly the client's bytes (sha256), and so must
// the backend; a body over epp_max_body_size is refused with 413 before any EPP call.
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routeWithDefaults, type BodyMode } from '../../core/route-model.ts';
import type { StartedEchoBackend } from '../../harness/backends/echo-backend.ts';
import { NginxDriver, type StartedNginx } from '../../harness/data-planes/nginx-driver.ts';
import { MockEpp, type StartedMockEpp } from '../../mock-epp/mock-epp.ts';
import { gateFor, patternBody, send, startBackends, workDir } from '../support/envoy-test-kit.ts';

const gate = await gateFor(new NginxDriver());
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** A chunked upload (no Content-Length), in pieces of `piece` bytes. */
function sendChunked(url: string, body: Buffer, piece: number): Promise<{ status: number; json: { request: { bodyBytes: number; bodySha256: string } } }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers: { 'Transfer-Encoding': 'chunked', 'Content-Type': 'application/octet-stream' }, timeout: 20_000 }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(parts).toString('utf8')) });
        } catch (e) {
          reject(e as Error);
        }
      });
    });
    req.on('error', reject);
    for (let i = 0; i < body.length; i += piece) req.write(body.subarray(i, i + piece));
    req.end();
  });
}

describe.skipIf(gate.skip)('nginx-epp request bodies', () => {
  it('nginx and the built module are available (CI=true demands it)', () => {
    expect(gate.availability).toEqual({ ok: true });
  });

  let a: StartedEchoBackend;
  let epp: StartedMockEpp;
  const planes = new Map<string, StartedNginx>();

  beforeAll(async () => {
    [a] = (await startBackends('a')) as [StartedEchoBackend];
    epp = await new MockEpp({ endpoints: [a.address] }).withHost('127.0.0.1').withPort(0).withAdminPort(null).start();
    for (const form of ['ngf', 'direct'] as const) {
      for (const bodyMode of ['buffered', 'streamed', 'none'] as BodyMode[]) {
        planes.set(
          `${form}-${bodyMode}`,
          await new NginxDriver({ form, bodyBufferSize: '1k' }).start(
            routeWithDefaults({ eppAddress: epp.address, bodyMode, timeoutMs: 5000, maxBodyBytes: 9 * 1024 * 1024 }),
            { workDir: workDir(`nginx-epp-body-${form}-${bodyMode}`), runtime: 'local', host: '127.0.0.1' },
          ),
        );
      }
    }
  });
  afterAll(async () => {
    await Promise.all([...planes.values()].map((p) => p.stop()));
    await epp?.stop();
    await a?.stop();
  });

  const SIZES = [0, 1, 900, 1024 + 1, 64 * 1024 + 3, 1024 * 1024, 8 * 1024 * 1024];

  describe.each(['ngf', 'direct'] as const)('%s form', (form) => {
    it.each(SIZES)('buffered: %i bytes reach the EPP (one message) and the backend unchanged', async (size) => {
      const body = patternBody(size);
      epp.clearJournal();
      const r = await send(`${planes.get(`${form}-buffered`)!.url}/v1/completions`, { method: 'POST', body, timeoutMs: 30_000 });
      expect(r.status).toBe(200);
      expect(r.bodyBytes).toBe(size);
      expect(r.bodySha256).toBe(sha(body));
      const [e] = await epp.waitForJournal(1, 10_000);
      if (size === 0) {
        expect(e?.requestBody).toBeUndefined();
        expect(e?.phases[0]?.endOfStream).toBe(true);
      } else {
        expect(e?.requestBody?.size).toBe(size);
        expect(e?.requestBody?.sha256).toBe(sha(body));
        expect(e?.phases.filter((p) => p.phase === 'request_body')).toHaveLength(1);
      }
    });

    it('streamed: the body goes in chunks (FULL_DUPLEX_STREAMED) and arrives whole', async () => {
      const body = patternBody(300 * 1024);
      epp.clearJournal();
      const r = await send(`${planes.get(`${form}-streamed`)!.url}/v1/completions`, { method: 'POST', body, timeoutMs: 30_000 });
      expect(r.status).toBe(200);
      expect(r.bodySha256).toBe(sha(body));
      const [e] = await epp.waitForJournal(1, 10_000);
      expect(e?.protocolConfig?.requestBodyMode).toBe('FULL_DUPLEX_STREAMED');
      expect(e?.requestBody?.sha256).toBe(sha(body));
      expect(e?.phases.filter((p) => p.phase === 'request_body').length).toBeGreaterThan(1);
    });

    it('none: headers only; the backend still gets the body', async () => {
      const body = patternBody(200 * 1024);
      epp.clearJournal();
      const r = await send(`${planes.get(`${form}-none`)!.url}/v1/completions`, { method: 'POST', body, timeoutMs: 30_000 });
      expect(r.status).toBe(200);
      expect(r.bodySha256).toBe(sha(body));
      const [e] = await epp.waitForJournal(1, 10_000);
      expect(e?.protocolConfig?.requestBodyMode).toBe('NONE');
      expect(e?.requestBody).toBeUndefined();
      // The headers end the EPP stream: the real EPPs would otherwise wait for a body that never comes.
      expect(e?.phases[0]?.endOfStream).toBe(true);
    });

    it('chunked uploads (temp file) reach the EPP and the backend unchanged', async () => {
      for (const size of [5000, 2 * 1024 * 1024]) {
        const body = patternBody(size);
        epp.clearJournal();
        const r = await sendChunked(`${planes.get(`${form}-buffered`)!.url}/v1/completions`, body, 7000);
        expect(r.status).toBe(200);
        expect(r.json.request.bodySha256).toBe(sha(body));
        const [e] = await epp.waitForJournal(1, 10_000);
        expect(e?.requestBody?.sha256).toBe(sha(body));
        expect(e?.requestHeaders?.['transfer-encoding']).toBe('chunked');
      }
    });

    it('a body over epp_max_body_size is refused with 413 and never reaches the EPP', async () => {
      epp.clearJournal();
      // nginx itself would accept 1m: the 413 comes from the module's epp_max_body_size (64k).
      await using plane = await new NginxDriver({ form, clientMaxBodySize: '1m' }).start(
        routeWithDefaults({ eppAddress: epp.address, maxBodyBytes: 64 * 1024 }),
        { workDir: workDir(`nginx-epp-413-${form}`), runtime: 'local', host: '127.0.0.1' },
      );
      const r = await send(`${plane.url}/v1/completions`, { method: 'POST', body: patternBody(100 * 1024) });
      expect(r.status).toBe(413);
      expect(epp.journal).toHaveLength(0);
      expect(plane.logs()).toContain('epp: request body larger than epp_max_body_size');
      const ok = await send(`${plane.url}/v1/completions`, { method: 'POST', body: patternBody(60 * 1024) });
      expect(ok.status).toBe(200);
    });
  });
});
