import { describe, expect, it } from 'vitest';
import { cpuBreakdown } from './bottleneck.ts';

describe('cpuBreakdown', () => {
  const win = 10_000; // ms
  it('names a process at a full core as the limit, with µs per request', () => {
    const b = cpuBreakdown([{ role: 'data plane', cpuUs: 9.6e6, processes: 1 }, { role: 'EPP', cpuUs: 1e6, processes: 1 }], 40_000, win, 2);
    expect(b.processes[0]).toMatchObject({ usPerRequest: 240, coreShare: 0.96 });
    expect(b.bottleneck.role).toBe('data plane');
    expect(b.bottleneck.verdict).toContain('is the limit');
  });
  it('says the machine is the limit when the cores are full without one saturated process', () => {
    const b = cpuBreakdown([{ role: 'data plane', cpuUs: 7e6, processes: 1 }, { role: 'load client', cpuUs: 6e6, processes: 2 }, { role: 'EPP', cpuUs: 5e6, processes: 1 }], 1000, win, 2);
    expect(b.totalCores).toBe(1.8);
    expect(b.bottleneck.role).toBe('data plane');
    expect(b.bottleneck.verdict).toContain('the machine is the limit');
  });
  it('names no process when nothing is busy (latency-bound run)', () => {
    const b = cpuBreakdown([{ role: 'data plane', cpuUs: 1e6, processes: 1 }], 1000, win, 2);
    expect(b.bottleneck.role).toBeNull();
    expect(b.bottleneck.verdict).toContain('set by latency');
  });
});
