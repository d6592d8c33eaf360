// report.html opened in a real headless browser (Debian's chromium): it renders without any
// external asset, shows the totals ("0 failed" not in red), the matrix, the latency per step and
// its distribution, the EPP time with cancelled streams counted, and each failure with
// expected/received, its own request's journal entry and a link to the full logs, and escapes
// what came from logs. Skipped locally (with the reason) when
// chromium is absent; with CI=true its absence is a failure.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { htmlReport } from '../../harness/reporters/html-reporter.ts';
import type { RunReport } from '../../harness/runner/results.ts';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
const inCi = process.env.CI === 'true' || process.env.CI === '1';

function chromium(args: string[]): { stdout: string; status: number | null } {
  const userDir = mkdtempSync(join(tmpdir(), 'eppkit-chromium-'));
  const r = spawnSync(
    CHROMIUM ?? 'chromium',
    ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', `--user-data-dir=${userDir}`, ...args],
    { encoding: 'utf8', timeout: 60_000, maxBuffer: 32 * 1024 * 1024 },
  );
  return { stdout: r.stdout, status: r.status };
}

const report: RunReport = {
  startedAt: '2026-11-22T03:00:00.000Z',
  durationMs: 12_345,
  runtime: 'local',
  reportDir: '/tmp/x',
  dataPlanes: [
    { name: 'node-proxy', description: 'reference data plane', available: true, features: ['body-buffered', 'fail-open'] },
    { name: 'nginx', description: 'nginx with the module', available: false, reason: 'run eppkit build nginx', features: [] },
  ],
  scenarios: [
    {
      name: 'routing-follows-epp',
      dataPlane: 'node-proxy',
      status: 'passed',
      durationMs: 1200,
      file: 'scenarios/a.yaml',
      description: 'routes',
      tags: ['core'],
      features: [],
      steps: [
        { index: 0, name: 'pinned to pod-b', kind: 'request', status: 'passed', durationMs: 30, requests: 5, latencyMs: { count: 5, p50: 9.5, p99: 12, max: 12 } },
        { index: 1, name: 'stop-epp', kind: 'action', status: 'passed', durationMs: 5 },
        { index: 2, name: 'EPP gone, fail-open', kind: 'request', status: 'passed', durationMs: 420, requests: 2, latencyMs: { count: 2, p50: 40.1, p99: 41, max: 41 } },
      ],
      latencyMs: { count: 7, p50: 9.5, p99: 40.1, max: 41 },
      latencyHistogram: [[9.514, 4], [11.314, 1], [41.5, 2]],
      eppServiceTimeMs: { count: 7, p50: 1.2, p99: 3.4, max: 3.4 },
      eppCancelledStreams: 2,
    },
    {
      name: 'fail-close-epp-down',
      dataPlane: 'node-proxy',
      status: 'failed',
      durationMs: 3400,
      reason: 'step 3 (EPP gone): status',
      file: 'scenarios/b.yaml',
      description: 'fail close',
      tags: ['core'],
      features: ['fail-close'],
      steps: [],
      latencyMs: { count: 3, p50: 12, p99: 300, max: 300 },
      latencyHistogram: [[11.314, 2], [304.4, 1]],
      logDir: 'logs/fail-close-epp-down--node-proxy',
      failure: {
        step: 'step 3 (EPP gone)',
        mismatches: [{ what: 'status', expected: 500, received: 200, request: '3.1' }],
        request: '3.1',
        journalEntry: { id: 4, pick: { value: '127.0.0.2:4000' }, requestHeaders: { 'eppkit-request-id': '3.1' } },
        dataPlaneLog: '<script>alert("log")</script> upstream said <b>hi</b>',
        eppLog: 'grpc listening on 127.0.0.1:1',
      },
    },
    { name: 'routing-follows-epp', dataPlane: 'nginx', status: 'skipped', durationMs: 0, reason: 'data plane nginx is not available: run eppkit build nginx', file: 'scenarios/a.yaml', description: 'routes', tags: ['core'], features: [], steps: [] },
    { name: 'fail-close-epp-down', dataPlane: 'nginx', status: 'skipped', durationMs: 0, reason: 'data plane nginx is not available', file: 'scenarios/b.yaml', description: 'fail close', tags: ['core'], features: [], steps: [] },
  ],
  summary: { passed: 1, failed: 1, skipped: 2 },
};

const passing: RunReport = { ...report, scenarios: report.scenarios.filter((s) => s.status !== 'failed'), summary: { passed: 1, failed: 0, skipped: 2 } };

describe('report.html in a headless browser', () => {
  it.skipIf(!CHROMIUM && !inCi)(`renders totals, matrix, plot and failures (chromium ${CHROMIUM ? 'found' : 'absent: apt-get install -y chromium'})`, () => {
    expect(CHROMIUM, 'chromium is required in CI: apt-get install -y chromium').toBeDefined();
    const dir = mkdtempSync(join(tmpdir(), 'eppkit-html-'));
    const file = join(dir, 'report.html');
    const html = htmlReport(report);
    writeFileSync(file, html);
    // Self-contained: no external stylesheet, script, image or font.
    expect(html).not.toMatch(/<(script|link)\b|src=|@import|url\(/i);

    const dom = chromium(['--dump-dom', `file://${file}`]).stdout;
    expect(dom).toContain('<title>eppkit run — failed</title>');
    expect(dom).toMatch(/id="passed">1 passed</);
    expect(dom).toMatch(/id="failed">1 failed</);
    expect(dom).toMatch(/id="skipped">2 skipped</);
    expect(dom).toContain('fail-close-epp-down on node-proxy');
    expect(dom).toMatch(/<td class="exp"><code>500<\/code><\/td><td class="rec"><code>200<\/code>/);
    // The matrix has a column per data plane and the unavailable one says why.
    expect(dom).toMatch(/<table id="matrix"><tbody><tr><th>scenario<\/th><th>node-proxy<\/th><th>nginx<\/th>/);
    expect(dom).toContain('run eppkit build nginx');
    // Latency per request step (not one figure per scenario), and the distribution per data plane.
    expect(dom).toContain('aria-label="request latency per step"');
    expect(dom).toContain('routing-follows-epp › 1. pinned to pod-b [node-proxy]');
    expect(dom).toContain('routing-follows-epp › 3. EPP gone, fail-open [node-proxy]');
    expect(dom).not.toContain('2. stop-epp [node-proxy]');
    expect(dom).toContain('aria-label="latency distribution per data plane"');
    expect(dom).toMatch(/<polyline class="dist" data-plane="node-proxy" points="[\d., ]+"/);
    expect(dom).toContain('node-proxy (10 requests)');
    // The EPP time counts the streams the plane cancelled, and says how many.
    expect(dom).toContain('1.2 / 3.4 <span class="reason">(7 streams, 2 cancelled)</span>');
    // The failure shows its own request's journal entry, and the full logs as a link.
    expect(dom).toContain('EPP journal entry of request 3.1');
    expect(dom).toContain('<a href="logs/fail-close-epp-down--node-proxy/" title="/tmp/x/logs/fail-close-epp-down--node-proxy">/tmp/x/logs/fail-close-epp-down--node-proxy</a>');
    // Log text is shown as text, never run or rendered as markup.
    expect(dom).toContain('&lt;script&gt;alert("log")&lt;/script&gt;');
    expect(dom).not.toContain('<b>hi</b>');

    const png = join(dir, 'report.png');
    chromium(['--window-size=1280,1600', `--screenshot=${png}`, `file://${file}`]);
    expect(existsSync(png)).toBe(true);
    expect(readFileSync(png).subarray(1, 4).toString()).toBe('PNG');
    expect(statSync(png).size).toBeGreaterThan(20_000);

    // "0 failed" is not painted as a failure.
    const okFile = join(dir, 'ok.html');
    writeFileSync(okFile, htmlReport(passing));
    const ok = chromium(['--dump-dom', `file://${okFile}`]).stdout;
    expect(ok).toContain('<title>eppkit run — passed</title>');
    expect(ok).toMatch(/<span class="pill none" id="failed">0 failed<\/span>/);
    expect(dom).toMatch(/<span class="pill fail" id="failed">1 failed<\/span>/);
    // The neutral pill: the page's grey, not the failure red.
    expect(ok).toMatch(/\.pill\.none\{background:var\(--bg\);color:var\(--muted\)/);
  }, 120_000);
});
