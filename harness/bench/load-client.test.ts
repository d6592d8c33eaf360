import { describe, expect, it } from 'vitest';
import { split } from './load-client.ts';

describe('split', () => {
  it('shares connections across workers, differing by at most one, summing to the total', () => {
    expect(split(10, 3)).toEqual([4, 3, 3]);
    expect(split(500, 2)).toEqual([250, 250]);
    expect(split(1, 1)).toEqual([1]);
    const s = split(37, 5);
    expect(s.reduce((a, b) => a + b, 0)).toBe(37);
    expect(Math.max(...s) - Math.min(...s)).toBeLessThanOrEqual(1);
  });
});
