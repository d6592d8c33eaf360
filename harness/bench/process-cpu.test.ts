import { describe, expect, it } from 'vitest';
import { limitNote } from './process-cpu.ts';

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
