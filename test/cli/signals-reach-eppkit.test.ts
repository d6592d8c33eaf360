// `kill <pid>` of what a user started stops the real eppkit. On a machine whose Node is older
// than 22.18, bin/eppkit.js runs eppkit as a child under the bundled Node 24, and `npx eppkit`
// adds npm in front: a SIGTERM to the outermost process must reach the server, which then
// drains, closes its port and exits — no orphan keeps serving.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { canConnect } from '../../core/net.ts';

const ROOT = join(import.meta.dirname, '..', '..');

/** The machine's own Node (what `npx` and a user's shell run), whatever its version. */
function systemNode(): string | undefined {
  for (const c of ['/usr/bin/node', '/usr/local/bin/node']) if (existsSync(c)) return c;
  return undefined;
}

function descendants(pid: number): number[] {
  const out: number[] = [];
  const walk = (p: number): void => {
    let kids: number[] = [];
    try {
      kids = readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
      return;
    }
    for (const k of kids) {
      out.push(k);
      walk(k);
    }
  };
  walk(pid);
  return out;
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.startsWith('Z');
  } catch {
    return false;
  }
};

async function startAndTerm(command: string, args: string[]): Promise<{ port: number; exit: { code: number | null; signal: string | null }; leftovers: number[] }> {
  const child = spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  let out = '';
  const port = await new Promise<number>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no ready line; output:\n${out}`)), 60_000);
    child.stdout.on('data', (d: Buffer) => {
      out += d;
      const m = /grpc listening on 127\.0\.0\.1:(\d+)[\s\S]*admin listening/.exec(out);
      if (m) {
        clearTimeout(t);
        resolve(Number(m[1]));
      }
    });
    child.stderr.on('data', (d: Buffer) => (out += d));
  });
  const tree = descendants(child.pid!);
  expect(await canConnect('127.0.0.1', port)).toBe(true);
  process.kill(child.pid!, 'SIGTERM');
  const exit = await exited;
  // The server drains (grace 2 s by default) then exits: wait on that condition, bounded.
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline && (tree.some(alive) || (await canConnect('127.0.0.1', port)))) await new Promise((r) => setTimeout(r, 100));
  return { port, exit, leftovers: tree.filter(alive) };
}

describe('signals reach the real eppkit', () => {
  const node = systemNode();
  const old = node ? spawnSync(node, ['-p', 'process.versions.node'], { encoding: 'utf8' }).stdout.trim() : '';

  it.skipIf(!node)('bin/eppkit.js under the machine\'s Node: SIGTERM stops the server and every process under it', async () => {
    const r = await startAndTerm(node!, ['bin/eppkit.js', 'mock-epp', '--port', '0', '--admin-port', '0', '--grace-ms', '200']);
    expect(r.leftovers).toEqual([]);
    expect(await canConnect('127.0.0.1', r.port)).toBe(false);
    expect(r.exit.code ?? 0).toBe(0);
    process.stderr.write(`[eppkit] machine Node ${old}\n`);
  }, 90_000);

  it.skipIf(!node || !existsSync('/usr/bin/npx'))('npx eppkit: SIGTERM to npm stops the server too', async () => {
    const r = await startAndTerm('/usr/bin/npx', ['--no-install', 'eppkit', 'mock-epp', '--port', '0', '--admin-port', '0', '--grace-ms', '200']);
    expect(r.leftovers).toEqual([]);
    expect(await canConnect('127.0.0.1', r.port)).toBe(false);
  }, 90_000);
});
