import { describe, expect, it } from 'vitest';
import { Allowlist, parseAllowEntry, parseEndpoint, parseEndpointList } from './endpoint.ts';

describe('parseEndpoint', () => {
  it.each([
    ['10.0.0.1:8000', '10.0.0.1:8000'],
    [' 127.0.0.1:1 ', '127.0.0.1:1'],
    ['[::1]:80', '[::1]:80'],
    ['[fd00::a:1]:65535', '[fd00::a:1]:65535'],
  ])('accepts %s', (raw, text) => expect(parseEndpoint(raw)?.text).toBe(text));

  it.each(['', 'garbage', 'localhost:80', '10.0.0.1', '10.0.0.1:', '10.0.0.1:0', '10.0.0.1:65536', '10.0.0.256:80', '::1:80', '[::1]80', '[10.0.0.1]:80', '10.0.0.1:80x', '10.0.0.1:+80', 'http://10.0.0.1:80'])(
    'refuses %j',
    (raw) => expect(parseEndpoint(raw)).toBeUndefined(),
  );
});

describe('Allowlist', () => {
  const ep = (s: string) => parseEndpoint(s)!;
  it('permits anything when empty', () => expect(new Allowlist([]).permits(ep('1.2.3.4:5'))).toBe(true));
  it('matches IPv4 CIDRs, bare IPs and exact ip:port', () => {
    const a = new Allowlist(['10.0.0.0/8', '192.168.1.7', '172.16.0.1:8000']);
    expect(a.permits(ep('10.255.0.1:1'))).toBe(true);
    expect(a.permits(ep('11.0.0.1:1'))).toBe(false);
    expect(a.permits(ep('192.168.1.7:9'))).toBe(true);
    expect(a.permits(ep('192.168.1.8:9'))).toBe(false);
    expect(a.permits(ep('172.16.0.1:8000'))).toBe(true);
    expect(a.permits(ep('172.16.0.1:8001'))).toBe(false);
  });
  it('matches IPv6 CIDRs and does not mix families', () => {
    const a = new Allowlist(['fd00::/16', '0.0.0.0/0']);
    expect(a.permits(ep('[fd00:1::2]:80'))).toBe(true);
    expect(a.permits(ep('[fe80::1]:80'))).toBe(false);
    expect(a.permits(ep('8.8.8.8:53'))).toBe(true);
    expect(new Allowlist(['::/0']).permits(ep('1.2.3.4:5'))).toBe(false);
  });
  it('explains bad entries', () => {
    expect(parseAllowEntry('10.0.0.0/33')).toMatch(/prefix/);
    expect(parseAllowEntry('foo')).toMatch(/neither/);
    expect(() => new Allowlist(['x/1'])).toThrow();
  });
});

describe('parseEndpointList', () => {
  it('keeps order and sorts out invalid and refused entries', () => {
    const r = parseEndpointList('10.0.0.1:1, bad ,,10.0.0.2:2,11.0.0.1:1', new Allowlist(['10.0.0.0/8']));
    expect(r.endpoints.map((e) => e.text)).toEqual(['10.0.0.1:1', '10.0.0.2:2']);
    expect(r.invalid).toEqual(['bad']);
    expect(r.refused).toEqual(['11.0.0.1:1']);
  });
});
