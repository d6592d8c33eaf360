// Helpers of the plane-file tests: run `eppkit` as a user does and read what it wrote.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RunReport } from '../../harness/runner/results.ts';

export const BIN = new URL('../../bin/eppkit.js', import.meta.url).pathname;
export const PLANES = new URL('../../planes/', import.meta.url).pathname;

export function eppkit(args: string[], cwd: string, timeoutMs = 900_000): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', CI: process.env.CI ?? '1' }, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
  return { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

export function results(reportDir: string): RunReport {
  return JSON.parse(readFileSync(join(reportDir, 'results.json'), 'utf8')) as RunReport;
}

/** "status name: reason" of every result that did not pass, for assertion messages. */
export function notPassed(r: RunReport): string[] {
  return r.scenarios.filter((s) => s.status !== 'passed').map((s) => `${s.status} ${s.name}: ${(s.reason ?? '').slice(0, 300)}`);
}

/** A scenario of one routed POST: enough to start a plane and judge it once. */
export const ONE_REQUEST_SCENARIO = `name: one-request
description: one routed request
features: [body-buffered]
setup:
  backends:
    - name: pod-a
steps:
  - request: { method: POST, path: /v1/completions, body: { json: { prompt: hi } } }
    expect: { status: 200, backend: pod-a }
`;

/** A plane file's start command that runs eppkit's node-proxy with the scenario's route. */
export const NODE_PROXY_COMMAND = `exec "${process.execPath}" "${BIN}" node-proxy --listen {{listen}} --epp {{epp}} --body-mode {{bodyMode}}
    --timeout-ms {{timeoutMs}} --failure-mode {{failureMode}}`;
