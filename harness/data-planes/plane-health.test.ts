import { appendFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ENVOY_CRASH_PATTERNS, NGINX_CRASH_PATTERNS, NODE_CRASH_PATTERNS, PlaneHealthMonitor, healthReason, userCrashPatterns, type ExitStatus, type WatchedProcess } from './plane-health.ts';

function fakeProc(): WatchedProcess & { end(x: ExitStatus): void } {
  let resolve: (x: ExitStatus) => void = () => {};
  const exited = new Promise<ExitStatus | undefined>((r) => (resolve = r));
  const p = {
    running: true,
    exitStatus: undefined as ExitStatus | undefined,
    pid: 4242,
    exited,
    end(x: ExitStatus) {
      p.running = false;
      p.exitStatus = x;
      resolve(x);
    },
  };
  return p;
}

describe('PlaneHealthMonitor', () => {
  const dir = mkdtempSync(join(tmpdir(), 'eppkit-health-'));

  it('finds an nginx worker crash in error.log written after it started watching, once', () => {
    const log = join(dir, 'error.log');
    writeFileSync(log, '2026/11/29 [emerg] 1#1: bind() to 127.0.0.1:1 failed (98: Address already in use)\n');
    const m = new PlaneHealthMonitor('nginx').withLogFile('nginx error.log', log, NGINX_CRASH_PATTERNS);
    expect(m.health().ok).toBe(true);
    appendFileSync(log, '2026/11/29 [notice] 10#10: signal 17 (SIGCHLD) received from 11\n2026/11/29 [alert] 10#10: worker process 11 exited on signal 11 (core dumped)\n');
    const h = m.health();
    expect(h.ok).toBe(false);
    expect(h.problems).toHaveLength(1);
    expect(h.problems[0]).toMatchObject({ kind: 'crash', source: 'nginx error.log' });
    expect(healthReason(h)).toContain('exited on signal 11');
    expect(m.health().problems).toHaveLength(1);
  });

  it('keeps a partial line until it is complete', () => {
    const log = join(dir, 'envoy.log');
    writeFileSync(log, '');
    const m = new PlaneHealthMonitor('envoy').withLogFile('envoy', log, ENVOY_CRASH_PATTERNS, 0);
    appendFileSync(log, '[2026-11-29][critical][backtrace] Caught Segmen');
    expect(m.health().ok).toBe(true);
    appendFileSync(log, 'tation fault, suspect faulting address 0x0\n');
    expect(m.health().problems[0]?.kind).toBe('crash');
  });

  it("recognises Node's fatal error footer and a plane file's own pattern", () => {
    const log = join(dir, 'node.log');
    writeFileSync(log, 'listening on http://127.0.0.1:1\nError: boom\n    at x (file.js:1:1)\n\nNode.js v24.11.0\n');
    expect(new PlaneHealthMonitor('n').withLogFile('node', log, NODE_CRASH_PATTERNS, 0).health().problems[0]?.line).toBe('Node.js v24.11.0');
    writeFileSync(log, 'all good\nPANIC in handler\n');
    expect(new PlaneHealthMonitor('p').withLogFile('mine', log, userCrashPatterns(['^PANIC']), 0).health().ok).toBe(false);
  });

  it('reports a process that exited before stop, not one stopped by us', async () => {
    const a = fakeProc();
    const m = new PlaneHealthMonitor('x').withProcess('node-proxy', a);
    expect(m.health().ok).toBe(true);
    a.end({ code: null, signal: 'SIGSEGV' });
    await a.exited;
    expect(m.health().problems[0]?.line).toMatch(/node-proxy \(pid 4242\) exited on SIGSEGV/);

    const b = fakeProc();
    const m2 = new PlaneHealthMonitor('y').withProcess('envoy', b);
    await m2.stopping(async () => b.end({ code: 0, signal: null }));
    expect(m2.health().ok).toBe(true);
  });

  it('reports a foreign process (pid file) that went away', () => {
    let pid: number | undefined = process.pid;
    const m = new PlaneHealthMonitor('ext').withForeignProcess('external data plane', () => pid);
    expect(m.pids()).toContain(process.pid);
    expect(m.health().ok).toBe(true);
    pid = 2 ** 22 + 11;
    expect(m.health().problems[0]?.line).toMatch(/was restarted/);
  });
});
