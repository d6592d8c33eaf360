// Coverage is a result, not a footnote: how much of the catalogue a plane really ran, and why
// the rest was skipped (features it lacks, settings that do not fit, overrides). A plane whose
// declared features leave more than half of the catalogue skipped proved little, whatever the
// exit code says; every reporter shows this line, prominently in that case.
import type { ScenarioResult } from './results.ts';

export interface Coverage {
  dataPlane: string;
  /** Scenarios selected for this plane. */
  total: number;
  /** Scenarios that ran (passed or failed). */
  ran: number;
  skipped: number;
  /** Features the plane lacks, with how many scenarios each kept from running, most first. */
  lacking: Array<{ feature: string; scenarios: number }>;
  /** Skipped for another reason (settings, the route, an override, unavailable), with counts. */
  otherReasons: Array<{ reason: string; scenarios: number }>;
  /** More than half of the catalogue skipped. */
  mostlySkipped: boolean;
  /** "ran N of M scenarios; K skipped because the plane lacks X, Y" */
  line: string;
}

/** Expected differences applied on a plane (from plane files or scenarios), with their reason. */
export interface AppliedOverride {
  dataPlane: string;
  scenario: string;
  /** Step name, or undefined for the whole scenario. */
  step?: string;
  why: string;
}

export function coverageOf(dataPlane: string, results: readonly ScenarioResult[]): Coverage {
  const rs = results.filter((r) => r.dataPlane === dataPlane);
  const skippedRs = rs.filter((r) => r.status === 'skipped');
  const lacking = new Map<string, number>();
  const other = new Map<string, number>();
  for (const r of skippedRs) {
    if (r.missingFeatures && r.missingFeatures.length > 0) for (const f of r.missingFeatures) lacking.set(f, (lacking.get(f) ?? 0) + 1);
    else {
      // Group reasons that differ only by addresses or numbers.
      const reason = (r.reason ?? 'skipped').replace(/\d+(\.\d+){0,3}(:\d+)?/g, 'N');
      other.set(reason, (other.get(reason) ?? 0) + 1);
    }
  }
  const byCount = <T extends { scenarios: number }>(a: T, b: T): number => b.scenarios - a.scenarios;
  const lack = [...lacking].map(([feature, scenarios]) => ({ feature, scenarios })).sort(byCount);
  const otherReasons = [...other].map(([reason, scenarios]) => ({ reason, scenarios })).sort(byCount);
  const ran = rs.length - skippedRs.length;
  const parts = [`ran ${ran} of ${rs.length} scenarios`];
  const lackCount = skippedRs.filter((r) => r.missingFeatures?.length).length;
  if (lackCount > 0) parts.push(`${lackCount} skipped because the plane lacks ${lack.map((l) => `${l.feature} (${l.scenarios})`).join(', ')}`);
  const otherCount = skippedRs.length - lackCount;
  if (otherCount > 0) parts.push(`${otherCount} skipped for other reasons (${otherReasons.map((o) => `${o.scenarios}× ${o.reason}`).join('; ')})`);
  return { dataPlane, total: rs.length, ran, skipped: skippedRs.length, lacking: lack, otherReasons, mostlySkipped: rs.length > 0 && skippedRs.length * 2 > rs.length, line: parts.join('; ') };
}

/** The warning printed when a plane's features leave more than half of the catalogue skipped. */
export function mostlySkippedWarning(c: Coverage): string | undefined {
  if (!c.mostlySkipped) return undefined;
  const top = c.lacking.slice(0, 5).map((l) => l.feature);
  return `${c.dataPlane} ran only ${c.ran} of ${c.total} scenarios: more than half of the catalogue was skipped${top.length ? ` (it lacks ${top.join(', ')})` : ''}, so this run proves little about it. Claim every feature it has, or see why in the skip reasons.`;
}

export function appliedOverrides(results: readonly ScenarioResult[]): AppliedOverride[] {
  const out: AppliedOverride[] = [];
  for (const r of results) {
    if (r.override) out.push({ dataPlane: r.dataPlane, scenario: r.name, why: r.override });
    for (const st of r.steps) if (st.override) out.push({ dataPlane: r.dataPlane, scenario: r.name, step: st.name, why: st.override });
  }
  return out;
}
