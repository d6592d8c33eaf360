import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EppkitError } from '../../core/errors.ts';
import { freePort } from '../../core/net.ts';
import { launch } from './launch.ts';
import { LogBuffer } from './log-buffer.ts';
import { Wait, WaitExited, WaitTimeout, type ExitStatus, type WaitTarget } from './wait-strategy.ts';

/** A target driven by the test: it prints what the test pushes and exits when told. */
function fakeTarget(pid?: number): WaitTarget & { print(line: string): void; exit(x: ExitStatus): void } {
  const out = new LogBuffer();
  let exit!: (x: ExitStatus) => void;
  const exited = new Promise<ExitStatus>((r) => (exit = r));
  let running = true;
  return {
    what: 'fake',
    get running() {
      return running;
    },
    pid,
    exited,
    logs: () => out.text(),
    nextLine: (re) => out.nextMatch(re),
    print: (line) => out.push(`${line}\n`),
    exit: (x) => {
      running = false;
      exit(x);
    },
  };
}

describe('wait strategies', () => {
  it('a log line: resolves with the match, also for a line printed before the wait', async () => {
    const t = fakeTarget();
    t.print('grpc listening on 127.0.0.1:4242');
    expect((await Wait.forLogLine(/grpc listening on \S+:(\d+)/).waitUntilReady(t))[1]).toBe('4242');
    const later = Wait.forLogLine(/admin listening on (\S+)/).waitUntilReady(t);
    t.print('admin listening on http://127.0.0.1:9');
    expect((await later)[1]).toBe('http://127.0.0.1:9');
  });

  it('times out saying what it waited for, and what it saw last', async () => {
    const t = fakeTarget();
    const port = await freePort();
    const err = await Wait.forTcp('127.0.0.1', port).withTimeout(200).waitUntilReady(t).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WaitTimeout);
    expect((err as Error).message).toBe(`not ready within 200 ms (waited for a TCP connect to 127.0.0.1:${port}; last: connection refused)`);
  });

  it('stops at once when the target exits first', async () => {
    const t = fakeTarget();
    const waiting = Wait.forLogLine(/never/).waitUntilReady(t, { timeoutMs: 60_000 });
    t.exit({ code: 3, signal: null });
    const err = await waiting.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WaitExited);
    expect((err as Error).message).toBe('exited (code 3) before it was ready (waited for a line matching /never/)');
  });

  it('TCP and HTTP: ready once the server answers (and HTTP with the status asked for)', async () => {
    let status = 503;
    const server = createHttpServer((_q, s) => s.writeHead(status).end());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      const t = fakeTarget();
      await Wait.forTcp('127.0.0.1', port).waitUntilReady(t);
      await Wait.forHttp(`http://127.0.0.1:${port}/ready`).waitUntilReady(t);
      const ok = Wait.forHttp(`http://127.0.0.1:${port}/ready`, { status: 200 }).waitUntilReady(t, { timeoutMs: 10_000 });
      const err = await Wait.forHttp(`http://127.0.0.1:${port}/ready`, { status: 200 }).withTimeout(300).waitUntilReady(t).catch((e: unknown) => e);
      expect((err as Error).message).toMatch(/answering 200; last: status 503\)$/);
      status = 200;
      await ok;
    } finally {
      server.close();
    }
  });

  it('refuses readiness checks off loopback (the network rule)', () => {
    expect(() => Wait.forHttp('http://10.0.0.1:80/')).toThrow(/loopback/);
    expect(() => Wait.forTcp('172.17.0.2', 80)).toThrow(/loopback/);
    expect(() => Wait.forAll(Wait.forHttp('http://127.0.0.1:80/'), Wait.forTcp('127.0.0.2', 80), Wait.forTcp('::1', 80))).not.toThrow();
  });

  it('a pid file: written and naming the target (any pid in a container)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'eppkit-wait-'));
    const file = join(dir, 'nginx.pid');
    const local = fakeTarget(1234);
    const waiting = Wait.forPidFile(file).waitUntilReady(local, { timeoutMs: 10_000 });
    writeFileSync(file, '999\n');
    const err = await Wait.forPidFile(file).withTimeout(200).waitUntilReady(local).catch((e: unknown) => e);
    expect((err as Error).message).toContain('last: names pid 999, not 1234');
    writeFileSync(file, '1234\n');
    await waiting;
    writeFileSync(file, '1\n');
    await Wait.forPidFile(file).waitUntilReady(fakeTarget(undefined));
  });

  it('all: in order, each result, the failing part named', async () => {
    const t = fakeTarget();
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as { port: number }).port;
    try {
      t.print('admin listening on http://127.0.0.1:7');
      t.print('grpc listening on 127.0.0.1:8');
      const [admin, grpc, tcp] = await Wait.forAll(Wait.forLogLine(/admin .*:(\d+)/), Wait.forLogLine(/grpc .*:(\d+)/), Wait.forTcp('127.0.0.1', port)).waitUntilReady(t);
      expect([admin[1], grpc[1], tcp]).toEqual(['7', '8', undefined]);
      const err = await Wait.forAll(Wait.forLogLine(/admin/), Wait.forLogLine(/never/)).withTimeout(200).waitUntilReady(t).catch((e: unknown) => e);
      expect((err as WaitTimeout).description).toBe('a line matching /never/');
    } finally {
      srv.close();
    }
  });

  it('text in a file (a plane file log)', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'eppkit-wait-')), 'plane.log');
    const waiting = Wait.forText(/^ready$/m, file).waitUntilReady(fakeTarget(), { timeoutMs: 10_000 });
    writeFileSync(file, 'starting\nready\n');
    await waiting;
  });
});

describe('launch', () => {
  it('a process that exits before it is ready: EPPKIT_START_FAILED with the wait and its output', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'eppkit-launch-'));
    const err = await launch(
      { runtime: 'local', workDir: dir },
      { what: 'sh', image: '', command: ['sh', '-c', 'echo bad flag >&2; exit 2'], waitFor: Wait.forLogLine(/listening/), failureContext: () => 'error.log:\n(empty)' },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EppkitError);
    expect((err as EppkitError).format()).toContain('sh did not start: exited (code 2) before it was ready (waited for a line matching /listening/); output:\nbad flag\n\nerror.log:\n(empty)');
  });

  it('hands back what the wait found, and is AsyncDisposable', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'eppkit-launch-'));
    let pid: number | undefined;
    {
      await using p = await launch({ runtime: 'local', workDir: dir }, { what: 'sh', image: '', command: ['sh', '-c', 'echo listening on 127.0.0.1:5; exec sleep 30'], waitFor: Wait.forLogLine(/listening on (\S+)/) });
      expect(p.ready[1]).toBe('127.0.0.1:5');
      pid = p.pid;
      expect(p.running).toBe(true);
    }
    expect(() => process.kill(pid!, 0)).toThrow();
  });
});
