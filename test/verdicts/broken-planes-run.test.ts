// `eppkit run` on deliberately broken planes (test/fixtures/broken-planes): each fails with a
// reason naming its defect, and the same plane without the defect passes the same scenarios.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runScenario } from '../../harness/runner/run-scenario.ts';
import { loadScenarios } from '../../harness/scenarios/load-scenarios.ts';
import { brokenPlaneDriver } from '../fixtures/broken-planes/broken-plane-driver.ts';
import type { Defect } from '../fixtures/broken-planes/broken-plane.ts';

const root = new URL('../../', import.meta.url).pathname;
const scenario = (file: string) => {
  const [loaded] = loadScenarios([join(root, file)]);
  if (!loaded) throw new Error(`no scenario in ${file}`);
  return loaded;
};
const EPP_TIMEOUT = 'scenarios/epp-timeout.yaml';
const CLIENT_ABORT = 'scenarios/client-abort.yaml';
const MANY = 'test/fixtures/broken-planes/many-requests.yaml';
const dir = mkdtempSync(join(tmpdir(), 'eppkit-broken-run-'));

function run(defect: Defect, file: string, o: { after?: number; strict?: boolean } = {}) {
  const driver = brokenPlaneDriver(defect, o.after !== undefined ? { after: o.after } : {});
  return runScenario({ loaded: scenario(file), driver, runtime: 'local', workDir: join(dir, `${defect}-${file.replace(/\W/g, '_')}`), ...(o.strict ? { strict: true } : {}) });
}

describe('run fails a broken plane with the reason', { timeout: 240_000 }, () => {
  it('a worker that crashes when its EPP timeout fires: the crash line, though the primary respawned it', async () => {
    const r = await run('crash-on-epp-timeout', EPP_TIMEOUT);
    expect(r.status).toBe('failed');
    expect(r.reason).toMatch(/data plane crash — broken-crash-on-epp-timeout: .*worker process \d+ exited on signal 11/);
    expect(r.planeProblems?.[0]?.kind).toBe('crash');
  });

  it('a plane that stops answering: "no answer within N ms" naming the step and the deadline', async () => {
    const r = await run('hang-after', MANY, { after: 10 });
    expect(r.status).toBe('failed');
    expect(r.reason).toMatch(/^step 1 \(.*\): hang: no answer within 8000 ms \(EPP timeout 5000 ms \+ 3000 ms margin\)/);
  });

  it('a plane that resets connections', async () => {
    const r = await run('reset-connections', MANY, { after: 5 });
    expect(r.status).toBe('failed');
    expect(r.reason).toMatch(/connection reset by the data plane/);
  });

  it('a leaking plane warns, and fails under --strict', async () => {
    const warned = await run('leak', MANY);
    expect(warned.status).toBe('passed');
    expect(warned.warnings?.[0]).toMatch(/data plane leak: open fds \d+ → \d+ \(\+\d+ > 128\)/);
    const strict = await run('leak', MANY, { strict: true });
    expect(strict.status).toBe('failed');
    expect(strict.reason).toMatch(/at scenario end: data plane leak: open fds .* \(--strict\)/);
  });

  it('a plane that keeps the EPP stream after the client left fails client-abort with the lag', async () => {
    const r = await run('ignore-client-abort', CLIENT_ABORT);
    expect(r.status).toBe('failed');
    expect(r.reason).toMatch(/EPP stream (ended \d+ ms|still open \d+ ms) after the client left \(bound 2000 ms\)/);
  });

  it('the same plane without a defect passes all of them, strict, with no warning', async () => {
    for (const f of [EPP_TIMEOUT, MANY, CLIENT_ABORT]) {
      const r = await run('none', f, { strict: true });
      expect({ file: f, status: r.status, reason: r.reason, warnings: r.warnings }).toEqual({ file: f, status: 'passed', reason: undefined, warnings: undefined });
    }
  });
});
