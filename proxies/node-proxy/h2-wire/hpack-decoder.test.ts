import { describe, expect, it } from 'vitest';
import { HpackDecoder, HpackError, huffmanDecode } from './hpack-decoder.ts';
import { encodeHeaderBlock } from './hpack-encoder.ts';
import { HUFFMAN_CODES, HUFFMAN_LENGTHS } from './hpack-tables.ts';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

function decode(d: HpackDecoder, block: Buffer): string[][] {
  const out: string[][] = [];
  d.decode(block, (n, v) => out.push([n, v]));
  return out;
}

/** Huffman-encodes a latin1 string (the test's own encoder, to reach every symbol). */
function huffman(s: string): Buffer {
  let acc = 0n;
  let bits = 0n;
  for (const ch of Buffer.from(s, 'latin1')) {
    acc = (acc << BigInt(HUFFMAN_LENGTHS[ch] as number)) | BigInt(HUFFMAN_CODES[ch] as number);
    bits += BigInt(HUFFMAN_LENGTHS[ch] as number);
  }
  const pad = (8n - (bits % 8n)) % 8n;
  acc = (acc << pad) | ((1n << pad) - 1n);
  bits += pad;
  const out = Buffer.alloc(Number(bits / 8n));
  for (let i = out.length - 1; i >= 0; i--) {
    out[i] = Number(acc & 0xffn);
    acc >>= 8n;
  }
  return out;
}

// RFC 7541 Appendix C.3 and C.4 encode the same three requests (C.4 with Huffman); what each
// decodes to, with the dynamic table carried from one to the next.
const C_REQUEST_1 = [
  [':method', 'GET'],
  [':scheme', 'http'],
  [':path', '/'],
  [':authority', 'www.example.com'],
];
const C_REQUEST_2 = [...C_REQUEST_1, ['cache-control', 'no-cache']];
const C_REQUEST_3 = [
  [':method', 'GET'],
  [':scheme', 'https'],
  [':path', '/index.html'],
  [':authority', 'www.example.com'],
  ['custom-key', 'custom-value'],
];

describe('HpackDecoder', () => {
  it('decodes the RFC 7541 C.3 request examples, with the dynamic table between blocks', () => {
    const d = new HpackDecoder();
    expect(decode(d, hex('8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d'))).toEqual(C_REQUEST_1);
    expect(d.dynamicSize).toBe(57);
    expect(decode(d, hex('8286 84be 5808 6e6f 2d63 6163 6865'))).toEqual(C_REQUEST_2);
    expect(d.dynamicSize).toBe(110);
    expect(decode(d, hex('8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65'))).toEqual(C_REQUEST_3);
    expect(d.dynamicSize).toBe(164);
    expect(d.dynamicLength).toBe(3);
  });

  it('decodes the RFC 7541 C.4 request examples (Huffman)', () => {
    const d = new HpackDecoder();
    expect(decode(d, hex('8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff'))).toEqual(C_REQUEST_1);
    expect(decode(d, hex('8286 84be 5886 a8eb 1064 9cbf'))).toEqual(C_REQUEST_2);
    expect(decode(d, hex('8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf'))).toEqual(C_REQUEST_3);
    expect(d.dynamicSize).toBe(164);
  });

  it('Huffman-decodes every octet value', () => {
    const all = Buffer.alloc(256);
    for (let i = 0; i < 256; i++) all[i] = i;
    const s = all.toString('latin1');
    const h = huffman(s);
    expect(huffmanDecode(h, 0, h.length)).toBe(s);
  });

  it('evicts the oldest entries past the table size and obeys a size update', () => {
    const d = new HpackDecoder(100);
    // Literal with incremental indexing, new name: 'aaaa' = 'x' * 20 → 4 + 20 + 32 = 56 octets.
    const lit = (name: string, value: string): Buffer => Buffer.concat([Buffer.from([0x40, name.length]), Buffer.from(name), Buffer.from([value.length]), Buffer.from(value)]);
    decode(d, lit('aaaa', 'x'.repeat(20)));
    decode(d, lit('bbbb', 'y'.repeat(20)));
    expect(d.dynamicLength).toBe(1); // 112 > 100: 'aaaa' went
    expect(decode(d, hex('be'))).toEqual([['bbbb', 'y'.repeat(20)]]); // index 62 = newest
    // An entry larger than the table empties it.
    decode(d, lit('cccc', 'z'.repeat(80)));
    expect(d.dynamicLength).toBe(0);
    decode(d, lit('dddd', 'w'.repeat(10)));
    expect(d.dynamicLength).toBe(1);
    // Size update to 0 (001 00000) empties it.
    decode(d, hex('20'));
    expect(d.dynamicLength).toBe(0);
    expect(() => decode(d, hex('be'))).toThrow(HpackError);
  });

  it('reads multi-byte integers (a 300-byte literal value)', () => {
    const d = new HpackDecoder();
    const v = 'v'.repeat(300);
    const block = encodeHeaderBlock([{ name: 'x-long', value: v }, { nameIndex: 4, value: '/p' }, { index: 8 }]);
    expect(decode(d, block)).toEqual([
      ['x-long', v],
      [':path', '/p'],
      [':status', '200'],
    ]);
  });

  it.each([
    ['index 0', '80'],
    ['an index beyond both tables', 'be'],
    ['a truncated integer', '7f'],
    ['an integer over 2^28', 'ff ff ff ff ff 7f'],
    ['a string beyond the block', '00 05 61'],
    ['a truncated string', '00'],
    ['a table size update over the limit (4097)', '3f e2 1f'],
    ['a table size update after a field', '82 20'],
    ['Huffman padding of zeros', '00 81 00 01 61'],
    ['Huffman padding longer than 7 bits', '00 82 1f ff 01 61'],
    ['EOS inside a Huffman string', '00 84 ff ff ff ff 01 61'],
  ])('refuses %s with an HpackError', (_what, block) => {
    expect(() => decode(new HpackDecoder(), hex(block))).toThrow(HpackError);
  });
});
