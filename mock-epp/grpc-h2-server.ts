// A small gRPC server transport straight on node:http2, for the mock EPP's hot path.
// Why not grpc-js: profiling showed its per-stream machinery (interceptor chain, Duplex
// objects, metadata, call tracking) costing more CPU than everything the mock does per
// ext_proc stream (docs/BENCHMARKS.md). This implements what the mock needs and nothing
// else: length-prefixed messages (no compression), response headers, messages, and
// grpc-status trailers (trailers-only when nothing was sent), RST_STREAM, cancellation,
// unknown methods (UNIMPLEMENTED), plaintext h2c or TLS with ALPN h2.
import { EventEmitter } from 'node:events';
import {
  constants as h2,
  createSecureServer,
  createServer,
  type Http2SecureServer,
  type Http2Server,
  type Http2Session,
  type IncomingHttpHeaders,
  type ServerHttp2Stream,
} from 'node:http2';
import { encodeGrpcFrame, GrpcFrameDecoder } from '../core/grpc-frame.ts';

// One peer string per HTTP/2 connection, not one per stream.
const peers = new WeakMap<object, string>();
function peerOf(stream: ServerHttp2Stream): string {
  const session = stream.session;
  if (!session) return 'unknown';
  let p = peers.get(session);
  if (p === undefined) {
    const sock = session.socket;
    const addr = sock?.remoteAddress ?? 'unknown';
    p = `${addr.includes(':') ? `[${addr}]` : addr}:${sock?.remotePort ?? 0}`;
    peers.set(session, p);
  }
  return p;
}

import { encodeGrpcMessage } from '../core/grpc-status-message.ts';
import type { CallHandler, Codec, GrpcServerCall, GrpcTransportServer, MethodHandler } from './grpc-transport.ts';

export type { Codec, MethodHandler } from './grpc-transport.ts';

/**
 * What a handler sees of one gRPC call: its events go to the handler object given to
 * setHandler, or else are emitted: 'message' (decoded or Undecodable), 'halfClose',
 * 'cancelled', 'refused'.
 */
export class GrpcCall<Req, Res> extends EventEmitter implements GrpcServerCall<Res> {
  readonly peer: string;
  readonly path: string;
  readonly #stream: ServerHttp2Stream;
  readonly #codec: Codec<Req> & { serializeRes: (m: Res) => Buffer };
  #headersSent = false;
  #ended = false;
  #status: { code: number; details: string } = { code: 0, details: '' };
  readonly #frames: GrpcFrameDecoder;
  #closed = false;
  /** Messages written whose write has not completed (still in the stream's JS buffer or nghttp2's queue). */
  #writing = 0;
  /** A reset waiting for those writes (see reset()). */
  #resetAfterWrites: number | undefined;
  #handler: CallHandler | undefined;

  constructor(stream: ServerHttp2Stream, path: string, codec: Codec<Req> & { serializeRes: (m: Res) => Buffer }, maxMessageBytes: number) {
    super();
    this.#stream = stream;
    this.path = path;
    this.#codec = codec;
    this.#frames = new GrpcFrameDecoder({ maxMessageBytes });
    this.peer = peerOf(stream);
    stream.on('data', (chunk: Buffer) => this.#onData(chunk));
    stream.on('end', () => {
      if (this.#ended) return;
      if (this.#handler) this.#handler.onHalfClose();
      else this.emit('halfClose');
    });
    stream.on('error', () => {
      // 'close' follows; the outcome is decided there.
    });
    stream.on('close', () => {
      this.#closed = true;
      this.#frames.clear();
      if (!this.#ended) {
        this.#ended = true;
        if (this.#handler) this.#handler.onCancelled(stream.rstCode);
        else this.emit('cancelled', stream.rstCode);
      }
    });
  }

  get ended(): boolean {
    return this.#ended;
  }

  setHandler(h: CallHandler): void {
    this.#handler = h;
  }

  #refused(reason: string): void {
    if (this.#handler) this.#handler.onRefused(reason);
    else this.emit('refused', reason);
  }

  #onData(chunk: Buffer): void {
    if (this.#ended) return;
    this.#frames.push(chunk);
    for (let f = this.#frames.next(); f !== undefined; f = this.#frames.next()) {
      if (f.kind === 'too-large') {
        this.#refused(`message of ${f.length} bytes over the gRPC receive limit ${f.limit}`);
        this.end(f.grpcStatus, f.detail);
        return;
      }
      if (f.compressed) {
        this.#frames.clear();
        this.#refused('compressed message (the mock accepts identity only)');
        this.end(12, 'message compression is not supported');
        return;
      }
      let msg: Req | { undecodable: string; size: number };
      try {
        msg = this.#codec.deserialize(f.message);
      } catch (e) {
        msg = { undecodable: (e as Error).message, size: f.message.length };
      }
      if (this.#handler) this.#handler.onMessage(msg);
      else this.emit('message', msg);
      if (this.#ended) return;
    }
  }

  #respond(): void {
    if (this.#headersSent) return;
    this.#headersSent = true;
    this.#stream.respond({ [h2.HTTP2_HEADER_STATUS]: 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    this.#stream.once('wantTrailers', () => {
      const t: Record<string, string> = { 'grpc-status': String(this.#status.code) };
      if (this.#status.details) t['grpc-message'] = encodeGrpcMessage(this.#status.details);
      try {
        this.#stream.sendTrailers(t);
      } catch {
        // stream already gone
      }
    });
  }

  write(m: Res): void {
    if (this.#ended || this.#closed) return;
    this.#respond();
    this.#writing++;
    this.#stream.write(encodeGrpcFrame(this.#codec.serializeRes(m)), () => {
      this.#writing--;
      if (this.#writing === 0 && this.#resetAfterWrites !== undefined && !this.#closed && !this.#stream.destroyed) this.#stream.close(this.#resetAfterWrites);
    });
  }

  /** Ends the call with a gRPC status (trailers-only when nothing was sent yet). */
  end(code = 0, details = ''): void {
    if (this.#ended) return;
    this.#ended = true;
    if (this.#closed || this.#stream.destroyed) return;
    this.#status = { code, details };
    if (!this.#headersSent) {
      this.#headersSent = true;
      const h: Record<string, string | number> = { [h2.HTTP2_HEADER_STATUS]: 200, 'content-type': 'application/grpc', 'grpc-status': String(code) };
      if (details) h['grpc-message'] = encodeGrpcMessage(details);
      this.#stream.respond(h, { endStream: true });
      return;
    }
    this.#stream.end();
  }

  /** RST_STREAM with an HTTP/2 error code. */
  reset(code: number = h2.NGHTTP2_INTERNAL_ERROR): string {
    const what = `RST_STREAM ${code === h2.NGHTTP2_INTERNAL_ERROR ? 'INTERNAL_ERROR' : code}`;
    if (this.#ended) return what;
    this.#ended = true;
    if (this.#closed) return what;
    // RST_STREAM only once what was written has gone out. Node's http2 (24.x) loops forever
    // when a stream is closed while a write is still buffered: the buffered write reaches
    // nghttp2 after the stream object is gone, its data source then reads 0 bytes without
    // EOF, and nghttp2 emits empty DATA frames in one synchronous loop until the process
    // runs out of memory (seen as a 22 GB `eppkit fuzz` on nginx: answer, answer, reset).
    if (this.#writing > 0) this.#resetAfterWrites = code;
    else this.#stream.close(code);
    return what;
  }
}

export interface GrpcH2ServerOptions {
  tls?: { cert: Buffer; key: Buffer };
  maxMessageBytes: number;
}

/** Routes gRPC methods by HTTP/2 path. */
export class GrpcH2Server implements GrpcTransportServer {
  readonly #methods = new Map<string, MethodHandler>();
  readonly #server: Http2Server | Http2SecureServer;
  readonly #sessions = new Set<Http2Session>();
  #maxMessageBytes: number;

  constructor(opts: GrpcH2ServerOptions) {
    this.#maxMessageBytes = opts.maxMessageBytes;
    const settings = { initialWindowSize: 1024 * 1024, maxConcurrentStreams: 100_000 };
    const onStream = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => this.#onStream(stream, headers);
    // Envoy ends every finished ext_proc stream with RST_STREAM. nghttp2's rapid-reset guard
    // (CVE-2023-44487; default burst 1000, then 33/s) would kill such a connection with a
    // protocol error after about a thousand requests, refusing every stream in flight. The mock
    // serves test traffic on loopback, so the limit is lifted.
    const base = { settings, maxSessionMemory: 64, streamResetBurst: 1_000_000_000, streamResetRate: 1_000_000_000 };
    this.#server = opts.tls
      ? createSecureServer({ ...base, cert: opts.tls.cert, key: opts.tls.key, ALPNProtocols: ['h2'] })
      : createServer(base);
    this.#server.on('stream', onStream);
    this.#server.on('session', (s: Http2Session) => {
      this.#sessions.add(s);
      // A bigger connection window than the 64 KiB default, so bodies stream without stalls.
      try {
        s.setLocalWindowSize(8 * 1024 * 1024);
      } catch {
        // not connected yet on some paths; the per-stream window setting still applies
      }
      s.on('error', () => {});
      s.on('close', () => this.#sessions.delete(s));
    });
    this.#server.on('sessionError', () => {});
  }

  addMethod(path: string, h: MethodHandler): this {
    this.#methods.set(path, h);
    return this;
  }

  #onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    stream.on('error', () => {});
    const path = String(headers[h2.HTTP2_HEADER_PATH] ?? '');
    const ct = String(headers['content-type'] ?? '');
    if (headers[h2.HTTP2_HEADER_METHOD] !== 'POST' || !ct.startsWith('application/grpc')) {
      stream.respond({ [h2.HTTP2_HEADER_STATUS]: 415 }, { endStream: true });
      return;
    }
    const m = this.#methods.get(path);
    if (!m) {
      stream.respond({ [h2.HTTP2_HEADER_STATUS]: 200, 'content-type': 'application/grpc', 'grpc-status': '12', 'grpc-message': encodeGrpcMessage(`unknown method ${path}`) }, { endStream: true });
      return;
    }
    const enc = headers['grpc-encoding'];
    if (enc !== undefined && enc !== 'identity') {
      // We never compress and accept only identity; uncompressed frames still parse.
    }
    m.handle(new GrpcCall(stream, path, m.codec, this.#maxMessageBytes));
  }

  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const onError = (e: Error) => reject(e);
      this.#server.once('error', onError);
      this.#server.listen(port, host, () => {
        this.#server.off('error', onError);
        const a = this.#server.address();
        resolve(typeof a === 'object' && a ? a.port : port);
      });
    });
  }

  /**
   * Stops accepting connections and sends GOAWAY; waits up to graceMs for open calls, then
   * calls `onGraceExpired` (end what is left with a status), then destroys what remains.
   */
  async close(graceMs: number, onGraceExpired: () => void = () => {}): Promise<void> {
    this.#server.close();
    for (const s of this.#sessions) s.close();
    const deadline = Date.now() + graceMs;
    while (this.#sessions.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    if (this.#sessions.size > 0) {
      onGraceExpired();
      const until = Date.now() + 200;
      while (this.#sessions.size > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    }
    for (const s of this.#sessions) s.destroy();
  }

  get openSessions(): number {
    return this.#sessions.size;
  }
}
