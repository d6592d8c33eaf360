// `eppkit node-proxy` as other tools drive it: a child process that prints its addresses on
// stdout, serves, exposes /healthz and /metrics, runs N workers on one port, reads a config
// file (reporting every problem with path and line), and exits 0 on SIGTERM.
import { spawn, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MockEpp, type StartedMockEpp } from '../../mock-epp/mock-epp.ts';
import { startEchoBackend, type StartedEchoBackend } from '../../harness/backends/echo-backend.ts';
import { send } from '../../proxies/node-proxy/test-support/http-send.ts';
import { eventually } from '../support/eventually.ts';

const EPPKIT = fileURLToPath(new URL('../../bin/eppkit.js', import.meta.url));

interface Cli {
  child: ChildProcess;
  url: string;
  adminUrl?: string;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<number | null>;
}

function startCli(args: string[], expectAdmin = false): Promise<Cli> {
  const child = spawn(process.execPath, [EPPKIT, 'node-proxy', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
  let out = '';
  let err = '';
  const exit = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not ready: ${out} ${err}`)), 20_000);
    const check = (): void => {
      const m = /^listening on (http:\/\/127\.0\.0\.1:\d+)$/m.exec(out);
      const a = /^admin listening on (http:\/\/127\.0\.0\.1:\d+)$/m.exec(out);
      if (m && (!expectAdmin || a)) {
        clearTimeout(timer);
        const cli: Cli = { child, url: m[1] as string, stdout: () => out, stderr: () => err, exit };
        if (a) cli.adminUrl = a[1] as string;
        resolve(cli);
      }
    };
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      check();
    });
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    void exit.then((code) => reject(new Error(`exited ${code}: ${err}`)));
  });
}

function runCli(args: string[]): { code: number; stdout: string; stderr: string } {
  try {
    const stdout = execFileSync(process.execPath, [EPPKIT, 'node-proxy', ...args], { stdio: 'pipe', env: { ...process.env, NO_COLOR: '1' }, timeout: 20_000 });
    return { code: 0, stdout: stdout.toString(), stderr: '' };
  } catch (e) {
    const x = e as { status: number; stdout: Buffer; stderr: Buffer };
    return { code: x.status, stdout: x.stdout.toString(), stderr: x.stderr.toString() };
  }
}

async function metric(adminUrl: string, re: RegExp): Promise<number> {
  const r = await fetch(`${adminUrl}/metrics`);
  const text = await r.text();
  let sum = 0;
  for (const line of text.split('\n')) if (re.test(line)) sum += Number(line.split(' ').pop());
  return sum;
}

let backend: StartedEchoBackend;
let epp: StartedMockEpp;
let dir: string;

beforeAll(async () => {
  backend = await startEchoBackend();
  epp = await new MockEpp({ endpoints: [backend.address] }).withPort(0).withAdminPort(null).start();
  dir = mkdtempSync(join(tmpdir(), 'node-proxy-cli-'));
});
afterAll(async () => {
  await epp?.stop();
  await backend?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('eppkit node-proxy (CLI)', () => {
  it('prints its addresses, serves, answers /healthz and /metrics, and exits 0 on SIGTERM', async () => {
    const cli = await startCli(['--listen', '127.0.0.1:0', '--epp', epp.address, '--admin', '127.0.0.1:0', '--timeout-ms', '5000'], true);
    try {
      expect(cli.stdout().split('\n').filter(Boolean)).toEqual([`listening on ${cli.url}`, `admin listening on ${cli.adminUrl}`]);
      for (let i = 0; i < 3; i++) expect((await send(cli.url, { body: 'x' })).status).toBe(200);
      expect((await send(cli.url, { headers: { 'x-eppkit-grpc-error': 'INTERNAL' } })).status).toBe(500);
      const h = await fetch(`${cli.adminUrl}/healthz`);
      expect(h.status).toBe(200);
      expect(await metric(cli.adminUrl as string, /^eppkit_node_proxy_requests_total\{outcome="routed",reason="ok"/)).toBe(3);
      expect(await metric(cli.adminUrl as string, /^eppkit_node_proxy_requests_total\{outcome="epp_failure",reason="epp_grpc_error",status="500"/)).toBe(1);
      expect(await metric(cli.adminUrl as string, /^eppkit_node_proxy_epp_latency_seconds_count/)).toBe(3);
      expect(await metric(cli.adminUrl as string, /^eppkit_node_proxy_upstream_latency_seconds_count/)).toBe(3);
      // Structured JSON logs on stderr, one line per request with its reason code (request
      // lines are written in batches, within 100 ms).
      await eventually(() => cli.stderr().split('\n').filter((l) => l.includes('"event":"request"')).length >= 4, 'four request log lines');
      const lines = cli.stderr().split('\n').filter((l) => l.includes('"event":"request"')).map((l) => JSON.parse(l) as { reason: string });
      expect(lines.map((l) => l.reason).sort()).toEqual(['epp_grpc_error', 'ok', 'ok', 'ok']);
    } finally {
      cli.child.kill('SIGTERM');
    }
    expect(await cli.exit).toBe(0);
  });

  it('--workers 2 runs two processes on one port; the admin port sums their metrics', async () => {
    const cli = await startCli(['--listen', '127.0.0.1:0', '--epp', epp.address, '--admin', '127.0.0.1:0', '--workers', '2', '--timeout-ms', '5000'], true);
    try {
      const pid = cli.child.pid as number;
      const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(' ');
      expect(kids.length).toBe(2);
      const n = 40;
      const rs = await Promise.all(Array.from({ length: n }, () => send(cli.url)));
      expect(rs.every((r) => r.status === 200)).toBe(true);
      expect(await metric(cli.adminUrl as string, /^eppkit_node_proxy_requests_total\{outcome="routed"/)).toBe(n);
    } finally {
      cli.child.kill('SIGTERM');
    }
    expect(await cli.exit).toBe(0);
  });

  it('--shim needs no --epp', async () => {
    const cli = await startCli(['--shim', '--listen', '127.0.0.1:0', '--timeout-ms', '5000']);
    try {
      expect((await send(cli.url)).status).toBe(400);
      const r = await send(cli.url, { headers: { 'X-EPP-Host': '127.0.0.1', 'X-EPP-Port': String(epp.port) } });
      expect(r.status).toBe(200);
      expect(r.headers['x-gateway-destination-endpoint']).toBe(backend.address);
    } finally {
      cli.child.kill('SIGTERM');
    }
    expect(await cli.exit).toBe(0);
  });

  it('reads routes and route options from a config file; flags override its top level', async () => {
    const file = join(dir, 'routes.yaml');
    writeFileSync(
      file,
      [
        'listen: 127.0.0.1:1', // overridden by --listen
        'failureMode: open',
        `fallbackEndpoints: ["${backend.address}"]`,
        'responseProcessing: true',
        'routes:',
        '  - pathPrefix: /api',
        `    eppAddress: ${epp.address}`,
        '  - pathPrefix: /',
        '    eppAddress: 127.0.0.1:1',
        '',
      ].join('\n'),
    );
    const cli = await startCli(['--config', file, '--listen', '127.0.0.1:0', '--timeout-ms', '5000']);
    try {
      epp.clearJournal();
      const api = await send(cli.url, { path: '/api/x' });
      expect(api.status).toBe(200);
      const [e] = await epp.waitForJournal(1, 5000);
      expect(e?.servedEndpoint).toBe(backend.address);
      // The other route's EPP is unreachable: fail-open from the file's top level.
      expect((await send(cli.url, { path: '/other' })).headers['x-inference-port']).toBe(String(backend.port));
    } finally {
      cli.child.kill('SIGTERM');
    }
    expect(await cli.exit).toBe(0);
  });

  it('reports every config problem with its path and line, without a stack trace', () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(
      file,
      ['timeoutMs: -5', 'bodyMode: sometimes', 'routes:', '  - pathPrefix: api', '    allow: ["300.1.1.1/8"]', '    fallbackEndpoints: ["host:80"]', 'bogus: 1', ''].join('\n'),
    );
    const r = runCli(['--config', file, '--epp', '127.0.0.1:9']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('EPPKIT_CONFIG_INVALID');
    expect(r.stderr).toMatch(/line 1, timeoutMs/);
    expect(r.stderr).toMatch(/line 2, bodyMode/);
    expect(r.stderr).toMatch(/line 4, routes\[0\]\.pathPrefix/);
    expect(r.stderr).toMatch(/line 5, routes\[0\]\.allow\[0\]/);
    expect(r.stderr).toMatch(/line 6, routes\[0\]\.fallbackEndpoints\[0\]/);
    expect(r.stderr).toMatch(/bogus/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('rejects bad flags and a missing EPP with a usage error', () => {
    const a = runCli(['--listen', '127.0.0.1:0']);
    expect(a.code).toBe(2);
    expect(a.stderr).toMatch(/no EPP address/);
    const b = runCli(['--listen', '127.0.0.1:0', '--epp', '127.0.0.1:9', '--fallback', 'nope', '--timeout-ms', '0']);
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(/fallbackEndpoints\[0\]/);
    expect(b.stderr).toMatch(/timeoutMs/);
    const c = runCli(['--listen', '127.0.0.1:0', '--epp', '127.0.0.1:9', '--body-mode', 'sometimes']);
    expect(c.code).toBe(2);
  });

  it('reports a port in use as EPPKIT_PORT_IN_USE', async () => {
    const cli = await startCli(['--listen', '127.0.0.1:0', '--epp', epp.address]);
    try {
      const r = runCli(['--listen', new URL(cli.url).host, '--epp', epp.address]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('EPPKIT_PORT_IN_USE');
      // With workers, the primary reports the workers' failure the same way and exits.
      const w = runCli(['--listen', new URL(cli.url).host, '--epp', epp.address, '--workers', '2']);
      expect(w.code).toBe(1);
      expect(w.stderr).toContain('EPPKIT_PORT_IN_USE');
      expect(w.stderr).not.toMatch(/\n\s+at /);
    } finally {
      cli.child.kill('SIGTERM');
    }
    await cli.exit;
  });
});
