// A fuzz finding kept as a regression test: an ImmediateResponse header whose value is a
// control byte (0x01). Envoy ignores the invalid header and answers; the nginx module wrote it
// into the response as is (the client could not parse it) and node-proxy reset the client.
// Both now leave the header out and answer the immediate 200.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { nginxDirectDriver } from '../../harness/data-planes/nginx-driver.ts';
import { eppkit, notPassed, results } from '../planes/plane-kit.ts';
import { gateFor } from '../support/envoy-test-kit.ts';

const CASE = new URL('../fixtures/fuzz-cases/immediate-header-control-byte.yaml', import.meta.url).pathname;
const gate = await gateFor(nginxDirectDriver);

describe.skipIf(gate.skip)('an ImmediateResponse header with a control byte', () => {
  it('is left out; nginx (both forms) and node-proxy answer the immediate response', () => {
    const dir = mkdtempSync(join(tmpdir(), 'eppkit-ctl-byte-'));
    const r = eppkit(['run', CASE, '--data-plane', 'nginx-direct,nginx,node-proxy', '--report-dir', 'out'], dir, 300_000);
    const rs = results(join(dir, 'out'));
    expect(notPassed(rs), r.stdout.slice(-2000)).toEqual([]);
    expect(rs.scenarios.map((s) => s.dataPlane).sort()).toEqual(['nginx', 'nginx-direct', 'node-proxy']);
    expect(r.code).toBe(0);
  }, 320_000);
});
