import { describe, expect, it } from 'vitest';
import { didYouMean, editDistance } from './did-you-mean.ts';

describe('didYouMean', () => {
  it('counts a swap of neighbours as one edit', () => {
    expect(editDistance('defualt', 'default')).toBe(1);
    expect(editDistance('kitten', 'sitting')).toBe(3);
  });

  it('finds the close known word, ignoring case, dashes and underscores', () => {
    expect(didYouMean('stop-ep', ['stop-epp', 'kill-epp', 'start-epp'])).toBe('stop-epp');
    expect(didYouMean('latency-ms', ['latencyMs', 'errorStatus'])).toBe('latencyMs');
    expect(didYouMean('bakend', ['backend', 'backendsSeen'])).toBe('backend');
    expect(didYouMean('nod-proxy', ['node-proxy', 'nginx', 'envoy'])).toBe('node-proxy');
  });

  it('suggests nothing for a word that is not a typo of any', () => {
    expect(didYouMean('mode', ['role', 'picker', 'endpoints'].map((x) => `${x}Name`))).toBeUndefined();
    expect(didYouMean('x', ['ms'])).toBeUndefined();
    expect(didYouMean('', ['a'])).toBeUndefined();
  });
});
