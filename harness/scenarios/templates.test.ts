import { describe, expect, it } from 'vitest';
import { resolveString, timingMs } from './templates.ts';

describe('templates', () => {
  const ctx = { backends: new Map([['pod-a', { ip: '127.0.0.2', port: 9, address: '127.0.0.2:9' }]]), epp: '127.0.0.1:5', timeoutMs: 5000 };
  it('resolves timings relative to the EPP timeout the plane runs with', () => {
    expect(resolveString('{{timeoutMs*4}}', ctx)).toBe('20000');
    expect(resolveString('{{ timeoutMs / 50 }} and {{pod-a}}', ctx)).toBe('100 and 127.0.0.2:9');
    expect(timingMs('{{timeoutMs*3.5}}', ctx)).toBe(17500);
    expect(timingMs('{{timeoutMs+500}}', { timeoutMs: 1000 })).toBe(1500);
    expect(timingMs(42, {})).toBe(42);
  });
});
