import { describe, expect, it } from 'vitest';
import { parseMockEppConfig } from './mock-epp-config.ts';
import { compileRules, firstMatch, modelOf, sampleDelayMs } from './rules.ts';

const rulesOf = (rules: unknown[]) => compileRules(parseMockEppConfig({ rules }).rules);
const ctx = (o: Partial<{ headers: Record<string, string>; ordinal: number; body: Buffer; model: string }> = {}) => ({
  headers: o.headers ?? {},
  ordinal: o.ordinal ?? 1,
  body: o.body,
  model: o.model,
});

describe('rules', () => {
  it('first match wins; all conditions of a rule must hold', () => {
    const r = rulesOf([
      { name: 'both', match: { method: 'GET', headers: { 'X-A': '1' } }, action: { close: true } },
      { name: 'any-get', match: { method: 'GET' }, action: { close: true } },
    ]);
    expect(firstMatch(r, ctx({ headers: { ':method': 'GET', 'x-a': '1' } }))?.name).toBe('both');
    expect(firstMatch(r, ctx({ headers: { ':method': 'GET' } }))?.name).toBe('any-get');
    expect(firstMatch(r, ctx({ headers: { ':method': 'POST', 'x-a': '1' } }))).toBeUndefined();
  });

  it('present:false, body size bounds, model regex, nth and everyKth', () => {
    const r = rulesOf([
      { name: 'absent', match: { headers: { 'x-b': { present: false } }, nth: 1 }, action: { close: true } },
      { name: 'size', match: { bodySize: { min: 2, max: 3 } }, action: { close: true } },
      { name: 'model', match: { model: { regex: '^ll' } }, action: { close: true } },
      { name: 'kth', match: { everyKth: 4 }, action: { close: true } },
    ]);
    expect(firstMatch(r, ctx())?.name).toBe('absent');
    expect(firstMatch(r, ctx({ ordinal: 2, body: Buffer.from('abc') }))?.name).toBe('size');
    expect(firstMatch(r, ctx({ ordinal: 2, body: Buffer.from('abcd'), model: 'llama' }))?.name).toBe('model');
    expect(firstMatch(r, ctx({ ordinal: 8 }))?.name).toBe('kth');
    expect(r[2]?.needsModel).toBe(true);
    expect(r[1]?.needsBody).toBe(true);
  });

  it('delays: fixed, uniform within bounds, log-normal with sigma 0 is the median', () => {
    expect(sampleDelayMs({ ms: 7, phase: 'request_headers' })).toBe(7);
    for (let i = 0; i < 50; i++) {
      const v = sampleDelayMs({ uniform: { min: 10, max: 20 }, phase: 'request_headers' });
      expect(v).toBeGreaterThanOrEqual(10);
      expect(v).toBeLessThanOrEqual(20);
    }
    expect(sampleDelayMs({ logNormal: { medianMs: 30, sigma: 0 }, phase: 'request_headers' })).toBeCloseTo(30);
  });

  it('model of a JSON body, and nothing for anything else', () => {
    expect(modelOf(Buffer.from('{"model":"m","x":1}'))).toBe('m');
    expect(modelOf(Buffer.from('{"model":3}'))).toBeUndefined();
    expect(modelOf(Buffer.from('not json'))).toBeUndefined();
    expect(modelOf(Buffer.from('{"model":'))).toBeUndefined();
    expect(modelOf(undefined)).toBeUndefined();
  });
});
