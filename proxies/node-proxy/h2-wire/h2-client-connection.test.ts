// The connection against a scripted peer on an in-memory socket: what it sends for each thing
// the peer does, frame by frame, including every connection and stream error it must detect.
import { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ErrorCode, FrameType, H2ClientConnection, type StreamClose, type StreamHandler } from './h2-client-connection.ts';
import { encodeHeaderBlock } from './hpack-encoder.ts';

interface Frame {
  type: number;
  flags: number;
  id: number;
  payload: Buffer;
}

/** An in-memory socket: what the client writes is parsed into frames; `send` feeds it bytes. */
class Peer {
  readonly socket: Duplex;
  readonly frames: Frame[] = [];
  #buf = Buffer.alloc(0);
  #preface = false;
  destroyed = false;

  constructor() {
    this.socket = new Duplex({
      read: () => undefined,
      write: (chunk: Buffer, _enc, cb) => {
        this.#take(chunk);
        cb();
      },
      destroy: (_e, cb) => {
        this.destroyed = true;
        cb(null);
      },
    });
  }

  #take(chunk: Buffer): void {
    this.#buf = Buffer.concat([this.#buf, chunk]);
    if (!this.#preface) {
      if (this.#buf.length < 24) return;
      expect(this.#buf.subarray(0, 24).toString('latin1')).toBe('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
      this.#buf = this.#buf.subarray(24);
      this.#preface = true;
    }
    while (this.#buf.length >= 9) {
      const len = this.#buf.readUIntBE(0, 3);
      if (this.#buf.length < 9 + len) return;
      this.frames.push({ type: this.#buf[3] as number, flags: this.#buf[4] as number, id: this.#buf.readUInt32BE(5), payload: Buffer.from(this.#buf.subarray(9, 9 + len)) });
      this.#buf = this.#buf.subarray(9 + len);
    }
  }

  send(type: number, flags: number, id: number, payload: Buffer | number[] = []): void {
    const p = Buffer.from(payload);
    const h = Buffer.alloc(9);
    h.writeUIntBE(p.length, 0, 3);
    h[3] = type;
    h[4] = flags;
    h.writeUInt32BE(id, 5);
    this.socket.push(Buffer.concat([h, p]));
  }

  settings(pairs: [number, number][] = []): void {
    const p = Buffer.alloc(6 * pairs.length);
    pairs.forEach(([k, v], i) => {
      p.writeUInt16BE(k, 6 * i);
      p.writeUInt32BE(v, 6 * i + 2);
    });
    this.send(FrameType.SETTINGS, 0, 0, p);
  }

  of(type: number, id?: number): Frame[] {
    return this.frames.filter((f) => f.type === type && (id === undefined || f.id === id));
  }
}

class Recorder implements StreamHandler {
  headers: { fields: string[]; end: boolean }[] = [];
  data: Buffer[] = [];
  ended = false;
  closed: StreamClose | undefined;
  /** Called from inside the handler when the peer ends the stream (as WireCall closes its side). */
  onEnd: (() => void) | undefined;
  onHeaders(fields: string[], end: boolean): void {
    this.headers.push({ fields, end });
    if (end) this.#end();
  }
  onData(d: Buffer, end: boolean): void {
    this.data.push(Buffer.from(d));
    if (end) this.#end();
  }
  #end(): void {
    this.ended = true;
    this.onEnd?.();
  }
  onClose(why: StreamClose): void {
    this.closed = why;
  }
}

const BLOCK = encodeHeaderBlock([{ index: 3 }, { index: 6 }, { nameIndex: 4, value: '/svc/Method' }]);
const RESPONSE = encodeHeaderBlock([{ index: 8 }, { nameIndex: 31, value: 'application/grpc' }]);
const TRAILERS = encodeHeaderBlock([{ name: 'grpc-status', value: '0' }]);
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

async function setup(settings: [number, number][] = []): Promise<{ peer: Peer; conn: H2ClientConnection; closed: string[] }> {
  const peer = new Peer();
  const closed: string[] = [];
  const conn = new H2ClientConnection(peer.socket, { requestBlock: BLOCK, onClosed: (d) => closed.push(d) });
  peer.settings(settings);
  await tick();
  return { peer, conn, closed };
}

function goaway(peer: Peer): { code: number } | undefined {
  const g = peer.of(FrameType.GOAWAY)[0];
  return g ? { code: g.payload.readUInt32BE(4) } : undefined;
}

describe('H2ClientConnection', () => {
  it('sends the preface, SETTINGS (push off) and a connection window; ACKs the peer SETTINGS', async () => {
    const { peer } = await setup();
    const s = peer.of(FrameType.SETTINGS);
    expect(s[0]?.flags).toBe(0);
    expect(s[0]?.payload.readUInt16BE(0)).toBe(0x2);
    expect(s[0]?.payload.readUInt32BE(2)).toBe(0);
    expect(s.some((f) => f.flags === 1 && f.payload.length === 0)).toBe(true);
    expect(peer.of(FrameType.WINDOW_UPDATE, 0)[0]?.payload.readUInt32BE(0)).toBe(16 * 1024 * 1024 - 65_535);
  });

  it('a stream: HEADERS with the fixed block and its first DATA leave in one flush; answer, trailers, close', async () => {
    const { peer, conn } = await setup();
    const r = new Recorder();
    const s = conn.open(r);
    s.write(Buffer.from('hello'));
    await tick();
    const h = peer.of(FrameType.HEADERS, 1)[0] as Frame;
    expect(h.flags & 0x4).toBe(0x4);
    expect(h.payload.equals(BLOCK)).toBe(true);
    expect(peer.of(FrameType.DATA, 1)[0]?.payload.toString()).toBe('hello');
    s.end();
    await tick();
    expect(peer.of(FrameType.DATA, 1)[1]?.flags).toBe(1);
    peer.send(FrameType.HEADERS, 0x4, 1, RESPONSE);
    peer.send(FrameType.DATA, 0, 1, Buffer.from('answer'));
    peer.send(FrameType.HEADERS, 0x5, 1, TRAILERS);
    await tick();
    expect(r.headers[0]?.fields).toEqual([':status', '200', 'content-type', 'application/grpc']);
    expect(Buffer.concat(r.data).toString()).toBe('answer');
    expect(r.headers[1]).toEqual({ fields: ['grpc-status', '0'], end: true });
    expect(r.closed).toBeUndefined();
    expect(conn.streamCount).toBe(0);
  });

  it('a stream closed both ways is gone before its handler hears the end: closing our side then sends nothing', async () => {
    const { peer, conn } = await setup();
    const r = new Recorder();
    const s = conn.open(r);
    r.onEnd = () => s.reset(ErrorCode.NO_ERROR);
    s.end();
    peer.send(FrameType.HEADERS, 0x5, 1, Buffer.concat([RESPONSE, TRAILERS]));
    await tick();
    expect(r.ended).toBe(true);
    expect(peer.of(FrameType.RST_STREAM)).toEqual([]);
    // Still open on our side: the same close is a RST_STREAM NO_ERROR.
    const r2 = new Recorder();
    const s2 = conn.open(r2);
    r2.onEnd = () => s2.reset(ErrorCode.NO_ERROR);
    await tick();
    peer.send(FrameType.HEADERS, 0x5, 3, Buffer.concat([RESPONSE, TRAILERS]));
    await tick();
    expect(peer.of(FrameType.RST_STREAM, 3)[0]?.payload.readUInt32BE(0)).toBe(ErrorCode.NO_ERROR);
  });

  it('honours the peer windows: DATA split at the stream window, the rest after WINDOW_UPDATE', async () => {
    const { peer, conn } = await setup([[0x4, 10]]);
    const s = conn.open(new Recorder());
    s.write(Buffer.from('0123456789abcdefghij'), true);
    await tick();
    expect(peer.of(FrameType.DATA, 1).map((f) => f.payload.toString())).toEqual(['0123456789']);
    peer.send(FrameType.WINDOW_UPDATE, 0, 1, u32(4));
    await tick();
    expect(peer.of(FrameType.DATA, 1).map((f) => f.payload.toString())).toEqual(['0123456789', 'abcd']);
    peer.settings([[0x4, 30]]); // +20 on the open stream
    await tick();
    const d = peer.of(FrameType.DATA, 1);
    expect(d.map((f) => f.payload.toString())).toEqual(['0123456789', 'abcd', 'efghij']);
    expect(d[2]?.flags).toBe(1); // END_STREAM with the last bytes
  });

  it('honours the connection window across streams', async () => {
    const { peer, conn } = await setup();
    const big = Buffer.alloc(70_000, 1);
    conn.open(new Recorder()).write(big);
    await tick();
    const sent = peer.of(FrameType.DATA, 1).reduce((n, f) => n + f.payload.length, 0);
    expect(sent).toBe(65_535);
    expect(Math.max(...peer.of(FrameType.DATA, 1).map((f) => f.payload.length))).toBeLessThanOrEqual(16_384);
    peer.send(FrameType.WINDOW_UPDATE, 0, 0, u32(10_000));
    await tick();
    expect(peer.of(FrameType.DATA, 1).reduce((n, f) => n + f.payload.length, 0)).toBe(65_535); // the stream window is spent too
    peer.send(FrameType.WINDOW_UPDATE, 0, 1, u32(10_000));
    await tick();
    expect(peer.of(FrameType.DATA, 1).reduce((n, f) => n + f.payload.length, 0)).toBe(70_000);
  });

  it('waits for a slot under MAX_CONCURRENT_STREAMS', async () => {
    const { peer, conn } = await setup([[0x3, 1]]);
    const a = conn.open(new Recorder());
    conn.open(new Recorder());
    await tick();
    expect(peer.of(FrameType.HEADERS).map((f) => f.id)).toEqual([1]);
    a.reset(ErrorCode.CANCEL);
    await tick();
    expect(peer.of(FrameType.RST_STREAM, 1)[0]?.payload.readUInt32BE(0)).toBe(ErrorCode.CANCEL);
    expect(peer.of(FrameType.HEADERS).map((f) => f.id)).toEqual([1, 3]);
  });

  it('answers PING with an ACK of the same payload', async () => {
    const { peer } = await setup();
    peer.send(FrameType.PING, 0, 0, Buffer.from('12345678'));
    await tick();
    const p = peer.of(FrameType.PING)[0] as Frame;
    expect(p.flags).toBe(1);
    expect(p.payload.toString()).toBe('12345678');
  });

  it('GOAWAY: streams above the last id are refused, the rest finish, then the connection closes', async () => {
    const { peer, conn, closed } = await setup();
    const a = new Recorder();
    const b = new Recorder();
    conn.open(a).end();
    conn.open(b).end();
    await tick();
    peer.send(FrameType.GOAWAY, 0, 0, [0, 0, 0, 1, 0, 0, 0, 0]);
    await tick();
    expect(b.closed).toEqual({ kind: 'refused', detail: 'EPP sent GOAWAY (code 0, last stream 1)' });
    expect(a.closed).toBeUndefined();
    expect(conn.usable).toBe(false);
    const c = new Recorder();
    conn.open(c);
    await tick();
    expect(c.closed?.kind).toBe('refused');
    peer.send(FrameType.HEADERS, 0x5, 1, Buffer.concat([RESPONSE, TRAILERS]));
    await tick();
    expect(a.ended).toBe(true);
    expect(closed).toHaveLength(1);
    expect(peer.destroyed).toBe(true);
  });

  it('RST_STREAM from the peer closes that stream with its code', async () => {
    const { peer, conn } = await setup();
    const r = new Recorder();
    conn.open(r);
    await tick();
    peer.send(FrameType.RST_STREAM, 0, 1, u32(ErrorCode.REFUSED_STREAM));
    await tick();
    expect(r.closed).toEqual({ kind: 'reset', code: ErrorCode.REFUSED_STREAM });
  });

  it('padded DATA and a header block in CONTINUATIONs decode alike', async () => {
    const { peer, conn } = await setup();
    const r = new Recorder();
    conn.open(r);
    await tick();
    peer.send(FrameType.HEADERS, 0x8, 1, Buffer.concat([Buffer.from([3]), RESPONSE.subarray(0, 1), Buffer.from([0, 0, 0])]));
    peer.send(FrameType.CONTINUATION, 0x4, 1, RESPONSE.subarray(1));
    peer.send(FrameType.DATA, 0x8, 1, Buffer.concat([Buffer.from([2]), Buffer.from('xy'), Buffer.from([0, 0])]));
    await tick();
    expect(r.headers[0]?.fields.slice(0, 2)).toEqual([':status', '200']);
    expect(Buffer.concat(r.data).toString()).toBe('xy');
  });

  it('skips an informational (1xx) header block before the response headers', async () => {
    const { peer, conn } = await setup();
    const r = new Recorder();
    conn.open(r);
    await tick();
    peer.send(FrameType.HEADERS, 0x4, 1, encodeHeaderBlock([{ nameIndex: 8, value: '100' }]));
    peer.send(FrameType.HEADERS, 0x4, 1, RESPONSE);
    peer.send(FrameType.HEADERS, 0x5, 1, TRAILERS);
    await tick();
    expect(r.headers.map((h) => h.fields[1])).toEqual(['200', '0']);
    expect(r.closed).toBeUndefined();
    expect(r.ended).toBe(true);
  });

  it('gives back the receive window as data arrives', async () => {
    const { peer, conn } = await setup();
    conn.open(new Recorder());
    await tick();
    peer.send(FrameType.HEADERS, 0x4, 1, RESPONSE);
    for (let i = 0; i < 140; i++) peer.send(FrameType.DATA, 0, 1, Buffer.alloc(16_384));
    await tick();
    const updates = peer.of(FrameType.WINDOW_UPDATE, 1);
    expect(updates.length).toBeGreaterThan(0);
    expect(updates.reduce((n, f) => n + f.payload.readUInt32BE(0), 0)).toBeGreaterThanOrEqual(2 * 1024 * 1024);
  });

  const connectionErrors: [string, (p: Peer) => void, number][] = [
    ['a first frame that is not SETTINGS', (p) => p.send(FrameType.PING, 0, 0, Buffer.alloc(8)), ErrorCode.PROTOCOL_ERROR],
    ['a frame over 16384 bytes', (p) => p.send(FrameType.DATA, 0, 1, Buffer.alloc(16_385)), ErrorCode.FRAME_SIZE_ERROR],
    ['PUSH_PROMISE', (p) => p.send(FrameType.PUSH_PROMISE, 0x4, 1, [0, 0, 0, 2]), ErrorCode.PROTOCOL_ERROR],
    ['HEADERS on a stream never opened', (p) => p.send(FrameType.HEADERS, 0x4, 5, RESPONSE), ErrorCode.PROTOCOL_ERROR],
    ['a header block that does not decode', (p) => p.send(FrameType.HEADERS, 0x4, 1, [0x80]), ErrorCode.COMPRESSION_ERROR],
    ['a frame between HEADERS and its CONTINUATION', (p) => {
      p.send(FrameType.HEADERS, 0, 1, RESPONSE);
      p.send(FrameType.PING, 0, 0, Buffer.alloc(8));
    }, ErrorCode.PROTOCOL_ERROR],
    ['a connection WINDOW_UPDATE past 2^31-1', (p) => p.send(FrameType.WINDOW_UPDATE, 0, 0, u32(0x7fffffff)), ErrorCode.FLOW_CONTROL_ERROR],
    ['SETTINGS with a MAX_FRAME_SIZE under 16384', (p) => p.settings([[0x5, 100]]), ErrorCode.PROTOCOL_ERROR],
    ['a SETTINGS payload not a multiple of 6', (p) => p.send(FrameType.SETTINGS, 0, 0, [0, 1, 0]), ErrorCode.FRAME_SIZE_ERROR],
    ['padding longer than the frame', (p) => {
      p.send(FrameType.HEADERS, 0x4, 1, RESPONSE);
      p.send(FrameType.DATA, 0x8, 1, [9, 1]);
    }, ErrorCode.PROTOCOL_ERROR],
  ];

  it.each(connectionErrors)('a connection error on %s: GOAWAY with its code, socket destroyed, streams closed', async (_what, act, code) => {
    const peer = new Peer();
    const closed: string[] = [];
    const conn = new H2ClientConnection(peer.socket, { requestBlock: BLOCK, onClosed: (d) => closed.push(d) });
    const r = new Recorder();
    conn.open(r);
    if (_what !== 'a first frame that is not SETTINGS') peer.settings();
    act(peer);
    await tick();
    expect(goaway(peer)?.code).toBe(code);
    expect(peer.destroyed).toBe(true);
    expect(r.closed?.kind).toBe('protocol');
    expect(closed[0]).toMatch(/^EPP protocol error: /);
    expect(conn.usable).toBe(false);
  });

  const streamErrors: [string, (p: Peer) => void, number][] = [
    ['DATA before the response headers', (p) => p.send(FrameType.DATA, 0, 1, Buffer.from('x')), ErrorCode.PROTOCOL_ERROR],
    ['trailers without END_STREAM', (p) => {
      p.send(FrameType.HEADERS, 0x4, 1, RESPONSE);
      p.send(FrameType.HEADERS, 0x4, 1, TRAILERS);
    }, ErrorCode.PROTOCOL_ERROR],
    ['a stream WINDOW_UPDATE of 0', (p) => p.send(FrameType.WINDOW_UPDATE, 0, 1, u32(0)), ErrorCode.PROTOCOL_ERROR],
  ];

  it.each(streamErrors)('a stream error on %s: RST_STREAM with its code; the connection lives on', async (_what, act, code) => {
    const { peer, conn } = await setup();
    const r = new Recorder();
    conn.open(r);
    await tick();
    act(peer);
    await tick();
    expect(peer.of(FrameType.RST_STREAM, 1)[0]?.payload.readUInt32BE(0)).toBe(code);
    expect(r.closed?.kind).toBe('protocol');
    expect(conn.usable).toBe(true);
    expect(goaway(peer)).toBeUndefined();
  });

  it('the socket closing closes every open stream as lost, and a waiting one (never sent) as refused', async () => {
    const { peer, conn, closed } = await setup([[0x3, 1]]);
    const a = new Recorder();
    const b = new Recorder();
    conn.open(a);
    conn.open(b);
    await tick();
    peer.socket.push(null);
    await tick();
    expect(a.closed?.kind).toBe('lost');
    expect(b.closed?.kind).toBe('refused');
    expect(closed).toHaveLength(1);
  });

  it('frames for a stream we reset are dropped, but their header blocks still update the table', async () => {
    const { peer, conn } = await setup();
    const a = conn.open(new Recorder());
    const b = new Recorder();
    conn.open(b);
    await tick();
    a.reset(ErrorCode.CANCEL);
    // Stream 1's late answer inserts 'x-late: 1' into the dynamic table (literal with indexing)…
    peer.send(FrameType.HEADERS, 0x4, 1, Buffer.concat([Buffer.from([0x88, 0x40, 6]), Buffer.from('x-late'), Buffer.from([1]), Buffer.from('1')]));
    peer.send(FrameType.DATA, 0, 1, Buffer.from('ignored'));
    // …and stream 3 refers to it by index 62.
    peer.send(FrameType.HEADERS, 0x4, 3, Buffer.from([0x88, 0xbe]));
    await tick();
    expect(b.headers[0]?.fields).toEqual([':status', '200', 'x-late', '1']);
    expect(conn.usable).toBe(true);
  });
});

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
}
