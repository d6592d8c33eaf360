// Bad input from the network: each case is logged (journal problem), counted (metrics), the
// stream ends cleanly with a defined outcome, nothing leaks, and the server keeps serving.
import { connect, constants as h2 } from 'node:http2';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BodySendMode, EXT_PROC_METHOD_PATH } from '../../core/proto.ts';
import { ExtProcTestClient, envoyHeaders, setHeaderValue } from '../../mock-epp/ext-proc-client.ts';
import { MockEpp, type StartedMockEpp } from '../../mock-epp/mock-epp.ts';
import { eventually } from '../support/eventually.ts';

const POOL = ['127.0.0.2:8000'];
let epp: StartedMockEpp;
let client: ExtProcTestClient;

beforeAll(async () => {
  epp = await new MockEpp({ endpoints: POOL }).withPort(0).withAdminPort(null).start();
  client = new ExtProcTestClient(epp.address);
});
afterAll(async () => {
  client.close();
  await epp.stop();
});

/** Proves the server still serves a normal request. */
async function stillServes(): Promise<void> {
  const s = client.open();
  s.send({ request_headers: { headers: { headers: envoyHeaders({}) }, end_of_stream: true } });
  expect(setHeaderValue(await s.next(), 'x-gateway-destination-endpoint')).toBe(POOL[0]);
  s.end();
  expect((await s.outcome).code).toBe(0);
}

function badInputCount(reason: string): number {
  return epp.metrics.badInput.get(reason);
}

/** Sends raw gRPC frames over a bare HTTP/2 stream; resolves with the grpc-status trailer. */
function rawGrpc(frames: Buffer[]): Promise<{ status: string | undefined; message: string | undefined }> {
  return new Promise((resolve, reject) => {
    const session = connect(`http://${epp.address}`);
    session.on('error', reject);
    const req = session.request({
      [h2.HTTP2_HEADER_METHOD]: 'POST',
      [h2.HTTP2_HEADER_PATH]: EXT_PROC_METHOD_PATH,
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    let status: string | undefined;
    let message: string | undefined;
    const take = (h: Record<string, unknown>) => {
      if (h['grpc-status'] !== undefined) status = String(h['grpc-status']);
      if (h['grpc-message'] !== undefined) message = decodeURIComponent(String(h['grpc-message']));
    };
    req.on('response', take);
    req.on('trailers', take);
    req.on('data', () => {});
    req.on('close', () => {
      session.close();
      resolve({ status, message });
    });
    for (const f of frames) req.write(f);
    req.end();
  });
}

function frame(payload: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt8(0, 0);
  head.writeUInt32BE(payload.length, 1);
  return Buffer.concat([head, payload]);
}

function gcHeapUsed(): number {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  gc();
  gc();
  return process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
}

describe('mock EPP bad input', () => {
  it('an undecodable gRPC message: INVALID_ARGUMENT, logged, counted, server keeps serving', async () => {
    const before = badInputCount('undecodable-message');
    // Field 1 (reserved), length-delimited, claiming far more bytes than follow.
    const r = await rawGrpc([frame(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0x0f, 0x01]))]);
    expect(r.status).toBe('3');
    expect(r.message).toMatch(/undecodable-message/);
    expect(badInputCount('undecodable-message')).toBe(before + 1);
    const e = epp.journal.at(-1);
    expect(e?.end?.how).toBe('bad-input');
    expect(e?.problems[0]).toMatch(/undecodable-message/);
    await stillServes();
  });

  it('a compressed message is refused with UNIMPLEMENTED and counted', async () => {
    const before = badInputCount('refused-by-grpc');
    const payload = Buffer.from([0x12, 0x00]);
    const f = Buffer.concat([Buffer.from([1, 0, 0, 0, payload.length]), payload]);
    const r = await rawGrpc([f]);
    expect(r.status).toBe('12');
    expect(badInputCount('refused-by-grpc')).toBe(before + 1);
    await stillServes();
  });

  it('an unknown method is UNIMPLEMENTED; a request that is not gRPC is HTTP 415', async () => {
    const session = connect(`http://${epp.address}`);
    const ask = (headers: Record<string, string>) =>
      new Promise<Record<string, unknown>>((resolve, reject) => {
        const req = session.request(headers);
        req.on('response', (h) => resolve(h as Record<string, unknown>));
        req.on('error', reject);
        req.end();
      });
    const unknown = await ask({ ':method': 'POST', ':path': '/no.Such/Method', 'content-type': 'application/grpc', te: 'trailers' });
    expect(unknown['grpc-status']).toBe('12');
    const notGrpc = await ask({ ':method': 'GET', ':path': EXT_PROC_METHOD_PATH });
    expect(notGrpc[':status']).toBe(415);
    session.close();
    await stillServes();
  });

  it('a frame that is not even a gRPC frame (truncated length prefix) ends the stream cleanly', async () => {
    const before = badInputCount('empty-stream');
    const r = await rawGrpc([Buffer.from([0x00, 0x00, 0x00])]);
    // grpc-js drops the incomplete frame; the mock sees a stream without messages.
    expect(r.status).toBe('0');
    expect(badInputCount('empty-stream')).toBe(before + 1);
    expect(epp.journal.at(-1)?.problems[0]).toMatch(/empty-stream/);
    await stillServes();
    expect(epp.openStreams).toBe(0);
  });

  it('a body before headers', async () => {
    const s = client.open();
    s.send({ request_body: { body: Buffer.from('x'), end_of_stream: true } });
    expect(await s.next()).toBeUndefined();
    const o = await s.outcome;
    expect(o.code).toBe(3);
    expect(o.details).toMatch(/body-before-headers/);
    expect(badInputCount('body-before-headers')).toBeGreaterThan(0);
    await stillServes();
  });

  it('a second request headers message', async () => {
    const s = client.open();
    s.send({ request_headers: { headers: { headers: envoyHeaders({}) }, end_of_stream: true }, protocol_config: { request_body_mode: BodySendMode.NONE } });
    expect((await s.next())?.response).toBe('request_headers');
    s.send({ request_headers: { headers: { headers: envoyHeaders({}) }, end_of_stream: true } });
    expect(await s.next()).toBeUndefined();
    expect((await s.outcome).details).toMatch(/second-request-headers/);
    await stillServes();
  });

  it('a message with no phase set', async () => {
    const s = client.open();
    s.send({ observability_mode: false, metadata_context: {} });
    expect(await s.next()).toBeUndefined();
    expect((await s.outcome).details).toMatch(/empty-request/);
    await stillServes();
  });

  it('a client that cancels during a delay: journaled as cancelled, timers cleared, nothing left open', async () => {
    epp.setConfig({ endpoints: POOL, rules: [{ action: { delay: { ms: 10_000 } } }] });
    try {
      epp.clearJournal();
      const s = client.open();
      s.send({ request_headers: { headers: { headers: envoyHeaders({}) }, end_of_stream: true } });
      await eventually(() => epp.openStreams === 1, 'the stream open at the mock');
      s.cancel();
      const [e] = await epp.waitForJournal(1, 2000);
      expect(e?.end?.how).toBe('client-cancelled');
      expect(e?.answers).toEqual([]);
      expect(epp.openStreams).toBe(0);
      expect(epp.metrics.streamsActive).toBe(0);
    } finally {
      epp.setConfig({ endpoints: POOL });
    }
    await stillServes();
  });

  it('a 100 MiB streamed body: ImmediateResponse 413 past maxBodyBytes, memory freed', async () => {
    const heapBefore = gcHeapUsed();
    const s = client.open();
    s.send({ request_headers: { headers: { headers: envoyHeaders({}) } }, protocol_config: { request_body_mode: BodySendMode.FULL_DUPLEX_STREAMED } });
    const chunk = Buffer.alloc(1024 * 1024, 0x61);
    let answer;
    const answered = s.next().then((r) => (answer = r));
    for (let i = 0; i < 100 && answer === undefined; i++) {
      s.send({ request_body: { body: chunk, end_of_stream: i === 99 } });
      if (i % 8 === 7) await new Promise((r) => setImmediate(r));
    }
    await answered;
    expect(answer).toMatchObject({ response: 'immediate_response' });
    expect((answer as unknown as { immediate_response: { status: { code: number } } }).immediate_response.status.code).toBe(413);
    s.cancel();
    await s.outcome;
    const e = epp.journal.at(-1);
    expect(e?.end?.how).toBe('immediate-response');
    expect(e?.problems.join()).toMatch(/body-too-large/);
    expect(epp.openStreams).toBe(0);
    await stillServes();
    // The held chunks (32 MiB by default) are gone once the stream has ended.
    expect(gcHeapUsed() - heapBefore).toBeLessThan(24 * 1024 * 1024);
  });

  it('one buffered message over a small maxBodyBytes: 413; one over the gRPC limit: RESOURCE_EXHAUSTED', async () => {
    epp.setConfig({ endpoints: POOL, maxBodyBytes: 64 * 1024 });
    try {
      const s = client.open();
      s.send({ request_headers: { headers: { headers: envoyHeaders({}) } } });
      s.send({ request_body: { body: Buffer.alloc(100 * 1024), end_of_stream: true } });
      expect((await s.next())?.immediate_response?.status?.code).toBe(413);
      await s.outcome;
      // Past the gRPC receive limit (initial maxBodyBytes + 1 MiB), grpc-js itself refuses the message.
      const refusedBefore = badInputCount('refused-by-grpc');
      const big = client.open();
      big.send({ request_headers: { headers: { headers: envoyHeaders({}) } } });
      big.send({ request_body: { body: Buffer.alloc(34 * 1024 * 1024), end_of_stream: true } });
      const o = await big.outcome;
      expect(o.code).toBe(8);
      await eventually(() => epp.openStreams === 0, 'no stream left open at the mock').catch(() => undefined);
      expect(epp.openStreams).toBe(0);
      expect(epp.journal.at(-1)?.end?.how).toBe('bad-input');
      expect(badInputCount('refused-by-grpc')).toBe(refusedBefore + 1);
    } finally {
      epp.setConfig({ endpoints: POOL });
    }
    await stillServes();
  });

  it('a client that ends every stream with RST_STREAM (as Envoy does) keeps its connection: no rapid-reset cut-off', async () => {
    // nghttp2's default reset flood limit (burst 1000, 33/s) would end the session with a
    // protocol error after about a thousand resets; a data plane resetting each finished
    // ext_proc stream gets there in seconds.
    const r = await resetFlood(2500);
    expect(r.sessionError).toBeUndefined();
    expect(r.sessionAlive).toBe(true);
    expect(r.answered).toBe(2500);
    await stillServes();
  }, 60_000);
});

/** Opens streams on one HTTP/2 connection, 100 at a time, and RSTs each once it is answered (as Envoy does). */
async function resetFlood(total: number): Promise<{ answered: number; sessionError: unknown; sessionAlive: boolean }> {
  const session = connect(`http://${epp.address}`);
  await new Promise<void>((resolve, reject) => {
    session.once('connect', () => resolve());
    session.once('error', reject);
  });
  let sessionError: unknown;
  session.on('error', (e) => (sessionError = e));
  const codec = (await import('../../core/proto.ts')).messageTypes as unknown as Record<string, { serialize: (m: object) => Buffer }>;
  const req = (codec['envoy.service.ext_proc.v3.ProcessingRequest'] as { serialize: (m: object) => Buffer }).serialize({
    request_headers: { headers: { headers: envoyHeaders({}) }, end_of_stream: true },
  });
  const one = () =>
    new Promise<boolean>((resolve) => {
      if (session.destroyed || session.closed) return resolve(false);
      let st: ReturnType<typeof session.request>;
      try {
        st = session.request({ ':method': 'POST', ':path': EXT_PROC_METHOD_PATH, 'content-type': 'application/grpc', te: 'trailers' });
      } catch {
        return resolve(false);
      }
      st.on('error', () => {});
      let got = false;
      st.on('data', () => {
        if (got) return;
        got = true;
        st.close(h2.NGHTTP2_CANCEL);
      });
      st.on('close', () => resolve(got));
      st.write(frame(req));
    });
  let answered = 0;
  for (let batch = 0; batch < total / 100; batch++) {
    const r = await Promise.all(Array.from({ length: 100 }, one));
    answered += r.filter(Boolean).length;
  }
  const sessionAlive = !session.destroyed && !session.closed;
  session.close();
  return { answered, sessionError, sessionAlive };
}

describe('mock EPP bad input on the grpc-js transport', () => {
  let h2Epp: StartedMockEpp;
  let h2Client: ExtProcTestClient;
  beforeAll(async () => {
    h2Epp = epp;
    h2Client = client;
    epp = await new MockEpp({ endpoints: POOL }).withPort(0).withAdminPort(null).withTransport('grpc-js').start();
    client = new ExtProcTestClient(epp.address);
  });
  afterAll(async () => {
    client.close();
    await epp.stop();
    epp = h2Epp;
    client = h2Client;
  });

  it('an undecodable gRPC message: INVALID_ARGUMENT, counted, server keeps serving (as on h2)', async () => {
    expect(epp.transport).toBe('grpc-js');
    const before = badInputCount('undecodable-message');
    const r = await rawGrpc([frame(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0x0f, 0x01]))]);
    expect(r.status).toBe('3');
    expect(r.message).toMatch(/undecodable-message/);
    expect(badInputCount('undecodable-message')).toBe(before + 1);
    expect(epp.journal.at(-1)?.end?.how).toBe('bad-input');
    await stillServes();
  });

  it('a body before headers and a message with no phase: INVALID_ARGUMENT', async () => {
    const s = client.open();
    s.send({ request_body: { body: Buffer.from('x'), end_of_stream: true } });
    expect(await s.next()).toBeUndefined();
    expect(await s.outcome).toMatchObject({ code: 3, details: expect.stringMatching(/body-before-headers/) });
    const t = client.open();
    t.send({ observability_mode: false, metadata_context: {} });
    expect(await t.next()).toBeUndefined();
    expect((await t.outcome).details).toMatch(/empty-request/);
    await stillServes();
  });

  it('a client that cancels during a delay: journaled as cancelled, nothing left open', async () => {
    epp.setConfig({ endpoints: POOL, rules: [{ action: { delay: { ms: 10_000 } } }] });
    try {
      epp.clearJournal();
      const s = client.open();
      s.send({ request_headers: { headers: { headers: envoyHeaders({}) }, end_of_stream: true } });
      await eventually(() => epp.openStreams === 1, 'the stream open at the mock');
      s.cancel();
      const [e] = await epp.waitForJournal(1, 2000);
      expect(e?.end?.how).toBe('client-cancelled');
      expect(e?.answers).toEqual([]);
      expect(epp.openStreams).toBe(0);
    } finally {
      epp.setConfig({ endpoints: POOL });
    }
    await stillServes();
  });

  it("the caveat: a client that RSTs every finished stream loses its connection to Node's rapid-reset guard", async () => {
    // Why h2 is the default: grpc-js creates the http2 server itself and offers no option for
    // streamResetBurst/streamResetRate, so the guard closes the session after ~1,000 resets.
    const r = await resetFlood(2500);
    expect(r.sessionAlive && r.answered === 2500).toBe(false);
    expect(r.answered).toBeLessThan(2500);
    await stillServes(); // a new connection is served again
  }, 60_000);
});
