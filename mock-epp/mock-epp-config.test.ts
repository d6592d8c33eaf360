import { describe, expect, it } from 'vitest';
import { EppkitError } from '../core/errors.ts';
import { isEndpoint, parseGrpcCode, parseMockEppConfig, parseMockEppConfigText, withProfile } from './mock-epp-config.ts';

describe('mock EPP config', () => {
  it('fills every default and freezes the result', () => {
    const c = parseMockEppConfig({});
    expect(c).toMatchObject({
      endpoints: [],
      picker: { type: 'round-robin' },
      fallbacks: 0,
      directives: true,
      defaultBodyMode: 'BUFFERED',
      profile: 'gie-lwepp',
      holdHeaders: 'until-body-end',
      noEndpoint: { grpcStatus: 13 },
      clearRouteCache: true,
      append: 'unset',
      maxBodyBytes: 32 * 1024 * 1024,
      conformanceEchoHeader: true,
      rules: [],
      journal: { maxEntries: 10_000, firstBytes: 64 },
    });
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.journal)).toBe(true);
  });

  it('fills every switch from the profile; a switch given alone wins over it', () => {
    const l = parseMockEppConfig({ profile: 'lenient' });
    expect(l).toMatchObject({ holdHeaders: 'auto', noEndpoint: { status: 503 }, clearRouteCache: false, append: 'bool-value', trailers: 'answer' });
    const e = parseMockEppConfig({ profile: 'gie-epp', noEndpoint: { grpcStatus: 'UNAVAILABLE' }, append: 'bool-value' });
    expect(e).toMatchObject({ profile: 'gie-epp', noEndpoint: { grpcStatus: 14 }, append: 'bool-value', echoRequestHeaders: true, emptySelection: 'no-endpoint' });
    // The resolved config read back (GET /config) parses to itself.
    expect(parseMockEppConfig(JSON.parse(JSON.stringify(e)))).toEqual(e);
    expect(() => parseMockEppConfig({ profile: 'strict' })).toThrow(EppkitError);
  });

  it('--profile (withProfile) moves the switches that only held the old profile\'s values, keeps the others', () => {
    const file = parseMockEppConfig({ profile: 'lenient', emptySelection: 'whole-pool', endpoints: ['127.0.0.2:8000'] });
    const c = withProfile(file, 'gie-epp');
    expect(c).toMatchObject({ profile: 'gie-epp', noEndpoint: { status: 429 }, holdHeaders: 'until-body-end', emptySelection: 'whole-pool', endpoints: ['127.0.0.2:8000'] });
    expect(withProfile(parseMockEppConfig({}), 'lenient')).toEqual(parseMockEppConfig({ profile: 'lenient' }));
  });

  it('accepts the picker shorthand and objects; rule faults default to request_headers', () => {
    expect(parseMockEppConfig({ picker: 'least-loaded' }).picker).toEqual({ type: 'least-loaded', initialDepth: {} });
    const c = parseMockEppConfig({ rules: [{ action: { hang: true, delay: { ms: 5 }, malformed: { kind: 'empty-oneof', phase: 'response_body' } } }] });
    expect(c.rules[0]?.action.hang).toEqual({ phase: 'request_headers' });
    expect(c.rules[0]?.action.delay).toEqual({ ms: 5, phase: 'request_headers' });
    expect(c.rules[0]?.match).toEqual({});
  });

  it('reports every problem at once, with YAML line numbers', () => {
    const text = 'endpoints:\n  - 1.2.3.4\npicker: nope\nrules:\n  - match: { headers: { a: { exact: x, regex: y } } }\n    action: { grpcError: { code: BOGUS } }\nextra: 1\n';
    let err: EppkitError | undefined;
    try {
      parseMockEppConfigText(text, 'cfg.yaml');
    } catch (e) {
      err = e as EppkitError;
    }
    expect(err).toBeInstanceOf(EppkitError);
    const byPath = Object.fromEntries((err?.problems ?? []).map((p) => [p.path, p.line]));
    expect(byPath['endpoints[0]']).toBe(2);
    expect(byPath.picker).toBe(3);
    expect(byPath['rules[0].match.headers.a']).toBe(5);
    expect(byPath['rules[0].action.grpcError.code']).toBe(6);
    // An unknown key at its own path and line, not its parent's.
    expect(byPath.extra).toBe(7);
    expect(err?.format()).toMatch(/cfg\.yaml/);
  });

  it('endpoint syntax: IPv4 or bracketed IPv6 with a port', () => {
    expect(isEndpoint('127.0.0.1:80')).toBe(true);
    expect(isEndpoint('[::1]:8000')).toBe(true);
    expect(isEndpoint('256.0.0.1:80')).toBe(false);
    expect(isEndpoint('127.0.0.1')).toBe(false);
    expect(isEndpoint('127.0.0.1:0')).toBe(false);
    expect(isEndpoint('host:80')).toBe(false);
  });

  it('gRPC codes by number or name', () => {
    expect(parseGrpcCode('unavailable')).toBe(14);
    expect(parseGrpcCode('8')).toBe(8);
    expect(parseGrpcCode(17)).toBeUndefined();
    expect(parseGrpcCode('NOPE')).toBeUndefined();
  });
});
