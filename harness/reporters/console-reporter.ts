// Human output of `eppkit run`. On a terminal: a live line per running scenario and a progress
// bar, redrawn in place; in CI (CI set, or stdout not a TTY): one plain line per scenario.
// Colours through cli/output.ts's chalk (NO_COLOR, --no-color, FORCE_COLOR). Failures print expected
// against received, the EPP journal entry and the data plane's log excerpt.
import { isAbsolute, join } from 'node:path';
import { chalk } from '../../cli/output.ts';
import { mostlySkippedWarning } from '../runner/coverage.ts';
import type { RunReport, ScenarioResult } from '../runner/results.ts';
import type { Reporter, RunStartInfo, ScenarioStartInfo } from './reporter.ts';

export interface ConsoleReporterOptions {
  out?: NodeJS.WriteStream | { write(s: string): unknown; isTTY?: boolean; columns?: number };
  /** Force plain lines (CI). Default: CI env set or not a TTY. */
  plain?: boolean;
}

const fmtMs = (ms: number): string => (ms >= 1000 ? `${(ms / 1000).toFixed(1)}s` : `${Math.round(ms)}ms`);

function show(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

function indent(text: string, pad: string): string {
  return text
    .split('\n')
    .map((l) => pad + l)
    .join('\n');
}

/** The parts of a journal entry that explain a failure, small enough for a terminal. */
export function compactEntry(e: unknown): unknown {
  if (!e || typeof e !== 'object') return e;
  const x = e as Record<string, unknown>;
  const phases = Array.isArray(x.phases) ? (x.phases as Array<{ phase?: string }>).map((p) => p.phase) : undefined;
  const answers = Array.isArray(x.answers)
    ? (x.answers as Array<Record<string, unknown>>).map((a) => ({ kind: a.kind, ...(a.setHeaders ? { setHeaders: a.setHeaders } : {}), ...(a.status !== undefined ? { status: a.status } : {}) }))
    : undefined;
  return { id: x.id, phases, pick: x.pick, rule: x.rule, answers, end: x.end, servedEndpoint: x.servedEndpoint, problems: x.problems };
}

/** A scenario's failure for a terminal; `reportDir` makes the full logs' path one to paste (absolute). */
export function formatFailure(r: ScenarioResult, reportDir?: string): string {
  const lines: string[] = [];
  lines.push(chalk.red.bold(`✗ ${r.name} [${r.dataPlane}]`) + chalk.dim(`  ${r.file}`));
  if (!r.failure) {
    lines.push(`  ${r.reason ?? ''}`);
    return lines.join('\n');
  }
  lines.push(`  at ${r.failure.step}${r.failure.request ? ` (request ${r.failure.request})` : ''}`);
  for (const m of r.failure.mismatches.slice(0, 12)) {
    lines.push(`  ${chalk.bold(m.what)}`);
    lines.push(`    ${chalk.green('expected')} ${show(m.expected)}`);
    lines.push(`    ${chalk.red('received')} ${show(m.received)}`);
  }
  if (r.failure.mismatches.length > 12) lines.push(`  … ${r.failure.mismatches.length - 12} more`);
  if (r.failure.journalEntry) {
    const j = JSON.stringify(compactEntry(r.failure.journalEntry), null, 1).replace(/\n\s*/g, ' ');
    lines.push(chalk.dim(`  EPP journal entry${r.failure.request ? ` of request ${r.failure.request}` : ''}:`));
    lines.push(chalk.dim(indent(j.length > 3000 ? `${j.slice(0, 3000)}\n…` : j, '    ')));
  } else if (r.failure.journalNote) lines.push(chalk.dim(`  ${r.failure.journalNote}`));
  const log = r.failure.dataPlaneLog.trim();
  lines.push(chalk.dim(`  ${r.dataPlane} log (last lines):`));
  lines.push(chalk.dim(indent(log ? log.split('\n').slice(-25).join('\n') : '(empty)', '    ')));
  if (r.logDir) lines.push(chalk.dim(`  full logs: ${reportDir && !isAbsolute(r.logDir) ? join(reportDir, r.logDir) : r.logDir}`));
  return lines.join('\n');
}

export class ConsoleReporter implements Reporter {
  private readonly out: NonNullable<ConsoleReporterOptions['out']>;
  private readonly plain: boolean;
  private total = 0;
  private done = 0;
  private running = new Map<string, number>();
  private drawn = 0;
  private ticker: NodeJS.Timeout | undefined;

  constructor(opts: ConsoleReporterOptions = {}) {
    this.out = opts.out ?? process.stdout;
    this.plain = opts.plain ?? (Boolean(process.env.CI) || !this.out.isTTY);
  }

  private clearLive(): void {
    if (this.plain || this.drawn === 0) return;
    this.out.write(`\x1b[${this.drawn}A\x1b[0J`);
    this.drawn = 0;
  }

  private drawLive(): void {
    if (this.plain) return;
    const width = Math.max(20, Math.min(40, ((this.out as { columns?: number }).columns ?? 80) - 40));
    const filled = this.total ? Math.round((this.done / this.total) * width) : 0;
    const lines = [...this.running.entries()].map(([k, t]) => chalk.yellow(`  ▸ ${k} `) + chalk.dim(fmtMs(performance.now() - t)));
    lines.push(`  ${chalk.cyan('█'.repeat(filled))}${chalk.dim('░'.repeat(width - filled))} ${this.done}/${this.total}`);
    this.out.write(`${lines.join('\n')}\n`);
    this.drawn = lines.length;
  }

  onRunStart(info: RunStartInfo): void {
    this.total = info.total;
    this.out.write(
      `${chalk.bold('eppkit run')}: ${info.scenarios.length} scenario(s) × ${info.dataPlanes.join(', ')}  ${chalk.dim(`→ ${info.reportDir}`)}\n`,
    );
    if (!this.plain) this.ticker = setInterval(() => (this.clearLive(), this.drawLive()), 250).unref();
  }

  onScenarioStart(info: ScenarioStartInfo): void {
    this.clearLive();
    this.running.set(`${info.name} [${info.dataPlane}]`, performance.now());
    this.drawLive();
  }

  onScenarioEnd(r: ScenarioResult): void {
    this.clearLive();
    this.running.delete(`${r.name} [${r.dataPlane}]`);
    this.done++;
    const mark = r.status === 'passed' ? chalk.green('✓') : r.status === 'failed' ? chalk.red('✗') : chalk.yellow('-');
    const lat = r.latencyMs ? chalk.dim(`  p50 ${r.latencyMs.p50}ms p99 ${r.latencyMs.p99}ms`) : '';
    const overridden = r.steps.filter((st) => st.override).length;
    const why = r.status === 'skipped' ? chalk.dim(`  skipped: ${r.reason ?? ''}`) : r.status === 'failed' ? chalk.red(`  ${r.reason ?? ''}`) : overridden ? chalk.dim(`  (${overridden} step(s) with an expected difference)`) : '';
    const prefix = this.plain ? `[${this.done}/${this.total}] ` : '';
    this.out.write(`${prefix}${mark} ${r.name} ${chalk.dim(`[${r.dataPlane}]`)} ${chalk.dim(fmtMs(r.durationMs))}${lat}${why}\n`);
    for (const w of r.warnings ?? []) this.out.write(`    ${chalk.yellow(`warning: ${w}`)}\n`);
    this.drawLive();
  }

  onRunEnd(report: RunReport): void {
    if (this.ticker) clearInterval(this.ticker);
    this.clearLive();
    const failed = report.scenarios.filter((r) => r.status === 'failed');
    if (failed.length) {
      this.out.write(`\n${chalk.red.bold('Failures')}\n\n`);
      for (const r of failed) this.out.write(`${formatFailure(r, report.reportDir)}\n\n`);
    }
    const warned = report.scenarios.filter((r) => r.warnings?.length);
    if (warned.length) {
      this.out.write(`\n${chalk.yellow.bold('Warnings')}\n`);
      for (const r of warned) for (const w of r.warnings ?? []) this.out.write(`  ${r.name} [${r.dataPlane}]: ${w}\n`);
    }
    const { passed, failed: nf, skipped } = report.summary;
    this.out.write('\n');
    for (const c of report.coverage ?? []) {
      this.out.write(`${chalk.bold(c.dataPlane)}: ${c.line}\n`);
      const warn = mostlySkippedWarning(c);
      if (warn) this.out.write(`${chalk.bgYellow.black.bold(' WARNING ')} ${chalk.yellow.bold(warn)}\n`);
    }
    for (const o of report.overrides ?? []) this.out.write(chalk.dim(`expected difference on ${o.dataPlane}: ${o.scenario}${o.step ? ` / ${o.step}` : ''}: ${o.why}\n`));
    this.out.write(
      `\n${chalk.green(`${passed} passed`)}, ${nf ? chalk.red(`${nf} failed`) : '0 failed'}, ${chalk.yellow(`${skipped} skipped`)} in ${fmtMs(report.durationMs)}\n` +
        `reports: ${report.reportDir}/report.html, results.json, junit.xml, report.md, conformance-*.yaml\n`,
    );
  }
}
