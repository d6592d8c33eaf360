// junit.xml: one <testsuite> per data plane, one <testcase> per scenario (classname = data plane),
// <failure> with expected/received, <skipped> with the reason, logs in <system-out>.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RunReport, ScenarioResult } from '../runner/results.ts';
import type { Reporter } from './reporter.ts';

export function xmlEscape(s: string): string {
  // Also drop characters XML 1.0 forbids (control bytes from logs).
  return s
    .replace(/[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]/gu, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

function testcase(r: ScenarioResult): string {
  const attrs = `name="${xmlEscape(r.name)}" classname="${xmlEscape(`eppkit.${r.dataPlane}`)}" file="${xmlEscape(r.file)}" time="${(r.durationMs / 1000).toFixed(3)}"`;
  if (r.status === 'passed') return `    <testcase ${attrs}/>`;
  if (r.status === 'skipped') return `    <testcase ${attrs}>\n      <skipped message="${xmlEscape(r.reason ?? '')}"/>\n    </testcase>`;
  const details = (r.failure?.mismatches ?? [])
    .map((m) => `${m.what}\n  expected: ${JSON.stringify(m.expected)}\n  received: ${JSON.stringify(m.received)}`)
    .join('\n');
  const out = r.failure ? `--- ${r.dataPlane} log ---\n${r.failure.dataPlaneLog}\n--- mock EPP log ---\n${r.failure.eppLog}` : '';
  return [
    `    <testcase ${attrs}>`,
    `      <failure message="${xmlEscape(r.reason ?? 'failed')}" type="expectation">${xmlEscape(details)}</failure>`,
    `      <system-out>${xmlEscape(out)}</system-out>`,
    '    </testcase>',
  ].join('\n');
}

export function junitXml(report: RunReport): string {
  const byDp = new Map<string, ScenarioResult[]>();
  for (const r of report.scenarios) byDp.set(r.dataPlane, [...(byDp.get(r.dataPlane) ?? []), r]);
  const suites = [...byDp.entries()].map(([dp, rs]) => {
    const f = rs.filter((r) => r.status === 'failed').length;
    const s = rs.filter((r) => r.status === 'skipped').length;
    const t = rs.reduce((a, r) => a + r.durationMs, 0) / 1000;
    return `  <testsuite name="${xmlEscape(dp)}" tests="${rs.length}" failures="${f}" errors="0" skipped="${s}" time="${t.toFixed(3)}" timestamp="${report.startedAt}">\n${rs.map(testcase).join('\n')}\n  </testsuite>`;
  });
  const { passed, failed, skipped } = report.summary;
  return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="eppkit run" tests="${passed + failed + skipped}" failures="${failed}" errors="0" skipped="${skipped}" time="${(report.durationMs / 1000).toFixed(3)}">\n${suites.join('\n')}\n</testsuites>\n`;
}

export class JunitReporter implements Reporter {
  onRunEnd(report: RunReport): void {
    writeFileSync(join(report.reportDir, 'junit.xml'), junitXml(report));
  }
}
