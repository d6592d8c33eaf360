import { describe, expect, it } from 'vitest';
import { latencySummary } from './results.ts';
import { prepareBody, seededBytes, sha256Hex } from './request-body.ts';
import { resolveString } from '../scenarios/templates.ts';

describe('request bodies, templates and latency summaries', () => {
  it('seeded random bodies are the same bytes for the same seed, different for another', () => {
    const a = seededBytes(100_003, 7);
    expect(a.length).toBe(100_003);
    expect(sha256Hex(a)).toBe(sha256Hex(seededBytes(100_003, 7)));
    expect(sha256Hex(a)).not.toBe(sha256Hex(seededBytes(100_003, 8)));
    // Not a constant fill.
    expect(new Set(a.subarray(0, 1000)).size).toBeGreaterThan(200);
  });

  it('text and JSON bodies carry their content type and resolved templates', () => {
    const b = prepareBody({ json: { to: '{{x}}' } }, '.', (s) => s.replace('{{x}}', '1.2.3.4:5'));
    expect(b?.bytes.toString()).toBe('{"to":"1.2.3.4:5"}');
    expect(b?.contentType).toBe('application/json');
    expect(prepareBody(undefined, '.', (s) => s)).toBeUndefined();
  });

  it('resolves backend and EPP templates', () => {
    const ctx = { backends: new Map([['pod-a', { ip: '::1', port: 80, address: '[::1]:80' }]]), epp: '127.0.0.1:9' };
    expect(resolveString('{{pod-a}} {{ pod-a.ip }} {{pod-a.port}} {{epp}}', ctx)).toBe('[::1]:80 ::1 80 127.0.0.1:9');
    expect(() => resolveString('{{nope}}', ctx)).toThrow(/nope/);
  });

  it('summarizes latencies by nearest rank', () => {
    expect(latencySummary([])).toBeUndefined();
    const s = latencySummary(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(s).toEqual({ count: 100, p50: 50, p99: 99, max: 100 });
  });
});
