// eppkit's HTTP/2 client connection (proxies/node-proxy/h2-wire/) against another
// implementation over real sockets: node:http2's server (nghttp2). What nghttp2's HPACK encoder
// does with random headers (Huffman, indexing, eviction, size updates) must decode to what the
// server sent; bodies must cross small flow-control windows both ways intact; the server's
// stream limit, PING and GOAWAY must be honoured.
import { createHash, randomBytes } from 'node:crypto';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { H2ClientConnection, type StreamClose, type StreamHandler } from '../../proxies/node-proxy/h2-wire/h2-client-connection.ts';
import { encodeHeaderBlock } from '../../proxies/node-proxy/h2-wire/hpack-encoder.ts';
import { eventually } from '../support/eventually.ts';

const BLOCK = encodeHeaderBlock([{ index: 3 }, { index: 6 }, { nameIndex: 4, value: '/echo' }, { nameIndex: 1, value: 'interop' }]);

class Call implements StreamHandler {
  blocks: string[][] = [];
  body: Buffer[] = [];
  closed: StreamClose | undefined;
  ended = false;
  readonly done: Promise<void>;
  #resolve!: () => void;
  constructor() {
    this.done = new Promise((r) => (this.#resolve = r));
  }
  onHeaders(fields: string[], end: boolean): void {
    this.blocks.push(fields);
    if (end) this.#end();
  }
  onData(d: Buffer, end: boolean): void {
    this.body.push(Buffer.from(d));
    if (end) this.#end();
  }
  onClose(why: StreamClose): void {
    this.closed = why;
    this.#resolve();
  }
  #end(): void {
    this.ended = true;
    this.#resolve();
  }
  pairs(i: number): [string, string][] {
    const out: [string, string][] = [];
    const b = this.blocks[i] ?? [];
    for (let k = 0; k < b.length; k += 2) out.push([b[k] as string, b[k + 1] as string]);
    return out;
  }
}

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function server(opts: http2.ServerOptions, onStream: (s: http2.ServerHttp2Stream, h: http2.IncomingHttpHeaders) => void): Promise<{ port: number; sessions: Set<http2.ServerHttp2Session> }> {
  const srv = http2.createServer(opts);
  const sessions = new Set<http2.ServerHttp2Session>();
  srv.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
  });
  srv.on('stream', (s: http2.ServerHttp2Stream, h: http2.IncomingHttpHeaders) => {
    s.on('error', () => undefined);
    onStream(s, h);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  cleanup.push(
    () =>
      new Promise<void>((r) => {
        for (const s of sessions) s.destroy();
        srv.close(() => r());
      }),
  );
  return { port: (srv.address() as net.AddressInfo).port, sessions };
}

function connect(port: number): H2ClientConnection {
  const socket = net.connect({ host: '127.0.0.1', port });
  const conn = new H2ClientConnection(socket, { requestBlock: BLOCK });
  cleanup.push(() => conn.close());
  return conn;
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** A header name and value nghttp2 will send as is: lower-case token, visible latin1 value. */
function randomField(rnd: () => number): [string, string] {
  const alpha = 'abcdefghijklmnopqrstuvwxyz0123456789-';
  const name = `x-${Array.from({ length: 1 + Math.floor(rnd() * 12) }, () => alpha[Math.floor(rnd() * alpha.length)]).join('')}`;
  const len = Math.floor(rnd() * (rnd() < 0.1 ? 3000 : 40));
  let value = '';
  for (let i = 0; i < len; i++) {
    const r = rnd();
    value += String.fromCharCode(r < 0.8 ? 0x21 + Math.floor(rnd() * 94) : r < 0.9 ? 0x20 : 0xa0 + Math.floor(rnd() * 96));
  }
  return [name, value.trim()];
}

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe('H2ClientConnection against node:http2 (nghttp2)', () => {
  it('decodes 300 answers of random headers and trailers exactly as sent (Huffman, indexing, eviction)', async () => {
    const rnd = seeded(20261130);
    const sent = new Map<string, { headers: [string, string][]; trailers: [string, string][] }>();
    const { port } = await server({}, (s) => {
      const n = ((s.id ?? 1) - 1) / 2;
      const p = sent.get(String(n)) as { headers: [string, string][]; trailers: [string, string][] };
      s.respond(Object.fromEntries([[':status', 200], ...p.headers]), { waitForTrailers: true });
      s.on('wantTrailers', () => s.sendTrailers(Object.fromEntries(p.trailers)));
      s.end('x');
    });
    const conn = connect(port);
    const calls: Call[] = [];
    for (let n = 0; n < 300; n++) {
      const uniq = (fs: [string, string][]): [string, string][] => [...new Map(fs).entries()];
      // Repeats of earlier fields make nghttp2 index and then refer to them.
      const pool = [...sent.values()].flatMap((x) => x.headers).slice(-30);
      const fields = Array.from({ length: 1 + Math.floor(rnd() * 8) }, () => (pool.length > 0 && rnd() < 0.4 ? (pool[Math.floor(rnd() * pool.length)] as [string, string]) : randomField(rnd)));
      sent.set(String(n), { headers: uniq(fields), trailers: uniq([['grpc-status', String(n % 17)], randomField(rnd)]) });
      const c = new Call();
      conn.open(c).end();
      calls.push(c);
      if (n % 20 === 19) await Promise.all(calls.slice(-20).map((x) => x.done));
    }
    await Promise.all(calls.map((c) => c.done));
    calls.forEach((c, n) => {
      const p = sent.get(String(n)) as { headers: [string, string][]; trailers: [string, string][] };
      expect(c.closed).toBeUndefined();
      const headers = c.pairs(0).filter(([k]) => k !== 'date');
      expect(headers).toEqual([[':status', '200'], ...p.headers]);
      expect(c.pairs(1)).toEqual(p.trailers);
    });
  });

  it('moves 3 MiB each way through 1,000-byte stream windows and a slow reader, intact', async () => {
    const { port } = await server({ settings: { initialWindowSize: 1000 } }, (s) => {
      const parts: Buffer[] = [];
      s.on('data', (d: Buffer) => {
        parts.push(d);
        s.pause();
        setImmediate(() => s.resume());
      });
      s.on('end', () => {
        s.respond({ ':status': 200 });
        s.end(Buffer.concat(parts));
      });
    });
    const conn = connect(port);
    const body = randomBytes(3 * 1024 * 1024);
    const calls = [new Call(), new Call()];
    for (const c of calls) {
      const st = conn.open(c);
      for (let off = 0; off < body.length; off += 100_000) st.write(body.subarray(off, off + 100_000));
      st.end();
    }
    await Promise.all(calls.map((c) => c.done));
    for (const c of calls) {
      expect(c.closed).toBeUndefined();
      expect(sha(Buffer.concat(c.body))).toBe(sha(body));
    }
  });

  it("keeps to the server's MAX_CONCURRENT_STREAMS of 2 with 20 streams asked at once", async () => {
    let open = 0;
    let most = 0;
    const { port } = await server({ settings: { maxConcurrentStreams: 2 } }, (s) => {
      open++;
      most = Math.max(most, open);
      s.on('close', () => open--);
      s.resume();
      s.on('end', () =>
        setTimeout(() => {
          s.respond({ ':status': 200 });
          s.end('ok');
        }, 5),
      );
    });
    const conn = connect(port);
    // The first stream waits for the server's SETTINGS so the limit is known before the rest.
    const first = new Call();
    conn.open(first).end();
    await first.done;
    const calls = Array.from({ length: 20 }, () => new Call());
    for (const c of calls) conn.open(c).end();
    await Promise.all(calls.map((c) => c.done));
    expect(calls.every((c) => c.ended && !c.closed)).toBe(true);
    expect(most).toBeLessThanOrEqual(2);
  });

  it("answers the server's PING", async () => {
    const { port, sessions } = await server({}, (s) => {
      s.respond({ ':status': 200 });
      s.end();
    });
    const conn = connect(port);
    const c = new Call();
    conn.open(c).end();
    await c.done;
    const session = [...sessions][0] as http2.ServerHttp2Session;
    const ok = await new Promise<boolean>((r) => session.ping((err) => r(!err)));
    expect(ok).toBe(true);
  });

  it("the server's GOAWAY: open streams finish, later ones are refused, the connection closes", async () => {
    let held: http2.ServerHttp2Stream | undefined;
    const { port, sessions } = await server({}, (s) => {
      held = s;
      s.resume();
    });
    const conn = connect(port);
    const a = new Call();
    conn.open(a).end();
    await eventually(() => held !== undefined, 'the first stream reached the server');
    const session = [...sessions][0] as http2.ServerHttp2Session;
    session.goaway(http2.constants.NGHTTP2_NO_ERROR, 1);
    await eventually(() => !conn.usable, 'the connection saw the GOAWAY');
    const b = new Call();
    conn.open(b);
    await b.done;
    expect(b.closed?.kind).toBe('refused');
    held?.respond({ ':status': 200 });
    held?.end('last');
    await a.done;
    expect(a.ended).toBe(true);
    expect(Buffer.concat(a.body).toString()).toBe('last');
    await eventually(() => conn.closed, 'the connection closed once its last stream ended');
  });
});
