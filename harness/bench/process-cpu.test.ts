import { describe, expect, it } from 'vitest';
import { ProcessCpuSampler, limitNote } from './process-cpu.ts';

describe('limitNote: what set the rate when the busiest process is named', () => {
  it('a saturated process is the limit', () => {
    expect(limitNote(0.97, [{ coreShare: 0.97 }, { coreShare: 0.3 }], 2)).toBe(': saturated, the limit');
  });
  it('the cores full without a saturated process: the machine', () => {
    expect(limitNote(0.7, [{ coreShare: 0.7 }, { coreShare: 0.6 }, { coreShare: 0.6 }], 2)).toContain('used 1.9 of 2 cores: the machine is the limit');
  });
  it('little used: latency or load outside the bench', () => {
    expect(limitNote(0.12, [{ coreShare: 0.12 }, { coreShare: 0.05 }], 2)).toContain('latency (EPP delay, arrival rate) or load outside the bench');
  });
});

describe('ProcessCpuSampler window', () => {
  it('a load that ended before the window closed (a burst run) ends the window then, not at 1 ms', async () => {
    const s = new ProcessCpuSampler([{ role: 'backend', pids: () => [process.pid] }]);
    s.start();
    const t0 = performance.now();
    while (performance.now() - t0 < 30) {
      // Busy: the window has CPU to attribute.
    }
    s.stopIfRunning();
    const a = s.attribute(10);
    expect(a.windowMs).toBeGreaterThanOrEqual(30);
    // Stopped once: a second call keeps the window.
    s.stopIfRunning();
    expect(s.attribute(10).windowMs).toBe(a.windowMs);
  });
  it('never started, never stopped', () => {
    const s = new ProcessCpuSampler([{ role: 'backend', pids: () => [process.pid] }]);
    s.stopIfRunning();
    expect(s.attribute(0).processes).toEqual([]);
  });
});
