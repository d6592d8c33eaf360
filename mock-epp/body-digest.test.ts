import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BodyDigest, summarizeBody } from './body-digest.ts';

const expected = (b: Buffer, first: number) => ({
  size: b.length,
  sha256: createHash('sha256').update(b).digest('hex'),
  firstBytes: b.subarray(0, first).toString('utf8'),
  firstBytesBase64: b.subarray(0, first).toString('base64'),
});

describe('summarizeBody', () => {
  it('says the leading bytes of each body, alike or not, and of a buffer changed in place after it', () => {
    const a = Buffer.from('{"model":"m1","prompt":"one"}');
    const b = Buffer.from('{"model":"m1","prompt":"two"}');
    const reused = Buffer.from(a);
    for (const [buf, first] of [[a, 64], [a, 64], [b, 64], [a, 8], [b, 8], [Buffer.alloc(0), 64], [a, 0], [reused, 64]] as const) {
      expect(summarizeBody(buf, first)).toEqual(expected(buf, first));
    }
    // The bytes last summarized are changed where they were: the next body like them is not taken for it.
    reused.write('X', 0);
    expect(summarizeBody(reused, 64)).toEqual(expected(reused, 64));
    expect(summarizeBody(a, 64)).toEqual(expected(a, 64));
  });

  it('a body in several messages: the whole body summarized, each message its own', () => {
    const d = new BodyDigest(4);
    const parts = [Buffer.from('ab'), Buffer.from('cdef')];
    expect(d.add(parts[0]!)).toEqual(expected(parts[0]!, 4));
    expect(d.add(parts[1]!)).toEqual(expected(parts[1]!, 4));
    expect(d.summary()).toEqual(expected(Buffer.concat(parts), 4));
  });
});
