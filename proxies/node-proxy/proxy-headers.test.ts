import { describe, expect, it } from 'vitest';
import { setHeaderOption } from '../../core/headers.ts';
import { connectionNamed, endToEnd, HeaderList } from './proxy-headers.ts';

describe('hop-by-hop removal', () => {
  it('drops RFC 9110 hop-by-hop headers and those named in Connection, keeps order and duplicates', () => {
    const raw = ['Host', 'h', 'Connection', 'close, X-A', 'connection', 'x-b', 'X-A', '1', 'X-B', '2', 'TE', 't', 'Transfer-Encoding', 'chunked', 'Keep-Alive', 'k', 'Upgrade', 'u', 'Proxy-Connection', 'p', 'Trailer', 'x', 'X-C', '3', 'x-c', '4'];
    expect([...connectionNamed(raw)]).toEqual(['close', 'x-a', 'x-b']);
    expect(endToEnd(raw)).toEqual([
      ['Host', 'h'],
      ['X-C', '3'],
      ['x-c', '4'],
    ]);
  });
});

describe('HeaderList.apply', () => {
  it('overwrites by default, appends on append=true, removes, and returns pseudo-headers', () => {
    const l = new HeaderList([
      ['X-A', '1'],
      ['x-a', '2'],
      ['X-Rm', 'r'],
    ]);
    const pseudo = new Map<string, string>();
    l.apply(
      {
        set_headers: [setHeaderOption('x-a', 'new'), { header: { key: 'x-add', raw_value: Buffer.from('v') }, append: { value: true } }, setHeaderOption(':path', '/p')],
        remove_headers: ['x-rm'],
      },
      pseudo,
    );
    expect(l.entries).toEqual([
      ['x-a', 'new'],
      ['x-add', 'v'],
    ]);
    expect(pseudo.get(':path')).toBe('/p');
  });

  it('refuses values that could split headers and invalid names; drops empty values', () => {
    const l = new HeaderList([]);
    l.apply({ set_headers: [setHeaderOption('x-evil', 'a\r\nx-injected: 1'), setHeaderOption('bad name', 'v'), setHeaderOption('x-empty', '')] }, new Map());
    expect(l.entries).toEqual([]);
  });

  it('honours append_action', () => {
    const l = new HeaderList([['x-a', '1']]);
    const o = (key: string, v: string, a: number) => ({ header: { key, raw_value: Buffer.from(v) }, append_action: a });
    l.apply({ set_headers: [o('x-a', '2', 1), o('x-b', '3', 1), o('x-c', '4', 3), o('x-a', '5', 3)] }, new Map());
    expect(l.entries).toEqual([
      ['x-b', '3'],
      ['x-a', '5'],
    ]);
  });
});
