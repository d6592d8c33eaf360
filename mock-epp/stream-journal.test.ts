import { describe, expect, it } from 'vitest';
import { headerMapToObject } from '../core/headers.ts';
import type { HeaderMap } from '../core/proto.ts';
import { HeaderTexts, isoAt, journalHeaders } from './stream-journal.ts';

describe('isoAt', () => {
  it('is the text of Date#toISOString, for times close together and far apart', () => {
    const times = [0, 1, 999, 1000, 1_764_496_931_000, 1_764_496_931_009, 1_764_496_931_099, 1_764_496_931_999, 1_764_496_932_000, 253_402_300_799_999, 253_402_300_800_000, -1, -1000, -62_167_219_200_000, 1.5, 8.64e15];
    // Consecutive milliseconds across second, minute, hour, day and year boundaries.
    for (const at of [Date.UTC(2026, 10, 30, 23, 59, 59, 990), Date.UTC(2026, 11, 31, 23, 59, 59, 995)]) for (let i = 0; i < 20; i++) times.push(at + i);
    for (let i = 0; i < 2000; i++) times.push(Math.floor(Math.random() * 2.5e14));
    for (const t of times) expect({ t, text: isoAt(t) }).toEqual({ t, text: new Date(t).toISOString() });
  });

  it('gives the same text twice in a row for the same time', () => {
    const a = isoAt(1_764_496_931_123);
    expect(isoAt(1_764_496_931_123)).toBe(a);
    expect(isoAt(1_764_496_931_124)).toBe('2025-11-30T10:02:11.124Z');
  });
});

describe('journalHeaders', () => {
  const raw = (key: string, v: string) => ({ key, raw_value: Buffer.from(v, 'latin1') });

  it('is headerMapToObject, with the texts of repeated headers reused from the last maps', () => {
    const maps: HeaderMap[] = [
      { headers: [raw(':method', 'POST'), raw(':path', '/v1'), { key: 'x-a', value: 'plain' }, raw('x-dup', 'one'), raw('x-dup', 'two')] },
      { headers: [raw(':method', 'POST'), raw(':path', '/v1'), { key: 'x-a', value: 'plain' }, raw('x-dup', 'one'), raw('x-dup', 'two')] },
      // Same keys, other values; other keys at the same places; fewer and more headers.
      { headers: [raw(':method', 'GET'), raw(':path', '/v2'), raw('x-a', 'raw now'), { key: 'x-dup', value: 'v' }] },
      { headers: [raw(':path', '/v2'), raw(':method', 'GET')] },
      { headers: Array.from({ length: 40 }, (_, i) => raw(`h${i % 35}`, `v${i}\u00e9`)) },
      { headers: Array.from({ length: 40 }, (_, i) => raw(`h${i % 35}`, `v${i}\u00e9`)) },
      { headers: [raw('empty-raw', ''), { key: 'empty', value: '' }, { key: 'none' }] },
      {},
    ];
    for (const m of maps) expect(JSON.stringify(journalHeaders(m.headers ? m : undefined))).toBe(JSON.stringify(headerMapToObject(m.headers ? m : undefined)));
  });

  it('reads bytes changed in place since the last map (a decoded buffer may be reused)', () => {
    const b = Buffer.from('first', 'latin1');
    expect(journalHeaders({ headers: [{ key: 'x', raw_value: b }] })).toEqual({ x: 'first' });
    b.write('secon', 'latin1');
    expect(journalHeaders({ headers: [{ key: 'x', raw_value: b }] })).toEqual({ x: 'secon' });
  });
});

describe('HeaderTexts', () => {
  const raw = (key: string, v: string) => ({ key, raw_value: Buffer.from(v, 'latin1') });
  const map = (...headers: HeaderMap['headers'] & object) => ({ headers });

  it('gives a map equal to the last one a shared frozen object, with the same keys in the same order', () => {
    const t = new HeaderTexts();
    const m = () => map(raw(':method', 'POST'), { key: 'x-v', value: 'by value' }, raw('1', 'integer-like name'), raw('x-d', 'a'), raw('x-d', 'b'));
    const first = t.object(m());
    expect(Object.isFrozen(first)).toBe(false);
    const second = t.object(m());
    expect(Object.isFrozen(second)).toBe(true);
    expect(t.object(m())).toBe(second);
    for (const o of [first, second]) expect(JSON.stringify(o)).toBe(JSON.stringify(headerMapToObject(m())));
  });

  it('does not share across a change: a value, a key, a header more or less, a value given the other way', () => {
    const t = new HeaderTexts();
    const base = [raw('a', '1'), raw('b', '2')];
    const variants: HeaderMap[] = [
      map(...base),
      map(...base),
      map(raw('a', '1'), raw('b', '3')),
      map(raw('a', '1'), raw('c', '3')),
      map(raw('a', '1')),
      map(raw('a', '1'), raw('c', '3'), raw('d', '4')),
      map(raw('a', '1'), { key: 'c', value: '3' }, raw('d', '4')),
      map(raw('a', '1'), { key: 'c', value: '3' }, raw('d', '4')),
      map(raw('a', '1'), raw('c', '3'), raw('d', '4')),
      map(...base),
    ];
    const seen: Record<string, string>[] = [];
    for (const v of variants) {
      const o = t.object(v);
      expect(JSON.stringify(o)).toBe(JSON.stringify(headerMapToObject(v)));
      seen.push(o);
    }
    expect(Object.isFrozen(seen[1])).toBe(true);
    expect(Object.isFrozen(seen[7])).toBe(true);
    for (const i of [2, 3, 4, 5, 6, 8, 9]) expect(Object.isFrozen(seen[i])).toBe(false);
  });

  it('never shares a map with a value too long to keep, and still reads it right', () => {
    const t = new HeaderTexts();
    const long = 'x'.repeat(200);
    for (let i = 0; i < 3; i++) {
      const o = t.object(map(raw('a', '1'), raw('long', long)));
      expect(Object.isFrozen(o)).toBe(false);
      expect(o).toEqual({ a: '1', long });
    }
  });

  it('keeps one cache per kind of map, so request and response headers do not evict each other', () => {
    const req = () => map(raw(':path', '/v1'), raw('x-r', 'q'));
    const resp = () => map(raw(':status', '200'));
    journalHeaders(req(), 'request');
    journalHeaders(resp(), 'response');
    expect(Object.isFrozen(journalHeaders(req(), 'request'))).toBe(true);
    expect(Object.isFrozen(journalHeaders(resp(), 'response'))).toBe(true);
  });
});
