// gRPC length-prefixed message framing (gRPC over HTTP/2: 1 byte compressed flag, 4 bytes
// big-endian length, then the message), written once for every speaker in eppkit: the mock's
// server transport, node-proxy's EPP client and the load clients.
//
// The decoder keeps the received chunks as a list and copies each message at most once, when
// it is complete (zero copies when it sits inside one chunk). Concatenating the buffer on every
// chunk copies a large streamed message over and over (quadratic). A declared length over the
// limit is refused as soon as its prefix is read, before any of it is buffered: a peer cannot
// make us hold an unbounded message.

/** Bytes of the prefix before every message. */
export const GRPC_FRAME_PREFIX_BYTES = 5;

/** gRPC status RESOURCE_EXHAUSTED: what gRPC answers for a message over the receive limit. */
export const GRPC_RESOURCE_EXHAUSTED = 8;

/** One received message. `compressed`: the flag byte was not 0 (the payload is as received). */
export interface GrpcFrame {
  kind: 'message';
  compressed: boolean;
  message: Buffer;
}

/** A declared message length over the limit; the decoder takes nothing more after it. */
export interface GrpcFrameTooLarge {
  kind: 'too-large';
  /** The length the prefix declared. */
  length: number;
  limit: number;
  /** gRPC status for it (RESOURCE_EXHAUSTED). */
  grpcStatus: typeof GRPC_RESOURCE_EXHAUSTED;
  detail: string;
}

/** One message framed for the wire (a single buffer: one write, one DATA frame when it fits). */
export function encodeGrpcFrame(message: Uint8Array, compressed = false): Buffer {
  const frame = Buffer.allocUnsafe(GRPC_FRAME_PREFIX_BYTES + message.length);
  frame[0] = compressed ? 1 : 0;
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, GRPC_FRAME_PREFIX_BYTES);
  return frame;
}

export interface GrpcFrameDecoderOptions {
  /** Largest message accepted, in bytes (the prefix not counted). */
  maxMessageBytes: number;
}

/**
 * Incremental decoder: `push(chunk)` what the stream delivered, then call `next()` until it
 * returns undefined. After a `too-large` result the decoder is spent: it drops whatever is
 * pushed later and `next()` returns undefined.
 */
export class GrpcFrameDecoder {
  readonly maxMessageBytes: number;
  #chunks: Buffer[] = [];
  /** Index of the first unread chunk (an index, not shift(): linear over many small chunks). */
  #head = 0;
  /** Read offset into #chunks[#head]. */
  #offset = 0;
  /** Unread bytes over all chunks. */
  #have = 0;
  /** Message length of the frame whose prefix was read; -1 while waiting for a prefix. */
  #length = -1;
  #compressed = false;
  #spent = false;

  constructor(opts: GrpcFrameDecoderOptions) {
    this.maxMessageBytes = opts.maxMessageBytes;
  }

  /** Bytes received and not yet returned as part of a message. */
  get buffered(): number {
    return this.#have;
  }

  /** True after a too-large frame. */
  get spent(): boolean {
    return this.#spent;
  }

  push(chunk: Buffer): void {
    if (this.#spent || chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#have += chunk.length;
  }

  /** The next complete frame, a too-large verdict, or undefined when more bytes are needed. */
  next(): GrpcFrame | GrpcFrameTooLarge | undefined {
    if (this.#spent) return undefined;
    if (this.#length < 0) {
      if (this.#have < GRPC_FRAME_PREFIX_BYTES) return undefined;
      const prefix = this.#take(GRPC_FRAME_PREFIX_BYTES);
      this.#compressed = prefix[0] !== 0;
      const length = prefix.readUInt32BE(1);
      if (length > this.maxMessageBytes) {
        this.#spent = true;
        this.clear();
        return {
          kind: 'too-large',
          length,
          limit: this.maxMessageBytes,
          grpcStatus: GRPC_RESOURCE_EXHAUSTED,
          detail: `message of ${length} bytes is larger than the limit of ${this.maxMessageBytes}`,
        };
      }
      this.#length = length;
    }
    if (this.#have < this.#length) return undefined;
    const message = this.#take(this.#length);
    this.#length = -1;
    return { kind: 'message', compressed: this.#compressed, message };
  }

  /** Drops everything buffered (the stream is gone). */
  clear(): void {
    this.#chunks = [];
    this.#head = 0;
    this.#have = 0;
    this.#offset = 0;
    this.#length = -1;
  }

  /** The next n bytes (n <= #have): a view when they sit in the first chunk, else one copy. */
  #take(n: number): Buffer {
    this.#have -= n;
    if (n === 0) return Buffer.alloc(0);
    const first = this.#chunks[this.#head] as Buffer;
    if (first.length - this.#offset >= n) {
      const out = first.subarray(this.#offset, this.#offset + n);
      this.#advance(first, n);
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const c = this.#chunks[this.#head] as Buffer;
      const part = Math.min(n - filled, c.length - this.#offset);
      c.copy(out, filled, this.#offset, this.#offset + part);
      filled += part;
      this.#advance(c, part);
    }
    return out;
  }

  #advance(c: Buffer, n: number): void {
    this.#offset += n;
    if (this.#offset < c.length) return;
    this.#offset = 0;
    this.#head++;
    if (this.#head === this.#chunks.length) {
      this.#chunks = [];
      this.#head = 0;
    } else if (this.#head >= 64 && this.#head * 2 >= this.#chunks.length) {
      this.#chunks = this.#chunks.slice(this.#head);
      this.#head = 0;
    }
  }
}
