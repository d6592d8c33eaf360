// conformance-<data plane>.yaml, modelled on Gateway API's ConformanceReport: the
// implementation, one profile (EPP data plane) with a core part (scenarios tagged `core`) and
// an extended part (the rest), statistics, failed and skipped tests, supported features.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { FEATURES } from '../data-planes/data-plane-driver.ts';
import type { RunReport, ScenarioResult } from '../runner/results.ts';
import type { Reporter } from './reporter.ts';

function part(rs: ScenarioResult[]): Record<string, unknown> {
  const passed = rs.filter((r) => r.status === 'passed').length;
  const failed = rs.filter((r) => r.status === 'failed');
  const skipped = rs.filter((r) => r.status === 'skipped');
  const result = failed.length > 0 ? 'failure' : passed === 0 ? 'skipped' : skipped.length > 0 ? 'partial' : 'success';
  const out: Record<string, unknown> = { result, statistics: { Passed: passed, Failed: failed.length, Skipped: skipped.length } };
  if (failed.length) out.failedTests = failed.map((r) => r.name);
  if (skipped.length) out.skippedTests = skipped.map((r) => ({ name: r.name, reason: r.reason ?? '' }));
  return out;
}

export function conformanceReport(report: RunReport, dataPlane: string): Record<string, unknown> {
  const dp = report.dataPlanes.find((d) => d.name === dataPlane);
  const rs = report.scenarios.filter((r) => r.dataPlane === dataPlane);
  const core = rs.filter((r) => r.tags.includes('core'));
  const extended = rs.filter((r) => !r.tags.includes('core'));
  const supported = dp?.features ?? [];
  const cov = report.coverage?.find((c) => c.dataPlane === dataPlane);
  const overrides = (report.overrides ?? []).filter((o) => o.dataPlane === dataPlane);
  return {
    apiVersion: 'eppkit.dev/v1alpha1',
    kind: 'ConformanceReport',
    date: report.startedAt,
    implementation: {
      project: dataPlane,
      description: dp?.description ?? '',
      ...(dp?.version ? { version: dp.version } : {}),
      ...(dp?.planeFile ? { planeFile: dp.planeFile } : {}),
      runtime: report.runtime,
      available: dp?.available ?? false,
      ...(dp?.reason ? { reason: dp.reason } : {}),
    },
    ...(cov ? { coverage: { summary: cov.line, ran: cov.ran, total: cov.total, skipped: cov.skipped, mostlySkipped: cov.mostlySkipped, lacking: Object.fromEntries(cov.lacking.map((l) => [l.feature, l.scenarios])) } } : {}),
    ...(overrides.length ? { expectedDifferences: overrides.map((o) => ({ scenario: o.scenario, ...(o.step ? { step: o.step } : {}), why: o.why })) } : {}),
    eppkitVersion: '0.1.0',
    mode: 'default',
    profiles: [
      {
        name: 'EPP-DATA-PLANE',
        core: part(core),
        extended: {
          ...part(extended),
          supportedFeatures: supported,
          unsupportedFeatures: FEATURES.filter((f) => !supported.includes(f)),
        },
        summary: `core ${part(core).result}, extended ${part(extended).result}`,
      },
    ],
  };
}

export class ConformanceReporter implements Reporter {
  onRunEnd(report: RunReport): void {
    for (const dp of report.dataPlanes) {
      writeFileSync(join(report.reportDir, `conformance-${dp.name}.yaml`), stringify(conformanceReport(report, dp.name)));
    }
  }
}
