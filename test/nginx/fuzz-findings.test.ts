// Fuzz findings kept as regression tests: each shrunk case in test/fixtures/fuzz-cases/ runs
// on nginx (both forms) and node-proxy and must pass.
// - immediate-header-control-byte: an ImmediateResponse header whose value is the byte 0x01.
//   Envoy ignores the invalid header and answers; the module wrote it into the response as is
//   (the client could not parse it) and node-proxy reset the client. Both now leave it out.
// - body-answer-while-headers-answer-owed: FailClose, full duplex, a body answer before the
//   headers answer, then an ImmediateResponse 200. Envoy fails the stream at the spurious
//   message (500); the module answered the 200.
// - reset-after-pick-body-answer-owed: FailClose, buffered, the pick on the headers answer, then
//   a reset while the body's answer is owed. Envoy fails the call (500); the module routed it.
// - grpc-error-after-pick-full-duplex: the same with gRPC INTERNAL in full duplex, mid-body.
// - cancelled-after-first-chunk-answer-full-duplex: full duplex, the pick, a plain answer to the
//   first of 48 body chunks, then gRPC CANCELLED. The module took the plain answer as the body's
//   end and routed it (200); Envoy and node-proxy count one answer per chunk and fail it (500).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { nginxDirectDriver } from '../../harness/data-planes/nginx-driver.ts';
import { eppkit, notPassed, results } from '../planes/plane-kit.ts';
import { gateFor } from '../support/envoy-test-kit.ts';

const CASES = new URL('../fixtures/fuzz-cases/', import.meta.url).pathname;
const gate = await gateFor(nginxDirectDriver);

describe.skipIf(gate.skip)('fuzz findings on nginx and node-proxy', () => {
  for (const name of ['immediate-header-control-byte', 'body-answer-while-headers-answer-owed', 'reset-after-pick-body-answer-owed', 'grpc-error-after-pick-full-duplex', 'cancelled-after-first-chunk-answer-full-duplex']) {
    it(`${name} passes on nginx, nginx-direct and node-proxy`, () => {
      const dir = mkdtempSync(join(tmpdir(), 'eppkit-fuzz-case-'));
      const r = eppkit(['run', join(CASES, `${name}.yaml`), '--data-plane', 'nginx-direct,nginx,node-proxy', '--report-dir', 'out'], dir, 300_000);
      const rs = results(join(dir, 'out'));
      expect(notPassed(rs), r.stdout.slice(-2000)).toEqual([]);
      expect(rs.scenarios.map((s) => s.dataPlane).sort()).toEqual(['nginx', 'nginx-direct', 'node-proxy']);
      expect(r.code).toBe(0);
    }, 320_000);
  }
});
