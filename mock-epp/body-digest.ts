// Size, sha256 and leading bytes of the bodies a stream receives, for the journal.
import { createHash, hash as oneShotHash, type Hash } from 'node:crypto';
import type { JournalBody } from './journal.ts';
import { intern } from './stream-journal.ts';

const EMPTY = Buffer.alloc(0);

/** A bytes field as a Buffer: decoded messages give an empty array for unset bytes. */
export function bytesOf(x: Uint8Array | readonly number[] | undefined | null): Buffer {
  if (Buffer.isBuffer(x)) return x;
  if (!x || x.length === 0) return EMPTY;
  return Buffer.from(x as Uint8Array);
}

/** The one-shot form is much cheaper than createHash() for the small bodies of most requests. */
export function sha256Hex(buf: Buffer): string {
  return oneShotHash('sha256', buf, 'hex');
}

// The leading bytes last summarized and their two texts: a body that starts as the one before
// it (a client sending one request again and again) gets them without decoding and interning
// them again. A copy: the bytes summarized may be a view of a buffer that is reused.
let lastHead: Buffer = Buffer.alloc(0);
let lastUtf8 = '';
let lastBase64 = '';

/** The journal's summary of some bytes (`sha` when already known). */
export function summarizeBody(buf: Buffer, firstBytes: number, sha = sha256Hex(buf)): JournalBody {
  const head = buf.subarray(0, firstBytes);
  if (!head.equals(lastHead)) {
    // Interned (stream-journal.ts): repeated bodies share their strings in the journal.
    lastUtf8 = intern(head.toString('utf8'));
    lastBase64 = intern(head.toString('base64'));
    lastHead = Buffer.from(head);
  }
  return { size: buf.length, sha256: intern(sha), firstBytes: lastUtf8, firstBytesBase64: lastBase64 };
}

/**
 * A body seen in several messages. A one-message body (the common case) is hashed once: its
 * per-message digest is also the whole body's.
 */
export class BodyDigest {
  size = 0;
  #messages = 0;
  #first: Buffer | undefined;
  #firstSummary: JournalBody | undefined;
  #hash: Hash | undefined;
  #head: Buffer[] = [];
  #headBytes = 0;
  readonly #limit: number;

  constructor(firstBytes: number) {
    this.#limit = firstBytes;
  }

  /** Adds one message's bytes; returns that message's journal summary. */
  add(body: Buffer): JournalBody {
    const one = summarizeBody(body, this.#limit);
    this.size += body.length;
    if (++this.#messages === 1) {
      this.#first = body;
      this.#firstSummary = one;
      return one;
    }
    if (!this.#hash) {
      this.#hash = createHash('sha256').update(this.#first ?? EMPTY);
      // The first message's head, copied now: its buffer is not kept past this point.
      const f = this.#first ?? EMPTY;
      if (this.#limit > 0 && f.length > 0) this.#pushHead(f);
    }
    this.#first = undefined;
    this.#hash.update(body);
    this.#pushHead(body);
    return one;
  }

  #pushHead(body: Buffer): void {
    const want = this.#limit - this.#headBytes;
    if (want > 0 && body.length > 0) {
      const part = Buffer.from(body.subarray(0, want));
      this.#head.push(part);
      this.#headBytes += part.length;
    }
  }

  get seen(): boolean {
    return this.#messages > 0;
  }

  /** The whole body's summary (once, at the stream's end). */
  summary(): JournalBody {
    // One message: the whole body's summary is that message's (shared, not rebuilt).
    if (this.#messages === 1 && this.#firstSummary) {
      this.#first = undefined;
      return this.#firstSummary;
    }
    const h = this.#head.length === 1 ? (this.#head[0] as Buffer) : Buffer.concat(this.#head);
    const sha = this.#hash ? this.#hash.digest('hex') : (this.#firstSummary?.sha256 ?? sha256Hex(EMPTY));
    return { size: this.size, sha256: intern(sha), firstBytes: intern(h.toString('utf8')), firstBytesBase64: intern(h.toString('base64')) };
  }
}
