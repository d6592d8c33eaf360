// `eppkit fuzz` against the verdicts issue's deliberately broken plane whose worker dies when
// the plane's own EPP timeout fires (facts §6): a bounded fixed-seed run must find it (the
// plane's health contract reports the crash), shrink it and reproduce it by replay.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { replayCase, runFuzz, type SavedCase } from '../../harness/fuzz/fuzz-runner.ts';
import { brokenPlaneDriver } from '../fixtures/broken-planes/broken-plane-driver.ts';

describe('eppkit fuzz on the broken plane that crashes on its EPP timeout', () => {
  it('finds the crash, shrinks it and reproduces it by replay', async () => {
    const outDir = mkdtempSync(join(tmpdir(), 'eppkit-fuzz-broken-'));
    const driver = brokenPlaneDriver('crash-on-epp-timeout');
    const report = await runFuzz({ driver, seed: 3, runs: 200, profiles: [{ name: 'close-buffered', failureMode: 'close', bodyMode: 'buffered' }], outDir, timeoutMs: 500, shrinkBudgetMs: 60_000 });
    expect(report.failures).toHaveLength(1);
    const f = report.failures[0]!;
    expect(f.shrunkRequests).toBeLessThanOrEqual(f.foundRequests);
    // The crash itself is named: by the plane's health (worker signal in its log) or by the client's reset.
    expect(f.violations.some((v) => v.check === 'plane-health' || v.check.endsWith('no-answer'))).toBe(true);
    const saved = JSON.parse(readFileSync(f.caseFile, 'utf8')) as SavedCase;
    const again = await replayCase({ driver, saved, outDir });
    expect(again.violations.length).toBeGreaterThan(0);
  }, 300_000);
});
