// The client side of one HTTP/2 connection (RFC 9113) over a socket the caller opened: frames,
// HPACK decoding, both directions of flow control, the peer's stream limit, PING, SETTINGS and
// GOAWAY. It carries what an ext_proc client needs and no more: streams we open with one fixed
// header block, DATA both ways, the answer's header blocks handed up decoded. No priorities, no
// server push (refused in our SETTINGS), no upgrade.
//
// Why not node:http2: its Http2Stream is a Duplex with nghttp2 under it, and at low request
// rates its set-up per stream was a large share of node-proxy's EPP hop (docs/BENCHMARKS.md).
//
// Every peer error has a defined outcome: a stream error resets that stream (RST_STREAM) and
// closes it for its handler; a connection error sends GOAWAY, destroys the socket and closes
// every stream. Nothing a peer sends throws out of the socket's 'data' handler.
import type { Duplex } from 'node:stream';
import { HpackDecoder, HpackError } from './hpack-decoder.ts';

export const FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

export const ErrorCode = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  SETTINGS_TIMEOUT: 0x4,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  ENHANCE_YOUR_CALM: 0xb,
} as const;

const FLAG_END_STREAM = 0x1;
const FLAG_ACK = 0x1;
const FLAG_END_HEADERS = 0x4;
const FLAG_PADDED = 0x8;
const FLAG_PRIORITY = 0x20;

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const MAX_WINDOW = 0x7fffffff;
const MAX_STREAM_ID = 0x7fffffff;
const DEFAULT_WINDOW = 65_535;
/** Our SETTINGS_MAX_FRAME_SIZE (the protocol's default; we never advertise more). */
const OUR_MAX_FRAME = 16_384;
/** Our per-stream receive window (SETTINGS_INITIAL_WINDOW_SIZE) and the connection's. */
const OUR_STREAM_WINDOW = 4 * 1024 * 1024;
const OUR_CONNECTION_WINDOW = 16 * 1024 * 1024;
/** A header block (with its CONTINUATIONs) larger than this is a connection error. */
const MAX_HEADER_BLOCK = 256 * 1024;
/** DATA goes to the socket only while less than this waits in its buffer; the rest waits per stream. */
const SOCKET_HIGH_WATER = 1024 * 1024;
/** Frames of one turn up to this size are copied into one buffer and written at once. */
const COALESCE_BYTES = 16 * 1024;

/** Why a stream ended without its peer's END_STREAM (or with a reset after it). */
export type StreamClose =
  | { kind: 'reset'; code: number } // the peer's RST_STREAM
  | { kind: 'refused'; detail: string } // never processed: above a GOAWAY's last stream, or never sent
  | { kind: 'lost'; detail: string } // the connection ended
  | { kind: 'protocol'; detail: string }; // the peer broke the protocol (we reset or closed)

/** What a stream's owner is told. Calls come from the socket's 'data' handler; they must not throw. */
export interface StreamHandler {
  /** A decoded header block: flat [name, value, name, value, …]; `end`: END_STREAM came with it. */
  onHeaders(fields: string[], end: boolean): void;
  onData(data: Buffer, end: boolean): void;
  /** The stream is gone without (or after) the peer's END_STREAM; called at most once, last. */
  onClose(why: StreamClose): void;
}

export interface H2ClientConnectionOptions {
  /** The request header block (HPACK), the same on every stream. */
  requestBlock: Buffer;
  /** The socket ended or failed; every stream has been closed by then. */
  onClosed?: (detail: string) => void;
}

/** One stream opened (or waiting to be opened) by us. */
export class H2ClientStream {
  id = 0;
  sendWindow = 0;
  /** DATA we could not send yet (flow control, socket buffer, or the peer's stream limit). */
  queue: Buffer[] = [];
  queuedBytes = 0;
  endQueued = false;
  localEnded = false;
  remoteEnded = false;
  headerBlocks = 0;
  /** Bytes received and not yet given back with a WINDOW_UPDATE. */
  unacked = 0;
  recvWindow = OUR_STREAM_WINDOW;
  closed = false;
  readonly conn: H2ClientConnection;
  readonly handler: StreamHandler;

  constructor(conn: H2ClientConnection, handler: StreamHandler) {
    this.conn = conn;
    this.handler = handler;
  }

  /** Sends `data` (a DATA payload: bytes of the stream's body); `end` half-closes after it. */
  write(data: Buffer, end = false): void {
    if (this.closed || this.localEnded || this.endQueued) return;
    this.conn.send(this, data, end);
  }

  /** Half-closes our side (END_STREAM). */
  end(): void {
    if (this.closed || this.localEnded || this.endQueued) return;
    this.conn.send(this, undefined, true);
  }

  /** RST_STREAM with `code`; the handler is not called. */
  reset(code: number): void {
    if (this.closed) return;
    this.conn.reset(this, code);
  }
}

export class H2ClientConnection {
  readonly #socket: Duplex;
  readonly #opts: H2ClientConnectionOptions;
  readonly #hpack = new HpackDecoder();
  readonly #streams = new Map<number, H2ClientStream>();
  /** Streams waiting for the peer's limit on concurrent streams. */
  readonly #waiting: H2ClientStream[] = [];
  /** Streams with DATA queued, in the order they blocked. */
  readonly #blocked = new Set<H2ClientStream>();
  #nextId = 1;
  #active = 0;
  #peerMaxStreams = Infinity;
  #peerInitialWindow = DEFAULT_WINDOW;
  #peerMaxFrame = 16_384;
  #sendWindow = DEFAULT_WINDOW;
  #recvUnacked = 0;
  #recvWindow = DEFAULT_WINDOW;
  #sawSettings = false;
  #goaway = false;
  #dead = false;
  #rest: Buffer | undefined;
  #out: Buffer[] = [];
  #flushScheduled = false;
  /** A header block in progress (HEADERS without END_HEADERS, then CONTINUATIONs). */
  #cont: { id: number; end: boolean; parts: Buffer[]; bytes: number } | undefined;

  constructor(socket: Duplex, opts: H2ClientConnectionOptions) {
    this.#socket = socket;
    this.#opts = opts;
    socket.on('data', (d: Buffer) => this.#onData(d));
    socket.on('drain', () => this.#drainBlocked());
    socket.on('error', (e: NodeJS.ErrnoException) => this.#lost(e.code ?? e.message));
    socket.on('close', () => this.#lost('connection closed'));
    socket.on('end', () => this.#lost('the EPP closed the connection'));
    // Preface, SETTINGS (no push; our stream window), and a larger connection window.
    const settings = Buffer.alloc(12);
    settings.writeUInt16BE(0x2, 0); // ENABLE_PUSH = 0
    settings.writeUInt32BE(0, 2);
    settings.writeUInt16BE(0x4, 6); // INITIAL_WINDOW_SIZE
    settings.writeUInt32BE(OUR_STREAM_WINDOW, 8);
    this.#push(PREFACE);
    this.#frame(FrameType.SETTINGS, 0, 0, settings);
    this.#windowUpdate(0, OUR_CONNECTION_WINDOW - DEFAULT_WINDOW);
    this.#recvWindow = OUR_CONNECTION_WINDOW;
  }

  /** New streams may be opened here (not after GOAWAY, a failure, or the last stream id). */
  get usable(): boolean {
    return !this.#dead && !this.#goaway && this.#nextId <= MAX_STREAM_ID;
  }

  get closed(): boolean {
    return this.#dead;
  }

  /** Streams open or waiting (for tests). */
  get streamCount(): number {
    return this.#streams.size + this.#waiting.length;
  }

  /** Opens a stream (HEADERS now, or when the peer's limit allows). */
  open(handler: StreamHandler): H2ClientStream {
    const s = new H2ClientStream(this, handler);
    if (!this.usable) {
      s.closed = true;
      queueMicrotask(() => handler.onClose({ kind: 'refused', detail: this.#dead ? 'EPP connection closed' : 'EPP connection draining (GOAWAY)' }));
      return s;
    }
    if (this.#active >= this.#peerMaxStreams) this.#waiting.push(s);
    else this.#start(s);
    return s;
  }

  /** Closes the connection: GOAWAY, then the socket; every stream is closed as lost. */
  close(detail = 'closed by the proxy'): void {
    if (this.#dead) return;
    this.#goawayFrame(ErrorCode.NO_ERROR);
    this.#flush();
    this.#fail(detail, 'lost');
    this.#socket.end();
    this.#socket.destroy();
  }

  #start(s: H2ClientStream): void {
    s.id = this.#nextId;
    this.#nextId += 2;
    s.sendWindow = this.#peerInitialWindow;
    this.#active++;
    this.#streams.set(s.id, s);
    this.#frame(FrameType.HEADERS, FLAG_END_HEADERS, s.id, this.#opts.requestBlock);
    if (s.queuedBytes > 0 || s.endQueued) this.#drain(s);
  }

  /** Called by H2ClientStream.write/end. */
  send(s: H2ClientStream, data: Buffer | undefined, end: boolean): void {
    if (end) s.endQueued = true;
    if (data && data.length > 0) {
      s.queue.push(data);
      s.queuedBytes += data.length;
    }
    if (s.id !== 0) this.#drain(s);
  }

  /** Called by H2ClientStream.reset. */
  reset(s: H2ClientStream, code: number): void {
    if (s.id === 0) {
      const i = this.#waiting.indexOf(s);
      if (i >= 0) this.#waiting.splice(i, 1);
      s.closed = true;
      return;
    }
    this.#frame(FrameType.RST_STREAM, 0, s.id, u32(code));
    this.#forget(s);
  }

  // ---- sending ----

  /** Sends what flow control and the socket allow of the stream's queue. */
  #drain(s: H2ClientStream): void {
    while (s.queuedBytes > 0) {
      const room = Math.min(s.sendWindow, this.#sendWindow, this.#peerMaxFrame);
      if (room <= 0 || this.#socket.writableLength > SOCKET_HIGH_WATER) {
        this.#blocked.add(s);
        return;
      }
      const head = s.queue[0] as Buffer;
      let chunk: Buffer;
      if (head.length <= room) {
        chunk = head;
        s.queue.shift();
      } else {
        chunk = head.subarray(0, room);
        s.queue[0] = head.subarray(room);
      }
      s.queuedBytes -= chunk.length;
      s.sendWindow -= chunk.length;
      this.#sendWindow -= chunk.length;
      const last = s.queuedBytes === 0 && s.endQueued;
      this.#frame(FrameType.DATA, last ? FLAG_END_STREAM : 0, s.id, chunk);
      if (last) this.#localEnd(s);
    }
    this.#blocked.delete(s);
    if (s.endQueued && !s.localEnded) {
      this.#frame(FrameType.DATA, FLAG_END_STREAM, s.id, EMPTY);
      this.#localEnd(s);
    }
  }

  #localEnd(s: H2ClientStream): void {
    s.localEnded = true;
    if (s.remoteEnded) this.#forget(s);
  }

  #drainBlocked(): void {
    for (const s of [...this.#blocked]) {
      if (this.#dead) return;
      this.#drain(s);
    }
  }

  #push(b: Buffer): void {
    this.#out.push(b);
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      // Frames written in one turn (HEADERS and the first message) leave in one writev.
      process.nextTick(() => this.#flush());
    }
  }

  #flush(): void {
    this.#flushScheduled = false;
    const out = this.#out;
    if (out.length === 0 || this.#socket.destroyed) {
      out.length = 0;
      return;
    }
    this.#out = [];
    if (out.length === 1) {
      this.#socket.write(out[0] as Buffer);
      return;
    }
    let bytes = 0;
    for (const b of out) bytes += b.length;
    if (bytes <= COALESCE_BYTES) {
      this.#socket.write(Buffer.concat(out, bytes));
      return;
    }
    this.#socket.cork();
    for (const b of out) this.#socket.write(b);
    this.#socket.uncork();
  }

  #frame(type: number, flags: number, id: number, payload: Buffer): void {
    const h = Buffer.allocUnsafe(9);
    h.writeUIntBE(payload.length, 0, 3);
    h[3] = type;
    h[4] = flags;
    h.writeUInt32BE(id, 5);
    this.#push(h);
    if (payload.length > 0) this.#push(payload);
  }

  #windowUpdate(id: number, n: number): void {
    this.#frame(FrameType.WINDOW_UPDATE, 0, id, u32(n));
  }

  #goawayFrame(code: number): void {
    const p = Buffer.alloc(8);
    p.writeUInt32BE(0, 0); // the peer opens no streams of its own
    p.writeUInt32BE(code, 4);
    this.#frame(FrameType.GOAWAY, 0, 0, p);
  }

  // ---- receiving ----

  #onData(chunk: Buffer): void {
    if (this.#dead) return;
    const buf = this.#rest ? Buffer.concat([this.#rest, chunk]) : chunk;
    this.#rest = undefined;
    let p = 0;
    while (buf.length - p >= 9 && !this.#dead) {
      const len = (buf[p] as number) * 65536 + (buf[p + 1] as number) * 256 + (buf[p + 2] as number);
      if (len > OUR_MAX_FRAME) return this.#connectionError(ErrorCode.FRAME_SIZE_ERROR, `frame of ${len} bytes over our limit of ${OUR_MAX_FRAME}`);
      if (buf.length - p - 9 < len) break;
      const type = buf[p + 3] as number;
      const flags = buf[p + 4] as number;
      const id = buf.readUInt32BE(p + 5) & 0x7fffffff;
      const payload = buf.subarray(p + 9, p + 9 + len);
      p += 9 + len;
      this.#onFrame(type, flags, id, payload);
    }
    if (!this.#dead && p < buf.length) this.#rest = buf.subarray(p);
  }

  #onFrame(type: number, flags: number, id: number, payload: Buffer): void {
    if (!this.#sawSettings) {
      if (type !== FrameType.SETTINGS || (flags & FLAG_ACK) !== 0) return this.#connectionError(ErrorCode.PROTOCOL_ERROR, `the EPP's first frame was type ${type}, not SETTINGS`);
      this.#sawSettings = true;
    }
    if (this.#cont && type !== FrameType.CONTINUATION) return this.#connectionError(ErrorCode.PROTOCOL_ERROR, `frame type ${type} inside a header block`);
    switch (type) {
      case FrameType.DATA:
        return this.#onDataFrame(flags, id, payload);
      case FrameType.HEADERS:
        return this.#onHeadersFrame(flags, id, payload);
      case FrameType.CONTINUATION:
        return this.#onContinuation(flags, id, payload);
      case FrameType.RST_STREAM:
        return this.#onRstStream(id, payload);
      case FrameType.SETTINGS:
        return this.#onSettings(flags, id, payload);
      case FrameType.PING:
        if (id !== 0) return this.#connectionError(ErrorCode.PROTOCOL_ERROR, 'PING on a stream');
        if (payload.length !== 8) return this.#connectionError(ErrorCode.FRAME_SIZE_ERROR, 'PING not 8 bytes');
        if ((flags & FLAG_ACK) === 0) this.#frame(FrameType.PING, FLAG_ACK, 0, Buffer.from(payload));
        return;
      case FrameType.GOAWAY:
        return this.#onGoaway(id, payload);
      case FrameType.WINDOW_UPDATE:
        return this.#onWindowUpdate(id, payload);
      case FrameType.PUSH_PROMISE:
        return this.#connectionError(ErrorCode.PROTOCOL_ERROR, 'PUSH_PROMISE with push disabled');
      case FrameType.PRIORITY:
        if (id === 0) return this.#connectionError(ErrorCode.PROTOCOL_ERROR, 'PRIORITY on stream 0');
        if (payload.length !== 5) return this.#connectionError(ErrorCode.FRAME_SIZE_ERROR, 'PRIORITY not 5 bytes');
        return;
      default:
        return; // unknown frame types are ignored (§5.5)
    }
  }

  /** A stream id the peer names: ours and open, ours and closed ('closed'), or never opened ('idle'). */
  #stream(id: number): H2ClientStream | 'closed' | 'idle' {
    const s = this.#streams.get(id);
    if (s) return s;
    return id % 2 === 1 && id < this.#nextId ? 'closed' : 'idle';
  }

  #onDataFrame(flags: number, id: number, payload: Buffer): void {
    if (id === 0) return this.#connectionError(ErrorCode.PROTOCOL_ERROR, 'DATA on stream 0');
    // Flow control counts the whole payload, padding included, on any stream.
    if (payload.length > this.#recvWindow) return this.#connectionError(ErrorCode.FLOW_CONTROL_ERROR, 'DATA beyond the connection window');
    this.#recvWindow -= payload.length;
    this.#recvUnacked += payload.length;
    if (this.#recvUnacked >= OUR_CONNECTION_WINDOW / 2) {
      this.#windowUpdate(0, this.#recvUnacked);
      this.#recvWindow += this.#recvUnacked;
      this.#recvUnacked = 0;
    }
    const s = this.#stream(id);
    if (s === 'idle') return this.#connectionError(ErrorCode.PROTOCOL_ERROR, `DATA on idle stream ${id}`);
    if (s === 'closed') return;
    if (s.remoteEnded) return this.#streamError(s, ErrorCode.STREAM_CLOSED, 'DATA after END_STREAM');
    if (s.headerBlocks === 0) return this.#streamError(s, ErrorCode.PROTOCOL_ERROR, 'DATA before the response headers');
    if (payload.length > s.recvWindow) return this.#streamError(s, ErrorCode.FLOW_CONTROL_ERROR, 'DATA beyond the stream window');
    s.recvWindow -= payload.length;
    const data = this.#unpad(flags, payload);
    if (data === undefined) return this.#connectionError(ErrorCode.PROTOCOL_ERROR, 'padding longer than the DATA frame');
    const end = (flags & FLAG_END_STREAM) !== 0;
    if (end) this.#remoteEnd(s);
    else {
      s.unacked += payload.length;
      if (s.unacked >= OUR_STREAM_WINDOW / 2) {
        this.#windowUpdate(s.id, s.unacked);
        s.recvWindow += s.unacked;
        s.unacked = 0;
      }
    }
    s.handler.onData(data, end);
  }

  #onHeadersFrame(flags: number, id: number, payload: Buffer): void {
    if (id === 0) return this.#connectionError(ErrorCode.PROTOCOL_ERROR, 'HEADERS on stream 0');
    let block = this.#unpad(flags, payload);
    if (block === undefined) return this.#connectionError(ErrorCode.PROTOCOL_ERROR, 'padding longer than the HEADERS frame');
    if (flags & FLAG_PRIORITY) {
      if (block.length < 5) return this.#connectionError(ErrorCode.FRAME_SIZE_ERROR, 'HEADERS too short for its priority');
      block = block.subarray(5);
    }
    const end = (flags & FLAG_END_STREAM) !== 0;
    if ((flags & FLAG_END_HEADERS) === 0) {
      this.#cont = { id, end, parts: [block], bytes: block.length };
      return;
    }
    this.#onHeaderBlock(id, end, block);
  }

  #onContinuation(flags: number, id: number, payload: Buffer): void {
    const c = this.#cont;
    if (!c || c.id !== id) return this.#connectionError(ErrorCode.PROTOCOL_ERROR, 'CONTINUATION without a header block in progress');
    c.parts.push(payload);
    c.bytes += payload.length;
    if (c.bytes > MAX_HEADER_BLOCK) return this.#connectionError(ErrorCode.ENHANCE_YOUR_CALM, `header block over ${MAX_HEADER_BLOCK} bytes`);
    if ((flags & FLAG_END_HEADERS) === 0) return;
    this.#cont = undefined;
    this.#onHeaderBlock(id, c.end, Buffer.concat(c.parts));
  }

  #onHeaderBlock(id: number, end: boolean, block: Buffer): void {
    // Decoded on every stream, also closed ones: the dynamic table belongs to the connection.
    const fields: string[] = [];
    try {
      this.#hpack.decode(block, (n, v) => {
        fields.push(n, v);
      });
    } catch (e) {
      if (e instanceof HpackError) return this.#connectionError(ErrorCode.COMPRESSION_ERROR, `header block: ${e.message}`);
      throw e;
    }
    const s = this.#stream(id);
    if (s === 'idle') return this.#connectionError(ErrorCode.PROTOCOL_ERROR, `HEADERS on idle stream ${id}`);
    if (s === 'closed') return;
    if (s.remoteEnded) return this.#streamError(s, ErrorCode.STREAM_CLOSED, 'HEADERS after END_STREAM');
    // An informational answer (1xx) before the response headers is skipped (RFC 9113 §8.1).
    if (s.headerBlocks === 0 && !end && fields[0] === ':status' && (fields[1] ?? '').startsWith('1')) return;
    // A second block is the trailers and must end the stream (gRPC sends nothing after them).
    if (s.headerBlocks >= 1 && !end) return this.#streamError(s, ErrorCode.PROTOCOL_ERROR, 'trailers without END_STREAM');
    s.headerBlocks++;
    if (end) this.#remoteEnd(s);
    s.handler.onHeaders(fields, end);
  }

  #onRstStream(id: number, payload: Buffer): void {
    if (id === 0) return this.#connectionError(ErrorCode.PROTOCOL_ERROR, 'RST_STREAM on stream 0');
    if (payload.length !== 4) return this.#connectionError(ErrorCode.FRAME_SIZE_ERROR, 'RST_STREAM not 4 bytes');
    const s = this.#stream(id);
    if (s === 'idle') return this.#connectionError(ErrorCode.PROTOCOL_ERROR, `RST_STREAM on idle stream ${id}`);
    if (s === 'closed') return;
    this.#forget(s);
    s.handler.onClose({ kind: 'reset', code: payload.readUInt32BE(0) });
  }

  #onSettings(flags: number, id: number, payload: Buffer): void {
    if (id !== 0) return this.#connectionError(ErrorCode.PROTOCOL_ERROR, 'SETTINGS on a stream');
    if (flags & FLAG_ACK) {
      if (payload.length !== 0) return this.#connectionError(ErrorCode.FRAME_SIZE_ERROR, 'SETTINGS ACK with a payload');
      return;
    }
    if (payload.length % 6 !== 0) return this.#connectionError(ErrorCode.FRAME_SIZE_ERROR, 'SETTINGS not a multiple of 6 bytes');
    for (let p = 0; p < payload.length; p += 6) {
      const key = payload.readUInt16BE(p);
      const value = payload.readUInt32BE(p + 2);
      if (key === 0x3) {
        this.#peerMaxStreams = value;
      } else if (key === 0x4) {
        if (value > MAX_WINDOW) return this.#connectionError(ErrorCode.FLOW_CONTROL_ERROR, `INITIAL_WINDOW_SIZE ${value}`);
        const delta = value - this.#peerInitialWindow;
        this.#peerInitialWindow = value;
        for (const s of this.#streams.values()) {
          s.sendWindow += delta;
          if (s.sendWindow > MAX_WINDOW) return this.#connectionError(ErrorCode.FLOW_CONTROL_ERROR, 'a stream window over 2^31-1');
        }
      } else if (key === 0x5) {
        if (value < 16_384 || value > 16_777_215) return this.#connectionError(ErrorCode.PROTOCOL_ERROR, `MAX_FRAME_SIZE ${value}`);
        this.#peerMaxFrame = value;
      } else if (key === 0x2 && value > 1) {
        return this.#connectionError(ErrorCode.PROTOCOL_ERROR, `ENABLE_PUSH ${value}`);
      }
      // HEADER_TABLE_SIZE: our encoder uses no dynamic table. MAX_HEADER_LIST_SIZE: our block is small.
    }
    this.#frame(FrameType.SETTINGS, FLAG_ACK, 0, EMPTY);
    this.#openWaiting();
    this.#drainBlocked();
  }

  #onGoaway(id: number, payload: Buffer): void {
    if (id !== 0) return this.#connectionError(ErrorCode.PROTOCOL_ERROR, 'GOAWAY on a stream');
    if (payload.length < 8) return this.#connectionError(ErrorCode.FRAME_SIZE_ERROR, 'GOAWAY shorter than 8 bytes');
    const last = payload.readUInt32BE(0) & 0x7fffffff;
    const code = payload.readUInt32BE(4);
    this.#goaway = true;
    const detail = `EPP sent GOAWAY (code ${code}, last stream ${last})`;
    for (const s of [...this.#streams.values()]) {
      if (s.id > last) {
        this.#forget(s);
        s.handler.onClose({ kind: 'refused', detail });
      }
    }
    this.#failWaiting(detail);
    if (this.#streams.size === 0) this.close(detail);
  }

  #onWindowUpdate(id: number, payload: Buffer): void {
    if (payload.length !== 4) return this.#connectionError(ErrorCode.FRAME_SIZE_ERROR, 'WINDOW_UPDATE not 4 bytes');
    const n = payload.readUInt32BE(0) & 0x7fffffff;
    if (id === 0) {
      if (n === 0) return this.#connectionError(ErrorCode.PROTOCOL_ERROR, 'WINDOW_UPDATE of 0');
      this.#sendWindow += n;
      if (this.#sendWindow > MAX_WINDOW) return this.#connectionError(ErrorCode.FLOW_CONTROL_ERROR, 'connection window over 2^31-1');
      return this.#drainBlocked();
    }
    const s = this.#stream(id);
    if (s === 'idle') return this.#connectionError(ErrorCode.PROTOCOL_ERROR, `WINDOW_UPDATE on idle stream ${id}`);
    if (s === 'closed') return;
    if (n === 0) return this.#streamError(s, ErrorCode.PROTOCOL_ERROR, 'WINDOW_UPDATE of 0');
    s.sendWindow += n;
    if (s.sendWindow > MAX_WINDOW) return this.#streamError(s, ErrorCode.FLOW_CONTROL_ERROR, 'stream window over 2^31-1');
    if (s.queuedBytes > 0 || (s.endQueued && !s.localEnded)) this.#drain(s);
  }

  #unpad(flags: number, payload: Buffer): Buffer | undefined {
    if ((flags & FLAG_PADDED) === 0) return payload;
    if (payload.length < 1) return undefined;
    const pad = payload[0] as number;
    if (pad >= payload.length) return undefined;
    return payload.subarray(1, payload.length - pad);
  }

  // ---- stream and connection ends ----

  /**
   * The peer's END_STREAM, before the handler hears of it: a stream closed both ways is gone
   * by then, so a handler that closes its side in answer sends nothing more (no RST_STREAM).
   */
  #remoteEnd(s: H2ClientStream): void {
    s.remoteEnded = true;
    if (s.localEnded) this.#forget(s);
  }

  /** The stream leaves the table; its slot under the peer's limit goes to a waiting stream. */
  #forget(s: H2ClientStream): void {
    if (s.closed) return;
    s.closed = true;
    s.queue.length = 0;
    s.queuedBytes = 0;
    this.#blocked.delete(s);
    if (this.#streams.delete(s.id)) this.#active--;
    this.#openWaiting();
    // Draining (GOAWAY, or every stream id used): closed once its last stream is done.
    if (!this.usable && this.#streams.size === 0 && this.#waiting.length === 0 && !this.#dead) this.close('draining and no stream left');
  }

  #openWaiting(): void {
    while (this.#waiting.length > 0 && this.#active < this.#peerMaxStreams && this.usable) this.#start(this.#waiting.shift() as H2ClientStream);
  }

  #failWaiting(detail: string): void {
    const w = this.#waiting.splice(0);
    for (const s of w) {
      s.closed = true;
      s.handler.onClose({ kind: 'refused', detail });
    }
  }

  #streamError(s: H2ClientStream, code: number, detail: string): void {
    this.#frame(FrameType.RST_STREAM, 0, s.id, u32(code));
    this.#forget(s);
    s.handler.onClose({ kind: 'protocol', detail });
  }

  #connectionError(code: number, detail: string): void {
    if (this.#dead) return;
    this.#goawayFrame(code);
    this.#flush();
    this.#fail(`EPP protocol error: ${detail}`, 'protocol');
    this.#socket.destroy();
  }

  #lost(detail: string): void {
    if (this.#dead) return;
    this.#fail(detail, 'lost');
    this.#socket.destroy();
  }

  #fail(detail: string, kind: 'lost' | 'protocol'): void {
    this.#dead = true;
    this.#rest = undefined;
    const open = [...this.#streams.values()];
    this.#streams.clear();
    this.#blocked.clear();
    this.#active = 0;
    for (const s of open) {
      s.closed = true;
      s.handler.onClose({ kind, detail });
    }
    this.#failWaiting(detail);
    this.#opts.onClosed?.(detail);
  }
}

const EMPTY = Buffer.alloc(0);

function u32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
}
