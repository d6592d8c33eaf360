// results.json: the machine-readable result other tools read. The required shape is
// { scenarios: [{ name, dataPlane, status, durationMs, reason? }], summary: { passed, failed, skipped } };
// each scenario object carries additional keys (steps, latency, failure...) and the top level
// carries run metadata next to them. Never remove or rename the required keys.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RunReport } from '../runner/results.ts';
import type { Reporter } from './reporter.ts';

export function resultsJson(report: RunReport): unknown {
  return {
    scenarios: report.scenarios.map((r) => {
      const { name, dataPlane, status, durationMs, reason, ...rest } = r;
      return { name, dataPlane, status, durationMs, ...(reason !== undefined ? { reason } : {}), ...rest };
    }),
    summary: report.summary,
    ...(report.coverage ? { coverage: report.coverage } : {}),
    ...(report.overrides?.length ? { overrides: report.overrides } : {}),
    startedAt: report.startedAt,
    durationMs: report.durationMs,
    runtime: report.runtime,
    ...(report.command ? { command: report.command } : {}),
    dataPlanes: report.dataPlanes,
  };
}

export class JsonReporter implements Reporter {
  onRunEnd(report: RunReport): void {
    writeFileSync(join(report.reportDir, 'results.json'), `${JSON.stringify(resultsJson(report), null, 2)}\n`);
  }
}
