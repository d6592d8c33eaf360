// The third worked plane file: a plane that already runs (`url`), configured with a 5 s EPP
// timeout. The timeout scenarios still run (their timings are relative to the plane's timeout),
// the scenarios that need another failure mode skip saying why, and the plane file's override
// is applied and shown in the reports. The running plane here is eppkit's node-proxy started
// by hand on free ports (the plane file is copied with those ports).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../core/net.ts';
import { BIN, PLANES, eppkit, notPassed, results } from './plane-kit.ts';

const SCENARIOS = new URL('../../scenarios/', import.meta.url).pathname;

let proxy: ChildProcess | undefined;
afterAll(() => {
  proxy?.kill('SIGTERM');
});

describe('worked plane file running.plane.yaml (url)', () => {
  it('runs the timeout scenarios against a running plane with a 5 s timeout, skips what its settings exclude, and reports its override', async () => {
    const eppPort = await freePort();
    const port = await freePort();
    proxy = spawn(process.execPath, [BIN, 'node-proxy', '--listen', `127.0.0.1:${port}`, '--epp', `127.0.0.1:${eppPort}`, '--timeout-ms', '5000'], { stdio: ['ignore', 'pipe', 'pipe'] });
    await new Promise<void>((resolve, reject) => {
      let out = '';
      proxy?.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        if (/listening on http/.test(out)) resolve();
      });
      proxy?.once('exit', (c) => reject(new Error(`node-proxy exited ${c}`)));
    });
    const dir = mkdtempSync(join(tmpdir(), 'eppkit-running-'));
    const plane = readFileSync(join(PLANES, 'running.plane.yaml'), 'utf8').replace('http://127.0.0.1:8080', `http://127.0.0.1:${port}`).replace('eppPort: 9002', `eppPort: ${eppPort}`);
    writeFileSync(join(dir, 'running.plane.yaml'), plane);
    const scenarios = ['epp-timeout', 'epp-timeout-fail-open', 'client-abort', 'routing-follows-epp', 'large-body-8mib'].map((n) => join(SCENARIOS, `${n}.yaml`));
    const r = eppkit(['run', ...scenarios, '--plane', 'running.plane.yaml', '--report-dir', 'out'], dir);
    const rs = results(join(dir, 'out'));
    expect(notPassed(rs).filter((x) => x.startsWith('failed')), r.stdout.slice(-3000)).toEqual([]);
    const byName = new Map(rs.scenarios.map((s) => [s.name, s]));
    // Written for a 1 s timeout, run with the plane's 5 s: delays and bounds scale with it.
    expect(byName.get('epp-timeout')?.status).toBe('passed');
    expect(byName.get('epp-timeout-fail-open')?.reason).toBe('my-running-plane does not support: fail-open');
    expect(byName.get('client-abort')?.status).toBe('passed');
    expect(byName.get('large-body-8mib')?.status).toBe('passed');
    expect(byName.get('routing-follows-epp')?.status).toBe('passed');
    const why = "a hung EPP may be ended by the plane's stream idle timeout (500) instead of its message timeout (504); both fail closed";
    expect(byName.get('epp-timeout')?.steps.find((s) => s.name === 'a hung EPP')?.override).toBe(why);
    expect(readFileSync(join(dir, 'out', 'report.md'), 'utf8')).toContain(why);
    expect(readFileSync(join(dir, 'out', 'conformance-my-running-plane.yaml'), 'utf8')).toContain('expectedDifferences');
    expect(r.code).toBe(0);
  }, 600_000);
});
