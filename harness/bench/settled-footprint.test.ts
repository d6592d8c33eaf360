import { describe, expect, it } from 'vitest';
import { settledFootprint } from './settled-footprint.ts';

const fp = (fds: number) => ({ rssBytes: 1, fds, processes: 1 });

describe('settledFootprint', () => {
  it('waits while the plane is still closing the connections the client left', async () => {
    const counts = [424, 300, 120, 30, 26, 26, 26];
    let i = 0;
    const got = await settledFootprint(() => fp(counts[Math.min(i++, counts.length - 1)]!), { everyMs: 1 });
    expect(got?.fds).toBe(26);
  });
  it('a leak stays: the count that stopped falling is returned', async () => {
    let i = 0;
    const got = await settledFootprint(() => fp(i++ === 0 ? 500 : 480), { everyMs: 1 });
    expect(got?.fds).toBe(480);
    expect(i).toBe(3);
  });
  it('never longer than maxMs, and a plane gone keeps the last sample', async () => {
    let n = 1000;
    const t0 = performance.now();
    const got = await settledFootprint(() => fp(n--), { everyMs: 5, maxMs: 50 });
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(got?.fds).toBeLessThan(1000);
    let calls = 0;
    expect((await settledFootprint(() => (calls++ === 0 ? fp(9) : undefined), { everyMs: 1 }))?.fds).toBe(9);
  });
});
