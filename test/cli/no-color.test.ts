// Colours on a terminal, none with NO_COLOR=1 or --no-color (chalk 5 alone ignores NO_COLOR,
// and yargs' strict mode used to reject --no-color). A real pseudo-terminal through script(1).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { eppkitCommand } from '../../harness/launch/launch.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const { command, args } = eppkitCommand();
const ESC = '\u001b[';

function onTerminal(extra: string[], env: Record<string, string | undefined>): { code: number; out: string } {
  const cmd = [command, ...args, 'list', ...extra].map((a) => `'${a}'`).join(' ');
  // A user's terminal, not CI: chalk turns colours off under CI=true whatever the terminal.
  const user = { ...process.env, CI: undefined, FORCE_COLOR: undefined, NO_COLOR: undefined, TERM: 'xterm-256color' };
  const r = spawnSync('script', ['-qec', cmd, '/dev/null'], { cwd: ROOT, encoding: 'utf8', env: { ...user, ...env } });
  return { code: r.status ?? 1, out: r.stdout };
}

describe.skipIf(!existsSync('/usr/bin/script'))('colours', () => {
  it('on a terminal eppkit list is coloured', () => {
    const r = onTerminal([], {});
    expect(r.code).toBe(0);
    expect(r.out).toContain(ESC);
  });
  it('NO_COLOR=1 and --no-color print no escape sequence, and --no-color is accepted', () => {
    for (const r of [onTerminal([], { NO_COLOR: '1' }), onTerminal(['--no-color'], {})]) {
      expect(r.code).toBe(0);
      expect(r.out).toContain('Scenarios');
      expect(r.out).not.toContain(ESC);
    }
  });
});
