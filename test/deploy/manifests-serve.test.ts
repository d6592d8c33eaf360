// What the manifests ask of the containers really works: the mock EPP and the echo backend
// started with the Deployments' own args answer the probes the manifests declare (gRPC health
// for the named services, /healthz, /health), and the mock's DNS-discovered pool is the
// backend. Run as processes and as the eppkit/node image with a read-only root filesystem, as
// the pod's securityContext has it. Only the addresses differ: loopback and free ports here
// instead of 0.0.0.0 and the fixed container ports, and `localhost` for the headless Service.
import * as grpc from '@grpc/grpc-js';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { HealthClient } from '../../core/proto.ts';
import { freePort } from '../../core/net.ts';
import { docker, dockerBin } from '../../harness/containers/docker-cli.ts';
import { dockerSkipReason } from '../../harness/containers/docker-test-gate.ts';
import { ensureEppkitImageCurrent } from '../../harness/containers/image-roles.ts';
import { eppkitCommand } from '../../harness/launch/launch.ts';
import { ManagedProcess } from '../../harness/launch/managed-process.ts';
import { kustomizeBuild, kustomizeSkipReason, type K8sObject } from './kustomize.ts';

const DEPLOY = join(import.meta.dirname, '..', '..', 'deploy');
const skip = kustomizeSkipReason();

function healthCheck(address: string, service: string): Promise<{ status?: number; code?: number }> {
  const c = new HealthClient(address, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
    Check: (req: object, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: { status?: number }) => void) => void;
  };
  return new Promise((resolve) => {
    c.Check({ service }, { deadline: Date.now() + 5000 }, (e, r) => {
      c.close();
      resolve(e ? { code: e.code } : { status: r?.status ?? 0 });
    });
  });
}

interface Rendered {
  mock: { command: string[]; args: string[]; c: any };
  echo: { command: string[]; args: string[]; c: any };
  configText: string;
}

function render(): Rendered {
  const objs = kustomizeBuild(join(DEPLOY, 'overlays/kind'));
  const dep = (name: string): K8sObject => objs.find((o) => o.kind === 'Deployment' && o.metadata.name === name)!;
  const c = (d: K8sObject): any => d.spec.template.spec.containers[0];
  const cm = objs.find((o) => o.kind === 'ConfigMap')!;
  return {
    mock: { command: c(dep('eppkit-mock-epp')).command, args: c(dep('eppkit-mock-epp')).args, c: c(dep('eppkit-mock-epp')) },
    echo: { command: c(dep('eppkit-echo')).command, args: c(dep('eppkit-echo')).args, c: c(dep('eppkit-echo')) },
    configText: Object.values(cm.data!)[0]!,
  };
}

/** The manifest's args with the flag values replaced (flag → new value). */
function withValues(args: readonly string[], values: Record<string, string>): string[] {
  return args.map((a, i) => (i > 0 && args[i - 1]! in values ? values[args[i - 1]!]! : a));
}

/** The args of the pods on this machine: loopback, free ports, the pool's DNS name as localhost. */
async function localArgs(r: Rendered, configFile: string) {
  const grpcPort = await freePort();
  const adminPort = await freePort();
  const echoPort = await freePort('127.0.0.1');
  const mockArgs = withValues(r.mock.args, {
    '--host': '127.0.0.1',
    '--port': String(grpcPort),
    '--admin-port': String(adminPort),
    '--config': configFile,
    '--endpoints-dns': `localhost:${echoPort}`,
  });
  const echoArgs = withValues(r.echo.args, { '--listen': `127.0.0.1:${echoPort}` }).map((a) => a.replace('$(POD_NAME)', 'eppkit-echo-7d9f-abcde'));
  return { grpcPort, adminPort, echoPort, mockArgs, echoArgs };
}

/** Every probe of the manifests, against what runs. */
async function probe(r: Rendered, ports: { grpcPort: number; adminPort: number; echoPort: number }): Promise<void> {
  const m = r.mock.c;
  for (const p of [m.livenessProbe, m.readinessProbe]) {
    expect(await healthCheck(`127.0.0.1:${ports.grpcPort}`, p.grpc.service), `gRPC health ${p.grpc.service}`).toEqual({ status: 1 });
  }
  expect((await fetch(`http://127.0.0.1:${ports.adminPort}${m.startupProbe.httpGet.path}`)).status).toBe(200);
  const e = r.echo.c;
  for (const p of [e.readinessProbe, e.livenessProbe]) expect((await fetch(`http://127.0.0.1:${ports.echoPort}${p.httpGet.path}`)).status).toBe(200);
  // The pool the mock found by DNS is the echo backend, and it names the pod it runs as.
  const echoAddr = `127.0.0.1:${ports.echoPort}`;
  let cfg: { endpoints: string[] } = { endpoints: [] };
  for (let i = 0; i < 50 && !cfg.endpoints.includes(echoAddr); i++) {
    cfg = (await (await fetch(`http://127.0.0.1:${ports.adminPort}/config`)).json()) as { endpoints: string[] };
    if (!cfg.endpoints.includes(echoAddr)) await new Promise((res) => setTimeout(res, 100));
  }
  expect(cfg.endpoints).toContain(echoAddr);
  const echo = await fetch(`http://${echoAddr}/v1/models`);
  expect(echo.headers.get('x-inference-pod')).toBe('eppkit-echo-7d9f-abcde');
}

describe.skipIf(skip)('deploy/: the pods as the manifests start them', () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
  });

  it('as processes: probes answer, the pool is discovered', async () => {
    const r = render();
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'eppkit-deploy-'));
    const configFile = join(dir, 'mock-epp.yaml');
    writeFileSync(configFile, r.configText);
    const ports = await localArgs(r, configFile);
    const { command, args: pre } = eppkitCommand();
    expect(r.mock.command).toEqual(['eppkit']);
    const echo = new ManagedProcess({ what: 'echo', command, args: [...pre, ...ports.echoArgs] });
    cleanups.push(() => echo.stop());
    await echo.waitForLine(/listening on/, 20_000);
    const mock = new ManagedProcess({ what: 'mock EPP', command, args: [...pre, ...ports.mockArgs] });
    cleanups.push(() => mock.stop());
    await mock.waitForLine(/admin listening on/, 20_000);
    await probe(r, ports);
  });

  it('the BBR mock as its manifest starts it: probes answer and it serves the bbr role', async () => {
    const objs = kustomizeBuild(join(DEPLOY, 'overlays/bbr'));
    const c = objs.find((o) => o.kind === 'Deployment' && o.metadata.name === 'eppkit-mock-bbr')!.spec.template.spec.containers[0];
    const grpcPort = await freePort();
    const adminPort = await freePort();
    const args = withValues(c.args, { '--host': '127.0.0.1', '--port': String(grpcPort), '--admin-port': String(adminPort) });
    const { command, args: pre } = eppkitCommand();
    const bbr = new ManagedProcess({ what: 'mock BBR', command, args: [...pre, ...args] });
    cleanups.push(() => bbr.stop());
    await bbr.waitForLine(/admin listening on/, 20_000);
    for (const p of [c.livenessProbe, c.readinessProbe]) expect(await healthCheck(`127.0.0.1:${grpcPort}`, p.grpc.service)).toEqual({ status: 1 });
    expect((await fetch(`http://127.0.0.1:${adminPort}${c.startupProbe.httpGet.path}`)).status).toBe(200);
    const cfg = (await (await fetch(`http://127.0.0.1:${adminPort}/config`)).json()) as { role?: string };
    expect(cfg.role).toBe('bbr');
  });

  it('as the eppkit/node image, read-only root filesystem: probes answer, the pool is discovered', async () => {
    if (await dockerSkipReason()) return;
    // The image must hold this checkout's eppkit (rebuilt only when the sources changed).
    await ensureEppkitImageCurrent();
    const r = render();
    const ports = await localArgs(r, '/etc/eppkit/mock-epp.yaml');
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'eppkit-deploy-'));
    writeFileSync(join(dir, 'mock-epp.yaml'), r.configText);
    const run = async (name: string, cmd: string[], args: string[], extra: string[] = []): Promise<void> => {
      const res = await docker(['run', '-d', '--rm', '--read-only', '--network', 'host', '--name', name, ...extra, '--entrypoint', cmd[0]!, 'eppkit/node:latest', ...args], 60_000);
      if (res.code !== 0) throw new Error(`${dockerBin()} run ${name}: ${res.stderr}`);
      cleanups.push(() => docker(['rm', '-f', name]));
    };
    const suffix = `${process.pid}-${Date.now()}`;
    await run(`eppkit-deploy-echo-${suffix}`, r.echo.command, ports.echoArgs);
    await run(`eppkit-deploy-mock-${suffix}`, r.mock.command, ports.mockArgs, ['-v', `${dir}:/etc/eppkit:ro`]);
    // Ready when the mock's startup probe and the echo's readiness probe answer (the containers
    // are detached: poll the condition).
    const ready = async (): Promise<boolean> =>
      (await fetch(`http://127.0.0.1:${ports.adminPort}/healthz`).then((x) => x.ok, () => false)) &&
      (await fetch(`http://127.0.0.1:${ports.echoPort}/health`).then((x) => x.ok, () => false));
    const deadline = Date.now() + 60_000;
    while (!(await ready())) {
      if (Date.now() > deadline) {
        const logs = await Promise.all(['mock', 'echo'].map((w) => docker(['logs', `eppkit-deploy-${w}-${suffix}`])));
        throw new Error(`the containers never answered their probes:\n${logs.map((l) => l.stdout + l.stderr).join('\n')}`);
      }
      await new Promise((res) => setTimeout(res, 200));
    }
    await probe(r, ports);
  }, 300_000);
});
