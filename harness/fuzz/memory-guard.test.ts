import { describe, expect, it } from 'vitest';
import { defaultRssLimit, parseSize, watchMemory } from './memory-guard.ts';

describe('memory guard', () => {
  it('parses sizes in binary units and refuses the rest', () => {
    expect(parseSize('4g')).toBe(4 * 1024 ** 3);
    expect(parseSize('512MiB')).toBe(512 * 1024 ** 2);
    expect(parseSize('1.5 GB')).toBe(1.5 * 1024 ** 3);
    expect(parseSize('1000')).toBe(1000);
    expect(() => parseSize('lots')).toThrow(/not a size/);
    expect(() => parseSize('4 parsecs')).toThrow(/not a size/);
  });

  it('defaults to a quarter of the machine, at most 4 GiB', () => {
    expect(defaultRssLimit(24 * 1024 ** 3)).toBe(4 * 1024 ** 3);
    expect(defaultRssLimit(8 * 1024 ** 3)).toBe(2 * 1024 ** 3);
  });

  it('fires once, on the first sample over the limit, and keeps the peak', async () => {
    const samples = [100, 200, 150, 900, 950];
    const fired: number[] = [];
    const g = watchMemory({ limitBytes: 500, intervalMs: 1, sample: () => samples.shift() ?? 0, onExceeded: (rss) => fired.push(rss) });
    await expect.poll(() => fired.length).toBe(1);
    g.stop();
    expect(fired).toEqual([900]);
    expect(g.peak).toBe(900);
  });
});
