// `eppkit build nginx` building blocks: a missing nginx-dev tree and a failing build step are
// EppkitErrors naming what to install or the failing command with its output tail.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isEppkitError } from '../../core/errors.ts';
import { ensureNginxTree, nginxVersion } from './nginx-module-build.ts';

const hasNginx = spawnSync('/usr/sbin/nginx', ['-v']).status === 0;

describe.skipIf(!hasNginx)('nginx module build steps', () => {
  it('reads the version of the nginx binary', () => {
    expect(nginxVersion('/usr/sbin/nginx')).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('a missing nginx binary is EPPKIT_TOOL_MISSING', () => {
    try {
      nginxVersion('/nonexistent/nginx');
      expect.unreachable();
    } catch (e) {
      expect(isEppkitError(e) && e.code).toBe('EPPKIT_TOOL_MISSING');
    }
  });

  it('a missing nginx-dev tree says what to install', async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'eppkit-build-'));
    await expect(ensureNginxTree({ cacheDir, nginxDevDir: join(cacheDir, 'no-such-dir') })).rejects.toMatchObject({
      code: 'EPPKIT_TOOL_MISSING',
      message: expect.stringContaining('nginx-dev'),
    });
  });

  it('a failing configure is EPPKIT_BUILD_FAILED with the command and its output tail', async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'eppkit-build-'));
    const dev = join(cacheDir, 'fake-dev');
    mkdirSync(dev);
    writeFileSync(join(dev, 'conf_flags'), 'NGX_CONF_FLAGS=(--with-foo)\n');
    writeFileSync(join(dev, 'configure'), '#!/bin/sh\necho "checking for OS"\necho "error: boom in configure" >&2\nexit 3\n');
    chmodSync(join(dev, 'configure'), 0o755);
    try {
      await ensureNginxTree({ cacheDir, nginxDevDir: dev });
      expect.unreachable();
    } catch (e) {
      expect(isEppkitError(e) && e.code).toBe('EPPKIT_BUILD_FAILED');
      expect((e as Error).message).toContain('./configure');
      expect((e as Error).message).toContain('boom in configure');
      expect((e as Error).message).toContain('exited with 3');
    }
  });
});
