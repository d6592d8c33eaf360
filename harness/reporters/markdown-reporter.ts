// report.md: short enough for a CI step summary ($GITHUB_STEP_SUMMARY): totals, a table per
// data plane, each failure with expected/received.
import { writeFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { mostlySkippedWarning } from '../runner/coverage.ts';
import type { RunReport, ScenarioResult } from '../runner/results.ts';
import type { Reporter } from './reporter.ts';

const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
const icon = (r: ScenarioResult): string => (r.status === 'passed' ? '✅' : r.status === 'failed' ? '❌' : '⏭️');

export function markdownReport(report: RunReport): string {
  const { passed, failed, skipped } = report.summary;
  const out: string[] = [];
  out.push(`# eppkit run: ${failed ? '❌ failed' : '✅ passed'}`, '');
  out.push(`**${passed} passed, ${failed} failed, ${skipped} skipped** in ${(report.durationMs / 1000).toFixed(1)} s (runtime ${report.runtime}, ${report.startedAt})`, '');
  for (const dp of report.dataPlanes) {
    const rs = report.scenarios.filter((r) => r.dataPlane === dp.name);
    out.push(`## ${dp.name}${dp.available ? '' : ' (not available)'}`, '');
    if (!dp.available) out.push(`> ${dp.reason ?? ''}`, '');
    if (dp.version || dp.planeFile) out.push([dp.planeFile ? `plane file \`${dp.planeFile}\`` : '', dp.version ? `version: ${cell(dp.version)}` : ''].filter(Boolean).join(' · '), '');
    const cov = report.coverage?.find((c) => c.dataPlane === dp.name);
    if (cov) {
      out.push(`**Coverage:** ${cell(cov.line)}`, '');
      const warn = mostlySkippedWarning(cov);
      if (warn) out.push(`> [!WARNING]`, `> ${cell(warn)}`, '');
    }
    const ovs = (report.overrides ?? []).filter((o) => o.dataPlane === dp.name);
    if (ovs.length) {
      out.push('Expected differences (overrides):', '');
      for (const o of ovs) out.push(`- ${cell(o.scenario)}${o.step ? ` / ${cell(o.step)}` : ''}: ${cell(o.why)}`);
      out.push('');
    }
    out.push('| | scenario | time | latency p50 / p99 / max (ms) | EPP service p50 / p99 (ms) | note |', '|---|---|---:|---|---|---|');
    for (const r of rs) {
      const lat = r.latencyMs ? `${r.latencyMs.p50} / ${r.latencyMs.p99} / ${r.latencyMs.max}` : '';
      const svc = r.eppServiceTimeMs ? `${r.eppServiceTimeMs.p50} / ${r.eppServiceTimeMs.p99}${r.eppCancelledStreams ? ` (${r.eppCancelledStreams} of ${r.eppServiceTimeMs.count} streams cancelled)` : ''}` : '';
      const note = [r.reason ?? '', ...(r.warnings ?? []).map((w) => `⚠️ ${w}`)].filter(Boolean).join('; ');
      out.push(`| ${icon(r)} | ${cell(r.name)} | ${(r.durationMs / 1000).toFixed(2)} s | ${lat} | ${svc} | ${cell(note)} |`);
    }
    out.push('');
  }
  const failures = report.scenarios.filter((r) => r.status === 'failed');
  if (failures.length) {
    out.push('## Failures', '');
    for (const r of failures) {
      out.push(`### ${r.name} on ${r.dataPlane}`, '', `\`${r.file}\`, ${r.failure?.step ?? ''}${r.failure?.request ? `, request ${r.failure.request}` : ''}`, '');
      out.push('| check | expected | received |', '|---|---|---|');
      for (const m of r.failure?.mismatches.slice(0, 10) ?? []) out.push(`| ${cell(m.what)} | \`${cell(JSON.stringify(m.expected))}\` | \`${cell(JSON.stringify(m.received)).slice(0, 300)}\` |`);
      out.push('');
      if (r.failure?.dataPlaneLog.trim()) out.push('<details><summary>data plane log (tail)</summary>', '', '```', r.failure.dataPlaneLog.split('\n').slice(-30).join('\n'), '```', '</details>', '');
      if (r.logDir) out.push(`Full logs: \`${isAbsolute(r.logDir) ? r.logDir : join(report.reportDir, r.logDir)}\``, '');
    }
  }
  return `${out.join('\n')}\n`;
}

export class MarkdownReporter implements Reporter {
  onRunEnd(report: RunReport): void {
    writeFileSync(join(report.reportDir, 'report.md'), markdownReport(report));
  }
}
