import { describe, expect, it } from 'vitest';
import { coverageOf, mostlySkippedWarning } from './coverage.ts';
import type { ScenarioResult } from './results.ts';

const r = (name: string, status: ScenarioResult['status'], extra: Partial<ScenarioResult> = {}): ScenarioResult => ({
  name, dataPlane: 'p', status, durationMs: 1, file: 'f', description: 'd', tags: [], features: [], steps: [], ...extra,
});

describe('coverage', () => {
  it('says how much ran and which missing features kept the rest from running, loudly when most was skipped', () => {
    const results = [
      r('a', 'passed'),
      r('b', 'skipped', { reason: 'p does not support: body-buffered', missingFeatures: ['body-buffered'] }),
      r('c', 'skipped', { reason: 'p does not support: body-buffered, fail-open', missingFeatures: ['body-buffered', 'fail-open'] }),
      r('d', 'skipped', { reason: 'needs failure mode open; p runs with close (x settings)' }),
      r('e', 'failed'),
      r('other-plane', 'skipped', { dataPlane: 'q' }),
    ];
    const c = coverageOf('p', results);
    expect(c.line).toBe('ran 2 of 5 scenarios; 2 skipped because the plane lacks body-buffered (2), fail-open (1); 1 skipped for other reasons (1× needs failure mode open; p runs with close (x settings))');
    expect(c.mostlySkipped).toBe(true);
    expect(mostlySkippedWarning(c)).toContain('ran only 2 of 5');
    expect(mostlySkippedWarning(coverageOf('p', [r('a', 'passed'), r('b', 'skipped')]))).toBeUndefined();
  });
});
