// A typo in the command, as a user meets it: "Unknown command 'rn'. Did you mean 'run'?" and
// exit 2 (yargs alone said "Unknown argument: rn"), nothing started, no stack trace.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'eppkit.js');

function eppkit(args: string[]): { code: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, timeout: 60_000 });
  return { code: r.status, stderr: r.stderr };
}

describe('unknown command', () => {
  it("says Unknown command 'x'. Did you mean 'y'? and exits 2", () => {
    const r = eppkit(['rn', '--data-plane', 'node-proxy']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error EPPKIT_USAGE: Unknown command 'rn'\. Did you mean 'run'\?/);
    expect(r.stderr).not.toMatch(/Unknown argument|\n\s+at /);
    const b = eppkit(['mock-epd', '--port', '0']);
    expect(b.code).toBe(2);
    expect(b.stderr).toContain("Unknown command 'mock-epd'. Did you mean 'mock-epp'?");
  });
});
