// A failed step shows the evidence of its own request: the EPP journal entry found by the
// request's eppkit-request-id header, not the journal's last entry (here a later request of
// the same parallel step), and the full logs as a path a user can open: absolute on the
// console, a link in report.html.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const BIN = new URL('../../bin/eppkit.js', import.meta.url).pathname;

const SCENARIO = `name: own-journal-entry
description: one request of a parallel step is refused by the EPP; another one, sent later, passes
setup:
  backends:
    - name: pod-a
steps:
  - parallel:
      - name: refused
        request: { path: /v1/refused, headers: { x-eppkit-immediate: "429" } }
        expect: { status: 200 }
      - name: later
        request: { path: /v1/later, startAfterMs: 700 }
        expect: { status: 200 }
`;

describe('a failed step', () => {
  it("shows the journal entry of its own failing request (by id), and full logs as an absolute path and a link", () => {
    const cwd = mkdtempSync(join(tmpdir(), 'eppkit-evidence-'));
    writeFileSync(join(cwd, 'own.yaml'), SCENARIO);
    const r = spawnSync(process.execPath, [BIN, 'run', 'own.yaml', '--report-dir', 'out'], { cwd, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', CI: '1' }, timeout: 170_000 });
    expect(r.status, r.stderr).toBe(1);
    const results = JSON.parse(readFileSync(join(cwd, 'out', 'results.json'), 'utf8'));
    const failure = results.scenarios[0].failure;
    expect(failure.mismatches[0]).toMatchObject({ what: 'refused: status', expected: 200, received: 429 });
    // The refused request's own entry: its id, its path, the EPP's immediate answer.
    expect(failure.request).toMatch(/^1\.\d+$/);
    expect(failure.journalEntry.requestHeaders['eppkit-request-id']).toBe(failure.request);
    expect(failure.journalEntry.requestHeaders[':path']).toBe('/v1/refused');
    expect(failure.journalEntry.answers.map((a: { kind: string }) => a.kind)).toContain('immediate_response');
    // The console names the request and gives a path to paste, wherever the run was started.
    expect(r.stdout).toContain(`at step 1 (parallel: 2 steps) (request ${failure.request})`);
    expect(r.stdout).toContain(`EPP journal entry of request ${failure.request}`);
    const full = r.stdout.match(/full logs: (\S+)/)?.[1] ?? '';
    expect(full).toBe(join(cwd, 'out', results.scenarios[0].logDir));
    expect(existsSync(full)).toBe(true);
    // report.html: the same entry, and the logs as a link relative to the report.
    const html = readFileSync(join(cwd, 'out', 'report.html'), 'utf8');
    expect(html).toContain(`EPP journal entry of request ${failure.request}`);
    expect(html).toContain(`<a href="${results.scenarios[0].logDir}/" title="${full}">${full}</a>`);
  }, 180_000);
});
