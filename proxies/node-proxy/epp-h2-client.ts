// The node:http2 ext_proc client (`eppClient: http2`; the default is `wire`, epp-wire-client.ts):
// the Process bidi stream spoken directly on node:http2 (gRPC framing: 5-byte prefix,
// content-type application/grpc, grpc-status in trailers), one HTTP/2 session per EPP target,
// many streams on it. The grpc-js client (`eppClient: grpc-js`) costs ~2.5x its CPU per stream,
// and it costs 2.4-3.7x that of `wire` (docs/BENCHMARKS.md).
// It offers exactly what EppExchange uses of a grpc-js ClientDuplexStream: write, end, cancel,
// and the events data, error (a ServiceError-like {code, details}), end, status.
import { EventEmitter } from 'node:events';
import * as http2 from 'node:http2';
import type * as net from 'node:net';
import type * as tls from 'node:tls';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { encodeGrpcFrame, GrpcFrameDecoder } from '../../core/grpc-frame.ts';
import { EXT_PROC_METHOD_PATH, type ProcessingRequest } from '../../core/proto.ts';
import type { EppTls } from '../../core/route-model.ts';
import { encodeProcessingRequest } from '../../mock-epp/ext-proc-codec.ts';
import { type EppAddress, eppAddress } from './epp-address.ts';
import { emitOutcome, grpcMessageOf, grpcStatusOf, readAnswers } from './epp-answers.ts';

/** Reconnect backoff of both lean clients: from 100 ms, doubling, at most 2 s. */
export const INITIAL_BACKOFF_MS = 100;
export const MAX_BACKOFF_MS = 2000;
/**
 * Default limit on one EPP answer: room for a replaced body at the default route limit (16 MiB)
 * plus headers. EppChannels passes the configured routes' largest maxBodyBytes + 1 MiB.
 */
export const DEFAULT_MAX_MESSAGE_BYTES = 17 * 1024 * 1024;

/** One ext_proc stream. */
export class H2Call extends EventEmitter {
  private readonly stream: http2.ClientHttp2Stream | undefined;
  private readonly frames: GrpcFrameDecoder;
  private done = false;
  private grpcStatus: number | undefined;
  private grpcMessage = '';
  private cancelled = false;

  constructor(target: H2Target) {
    super();
    this.frames = new GrpcFrameDecoder({ maxMessageBytes: target.maxMessageBytes });
    const session = target.session();
    if (typeof session === 'string') {
      // Still backing off after a failed connect: fail fast, as grpc-js does in TRANSIENT_FAILURE.
      queueMicrotask(() => this.finish(GrpcStatus.UNAVAILABLE, session));
      return;
    }
    const stream = session.request(
      {
        ':method': 'POST',
        ':path': EXT_PROC_METHOD_PATH,
        ':authority': target.authority,
        'content-type': 'application/grpc',
        te: 'trailers',
      },
      { endStream: false },
    );
    this.stream = stream;
    stream.on('response', (h) => {
      const s = h[':status'];
      if (s !== 200) return this.finish(GrpcStatus.UNKNOWN, `HTTP status ${s}`);
      // Trailers-only answer: the status is in the headers.
      if (h['grpc-status'] !== undefined) this.takeStatus(h);
    });
    stream.on('trailers', (t) => this.takeStatus(t));
    stream.on('data', (d: Buffer) => this.onData(d));
    // The server's END_STREAM: every message has been read; the status came in the trailers
    // (or the trailers-only headers). Our side may still be open: close it, the call is over.
    stream.on('end', () => {
      if (this.grpcStatus !== undefined) this.finish(this.grpcStatus, this.grpcMessage);
      else this.finish(GrpcStatus.INTERNAL, 'the EPP ended the stream without a grpc-status');
      if (!stream.destroyed) stream.close(http2.constants.NGHTTP2_NO_ERROR);
    });
    stream.on('error', () => undefined); // the outcome is decided on 'close'
    stream.on('close', () => {
      if (this.cancelled) return this.finish(GrpcStatus.CANCELLED, 'cancelled by the proxy');
      if (this.grpcStatus !== undefined) return this.finish(this.grpcStatus, this.grpcMessage);
      const rst = stream.rstCode;
      if (!target.wasConnected) return this.finish(GrpcStatus.UNAVAILABLE, target.lastError || 'connection failed');
      if (rst === http2.constants.NGHTTP2_REFUSED_STREAM) return this.finish(GrpcStatus.UNAVAILABLE, 'stream refused');
      this.finish(GrpcStatus.INTERNAL, `stream closed without status (RST_STREAM code ${rst ?? 'none'})`);
    });
  }

  write(msg: ProcessingRequest): boolean {
    if (!this.stream || this.done || this.stream.destroyed) return false;
    // protobufjs encode of the plain message, without the proto loader's fromObject copy of it
    // (the copy was a large share of this client's garbage per stream).
    return this.stream.write(encodeGrpcFrame(encodeProcessingRequest(msg)));
  }

  end(): void {
    if (this.stream && !this.stream.destroyed && !this.stream.writableEnded) this.stream.end();
  }

  cancel(): void {
    if (this.done) return;
    this.cancelled = true;
    if (this.stream && !this.stream.destroyed) this.stream.close(http2.constants.NGHTTP2_CANCEL);
    else this.finish(GrpcStatus.CANCELLED, 'cancelled by the proxy');
  }

  private onData(d: Buffer): void {
    if (this.done) return;
    this.frames.push(d);
    const failed = readAnswers(this.frames, (m) => {
      this.emit('data', m);
      return !this.done;
    });
    if (failed) {
      this.stream?.close(http2.constants.NGHTTP2_CANCEL);
      this.finish(failed.code, failed.details);
    }
  }

  private takeStatus(h: http2.IncomingHttpHeaders): void {
    const s = h['grpc-status'];
    this.grpcStatus = grpcStatusOf(s === undefined ? undefined : String(s));
    const msg = h['grpc-message'];
    this.grpcMessage = grpcMessageOf(typeof msg === 'string' ? msg : undefined);
  }

  private finish(code: number, details: string): void {
    if (this.done) return;
    this.done = true;
    emitOutcome(this, code, details);
  }
}

/** One EPP target: its HTTP/2 session, reconnected on demand with exponential backoff. */
export class H2Target {
  readonly authority: string;
  private readonly url: string;
  private readonly address: EppAddress;
  private current: http2.ClientHttp2Session | undefined;
  /** The TCP socket under the current session (ours: createConnection), destroyed with it on close. */
  private rawSocket: net.Socket | undefined;
  private backoffMs = INITIAL_BACKOFF_MS;
  private retryAt = 0;
  lastError = '';
  wasConnected = false;
  /** Largest EPP answer accepted; a larger one fails its stream with RESOURCE_EXHAUSTED. */
  readonly maxMessageBytes: number;

  constructor(address: string, tls: EppTls | undefined, maxMessageBytes: number = DEFAULT_MAX_MESSAGE_BYTES) {
    this.maxMessageBytes = maxMessageBytes;
    this.authority = tls?.serverName ?? address;
    this.url = `${tls ? 'https' : 'http'}://${address}`;
    this.address = eppAddress(address, tls);
  }

  /** The live session, a new one, or (while backing off) the reason it cannot connect. */
  session(): http2.ClientHttp2Session | string {
    const s = this.current;
    if (s && !s.closed && !s.destroyed) return s;
    if (performance.now() < this.retryAt) return `EPP unreachable: ${this.lastError} (retrying in ${Math.round(this.retryAt - performance.now())} ms)`;
    return this.connect();
  }

  private connect(): http2.ClientHttp2Session {
    // Our own socket: http2 sessions refuse setNoDelay/setKeepAlive on theirs afterwards.
    // maxSessionMemory (MB): the bodies in flight to the EPP and its unread answers count toward
    // it. Node's default, 10 MB, is a few large bodies: past it Node refuses every new stream
    // with ENHANCE_YOUR_CALM, and each following request failed until those streams ended (a
    // fuzz finding: FailClose 500s after a case with MiB bodies to an EPP that did not read).
    const s = http2.connect(this.url, { maxSessionMemory: 256, ...this.address.tls, createConnection: () => this.socket() });
    this.current = s;
    this.wasConnected = false;
    s.on('connect', () => {
      this.wasConnected = true;
      this.backoffMs = INITIAL_BACKOFF_MS;
      this.retryAt = 0;
    });
    s.on('error', (e: NodeJS.ErrnoException) => {
      this.lastError = e.code ?? e.message;
      if (!this.wasConnected) {
        this.retryAt = performance.now() + this.backoffMs;
        this.backoffMs = Math.min(MAX_BACKOFF_MS, this.backoffMs * 2);
      }
    });
    s.on('goaway', () => {
      if (this.current === s) this.current = undefined;
    });
    s.on('close', () => {
      if (this.current === s) this.current = undefined;
    });
    return s;
  }

  private socket(): net.Socket | tls.TLSSocket {
    const { raw, socket } = this.address.connect();
    this.rawSocket = raw;
    return socket;
  }

  warm(): void {
    this.session();
  }

  close(): void {
    this.current?.close();
    this.current?.destroy();
    this.current = undefined;
    // A session whose handshake never finished (an EPP that accepted the TCP connection but
    // does not answer) does not let go of its socket on destroy(): ours goes explicitly, or the
    // process could never exit (a start that failed, a stop).
    this.rawSocket?.destroy();
    this.rawSocket = undefined;
  }
}
