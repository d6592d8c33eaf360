// A plane must not outlive the `eppkit fuzz` that started it: not when eppkit is asked to stop
// (SIGTERM, Ctrl-C), not when it is killed outright (SIGKILL, the OOM killer), and not when it
// grows in a native loop that no in-process check sees (the watchdog kills it at its ceiling).
// Every process below eppkit (nginx master and workers, the watchdog) is recorded mid-run and
// must be gone afterwards.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { NginxDriver } from '../../harness/data-planes/nginx-driver.ts';
import { typeScriptNode } from '../../harness/launch/launch.ts';
import { gateFor } from '../support/envoy-test-kit.ts';

const gate = await gateFor(new NginxDriver());
const eppkit = fileURLToPath(new URL('../../bin/eppkit.js', import.meta.url));

/** pid -> [ppid, state, comm] of every process (Linux /proc). */
function processTable(): Map<number, { ppid: number; state: string; comm: string }> {
  const t = new Map<number, { ppid: number; state: string; comm: string }>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const s = readFileSync(`/proc/${d}/stat`, 'utf8');
      const close = s.lastIndexOf(')');
      const [state = '', ppid = '0'] = s.slice(close + 2).split(' ');
      t.set(Number(d), { ppid: Number(ppid), state, comm: s.slice(s.indexOf('(') + 1, close) });
    } catch {
      // Exited while we looked.
    }
  }
  return t;
}

function descendants(root: number): Array<{ pid: number; comm: string }> {
  const t = processTable();
  const out: Array<{ pid: number; comm: string }> = [];
  for (const [pid, p] of t) {
    for (let up = p.ppid, hops = 0; up > 1 && hops < 64; up = t.get(up)?.ppid ?? 0, hops++) {
      if (up === root) {
        out.push({ pid, comm: p.comm });
        break;
      }
    }
  }
  return out;
}

/** The pids among `pids` still running (a zombie waiting for its reaper has ended). */
function alive(pids: number[]): number[] {
  const t = processTable();
  return pids.filter((p) => t.has(p) && t.get(p)?.state !== 'Z');
}

async function fuzzUntilPlaneRuns(): Promise<{ child: ReturnType<typeof spawn>; below: number[]; exited: Promise<number | null>; stderr: () => string }> {
  const out = mkdtempSync(join(tmpdir(), 'eppkit-fuzz-stop-'));
  const child = spawn(typeScriptNode(), [eppkit, 'fuzz', '--data-plane', 'nginx', '--profile', 'close-buffered', '--seed', '3', '--duration', '10m', '--timeout-ms', '500', '--out', out], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code, sig) => r(code ?? (sig ? -1 : null))));
  const pid = child.pid as number;
  // Running: the nginx master has forked its worker and the watchdog is up.
  await expect.poll(() => descendants(pid).filter((d) => d.comm === 'nginx').length, { timeout: 60_000, interval: 200 }).toBeGreaterThanOrEqual(2);
  const below = descendants(pid).map((d) => d.pid);
  return { child, below, exited, stderr: () => err };
}

describe.skipIf(gate.skip)('eppkit fuzz stops the planes it started', () => {
  it('nginx is available (CI=true demands it)', () => {
    expect(gate.availability).toEqual({ ok: true });
  });

  it('on SIGTERM: exits 130, nothing it started is left', async () => {
    const run = await fuzzUntilPlaneRuns();
    expect(run.below.length).toBeGreaterThanOrEqual(3); // nginx master, worker, watchdog
    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(130);
    expect(run.stderr()).toMatch(/interrupted: stopped every process/);
    await expect.poll(() => alive(run.below), { timeout: 15_000, interval: 100 }).toEqual([]);
  }, 120_000);

  it('on SIGKILL: the watchdog takes the planes down', async () => {
    const run = await fuzzUntilPlaneRuns();
    run.child.kill('SIGKILL');
    await run.exited;
    await expect.poll(() => alive(run.below), { timeout: 15_000, interval: 100 }).toEqual([]);
  }, 120_000);
});

describe('the watchdog', () => {
  it('kills a process growing in a loop that never yields, and what it launched', () => {
    const fixture = fileURLToPath(new URL('./fixtures/grows-in-native-loop.ts', import.meta.url));
    // An address-space cap, so a watchdog that fails ends the child (allocation error) and not the machine.
    const r = spawnSync('prlimit', [`--as=${4 * 1024 ** 3}`, typeScriptNode(), fixture], { encoding: 'utf8', timeout: 60_000 });
    expect(r.signal).toBe('SIGKILL');
    expect(r.stderr).toMatch(/EPPKIT_MEMORY_LIMIT: eppkit \(pid \d+\) grew to \d+ MiB resident, over its limit of 256 MiB/);
    const plane = Number(/plane (\d+)/.exec(r.stdout)?.[1]);
    expect(plane).toBeGreaterThan(1);
    return expect.poll(() => alive([plane]), { timeout: 15_000, interval: 100 }).toEqual([]);
  }, 90_000);
});
