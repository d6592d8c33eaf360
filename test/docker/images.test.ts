// The images build without a registry (debootstrap base + `docker build --network host`), an
// unchanged image is reused, and eppkit/node really serves on the host's loopback: the mock EPP
// answers ext_proc over gRPC, the echo backend answers HTTP, both from containers.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EppkitError } from '../../core/errors.ts';
import { ExtProcTestClient, envoyHeaders, lbMetadataValue, setHeaderValue } from '../../mock-epp/ext-proc-client.ts';
import { BASE_IMAGE, HASH_LABEL, buildImages, type ImageResult } from '../../harness/containers/build-images.ts';
import { docker, inspectImage } from '../../harness/containers/docker-cli.ts';
import { dockerSkipReason } from '../../harness/containers/docker-test-gate.ts';
import { EppkitContainer, removeOrphanContainers } from '../../harness/launch/eppkit-container.ts';
import { eppkitInvocation, launch, type Launched } from '../../harness/launch/launch.ts';
import { Wait } from '../../harness/launch/wait-strategy.ts';
import type { DriverContext } from '../../harness/data-planes/data-plane-driver.ts';

const skip = await dockerSkipReason();
const POOL = ['127.0.0.2:8000', '127.0.0.3:8000'];

describe.skipIf(skip !== undefined)(`docker images${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let results: ImageResult[] = [];
  let workDir = '';
  let ctx: DriverContext;

  beforeAll(async () => {
    results = await buildImages();
    workDir = mkdtempSync(join(tmpdir(), 'eppkit-docker-'));
    ctx = { workDir, runtime: 'docker', host: '127.0.0.1' };
  }, 900_000);
  afterAll(() => {
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  it('builds the base from debootstrap and every image on it, each labelled with its content hash', async () => {
    expect(results[0]).toMatchObject({ tag: BASE_IMAGE });
    expect(results[0]?.status).not.toBe('skipped');
    for (const tag of ['eppkit/node', 'eppkit/nginx-njs', 'eppkit/envoy']) {
      const r = results.find((x) => x.tag === tag);
      expect(r?.status, `${tag}: ${r?.reason ?? ''}`).toMatch(/^(built|reused)$/);
      const img = await inspectImage(tag);
      // eppkit/node follows the live sources (another test may refresh it): only its label's shape.
      if (tag === 'eppkit/node') expect(img?.labels[HASH_LABEL]).toMatch(/^[0-9a-f]{32}$/);
      else expect(img?.labels[HASH_LABEL]).toBe(r?.hash);
    }
  });

  it('reuses an image whose inputs did not change (a warm build is a no-op)', async () => {
    const again = await buildImages({ only: ['nginx-njs', 'envoy'] });
    expect(again.map((r) => [r.tag, r.status])).toEqual([
      [BASE_IMAGE, 'reused'],
      ['eppkit/nginx-njs', 'reused'],
      ['eppkit/envoy', 'reused'],
    ]);
  }, 120_000);

  it('runs the mock EPP in eppkit/node on the host loopback; it answers ext_proc over gRPC and its admin API', async () => {
    await using epp = await launch(ctx, {
      what: 'mock EPP',
      ...eppkitInvocation(['mock-epp', '--host', '127.0.0.1', '--port', '0', '--admin-port', '0', '--endpoints', POOL.join(',')]),
      waitFor: Wait.forLogLine(/admin listening on (http:\/\/127\.0\.0\.1:\d+)/),
    });
    expect(epp.runtime).toBe('docker');
    const grpcLine = await epp.waitForLine(/grpc listening on (127\.0\.0\.1:\d+)/, 5000);
    const client = new ExtProcTestClient(grpcLine[1] ?? '');
    try {
      const picks: string[] = [];
      for (let i = 0; i < 2; i++) {
        const s = client.open();
        s.send({ request_headers: { headers: { headers: envoyHeaders({}) }, end_of_stream: true } });
        const r = await s.next();
        s.end();
        await s.outcome;
        const v = setHeaderValue(r, 'x-gateway-destination-endpoint');
        expect(lbMetadataValue(r)).toBe(v);
        picks.push(v ?? '');
      }
      expect(picks.sort()).toEqual([...POOL].sort());
    } finally {
      client.close();
    }
    const journal = await fetch(`${epp.ready[1]}/journal?wait=2&timeoutMs=5000`).then((r) => r.json());
    const entries = Array.isArray(journal) ? journal : (journal as { entries: unknown[] }).entries;
    expect(entries).toHaveLength(2);
  });

  it('runs an echo backend in eppkit/node on 127.0.0.2 and it answers from the container', async () => {
    await using backend = await launch(ctx, {
      what: 'backend',
      ...eppkitInvocation(['backend', '--listen', '127.0.0.2:0', '--name', 'pod-in-docker']),
      waitFor: Wait.forLogLine(/listening on (http:\/\/\S+)/),
    });
    const url = backend.ready[1] ?? '';
    expect(url).toMatch(/^http:\/\/127\.0\.0\.2:\d+$/);
    const res = await fetch(`${url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model":"m","prompt":"hi"}' });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-inference-pod')).toBe('pod-in-docker');
  });

  it('writes its output to the log file and is removed once stopped', async () => {
    const logFile = join(workDir, 'backend.log');
    const c = await new EppkitContainer('eppkit/node')
      .withCommand(['eppkit', 'backend', '--listen', '127.0.0.1:0'])
      .withWaitStrategy(Wait.forLogLine(/listening on/))
      .withLogFile(logFile)
      .start();
    const id = c.id;
    expect((await docker(['ps', '-q', '--no-trunc', '--filter', `id=${id}`])).stdout.trim()).toBe(id);
    await c.stop();
    expect((await docker(['ps', '-aq', '--no-trunc', '--filter', `id=${id}`])).stdout.trim()).toBe('');
    const { readFileSync } = await import('node:fs');
    expect(readFileSync(logFile, 'utf8')).toMatch(/listening on http:\/\/127\.0\.0\.1:\d+/);
  });

  it('fails with a clear EppkitError, the output and a hint when a container dies or the image is missing', async () => {
    const died = launch(ctx, {
      what: 'backend',
      ...eppkitInvocation(['backend', '--listen', 'not-an-address']),
      waitFor: Wait.forLogLine(/listening on/),
    });
    await expect(died).rejects.toThrow(EppkitError);
    await expect(died).rejects.toThrow(/--listen must be host:port/);
    const missing = new EppkitContainer('eppkit/no-such-image').withCommand(['true']).start();
    await expect(missing).rejects.toThrow(/eppkit build images/);
  });

  it('removes the containers of a harness that was killed (no Ryuk), and only those', async () => {
    const mod = new URL('../../harness/launch/eppkit-container.ts', import.meta.url).href;
    const waits = new URL('../../harness/launch/wait-strategy.ts', import.meta.url).href;
    const script = `const { EppkitContainer } = await import(${JSON.stringify(mod)});
      const { Wait } = await import(${JSON.stringify(waits)});
      const c = await new EppkitContainer('eppkit/node').withCommand(['eppkit', 'backend', '--listen', '127.0.0.1:0']).withWaitStrategy(Wait.forLogLine(/listening on/)).start();
      process.stdout.write(c.id + '\\n');
      process.kill(process.pid, 'SIGKILL');`;
    const { spawnSync } = await import('node:child_process');
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
    const orphan = child.stdout.trim();
    expect(orphan, child.stderr).toMatch(/^[0-9a-f]{64}$/);
    await using mine = await new EppkitContainer('eppkit/node').withCommand(['eppkit', 'backend', '--listen', '127.0.0.1:0']).withWaitStrategy(Wait.forLogLine(/listening on/)).start();
    // (Another test process starting its first container may reap it first: either way it goes.)
    await removeOrphanContainers();
    expect((await docker(['ps', '-aq', '--no-trunc', '--filter', `id=${orphan}`])).stdout.trim()).toBe('');
    // A live process's container stays.
    expect(mine.running).toBe(true);
    expect((await docker(['ps', '-q', '--no-trunc', '--filter', `id=${mine.id}`])).stdout.trim()).toBe(mine.id);
  });

  it('runs the same command as a local process with runtime local', async () => {
    let p: Launched<RegExpMatchArray> | undefined;
    try {
      p = await launch({ ...ctx, runtime: 'local' }, {
        what: 'backend',
        ...eppkitInvocation(['backend', '--listen', '127.0.0.1:0']),
        waitFor: Wait.forLogLine(/listening on (http:\/\/\S+)/),
      });
      expect(p.runtime).toBe('local');
      expect((await fetch(`${p.ready[1]}/v1/models`)).status).toBeLessThan(500);
    } finally {
      await p?.stop();
    }
  });
});
