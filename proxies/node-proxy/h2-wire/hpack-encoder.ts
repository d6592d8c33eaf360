// The few HPACK representations a client with a fixed set of request headers needs (RFC 7541
// §6.1, §6.2.2): no dynamic table and no Huffman, so a block is built once and sent as is on
// every stream, and the peer's HEADER_TABLE_SIZE never matters.

function int(out: number[], first: number, bits: number, value: number): void {
  const mask = (1 << bits) - 1;
  if (value < mask) {
    out.push(first | value);
    return;
  }
  out.push(first | mask);
  value -= mask;
  while (value >= 0x80) {
    out.push((value & 0x7f) | 0x80);
    value = Math.floor(value / 128);
  }
  out.push(value);
}

function str(out: number[], s: string): void {
  const bytes = Buffer.from(s, 'latin1');
  int(out, 0x00, 7, bytes.length);
  for (const b of bytes) out.push(b);
}

/** One field of a header block: a static-table index (name and value), or a literal. */
export type BlockField = { index: number } | { nameIndex: number; value: string } | { name: string; value: string };

/**
 * A header block of fields sent as "indexed" (a full static-table match) or "literal without
 * indexing" (new name, or a static-table name with a new value).
 */
export function encodeHeaderBlock(fields: readonly BlockField[]): Buffer {
  const out: number[] = [];
  for (const f of fields) {
    if ('index' in f) {
      int(out, 0x80, 7, f.index);
    } else if ('nameIndex' in f) {
      int(out, 0x00, 4, f.nameIndex);
      str(out, f.value);
    } else {
      out.push(0x00);
      str(out, f.name);
      str(out, f.value);
    }
  }
  return Buffer.from(out);
}
