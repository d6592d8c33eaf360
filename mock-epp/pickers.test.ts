import { describe, expect, it } from 'vitest';
import { ConsistentHashPicker, LeastLoadedPicker, RandomPicker, RoundRobinPicker, WeightedPicker, seededRandom } from './pickers.ts';

const POOL = ['a:1', 'b:1', 'c:1'];
const input = (candidates = POOL, headers: Record<string, string> = {}, model?: string) => ({ candidates, headers, model });

describe('pickers', () => {
  it('round-robin cycles the pool and each narrowed set separately, returning fallbacks in order', () => {
    const p = new RoundRobinPicker();
    expect([0, 1, 2, 3].map(() => p.order(input())[0])).toEqual(['a:1', 'b:1', 'c:1', 'a:1']);
    expect(p.order(input())).toEqual(['b:1', 'c:1', 'a:1']);
    expect([0, 1, 2].map(() => p.order(input(['a:1', 'c:1']))[0])).toEqual(['a:1', 'c:1', 'a:1']);
  });

  it('seeded random and weighted are repeatable; weight 0 never wins', () => {
    const seq = (s: number) => Array.from({ length: 10 }, ((r) => () => r())(seededRandom(s)));
    expect(seq(1)).toEqual(seq(1));
    const a = new RandomPicker(5);
    const b = new RandomPicker(5);
    expect(Array.from({ length: 20 }, () => a.order(input())[0])).toEqual(Array.from({ length: 20 }, () => b.order(input())[0]));
    const w = new WeightedPicker({ 'a:1': 0, 'b:1': 0 }, 3);
    for (let i = 0; i < 50; i++) expect(w.order(input())[0]).toBe('c:1');
    const counts: Record<string, number> = {};
    const w2 = new WeightedPicker({ 'a:1': 8 }, 9);
    for (let i = 0; i < 1000; i++) {
      const k = w2.order(input())[0] as string;
      counts[k] = (counts[k] ?? 0) + 1;
    }
    expect(counts['a:1']).toBeGreaterThan(600);
  });

  it('consistent hash is stable per key and moves few keys when an endpoint goes', () => {
    const p = new ConsistentHashPicker('x-k');
    const pick = (k: string, c = POOL) => p.order(input(c, { 'x-k': k }))[0];
    expect(pick('user-1')).toBe(pick('user-1'));
    const keys = Array.from({ length: 300 }, (_, i) => `k${i}`);
    const before = keys.map((k) => pick(k));
    const after = keys.map((k) => pick(k, ['a:1', 'b:1']));
    // Only keys that were on c:1 may move.
    keys.forEach((_, i) => {
      if (before[i] !== 'c:1') expect(after[i]).toBe(before[i]);
    });
    const m = new ConsistentHashPicker();
    expect(m.order(input(POOL, {}, 'llama'))[0]).toBe(m.order(input(POOL, {}, 'llama'))[0]);
  });

  it('least-loaded takes the shortest queue and frees slots on release', () => {
    const p = new LeastLoadedPicker({ 'a:1': 2 });
    const first = p.order(input())[0] as string;
    expect(first).not.toBe('a:1');
    p.order(input());
    expect(p.depths()).toMatchObject({ 'b:1': 1, 'c:1': 1, 'a:1': 2 });
    p.release('b:1');
    expect(p.order(input())[0]).toBe('b:1');
  });
});
