import { describe, expect, it } from 'vitest';
import { encodeGrpcFrame, GRPC_RESOURCE_EXHAUSTED, GrpcFrameDecoder, type GrpcFrame, type GrpcFrameTooLarge } from './grpc-frame.ts';

function drain(d: GrpcFrameDecoder): Array<GrpcFrame | GrpcFrameTooLarge> {
  const out: Array<GrpcFrame | GrpcFrameTooLarge> = [];
  for (let f = d.next(); f !== undefined; f = d.next()) out.push(f);
  return out;
}

const messages = [Buffer.from('hello'), Buffer.alloc(0), Buffer.from('x'.repeat(300)), Buffer.from([0, 1, 2, 255])];
const wire = Buffer.concat(messages.map((m) => encodeGrpcFrame(m)));

describe('encodeGrpcFrame', () => {
  it('writes the flag byte, the big-endian length and the message', () => {
    expect([...encodeGrpcFrame(Buffer.from('ab'))]).toEqual([0, 0, 0, 0, 2, 0x61, 0x62]);
    expect([...encodeGrpcFrame(new Uint8Array(0))]).toEqual([0, 0, 0, 0, 0]);
    expect(encodeGrpcFrame(Buffer.from('ab'), true)[0]).toBe(1);
    const big = encodeGrpcFrame(Buffer.alloc(0x01020304 & 0xffff));
    expect(big.readUInt32BE(1)).toBe(0x0304);
  });
});

describe('GrpcFrameDecoder', () => {
  it('decodes several frames from one chunk', () => {
    const d = new GrpcFrameDecoder({ maxMessageBytes: 1024 });
    d.push(wire);
    const got = drain(d);
    expect(got.map((f) => (f.kind === 'message' ? f.message.toString('hex') : f.kind))).toEqual(messages.map((m) => m.toString('hex')));
    expect(d.buffered).toBe(0);
  });

  it('gives the same frames whatever byte the stream is split at (every split point, then one byte at a time)', () => {
    for (let cut = 0; cut <= wire.length; cut++) {
      const d = new GrpcFrameDecoder({ maxMessageBytes: 1024 });
      const got: Buffer[] = [];
      for (const part of [wire.subarray(0, cut), wire.subarray(cut)]) {
        d.push(part);
        for (const f of drain(d)) if (f.kind === 'message') got.push(Buffer.from(f.message));
      }
      expect(got, `split at ${cut}`).toEqual(messages);
    }
    const d = new GrpcFrameDecoder({ maxMessageBytes: 1024 });
    const got: Buffer[] = [];
    for (let i = 0; i < wire.length; i++) {
      d.push(wire.subarray(i, i + 1));
      for (const f of drain(d)) if (f.kind === 'message') got.push(Buffer.from(f.message));
    }
    expect(got).toEqual(messages);
  });

  it('a message inside one chunk is a view, not a copy', () => {
    const d = new GrpcFrameDecoder({ maxMessageBytes: 1024 });
    d.push(wire);
    const f = d.next() as GrpcFrame;
    expect(f.message.buffer).toBe(wire.buffer);
  });

  it('keeps a large message split into many chunks as a list and copies it once', () => {
    const big = Buffer.alloc(4 * 1024 * 1024, 7);
    const frame = encodeGrpcFrame(big);
    const d = new GrpcFrameDecoder({ maxMessageBytes: big.length });
    for (let off = 0; off < frame.length; off += 1000) {
      d.push(frame.subarray(off, off + 1000));
      if (off + 1000 < frame.length) expect(d.next()).toBeUndefined();
    }
    const f = d.next() as GrpcFrame;
    expect(f.kind).toBe('message');
    expect(f.message.equals(big)).toBe(true);
  });

  it('reports the compressed flag and passes the payload through', () => {
    const d = new GrpcFrameDecoder({ maxMessageBytes: 1024 });
    d.push(Buffer.concat([encodeGrpcFrame(Buffer.from('zz'), true), encodeGrpcFrame(Buffer.from('p'))]));
    expect(drain(d)).toMatchObject([
      { kind: 'message', compressed: true, message: Buffer.from('zz') },
      { kind: 'message', compressed: false, message: Buffer.from('p') },
    ]);
  });

  it('refuses a declared length over the limit at the prefix, before buffering it (RESOURCE_EXHAUSTED), and takes nothing after', () => {
    const d = new GrpcFrameDecoder({ maxMessageBytes: 10 });
    d.push(encodeGrpcFrame(Buffer.from('0123456789')));
    // A huge length prefix: 4 GiB - 1 declared, only the prefix sent.
    d.push(Buffer.from([0, 0xff, 0xff, 0xff, 0xff]));
    const got = drain(d);
    expect(got[0]).toMatchObject({ kind: 'message', message: Buffer.from('0123456789') });
    expect(got[1]).toMatchObject({ kind: 'too-large', length: 0xffffffff, limit: 10, grpcStatus: GRPC_RESOURCE_EXHAUSTED });
    expect(got).toHaveLength(2);
    expect(d.spent).toBe(true);
    d.push(encodeGrpcFrame(Buffer.from('x')));
    expect(d.next()).toBeUndefined();
    expect(d.buffered).toBe(0);
  });

  it('a message of exactly the limit passes; one byte more does not', () => {
    const ok = new GrpcFrameDecoder({ maxMessageBytes: 3 });
    ok.push(encodeGrpcFrame(Buffer.from('abc')));
    expect(ok.next()).toMatchObject({ kind: 'message' });
    const over = new GrpcFrameDecoder({ maxMessageBytes: 3 });
    over.push(encodeGrpcFrame(Buffer.from('abcd')).subarray(0, 5));
    expect(over.next()).toMatchObject({ kind: 'too-large', length: 4 });
  });

  it('waits for the rest of a partial prefix and of a partial message', () => {
    const d = new GrpcFrameDecoder({ maxMessageBytes: 1024 });
    const f = encodeGrpcFrame(Buffer.from('abcdef'));
    d.push(f.subarray(0, 3));
    expect(d.next()).toBeUndefined();
    d.push(f.subarray(3, 8));
    expect(d.next()).toBeUndefined();
    expect(d.buffered).toBe(3);
    d.push(f.subarray(8));
    expect(d.next()).toMatchObject({ kind: 'message', message: Buffer.from('abcdef') });
  });
});
