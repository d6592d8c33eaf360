import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { RunReport, ScenarioResult } from '../runner/results.ts';
import { conformanceReport } from './conformance-reporter.ts';
import { resultsJson } from './json-reporter.ts';
import { junitXml } from './junit-reporter.ts';
import { markdownReport } from './markdown-reporter.ts';

const base = { file: 'f.yaml', description: 'd', features: [], steps: [] };
const r = (name: string, status: ScenarioResult['status'], tags: string[], extra: Partial<ScenarioResult> = {}): ScenarioResult => ({ name, dataPlane: 'dp', status, durationMs: 10, tags, ...base, ...extra });

const report: RunReport = {
  startedAt: '2026-01-01T00:00:00.000Z',
  durationMs: 100,
  runtime: 'local',
  reportDir: '/tmp',
  dataPlanes: [{ name: 'dp', description: 'x', available: true, features: ['body-buffered', 'fail-close'] }],
  scenarios: [
    r('a', 'passed', ['core']),
    r('b', 'failed', ['core'], {
      reason: 'step 1: status',
      failure: { step: 'step 1', mismatches: [{ what: 'status', expected: 200, received: 500 }], dataPlaneLog: 'bad \u0001 <xml> & "quotes"', eppLog: '' },
    }),
    r('c', 'skipped', [], { reason: 'dp does not support: tls' }),
    r('d', 'passed', []),
  ],
  summary: { passed: 2, failed: 1, skipped: 1 },
};

describe('reporters', () => {
  it('results.json keeps the required keys first and exact, and the summary', () => {
    const j = resultsJson(report) as { scenarios: Array<Record<string, unknown>>; summary: unknown };
    expect(Object.keys(j.scenarios[1] ?? {}).slice(0, 5)).toEqual(['name', 'dataPlane', 'status', 'durationMs', 'reason']);
    expect(Object.keys(j.scenarios[0] ?? {})).not.toContain('reason');
    expect(j.summary).toEqual({ passed: 2, failed: 1, skipped: 1 });
  });

  it('junit.xml counts, skips with reasons, failures with expected/received, and escapes log text', () => {
    const x = junitXml(report);
    expect(x).toContain('<testsuite name="dp" tests="4" failures="1" errors="0" skipped="1"');
    expect(x).toContain('<skipped message="dp does not support: tls"/>');
    expect(x).toContain('expected: 200\n  received: 500');
    expect(x).toContain('bad  &lt;xml&gt; &amp; &quot;quotes&quot;');
    expect(x).not.toContain('\u0001');
  });

  it('conformance YAML splits core (tag core) from extended and reports results and features', () => {
    const c = parse(JSON.stringify(conformanceReport(report, 'dp'))) as any;
    expect(c.kind).toBe('ConformanceReport');
    const p = c.profiles[0];
    expect(p.core).toMatchObject({ result: 'failure', statistics: { Passed: 1, Failed: 1, Skipped: 0 }, failedTests: ['b'] });
    expect(p.extended).toMatchObject({ result: 'partial', statistics: { Passed: 1, Failed: 0, Skipped: 1 } });
    expect(p.extended.skippedTests).toEqual([{ name: 'c', reason: 'dp does not support: tls' }]);
    expect(p.extended.unsupportedFeatures).toContain('tls');
    expect(p.extended.supportedFeatures).toEqual(['body-buffered', 'fail-close']);
  });

  it('report.md has the verdict, a table per data plane and the failures', () => {
    const m = markdownReport(report);
    expect(m).toMatch(/^# eppkit run: ❌ failed/);
    expect(m).toContain('**2 passed, 1 failed, 1 skipped**');
    expect(m).toContain('## dp');
    expect(m).toContain('### b on dp');
    expect(m).toContain('| status | `200` | `500` |');
  });
});
