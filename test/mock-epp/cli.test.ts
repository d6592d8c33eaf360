// `eppkit mock-epp` as a process: the two ready lines, picks over gRPC, --config /
// --endpoints / --no-directives / TLS flags, SIGTERM drains and exits 0, user mistakes exit
// non-zero with one clear message and no stack trace.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ExtProcTestClient, envoyHeaders, setHeaderValue } from '../../mock-epp/ext-proc-client.ts';
import { selfSignedCert } from '../../mock-epp/self-signed-cert.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'eppkit-mock-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
// A test that fails before its own SIGTERM must not leave its mock EPP serving.
const children = new Set<ChildProcess>();
afterEach(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  children.clear();
});

interface Running {
  child: ChildProcess;
  grpc: string;
  admin: string;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<number | null>;
}

function run(args: string[]): { child: ChildProcess; exit: Promise<number | null>; out: { stdout: string; stderr: string } } {
  const child = spawn(process.execPath, [join(ROOT, 'cli/eppkit.ts'), 'mock-epp', ...args], { cwd: ROOT, env: { ...process.env, NO_COLOR: '1', EPPKIT_LOG_LEVEL: 'warn' } });
  children.add(child);
  const out = { stdout: '', stderr: '' };
  child.stdout?.on('data', (d: Buffer) => (out.stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out.stderr += d.toString()));
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, exit, out };
}

async function start(args: string[]): Promise<Running> {
  const { child, exit, out } = run(['--port', '0', '--admin-port', '0', ...args]);
  const ready = await new Promise<RegExpMatchArray>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`not ready: ${out.stdout} ${out.stderr}`)), 15_000);
    const check = () => {
      const m = /^grpc listening on (127\.0\.0\.1:\d+)\nadmin listening on (http:\/\/127\.0\.0\.1:\d+)\n$/.exec(out.stdout);
      if (m) {
        clearTimeout(t);
        resolve(m);
      }
    };
    child.stdout?.on('data', check);
    void exit.then(() => reject(new Error(`exited: ${out.stderr}`)));
  });
  return { child, grpc: ready[1] as string, admin: ready[2] as string, stdout: () => out.stdout, stderr: () => out.stderr, exit };
}

async function pick(address: string, headers: Record<string, string> = {}, creds?: grpc.ChannelCredentials) {
  const client = new ExtProcTestClient(address, creds);
  const s = client.open();
  s.send({ request_headers: { headers: { headers: envoyHeaders(headers) }, end_of_stream: true } });
  const r = await s.next();
  s.end();
  await s.outcome;
  client.close();
  return r;
}

describe('eppkit mock-epp', () => {
  it('prints exactly the two ready lines, picks, and exits 0 on SIGTERM', async () => {
    const p = await start(['--endpoints', '127.0.0.2:8000,127.0.0.3:8000']);
    expect(p.stdout().split('\n')).toHaveLength(3);
    const a = setHeaderValue(await pick(p.grpc), 'x-gateway-destination-endpoint');
    const b = setHeaderValue(await pick(p.grpc), 'x-gateway-destination-endpoint');
    expect([a, b].sort()).toEqual(['127.0.0.2:8000', '127.0.0.3:8000']);
    expect((await fetch(`${p.admin}/healthz`)).status).toBe(200);
    p.child.kill('SIGTERM');
    expect(await p.exit).toBe(0);
  });

  it('PUT /config without endpoints keeps the --endpoints pool; endpoints: [] empties it; an empty body or null is 400', async () => {
    const p = await start(['--endpoints', '127.0.0.7:8000']);
    const put = (body: string) => fetch(`${p.admin}/config`, { method: 'PUT', body });
    const changed = await put('picker: random\nrules: [{ match: { headers: { x-r: "1" } }, action: { endpoint: 10.0.0.1:80 } }]\n');
    expect(changed.status).toBe(200);
    expect(((await changed.json()) as { endpoints: string[] }).endpoints).toEqual(['127.0.0.7:8000']);
    expect(setHeaderValue(await pick(p.grpc), 'x-gateway-destination-endpoint')).toBe('127.0.0.7:8000');
    expect(setHeaderValue(await pick(p.grpc, { 'x-r': '1' }), 'x-gateway-destination-endpoint')).toBe('10.0.0.1:80');
    for (const body of ['', '   \n', 'null', '~']) {
      const bad = await put(body);
      expect(bad.status, `PUT ${JSON.stringify(body)}`).toBe(400);
      const err = (await bad.json()) as { code: string; problems: Array<{ message: string }> };
      expect(err.code).toBe('EPPKIT_CONFIG_INVALID');
      expect(err.problems[0]?.message).toMatch(/^empty config/);
    }
    // The failed PUTs left the config alone.
    expect(setHeaderValue(await pick(p.grpc, { 'x-r': '1' }), 'x-gateway-destination-endpoint')).toBe('10.0.0.1:80');
    const emptied = await put('{ "endpoints": [] }');
    expect(((await emptied.json()) as { endpoints: string[] }).endpoints).toEqual([]);
    expect(setHeaderValue(await pick(p.grpc), 'x-gateway-destination-endpoint')).toBeUndefined();
    p.child.kill('SIGTERM');
    expect(await p.exit).toBe(0);
  });

  it('--config (YAML) with --endpoints overriding, --no-directives', async () => {
    const file = join(dir, 'ok.yaml');
    writeFileSync(file, 'endpoints: [127.0.0.5:1]\nrules:\n  - match: { headers: { x-r: "1" } }\n    action: { endpoint: 10.0.0.1:80 }\n');
    const p = await start(['--config', file, '--endpoints', '127.0.0.6:2', '--no-directives']);
    expect(setHeaderValue(await pick(p.grpc), 'x-gateway-destination-endpoint')).toBe('127.0.0.6:2');
    expect(setHeaderValue(await pick(p.grpc, { 'x-r': '1' }), 'x-gateway-destination-endpoint')).toBe('10.0.0.1:80');
    expect((await pick(p.grpc, { 'x-eppkit-immediate': '503' }))?.response).toBe('request_headers');
    p.child.kill('SIGTERM');
    expect(await p.exit).toBe(0);
  });

  it('--tls-cert/--tls-key serve gRPC over TLS', async () => {
    const cert = selfSignedCert();
    try {
      const p = await start(['--endpoints', '127.0.0.2:8000', '--tls-cert', cert.certFile, '--tls-key', cert.keyFile]);
      const r = await pick(p.grpc, {}, grpc.credentials.createSsl(Buffer.from(cert.cert)));
      expect(setHeaderValue(r, 'x-gateway-destination-endpoint')).toBe('127.0.0.2:8000');
      p.child.kill('SIGTERM');
      expect(await p.exit).toBe(0);
    } finally {
      cert.dispose();
    }
  });

  it('--transport grpc-js serves picks (plaintext and TLS) on @grpc/grpc-js, and drains on SIGTERM', async () => {
    const cert = selfSignedCert();
    try {
      for (const tls of [[], ['--tls-cert', cert.certFile, '--tls-key', cert.keyFile]]) {
        const p = await start(['--transport', 'grpc-js', '--endpoints', '127.0.0.2:8000', ...tls]);
        const creds = tls.length ? grpc.credentials.createSsl(Buffer.from(cert.cert)) : grpc.credentials.createInsecure();
        expect(setHeaderValue(await pick(p.grpc, {}, creds), 'x-gateway-destination-endpoint')).toBe('127.0.0.2:8000');
        // The transport shows in how a reset ends: an INTERNAL status, not an RST_STREAM.
        const client = new ExtProcTestClient(p.grpc, creds);
        const s = client.open();
        s.send({ request_headers: { headers: { headers: envoyHeaders({ 'x-eppkit-reset': 'true' }) }, end_of_stream: true } });
        expect(await s.outcome).toEqual({ code: 13, details: 'mock EPP reset: RST_STREAM is not possible on the grpc-js transport' });
        client.close();
        p.child.kill('SIGTERM');
        expect(await p.exit).toBe(0);
      }
    } finally {
      cert.dispose();
    }
  });

  it('a bad config file exits 2 with every problem and its line, no stack trace', async () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'endpoints:\n  - nope\npicker: fastest\nrules:\n  - action: { delay: { ms: -5 } }\n');
    const { exit, out } = run(['--config', file]);
    expect(await exit).toBe(2);
    expect(out.stderr).toMatch(/EPPKIT_CONFIG_INVALID/);
    expect(out.stderr).toMatch(/line 2, endpoints\[0\]/);
    expect(out.stderr).toMatch(/line 3, picker/);
    expect(out.stderr).toMatch(/line 5, rules\[0\]/);
    expect(out.stderr).not.toMatch(/\n\s+at /);
    expect(out.stdout).toBe('');
  });

  it('a taken port exits 1 with one clear message', async () => {
    const p = await start([]);
    const port = p.grpc.split(':')[1] as string;
    const { exit, out } = run(['--port', port, '--admin-port', '0']);
    expect(await exit).toBe(1);
    expect(out.stderr).toMatch(/EPPKIT_PORT_IN_USE: cannot listen on 127\.0\.0\.1:\d+: address already in use/);
    expect(out.stderr).not.toMatch(/\n\s+at /);
    p.child.kill('SIGTERM');
    expect(await p.exit).toBe(0);
  });

  it('bad flags exit 2', async () => {
    const a = run(['--endpoints', 'nope']);
    expect(await a.exit).toBe(2);
    expect(a.out.stderr).toMatch(/--endpoints: not ip:port: nope/);
    const b = run(['--tls-cert', '/x']);
    expect(await b.exit).toBe(2);
    expect(b.out.stderr).toMatch(/--tls-cert and --tls-key go together/);
    const c = run(['--transport', 'h3']);
    expect(await c.exit).toBe(2);
    expect(c.out.stderr).toMatch(/transport/);
  });
});
