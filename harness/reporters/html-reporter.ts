// report.html: one self-contained page (inline CSS and SVG, no script, no external asset):
// totals, a scenario × data plane matrix, a latency plot (client p50/p99/max and the EPP's
// service time per scenario), and every failure with expected/received, the EPP journal entry
// and the data plane's log excerpt.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { mostlySkippedWarning } from '../runner/coverage.ts';
import type { RunReport, ScenarioResult } from '../runner/results.ts';
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
.pill{padding:4px 12px;border-radius:999px;font-weight:600;color:#fff}.pass{background:var(--pass)}.fail{background:var(--fail)}.skip{background:var(--skip)}
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

function latencySvg(rs: ScenarioResult[]): string {
  const rows = rs.filter((r) => r.latencyMs);
  if (rows.length === 0) return '<p class="meta">No request latencies recorded.</p>';
  const max = Math.max(1, ...rows.map((r) => r.latencyMs?.max ?? 0));
  const label = 310;
  const plot = 560;
  const rowH = 26;
  const h = rows.length * rowH + 30;
  const sx = (v: number): number => label + (Math.min(v, max) / max) * plot;
  const parts: string[] = [];
  rows.forEach((r, i) => {
    const y = i * rowH + 6;
    const l = r.latencyMs!;
    parts.push(`<text x="${label - 8}" y="${y + 13}" text-anchor="end">${esc(`${r.name} [${r.dataPlane}]`.slice(0, 46))}</text>`);
    parts.push(`<rect x="${label}" y="${y + 2}" width="${(sx(l.max) - label).toFixed(1)}" height="14" fill="#d0d7de"><title>max ${l.max} ms</title></rect>`);
    parts.push(`<rect x="${label}" y="${y + 2}" width="${(sx(l.p99) - label).toFixed(1)}" height="14" fill="#54aeff"><title>p99 ${l.p99} ms</title></rect>`);
    parts.push(`<rect x="${label}" y="${y + 2}" width="${(sx(l.p50) - label).toFixed(1)}" height="14" fill="#0969da"><title>p50 ${l.p50} ms</title></rect>`);
    if (r.eppServiceTimeMs) {
      const e = r.eppServiceTimeMs.p50;
      parts.push(`<rect x="${label}" y="${y + 17}" width="${Math.max(1, sx(e) - label).toFixed(1)}" height="4" fill="#bf8700"><title>EPP service p50 ${e} ms</title></rect>`);
    }
    parts.push(`<text x="${(sx(l.max) + 6).toFixed(1)}" y="${y + 13}" fill="#656d76">${l.p50} / ${l.p99} / ${l.max} ms</text>`);
  });
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((q) => {
    const x = label + q * plot;
    return `<line x1="${x}" x2="${x}" y1="0" y2="${h - 22}" stroke="#eaeef2"/><text x="${x}" y="${h - 6}" text-anchor="middle" fill="#656d76">${Math.round(q * max)} ms</text>`;
  });
  return `<div class="legend"><span><i style="background:#0969da"></i>p50</span><span><i style="background:#54aeff"></i>p99</span><span><i style="background:#d0d7de"></i>max</span><span><i style="background:#bf8700"></i>EPP service time p50</span></div>
<svg width="${label + plot + 230}" height="${h}" role="img" aria-label="request latency per scenario">${ticks.join('')}${parts.join('')}</svg>`;
}

function failureHtml(r: ScenarioResult): string {
  const f = r.failure;
  const rows = (f?.mismatches ?? [])
    .slice(0, 20)
    .map((m) => `<tr><td>${esc(m.what)}</td><td class="exp"><code>${esc(JSON.stringify(m.expected))}</code></td><td class="rec"><code>${esc(JSON.stringify(m.received)).slice(0, 2000)}</code></td></tr>`)
    .join('');
  return `<div class="failure" id="fail-${esc(r.name)}-${esc(r.dataPlane)}">
<h3>✗ ${esc(r.name)} on ${esc(r.dataPlane)}</h3>
<p class="meta">${esc(r.file)} — ${esc(f?.step ?? r.reason ?? '')}</p>
${rows ? `<table><tr><th>check</th><th>expected</th><th>received</th></tr>${rows}</table>` : ''}
${f?.journalEntry ? `<details><summary>EPP journal entry</summary><pre>${esc(JSON.stringify(f.journalEntry, null, 2))}</pre></details>` : ''}
<details><summary>${esc(r.dataPlane)} log excerpt</summary><pre>${esc(f?.dataPlaneLog || '(empty)')}</pre></details>
<details><summary>mock EPP log excerpt</summary><pre>${esc(f?.eppLog || '(empty)')}</pre></details>
${r.logDir ? `<p class="meta">Full logs: <code>${esc(r.logDir)}</code></p>` : ''}
</div>`;
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
  const timing = report.scenarios
    .filter((r) => r.latencyMs)
    .map(
      (r) =>
        `<tr><td>${esc(r.name)}</td><td>${esc(r.dataPlane)}</td><td class="num">${r.latencyMs!.count}</td><td class="num">${r.latencyMs!.p50}</td><td class="num">${r.latencyMs!.p99}</td><td class="num">${r.latencyMs!.max}</td><td class="num">${r.eppServiceTimeMs ? `${r.eppServiceTimeMs.p50} / ${r.eppServiceTimeMs.p99}` : '–'}</td></tr>`,
    )
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
<div class="totals"><span class="pill pass" id="passed">${passed} passed</span><span class="pill fail" id="failed">${failed} failed</span><span class="pill skip" id="skipped">${skipped} skipped</span>${totalsSvg(passed, failed, skipped)}</div></header>
<main>
<h2>Coverage</h2>
${coverage}
${failures.length ? `<h2>Failures</h2>${failures.map(failureHtml).join('\n')}` : ''}
${overrides ? `<h2>Expected differences</h2><table id="overrides"><tr><th>data plane</th><th>scenario</th><th>step</th><th>why</th></tr>${overrides}</table>` : ''}
<h2>Scenarios × data planes</h2>
<table id="matrix"><tr><th>scenario</th>${dps.map((d) => `<th>${esc(d)}</th>`).join('')}</tr>
${matrix}</table>
<h2>Where time went</h2>
${latencySvg(report.scenarios)}
<table><tr><th>scenario</th><th>data plane</th><th>requests</th><th>p50 ms</th><th>p99 ms</th><th>max ms</th><th>EPP service p50 / p99 ms</th></tr>
${timing}</table>
<p class="meta">Client latency includes the data plane, the EPP exchange and the echo backend; the EPP service time is what the mock EPP spent answering (from its journal). Gross numbers from a functional run, not a benchmark.</p>
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
