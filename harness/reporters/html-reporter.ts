// report.html: one self-contained page (inline CSS and SVG, no script, no external asset):
// totals, a scenario × data plane matrix, the latency distribution per data plane, a latency
// plot per request step (client p50/p99/max) with the EPP's service time per scenario (streams
// the plane cancelled included, and counted), and every failure with expected/received, the EPP
// journal entry of the failing request (found by its id), the log excerpts and a link to the
// full logs.
import { writeFileSync } from 'node:fs';
import { isAbsolute, join, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { mostlySkippedWarning } from '../runner/coverage.ts';
import type { LatencySummary, RunReport, ScenarioResult } from '../runner/results.ts';
import type { Reporter } from './reporter.ts';

export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const CSS = `
:root{--pass:#1a7f37;--fail:#cf222e;--skip:#9a6700;--fg:#1f2328;--muted:#656d76;--line:#d0d7de;--bg:#f6f8fa}
*{box-sizing:border-box}body{font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);margin:0;background:#fff}
header{padding:20px 32px;border-bottom:1px solid var(--line);background:var(--bg)}h1{margin:0 0 4px;font-size:22px}
main{padding:8px 32px 40px;max-width:1200px}h2{font-size:18px;margin:28px 0 10px;border-bottom:1px solid var(--line);padding-bottom:4px}
.meta{color:var(--muted)}.totals{display:flex;gap:12px;margin-top:12px;align-items:center}
.pill{padding:4px 12px;border-radius:999px;font-weight:600;color:#fff}.pass{background:var(--pass)}.fail{background:var(--fail)}.skip{background:var(--skip)}.pill.none{background:var(--bg);color:var(--muted);border:1px solid var(--line)}
h3{font-size:15px;margin:18px 0 6px}a{color:#0969da}
table{border-collapse:collapse;width:100%;margin:8px 0}th,td{border:1px solid var(--line);padding:5px 8px;text-align:left;vertical-align:top}
th{background:var(--bg);font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
.st{font-weight:600}.st.passed{color:var(--pass)}.st.failed{color:var(--fail)}.st.skipped{color:var(--skip)}
.reason{color:var(--muted);font-size:12px}.tag{display:inline-block;background:#ddf4ff;color:#0969da;border-radius:4px;padding:0 6px;margin-right:4px;font-size:12px}
pre{background:var(--bg);border:1px solid var(--line);padding:8px;overflow:auto;max-height:360px;font-size:12px}
.failure{border:1px solid var(--fail);border-left:6px solid var(--fail);border-radius:6px;padding:8px 14px;margin:12px 0}
.coverage{margin:.3em 0;padding:.4em .6em;border-left:4px solid var(--pass)}.coverage.warn{border-left-color:var(--fail);background:#fff4e5;font-size:1.1em}.exp{color:var(--pass)}.rec{color:var(--fail)}details summary{cursor:pointer;color:#0969da}
.legend span{display:inline-flex;align-items:center;margin-right:14px;color:var(--muted)}.legend i{width:12px;height:12px;display:inline-block;margin-right:4px;border-radius:2px}
svg text{font:12px system-ui,sans-serif;fill:var(--fg)}
`;

function statusCell(r: ScenarioResult | undefined): string {
  if (!r) return '<td></td>';
  const title = r.reason ? ` title="${esc(r.reason)}"` : '';
  const sym = r.status === 'passed' ? '✓ passed' : r.status === 'failed' ? '✗ failed' : '– skipped';
  return `<td${title}><span class="st ${r.status}">${sym}</span> <span class="reason">${(r.durationMs / 1000).toFixed(2)}s</span>${r.status !== 'passed' && r.reason ? `<div class="reason">${esc(r.reason)}</div>` : ''}</td>`;
}

function totalsSvg(p: number, f: number, s: number): string {
  const total = Math.max(1, p + f + s);
  const w = 360;
  let x = 0;
  const seg = (n: number, color: string): string => {
    const width = (n / total) * w;
    const r = `<rect x="${x.toFixed(1)}" y="0" width="${width.toFixed(1)}" height="14" fill="${color}"/>`;
    x += width;
    return n ? r : '';
  };
  return `<svg width="${w}" height="14" role="img" aria-label="${p} passed, ${f} failed, ${s} skipped">${seg(p, '#1a7f37')}${seg(f, '#cf222e')}${seg(s, '#9a6700')}</svg>`;
}

/** One bar row of the per-step latency figure. */
interface LatencyRow {
  label: string;
  title: string;
  l: LatencySummary;
  epp?: LatencySummary | undefined;
}

/** Request steps with answered requests, each its own row (a scenario's steps differ: a pinned request, then a timeout). */
function stepRows(rs: readonly ScenarioResult[]): LatencyRow[] {
  const rows: LatencyRow[] = [];
  for (const r of rs) {
    const steps = r.steps.filter((st) => st.latencyMs);
    if (steps.length === 0 && r.latencyMs) rows.push({ label: `${r.name} [${r.dataPlane}]`, title: `${r.name} on ${r.dataPlane}`, l: r.latencyMs, epp: r.eppServiceTimeMs });
    for (const st of steps) rows.push({ label: `${r.name} › ${st.index + 1}. ${st.name} [${r.dataPlane}]`, title: `${r.name} on ${r.dataPlane}, step ${st.index + 1}: ${st.name}`, l: st.latencyMs as LatencySummary });
  }
  return rows;
}

function latencySvg(rs: ScenarioResult[]): string {
  const rows = stepRows(rs);
  if (rows.length === 0) return '<p class="meta">No request latencies recorded.</p>';
  const max = Math.max(1, ...rows.map((r) => r.l.max));
  const label = 380;
  const plot = 520;
  const rowH = 22;
  const h = rows.length * rowH + 30;
  const sx = (v: number): number => label + (Math.min(v, max) / max) * plot;
  const parts: string[] = [];
  rows.forEach((r, i) => {
    const y = i * rowH + 4;
    const l = r.l;
    const text = r.label.length > 58 ? `${r.label.slice(0, 57)}…` : r.label;
    parts.push(`<g class="step"><title>${esc(r.title)}: p50 ${l.p50} / p99 ${l.p99} / max ${l.max} ms over ${l.count} requests</title>`);
    parts.push(`<text x="${label - 8}" y="${y + 12}" text-anchor="end">${esc(text)}</text>`);
    parts.push(`<rect x="${label}" y="${y + 2}" width="${(sx(l.max) - label).toFixed(1)}" height="12" fill="#d0d7de"/>`);
    parts.push(`<rect x="${label}" y="${y + 2}" width="${(sx(l.p99) - label).toFixed(1)}" height="12" fill="#54aeff"/>`);
    parts.push(`<rect x="${label}" y="${y + 2}" width="${(sx(l.p50) - label).toFixed(1)}" height="12" fill="#0969da"/>`);
    if (r.epp) parts.push(`<rect x="${label}" y="${y + 15}" width="${Math.max(1, sx(r.epp.p50) - label).toFixed(1)}" height="3" fill="#bf8700"/>`);
    parts.push(`<text x="${(sx(l.max) + 6).toFixed(1)}" y="${y + 12}" fill="#656d76">${l.p50} / ${l.p99} / ${l.max} ms</text></g>`);
  });
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((q) => {
    const x = label + q * plot;
    return `<line x1="${x}" x2="${x}" y1="0" y2="${h - 22}" stroke="#eaeef2"/><text x="${x}" y="${h - 6}" text-anchor="middle" fill="#656d76">${Math.round(q * max)} ms</text>`;
  });
  return `<div class="legend"><span><i style="background:#0969da"></i>p50</span><span><i style="background:#54aeff"></i>p99</span><span><i style="background:#d0d7de"></i>max</span></div>
<svg id="latency-per-step" width="${label + plot + 170}" height="${h}" role="img" aria-label="request latency per step">${ticks.join('')}${parts.join('')}</svg>`;
}

const PLANE_COLORS = ['#0969da', '#bf3989', '#1a7f37', '#bc4c00', '#8250df', '#9a6700', '#57606a'];

/**
 * How request latencies are distributed, per data plane: the share of requests in each bucket
 * of the merged histograms, on a log time axis (a fail-open timeout at 200 ms and a 2 ms pick
 * are both visible).
 */
function distributionSvg(rs: readonly ScenarioResult[], planes: readonly string[]): string {
  const byPlane = new Map<string, Map<number, number>>();
  for (const r of rs) {
    if (!r.latencyHistogram) continue;
    const m = byPlane.get(r.dataPlane) ?? new Map<number, number>();
    for (const [ub, n] of r.latencyHistogram) m.set(ub, (m.get(ub) ?? 0) + n);
    byPlane.set(r.dataPlane, m);
  }
  if (byPlane.size === 0) return '';
  const all = [...byPlane.values()].flatMap((m) => [...m.keys()]);
  const lo = Math.floor(Math.log2(Math.min(...all)) * 4) - 1;
  const hi = Math.ceil(Math.log2(Math.max(...all)) * 4);
  const left = 50;
  const width = 820;
  const height = 200;
  const top = 10;
  const x = (k: number): number => left + ((k - lo) / Math.max(1, hi - lo)) * width;
  const series = planes.filter((p) => byPlane.has(p)).map((p, i) => {
    const m = byPlane.get(p) as Map<number, number>;
    const total = [...m.values()].reduce((a, b) => a + b, 0);
    return { plane: p, color: PLANE_COLORS[i % PLANE_COLORS.length] as string, total, shares: new Map([...m].map(([ub, n]) => [Math.round(Math.log2(ub) * 4), n / total])) };
  });
  const maxShare = Math.max(...series.flatMap((s) => [...s.shares.values()]), 0.01);
  const y = (share: number): number => top + height - (share / maxShare) * height;
  const parts: string[] = [];
  for (const s of series) {
    const pts: string[] = [];
    for (let k = lo; k <= hi; k++) pts.push(`${x(k).toFixed(1)},${y(s.shares.get(k) ?? 0).toFixed(1)}`);
    parts.push(`<polyline class="dist" data-plane="${esc(s.plane)}" points="${pts.join(' ')}" fill="none" stroke="${s.color}" stroke-width="2"><title>${esc(s.plane)}: ${s.total} requests</title></polyline>`);
  }
  // Ticks at 1, 2, 5 × powers of ten (labels at least 40 px apart).
  const ticks: string[] = [];
  let lastLabel = -Infinity;
  for (let d = -3; d <= 6; d++) {
    for (const m of [1, 2, 5]) {
      const ms = m * 10 ** d;
      const k = Math.log2(ms) * 4;
      if (k < lo || k > hi) continue;
      const tx = x(k);
      const label = tx - lastLabel >= 40 ? (ms >= 1000 ? `${ms / 1000}s` : `${Number(ms.toPrecision(1))}ms`) : '';
      if (label) lastLabel = tx;
      ticks.push(`<line x1="${tx.toFixed(1)}" x2="${tx.toFixed(1)}" y1="${top}" y2="${top + height}" stroke="${m === 1 ? '#d0d7de' : '#eaeef2'}"/>${label ? `<text x="${tx.toFixed(1)}" y="${top + height + 16}" text-anchor="middle" fill="#656d76">${label}</text>` : ''}`);
    }
  }
  const yTicks = [0, 0.5, 1].map((q) => `<text x="${left - 6}" y="${(y(q * maxShare) + 4).toFixed(1)}" text-anchor="end" fill="#656d76">${Math.round(q * maxShare * 100)}%</text>`);
  const legend = series.map((s) => `<span><i style="background:${s.color}"></i>${esc(s.plane)} (${s.total} requests)</span>`).join('');
  return `<div class="legend">${legend}</div>
<svg id="latency-distribution" width="${left + width + 20}" height="${top + height + 26}" role="img" aria-label="latency distribution per data plane">${ticks.join('')}${yTicks.join('')}<line x1="${left}" x2="${left + width}" y1="${top + height}" y2="${top + height}" stroke="#8c959f"/>${parts.join('')}</svg>
<p class="meta">Share of requests per latency bucket (a quarter octave wide), every scenario of a data plane merged; the time axis is logarithmic.</p>`;
}

/** A path of the report directory as a link from report.html (which lives in it). */
function reportLink(reportDir: string, rel: string): string {
  const abs = isAbsolute(rel) ? rel : join(reportDir, rel);
  const href = isAbsolute(rel) ? pathToFileURL(rel).href : rel.split(sep).map(encodeURIComponent).join('/');
  return `<a href="${esc(href)}/" title="${esc(abs)}">${esc(abs)}</a>`;
}

function failureHtml(r: ScenarioResult, reportDir: string): string {
  const f = r.failure;
  const rows = (f?.mismatches ?? [])
    .slice(0, 20)
    .map((m) => `<tr><td>${esc(m.what)}</td><td class="exp"><code>${esc(JSON.stringify(m.expected))}</code></td><td class="rec"><code>${esc(JSON.stringify(m.received)).slice(0, 2000)}</code></td></tr>`)
    .join('');
  const of = f?.request ? ` of request ${esc(f.request)}` : '';
  const journal = f?.journalEntry
    ? `<details class="journal"><summary>EPP journal entry${of}</summary><pre>${esc(JSON.stringify(f.journalEntry, null, 2))}</pre></details>`
    : f?.journalNote
      ? `<p class="meta journal-note">${esc(f.journalNote)}</p>`
      : '';
  return `<div class="failure" id="fail-${esc(r.name)}-${esc(r.dataPlane)}">
<h3>✗ ${esc(r.name)} on ${esc(r.dataPlane)}</h3>
<p class="meta">${esc(r.file)} — ${esc(f?.step ?? r.reason ?? '')}${f?.request ? ` — request ${esc(f.request)}` : ''}</p>
${rows ? `<table><tr><th>check</th><th>expected</th><th>received</th></tr>${rows}</table>` : ''}
${journal}
<details><summary>${esc(r.dataPlane)} log excerpt</summary><pre>${esc(f?.dataPlaneLog || '(empty)')}</pre></details>
<details><summary>mock EPP log excerpt</summary><pre>${esc(f?.eppLog || '(empty)')}</pre></details>
${r.logDir ? `<p class="meta full-logs">Full logs: ${reportLink(reportDir, r.logDir)}</p>` : ''}
</div>`;
}

/** EPP service time p50 / p99, and how many streams the plane cancelled (included). */
function eppCell(r: ScenarioResult): string {
  if (!r.eppServiceTimeMs) return '–';
  const c = r.eppCancelledStreams ? ` <span class="reason">(${r.eppServiceTimeMs.count} streams, ${r.eppCancelledStreams} cancelled)</span>` : '';
  return `${r.eppServiceTimeMs.p50} / ${r.eppServiceTimeMs.p99}${c}`;
}

export function htmlReport(report: RunReport): string {
  const { passed, failed, skipped } = report.summary;
  const names = [...new Set(report.scenarios.map((r) => r.name))];
  const dps = report.dataPlanes.map((d) => d.name);
  const byKey = new Map(report.scenarios.map((r) => [`${r.name}\u0000${r.dataPlane}`, r]));
  const first = new Map<string, ScenarioResult>();
  for (const r of report.scenarios) if (!first.has(r.name)) first.set(r.name, r);
  const matrix = names
    .map((n) => {
      const s = first.get(n)!;
      const tags = s.tags.map((t) => `<span class="tag">${esc(t)}</span>`).join('');
      return `<tr><td><strong>${esc(n)}</strong><div class="reason">${esc(s.description)}</div>${tags}</td>${dps.map((d) => statusCell(byKey.get(`${n}\u0000${d}`))).join('')}</tr>`;
    })
    .join('\n');
  // A row per request step (its own latency), the EPP's time once per scenario.
  const timing = report.scenarios
    .filter((r) => r.latencyMs)
    .map((r) => {
      const steps = r.steps.filter((st) => st.latencyMs);
      const lines = steps.length > 0 ? steps.map((st) => ({ what: `${st.index + 1}. ${st.name}`, l: st.latencyMs as LatencySummary })) : [{ what: '(all steps)', l: r.latencyMs as LatencySummary }];
      return lines
        .map(
          (x, i) =>
            `<tr>${i === 0 ? `<td rowspan="${lines.length}">${esc(r.name)}</td><td rowspan="${lines.length}">${esc(r.dataPlane)}</td>` : ''}<td>${esc(x.what)}</td><td class="num">${x.l.count}</td><td class="num">${x.l.p50}</td><td class="num">${x.l.p99}</td><td class="num">${x.l.max}</td>${i === 0 ? `<td class="num" rowspan="${lines.length}">${eppCell(r)}</td>` : ''}</tr>`,
        )
        .join('\n');
    })
    .join('\n');
  const dpRows = report.dataPlanes
    .map((d) => `<tr><td><strong>${esc(d.name)}</strong></td><td>${d.available ? '<span class="st passed">available</span>' : `<span class="st skipped">not available</span><div class="reason">${esc(d.reason ?? '')}</div>`}</td><td>${esc(d.description)}</td><td class="reason">${esc(d.features.join(', '))}</td></tr>`)
    .join('\n');
  const failures = report.scenarios.filter((r) => r.status === 'failed');
  const coverage = (report.coverage ?? [])
    .map((c) => {
      const warn = mostlySkippedWarning(c);
      return `<div class="coverage${warn ? ' warn' : ''}" id="coverage-${esc(c.dataPlane)}"><strong>${esc(c.dataPlane)}</strong>: ${esc(c.line)}${warn ? `<p><strong>Warning:</strong> ${esc(warn)}</p>` : ''}</div>`;
    })
    .join('\n');
  const overrides = (report.overrides ?? []).map((o) => `<tr><td>${esc(o.dataPlane)}</td><td>${esc(o.scenario)}</td><td>${esc(o.step ?? '(whole scenario)')}</td><td>${esc(o.why)}</td></tr>`).join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>eppkit run — ${failed ? 'failed' : 'passed'}</title><style>${CSS}</style></head>
<body><header><h1>eppkit run ${failed ? '<span class="st failed">failed</span>' : '<span class="st passed">passed</span>'}</h1>
<div class="meta">${esc(report.startedAt)} · ${(report.durationMs / 1000).toFixed(1)} s · runtime ${esc(report.runtime)} · ${names.length} scenarios × ${dps.length} data plane(s)</div>
<div class="totals"><span class="pill pass" id="passed">${passed} passed</span><span class="pill ${failed ? 'fail' : 'none'}" id="failed">${failed} failed</span><span class="pill skip" id="skipped">${skipped} skipped</span>${totalsSvg(passed, failed, skipped)}</div></header>
<main>
<h2>Coverage</h2>
${coverage}
${failures.length ? `<h2>Failures</h2>${failures.map((r) => failureHtml(r, report.reportDir)).join('\n')}` : ''}
${overrides ? `<h2>Expected differences</h2><table id="overrides"><tr><th>data plane</th><th>scenario</th><th>step</th><th>why</th></tr>${overrides}</table>` : ''}
<h2>Scenarios × data planes</h2>
<table id="matrix"><tr><th>scenario</th>${dps.map((d) => `<th>${esc(d)}</th>`).join('')}</tr>
${matrix}</table>
<h2>Where time went</h2>
<h3>Latency distribution</h3>
${distributionSvg(report.scenarios, dps)}
<h3>Latency per step</h3>
${latencySvg(report.scenarios)}
<table id="timing"><tr><th>scenario</th><th>data plane</th><th>step</th><th>requests</th><th>p50 ms</th><th>p99 ms</th><th>max ms</th><th>EPP service p50 / p99 ms</th></tr>
${timing}</table>
<p class="meta">Client latency includes the data plane, the EPP exchange and the echo backend. The EPP service time is what the mock EPP spent per stream (from its journal), over the whole scenario: the time to each answer, and for a stream the plane cancelled (its EPP timeout, a client gone) the time until the cancel; how many were cancelled is said beside it. Gross numbers from a functional run, not a benchmark.</p>
<h2>Data planes</h2>
<table><tr><th>name</th><th>status</th><th>description</th><th>features</th></tr>${dpRows}</table>
</main></body></html>
`;
}

export class HtmlReporter implements Reporter {
  onRunEnd(report: RunReport): void {
    writeFileSync(join(report.reportDir, 'report.html'), htmlReport(report));
  }
}
