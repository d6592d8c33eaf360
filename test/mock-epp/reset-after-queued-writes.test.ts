// The mock's RST_STREAM after answers that are still being written: Node's http2 (24.x) loops
// forever sending empty DATA frames when a stream is closed while a write is still buffered,
// growing the process to tens of GB in one synchronous call (found by `eppkit fuzz` on nginx:
// answer, answer, reset). The transport holds the reset until its writes are out. The child
// runs under a 2 GiB address-space cap so a regression fails here instead of taking the machine.
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { typeScriptNode } from '../../harness/launch/launch.ts';

const fixture = fileURLToPath(new URL('./fixtures/reset-after-queued-writes.ts', import.meta.url));
const hasPrlimit = (() => {
  try {
    execFileSync('prlimit', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe('mock EPP h2 transport: reset after queued writes', () => {
  it.runIf(hasPrlimit || process.env.CI)('sends both answers, then RST_STREAM, and the process stays small', () => {
    const r = spawnSync('prlimit', [`--as=${2 * 1024 ** 3}`, typeScriptNode(), fixture], { encoding: 'utf8', timeout: 20_000 });
    expect(r.stderr).not.toMatch(/bad_alloc|out of memory/i);
    expect(r.status).toBe(0);
    const seen = JSON.parse(r.stdout.trim().split('\n').at(-1) as string) as { rstCode: number; bytes: number };
    expect(seen.rstCode).toBe(2);
    // Two 5-byte-prefixed messages of 3 bytes each reached the client before the reset.
    expect(seen.bytes).toBe(16);
  });
});
