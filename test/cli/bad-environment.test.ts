// A bad EPPKIT_* variable is reported like a bad input file, before any command runs: exit 2,
// source "environment", every bad variable named with what it must be, no stack trace.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { eppkitCommand } from '../../harness/launch/launch.ts';

describe('the EPPKIT_* environment', () => {
  it('is validated once, up front: every bad variable named, exit 2', () => {
    const { command, args } = eppkitCommand();
    const r = spawnSync(command, [...args, 'list'], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, NO_COLOR: '1', EPPKIT_LOG_LEVEL: 'loud', EPPKIT_EXTERNAL_EPP_PORT: '70000', EPPKIT_DOCKER_NO_REFRESH: 'yes' },
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('EPPKIT_CONFIG_INVALID: invalid configuration in environment');
    expect(r.stderr).toMatch(/- EPPKIT_LOG_LEVEL: .*"warn"/);
    expect(r.stderr).toContain('- EPPKIT_EXTERNAL_EPP_PORT: must be a port 1-65535');
    expect(r.stderr).toMatch(/- EPPKIT_DOCKER_NO_REFRESH: /);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.stdout).toBe('');
  });
});
