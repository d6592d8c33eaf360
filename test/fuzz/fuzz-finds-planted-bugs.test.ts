// `eppkit fuzz` against planes with defects of real third-party planes (facts §6), planted in a
// fixture plane: a bounded fixed-seed run must find the defect, shrink the case to one request
// that shows it, save it as case.json and as a scenario YAML, and replay it: the case still
// fails on the broken plane and passes on the same plane without the defect.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { replayCase, runFuzz, type SavedCase } from '../../harness/fuzz/fuzz-runner.ts';
import { loadScenarios } from '../../harness/scenarios/load-scenarios.ts';
import { buggyPlaneDriver } from './fixtures/buggy-plane-driver.ts';

const PROFILE = { name: 'close-buffered', failureMode: 'close', bodyMode: 'buffered' } as const;
// A per-message timeout well above the scheduling noise of a shared CI machine: the oracle judges
// from the mock's clock, the plane times out on its own (docs/fuzz.md#timeouts-and-load).
const TIMEOUT_MS = 500;

describe('eppkit fuzz on planted defects', () => {
  it('finds, shrinks and replays HeaderValueOption.append decoded as bool', async () => {
    const outDir = mkdtempSync(join(tmpdir(), 'eppkit-fuzz-append-'));
    const report = await runFuzz({ driver: buggyPlaneDriver('append-as-bool'), seed: 1, runs: 300, profiles: [PROFILE], outDir, timeoutMs: TIMEOUT_MS, shrinkBudgetMs: 90_000 });
    expect(report.failures).toHaveLength(1);
    const f = report.failures[0]!;
    expect(f.shrunkRequests).toBe(1);
    // The one request left sets append=true somewhere (the only thing the defect trips on) and expected a routed 200.
    expect(JSON.stringify(f.fuzzCase)).toMatch(/"(endpointAppend|append|restAppend)":"true"/);
    expect(f.violations.some((v) => v.check === 'status' && v.received === '500')).toBe(true);
    const saved = JSON.parse(readFileSync(f.caseFile, 'utf8')) as SavedCase;
    const again = await replayCase({ driver: buggyPlaneDriver('append-as-bool'), saved, outDir });
    expect(again.violations.length).toBeGreaterThan(0);
    const fixed = await replayCase({ driver: buggyPlaneDriver('none'), saved, outDir });
    expect(fixed.violations).toEqual([]);
    // The scenario export is a valid catalogue scenario.
    const [scenario] = loadScenarios([f.scenarioFile]);
    expect(scenario?.scenario.tags).toContain('fuzz');
  }, 300_000);

  it('finds, shrinks and replays a plane that dies when its own EPP timeout fires', async () => {
    const outDir = mkdtempSync(join(tmpdir(), 'eppkit-fuzz-crash-'));
    const report = await runFuzz({ driver: buggyPlaneDriver('crash-on-timeout'), seed: 1, runs: 300, profiles: [PROFILE], outDir, timeoutMs: TIMEOUT_MS, shrinkBudgetMs: 90_000 });
    expect(report.failures).toHaveLength(1);
    const f = report.failures[0]!;
    // Shrunk to at most two requests (one whose EPP times out, and what shows the plane died).
    expect(f.shrunkRequests).toBeLessThanOrEqual(Math.min(2, f.foundRequests));
    // The plane stopped answering: the request got no HTTP answer and the canary after it neither.
    expect(f.violations.some((v) => v.check.endsWith('no-answer'))).toBe(true);
    expect(JSON.stringify(f.fuzzCase)).toMatch(/"do":"(delay|hang)"|"rest":"hang"/);
    const saved = JSON.parse(readFileSync(f.caseFile, 'utf8')) as SavedCase;
    expect((await replayCase({ driver: buggyPlaneDriver('crash-on-timeout'), saved, outDir })).violations.length).toBeGreaterThan(0);
    expect((await replayCase({ driver: buggyPlaneDriver('none'), saved, outDir })).violations).toEqual([]);
  }, 300_000);

  it('runs the same seed clean on the fixture plane without a defect', async () => {
    const outDir = mkdtempSync(join(tmpdir(), 'eppkit-fuzz-clean-'));
    const report = await runFuzz({ driver: buggyPlaneDriver('none'), seed: 1, runs: 40, profiles: [PROFILE, { name: 'open-buffered', failureMode: 'open', bodyMode: 'buffered' }], outDir, timeoutMs: 1000 });
    expect(report.failures.map((f) => f.violations)).toEqual([]);
    expect(report.counts.streams).toBeGreaterThan(60);
    expect(Object.keys(report.counts.outcomes)).toEqual(expect.arrayContaining(['routed', 'epp-error', 'lenient']));
  }, 300_000);
});
