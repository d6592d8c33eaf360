// HPACK header block decoder (RFC 7541), for the answers of one HTTP/2 connection. Every block
// the peer sends must pass through decode(), also those of streams we no longer care about: the
// dynamic table is shared by the whole connection. Strings are kept as latin1 (one char per
// octet), so nothing a peer sends is altered or refused for its encoding.
import { HUFFMAN_CODES, HUFFMAN_LENGTHS, STATIC_TABLE } from './hpack-tables.ts';

/** A block the decoder refuses: a COMPRESSION_ERROR of the connection (RFC 7540 §4.3). */
export class HpackError extends Error {}

const EOS = 256;
/**
 * The Huffman code as a binary trie over flat arrays: node n's children are at 2n and 2n+1,
 * a value >= 0 there is the next node, a value < 0 is a leaf for symbol (-value - 1).
 */
const TRIE = buildTrie();

function buildTrie(): Int32Array {
  const trie = new Int32Array(2 * 600);
  let nodes = 1;
  const add = (sym: number, code: number, len: number): void => {
    let n = 0;
    for (let i = len - 1; i >= 0; i--) {
      const slot = 2 * n + ((code >>> i) & 1);
      if (i === 0) {
        trie[slot] = -sym - 1;
        return;
      }
      if (trie[slot] === 0) trie[slot] = nodes++;
      n = trie[slot] as number;
    }
  };
  for (let s = 0; s < 256; s++) add(s, HUFFMAN_CODES[s] as number, HUFFMAN_LENGTHS[s] as number);
  add(EOS, 0x3fffffff, 30);
  return trie;
}

/** Decodes `len` Huffman-coded octets at `off` (RFC 7541 §5.2: padding ≤ 7 bits, all ones). */
export function huffmanDecode(buf: Uint8Array, off: number, len: number): string {
  let out = '';
  let n = 0;
  // Bits consumed since the last symbol, and whether all of them were ones (the EOS prefix).
  let pending = 0;
  let allOnes = true;
  const end = off + len;
  for (let i = off; i < end; i++) {
    const byte = buf[i] as number;
    for (let b = 7; b >= 0; b--) {
      const bit = (byte >>> b) & 1;
      const next = TRIE[2 * n + bit] as number;
      pending++;
      if (bit === 0) allOnes = false;
      if (next < 0) {
        const sym = -next - 1;
        if (sym === EOS) throw new HpackError('Huffman string contains EOS');
        out += String.fromCharCode(sym);
        n = 0;
        pending = 0;
        allOnes = true;
      } else {
        n = next;
      }
    }
  }
  if (pending > 7 || !allOnes) throw new HpackError('Huffman string has invalid padding');
  return out;
}

/** Receives each decoded header field, in order. */
export type HeaderSink = (name: string, value: string) => void;

export class HpackDecoder {
  /** Dynamic table, newest first. */
  #names: string[] = [];
  #values: string[] = [];
  #size = 0;
  /** Current maximum set by the encoder's size updates (≤ #limit). */
  #max: number;
  /** Our SETTINGS_HEADER_TABLE_SIZE: the most the encoder may set. */
  readonly #limit: number;

  constructor(limit = 4096) {
    this.#limit = limit;
    this.#max = limit;
  }

  /** Entries in the dynamic table (for tests). */
  get dynamicLength(): number {
    return this.#names.length;
  }

  /** Dynamic table size in RFC 7541 octets (for tests). */
  get dynamicSize(): number {
    return this.#size;
  }

  /** Decodes one complete header block; throws HpackError on anything malformed. */
  decode(block: Uint8Array, sink: HeaderSink): void {
    const end = block.length;
    let p = 0;
    let fieldSeen = false;
    while (p < end) {
      const b = block[p] as number;
      if (b & 0x80) {
        // Indexed header field.
        const r = this.#int(block, p, 7);
        p = r.next;
        if (r.value === 0) throw new HpackError('index 0');
        sink(this.#name(r.value), this.#value(r.value));
        fieldSeen = true;
      } else if ((b & 0xe0) === 0x20) {
        // Dynamic table size update: only before the first field of a block.
        if (fieldSeen) throw new HpackError('table size update after a header field');
        const r = this.#int(block, p, 5);
        p = r.next;
        if (r.value > this.#limit) throw new HpackError(`table size ${r.value} over the advertised ${this.#limit}`);
        this.#max = r.value;
        this.#evict(0);
      } else {
        // Literal: with incremental indexing (01), without (0000) or never indexed (0001).
        const indexing = (b & 0xc0) === 0x40;
        const r = this.#int(block, p, indexing ? 6 : 4);
        p = r.next;
        let name: string;
        if (r.value === 0) {
          const s = this.#string(block, p);
          name = s.value;
          p = s.next;
        } else {
          name = this.#name(r.value);
        }
        const v = this.#string(block, p);
        p = v.next;
        if (indexing) this.#add(name, v.value);
        sink(name, v.value);
        fieldSeen = true;
      }
    }
  }

  #name(index: number): string {
    if (index < STATIC_TABLE.length) return (STATIC_TABLE[index] as readonly [string, string])[0];
    const d = index - STATIC_TABLE.length;
    if (d >= this.#names.length) throw new HpackError(`index ${index} beyond the tables`);
    return this.#names[d] as string;
  }

  #value(index: number): string {
    if (index < STATIC_TABLE.length) return (STATIC_TABLE[index] as readonly [string, string])[1];
    return this.#values[index - STATIC_TABLE.length] as string;
  }

  #add(name: string, value: string): void {
    const size = name.length + value.length + 32;
    if (size > this.#max) {
      // An entry larger than the table empties it and is not added (§4.4).
      this.#names.length = 0;
      this.#values.length = 0;
      this.#size = 0;
      return;
    }
    this.#evict(size);
    this.#names.unshift(name);
    this.#values.unshift(value);
    this.#size += size;
  }

  /** Evicts the oldest entries until `room` more octets fit. */
  #evict(room: number): void {
    while (this.#size + room > this.#max && this.#names.length > 0) {
      const n = this.#names.pop() as string;
      const v = this.#values.pop() as string;
      this.#size -= n.length + v.length + 32;
    }
  }

  // Integers with an N-bit prefix (§5.1); values past 2^28 are refused rather than overflowing.
  #int(buf: Uint8Array, p: number, bits: number): { value: number; next: number } {
    const mask = (1 << bits) - 1;
    let value = (buf[p] as number) & mask;
    p++;
    if (value < mask) return { value, next: p };
    let shift = 0;
    for (;;) {
      if (p >= buf.length) throw new HpackError('truncated integer');
      const b = buf[p++] as number;
      value += (b & 0x7f) * 2 ** shift;
      shift += 7;
      if ((b & 0x80) === 0) break;
      if (shift > 28) throw new HpackError('integer too large');
    }
    if (value > 2 ** 28) throw new HpackError('integer too large');
    return { value, next: p };
  }

  #string(buf: Uint8Array, p: number): { value: string; next: number } {
    if (p >= buf.length) throw new HpackError('truncated string');
    const huffman = ((buf[p] as number) & 0x80) !== 0;
    const r = this.#int(buf, p, 7);
    const start = r.next;
    const end = start + r.value;
    if (end > buf.length) throw new HpackError('string beyond the block');
    const value = huffman ? huffmanDecode(buf, start, r.value) : Buffer.from(buf.buffer, buf.byteOffset + start, r.value).toString('latin1');
    return { value, next: end };
  }
}
