// `--runtime docker` end to end for eppkit's own data plane: the node-proxy driver starts
// node-proxy in eppkit/node, the mock EPP and the echo backend run in eppkit/node too, all on
// the host network, and a request is routed through the container to the endpoint the mock
// picked (proved by the backend's identity and the mock's journal).
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routeWithDefaults } from '../../core/route-model.ts';
import { buildImages } from '../../harness/containers/build-images.ts';
import { dockerSkipReason } from '../../harness/containers/docker-test-gate.ts';
import { eppkitInvocation, launch, type Launched } from '../../harness/launch/launch.ts';
import { Wait } from '../../harness/launch/wait-strategy.ts';
import type { DriverContext } from '../../harness/data-planes/data-plane-driver.ts';
import { nodeProxyDriver } from '../../harness/data-planes/node-proxy-driver.ts';

const skip = await dockerSkipReason();

describe.skipIf(skip !== undefined)(`node-proxy with --runtime docker${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let workDir = '';
  let ctx: DriverContext;
  const started: Launched<RegExpMatchArray>[] = [];
  let backendA = '';
  let backendB = '';
  let epp: Launched<RegExpMatchArray>;
  let eppAddress = '';
  let adminUrl = '';

  beforeAll(async () => {
    await buildImages({ only: ['node'] });
    workDir = mkdtempSync(join(tmpdir(), 'eppkit-docker-np-'));
    ctx = { workDir, runtime: 'docker', host: '127.0.0.1' };
    for (const [name, ip] of [['pod-a', '127.0.0.2'], ['pod-b', '127.0.0.3']] as const) {
      const b = await launch(ctx, {
        what: `backend ${name}`,
        ...eppkitInvocation(['backend', '--listen', `${ip}:0`, '--name', name]),
        waitFor: Wait.forLogLine(/listening on http:\/\/(\S+)/),
      });
      started.push(b);
      if (name === 'pod-a') backendA = b.ready[1] ?? '';
      else backendB = b.ready[1] ?? '';
    }
    epp = await launch(ctx, {
      what: 'mock EPP',
      ...eppkitInvocation(['mock-epp', '--port', '0', '--admin-port', '0', '--endpoints', `${backendA},${backendB}`]),
      waitFor: Wait.forLogLine(/admin listening on (http:\/\/\S+)/),
    });
    started.push(epp);
    adminUrl = epp.ready[1] ?? '';
    eppAddress = (await epp.waitForLine(/grpc listening on (\S+)/, 5000))[1] ?? '';
  }, 900_000);

  afterAll(async () => {
    for (const s of started.reverse()) await s.stop();
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  it('reports the driver available for docker once eppkit/node is built', async () => {
    expect(await nodeProxyDriver.available('docker')).toEqual({ ok: true });
  });

  it('routes each request through the containerised node-proxy to the endpoint the mock EPP picked', async () => {
    await using dp = await nodeProxyDriver.start(routeWithDefaults({ eppAddress, bodyMode: 'buffered' }), ctx);
    expect(dp.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    await fetch(`${adminUrl}/journal`, { method: 'DELETE' });
    const pods: string[] = [];
    for (let i = 0; i < 2; i++) {
      const body = JSON.stringify({ model: 'm', prompt: `hello ${i}` });
      const res = await fetch(`${dp.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      expect(res.status, dp.logs()).toBe(200);
      pods.push(res.headers.get('x-inference-pod') ?? '');
      const echo = (await res.json()) as { backend: { address: string }; request: { headers: Record<string, string>; bodySha256: string } };
      // The body arrived intact, at the endpoint named in the header the mock EPP set.
      expect(echo.request.bodySha256).toBe(createHash('sha256').update(body).digest('hex'));
      expect(echo.request.headers['x-gateway-destination-endpoint']).toBe(echo.backend.address);
    }
    // Round-robin over two pods: each answered once, so the pick really steered the request.
    expect(pods.sort()).toEqual(['pod-a', 'pod-b']);
    const journal = (await fetch(`${adminUrl}/journal?wait=2&timeoutMs=5000`).then((r) => r.json())) as unknown;
    const entries = Array.isArray(journal) ? journal : (journal as { entries: unknown[] }).entries;
    expect(entries).toHaveLength(2);
  });

  it('answers 500 from the container when the EPP is unreachable and the failure mode is close', async () => {
    // A port nothing listens on: the mock's admin port speaks HTTP/1, not gRPC, so use a closed one.
    const closed = eppAddress.replace(/:\d+$/, ':1');
    await using dp = await nodeProxyDriver.start(routeWithDefaults({ eppAddress: closed, failureMode: 'close' }), ctx);
    const res = await fetch(`${dp.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model":"m"}' });
    expect(res.status).toBeGreaterThanOrEqual(500);
  });
});
