// The default ext_proc client (`eppClient: wire`): the Process bidi stream on eppkit's own
// HTTP/2 client connection (h2-wire/), one connection per EPP target, many streams on it.
// Same contract as the node:http2 client (`eppClient: http2`, epp-h2-client.ts): write, end,
// cancel, and the events data, error ({code, details}), end, status; the same gRPC statuses for
// the same failures. It exists for its cost per stream: no Duplex and no nghttp2 stream per
// request, a header block built once per target, and the frames of one turn in one write.
import { EventEmitter } from 'node:events';
import type * as net from 'node:net';
import * as tls from 'node:tls';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { encodeGrpcFrame, GrpcFrameDecoder } from '../../core/grpc-frame.ts';
import { EXT_PROC_METHOD_PATH, type ProcessingRequest } from '../../core/proto.ts';
import type { EppTls } from '../../core/route-model.ts';
import { encodeProcessingRequest } from '../../mock-epp/ext-proc-codec.ts';
import { type EppAddress, eppAddress } from './epp-address.ts';
import { emitOutcome, grpcMessageOf, grpcStatusOf, readAnswers } from './epp-answers.ts';
import { DEFAULT_MAX_MESSAGE_BYTES, INITIAL_BACKOFF_MS, MAX_BACKOFF_MS } from './epp-h2-client.ts';
import { ErrorCode, H2ClientConnection, type H2ClientStream, type StreamClose, type StreamHandler } from './h2-wire/h2-client-connection.ts';
import { encodeHeaderBlock } from './h2-wire/hpack-encoder.ts';

/** One ext_proc stream. */
export class WireCall extends EventEmitter implements StreamHandler {
  readonly #stream: H2ClientStream | undefined;
  readonly #frames: GrpcFrameDecoder;
  #done = false;
  #grpcStatus: number | undefined;
  #grpcMessage = '';
  #sawHeaders = false;

  constructor(target: WireTarget) {
    super();
    this.#frames = new GrpcFrameDecoder({ maxMessageBytes: target.maxMessageBytes });
    const conn = target.connection();
    if (typeof conn === 'string') {
      // Still backing off after a failed connect: fail fast, as grpc-js does in TRANSIENT_FAILURE.
      queueMicrotask(() => this.#finish(GrpcStatus.UNAVAILABLE, conn));
      return;
    }
    this.#stream = conn.open(this);
  }

  write(msg: ProcessingRequest): boolean {
    if (!this.#stream || this.#done) return false;
    this.#stream.write(encodeGrpcFrame(encodeProcessingRequest(msg)));
    return true;
  }

  end(): void {
    if (this.#stream && !this.#done) this.#stream.end();
  }

  cancel(): void {
    if (this.#done) return;
    this.#stream?.reset(ErrorCode.CANCEL);
    this.#finish(GrpcStatus.CANCELLED, 'cancelled by the proxy');
  }

  onHeaders(fields: string[], end: boolean): void {
    if (this.#done) return;
    let status: string | undefined;
    let grpcStatus: string | undefined;
    let grpcMessage: string | undefined;
    for (let i = 0; i < fields.length; i += 2) {
      const n = fields[i];
      if (n === ':status') status = fields[i + 1];
      else if (n === 'grpc-status') grpcStatus = fields[i + 1];
      else if (n === 'grpc-message') grpcMessage = fields[i + 1];
    }
    const first = !this.#sawHeaders;
    this.#sawHeaders = true;
    if (first && status !== '200') {
      this.#stream?.reset(ErrorCode.CANCEL);
      return this.#finish(GrpcStatus.UNKNOWN, `HTTP status ${status ?? 'missing'}`);
    }
    // Trailers (always the status, UNKNOWN when missing or not a number), or a trailers-only
    // answer (the status in the response headers).
    if (!first || grpcStatus !== undefined) {
      this.#grpcStatus = grpcStatusOf(grpcStatus);
      this.#grpcMessage = grpcMessageOf(grpcMessage);
    }
    if (end) this.#remoteEnded();
  }

  onData(data: Buffer, end: boolean): void {
    if (this.#done) return;
    this.#frames.push(data);
    const failed = readAnswers(this.#frames, (m) => {
      this.emit('data', m);
      return !this.#done;
    });
    if (failed) {
      this.#stream?.reset(ErrorCode.CANCEL);
      return this.#finish(failed.code, failed.details);
    }
    if (this.#done) return;
    // END_STREAM on DATA: the EPP ended the stream with no trailers, hence no status.
    if (end) this.#remoteEnded();
  }

  onClose(why: StreamClose): void {
    if (this.#done) return;
    if (this.#grpcStatus !== undefined) return this.#finish(this.#grpcStatus, this.#grpcMessage);
    switch (why.kind) {
      case 'refused':
      case 'lost':
        return this.#finish(GrpcStatus.UNAVAILABLE, why.detail);
      case 'reset':
        if (why.code === ErrorCode.REFUSED_STREAM) return this.#finish(GrpcStatus.UNAVAILABLE, 'stream refused');
        return this.#finish(GrpcStatus.INTERNAL, `stream closed without status (RST_STREAM code ${why.code})`);
      case 'protocol':
        return this.#finish(GrpcStatus.INTERNAL, why.detail);
    }
  }

  /** The EPP's END_STREAM: every message has been read; the status came with the last headers. */
  #remoteEnded(): void {
    if (this.#grpcStatus !== undefined) this.#finish(this.#grpcStatus, this.#grpcMessage);
    else this.#finish(GrpcStatus.INTERNAL, 'the EPP ended the stream without a grpc-status');
    // Our side may still be open: close it, the call is over.
    this.#stream?.reset(ErrorCode.NO_ERROR);
  }

  #finish(code: number, details: string): void {
    if (this.#done) return;
    this.#done = true;
    emitOutcome(this, code, details);
  }
}

/** One EPP target: its connection, reconnected on demand with exponential backoff. */
export class WireTarget {
  readonly maxMessageBytes: number;
  readonly #address: EppAddress;
  readonly #block: Buffer;
  #current: H2ClientConnection | undefined;
  #socket: net.Socket | undefined;
  #backoffMs = INITIAL_BACKOFF_MS;
  #retryAt = 0;
  lastError = '';

  constructor(address: string, t: EppTls | undefined, maxMessageBytes: number = DEFAULT_MAX_MESSAGE_BYTES) {
    this.maxMessageBytes = maxMessageBytes;
    this.#address = eppAddress(address, t);
    const authority = t?.serverName ?? address;
    // :method POST and :scheme by static index; :path, :authority and content-type by static
    // name; te as a literal. No dynamic table: the same bytes on every stream.
    this.#block = encodeHeaderBlock([
      { index: 3 },
      { index: t ? 7 : 6 },
      { nameIndex: 4, value: EXT_PROC_METHOD_PATH },
      { nameIndex: 1, value: authority },
      { nameIndex: 31, value: 'application/grpc' },
      { name: 'te', value: 'trailers' },
    ]);
  }

  /** The live connection, a new one, or (while backing off) the reason it cannot connect. */
  connection(): H2ClientConnection | string {
    const c = this.#current;
    if (c && c.usable) return c;
    if (performance.now() < this.#retryAt) return `EPP unreachable: ${this.lastError} (retrying in ${Math.round(this.#retryAt - performance.now())} ms)`;
    return this.#connect();
  }

  #connect(): H2ClientConnection {
    const { raw, socket } = this.#address.connect();
    let connected = false;
    this.#socket = raw;
    const onUp = (): void => {
      if (socket instanceof tls.TLSSocket && socket.alpnProtocol !== 'h2') {
        this.lastError = `the EPP did not agree to HTTP/2 over TLS (ALPN: ${socket.alpnProtocol || 'none'})`;
        conn.close(this.lastError);
        return;
      }
      connected = true;
      this.#backoffMs = INITIAL_BACKOFF_MS;
      this.#retryAt = 0;
    };
    socket.once(this.#address.tls ? 'secureConnect' : 'connect', onUp);
    socket.on('error', (e: NodeJS.ErrnoException) => {
      this.lastError = e.code ?? e.message;
    });
    const conn = new H2ClientConnection(socket, {
      requestBlock: this.#block,
      onClosed: () => {
        if (!connected) {
          this.#retryAt = performance.now() + this.#backoffMs;
          this.#backoffMs = Math.min(MAX_BACKOFF_MS, this.#backoffMs * 2);
        }
        if (this.#current === conn) this.#current = undefined;
        raw.destroy();
      },
    });
    this.#current = conn;
    return conn;
  }

  warm(): void {
    this.connection();
  }

  close(): void {
    this.#current?.close();
    this.#current = undefined;
    this.#socket?.destroy();
    this.#socket = undefined;
  }
}
