// eppkit processes share Node's on-disk compile cache (bin/eppkit.js sets NODE_COMPILE_CACHE):
// the TypeScript of a mock EPP, backend or node-proxy is compiled once, not at every start of
// the many a run makes. The cache is filled by the first run and used by the ones eppkit
// starts (they inherit the variable); NODE_DISABLE_COMPILE_CACHE turns it off.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const BIN = new URL('../../bin/eppkit.js', import.meta.url).pathname;

function run(env: NodeJS.ProcessEnv): number | null {
  const e: NodeJS.ProcessEnv = { ...process.env, ...env };
  delete e.NODE_COMPILE_CACHE;
  return spawnSync(process.execPath, [BIN, 'list'], { encoding: 'utf8', env: { ...e, ...env }, timeout: 120_000 }).status;
}

describe('Node compile cache', () => {
  it('is filled by an eppkit process (by default under the temp directory)', () => {
    const tmp = mkdtempSync(join(tmpdir(), 'eppkit-ncc-'));
    expect(run({ TMPDIR: tmp })).toBe(0);
    const files = readdirSync(join(tmp, 'eppkit-compile-cache'), { recursive: true });
    expect(files.length).toBeGreaterThan(10);
  }, 130_000);

  it('stays off with NODE_DISABLE_COMPILE_CACHE', () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'eppkit-ncc-')), 'cache');
    expect(run({ NODE_COMPILE_CACHE: dir, NODE_DISABLE_COMPILE_CACHE: '1' })).toBe(0);
    expect(existsSync(dir) ? readdirSync(dir, { recursive: true }).length : 0).toBe(0);
  }, 130_000);
});
