import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { locateEnvoy } from './envoy-binary.ts';

const saved = { home: process.env.EPPKIT_HOME, bin: process.env.EPPKIT_ENVOY_BIN };
afterEach(() => {
  for (const [k, v] of [['EPPKIT_HOME', saved.home], ['EPPKIT_ENVOY_BIN', saved.bin]] as const) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

function executable(path: string): string {
  writeFileSync(path, '#!/bin/sh\n');
  chmodSync(path, 0o755);
  return path;
}

describe('locateEnvoy', () => {
  it("finds the wheel's envoy/_bin/envoy under $EPPKIT_HOME/envoy-venv, preferring it over the bin/ wrapper", () => {
    const home = mkdtempSync(join(tmpdir(), 'eppkit-home-'));
    const binDir = join(home, 'envoy-venv', 'lib', 'python3.11', 'site-packages', 'envoy', '_bin');
    mkdirSync(binDir, { recursive: true });
    mkdirSync(join(home, 'envoy-venv', 'bin'), { recursive: true });
    const real = executable(join(binDir, 'envoy'));
    executable(join(home, 'envoy-venv', 'bin', 'envoy'));
    process.env.EPPKIT_HOME = home;
    delete process.env.EPPKIT_ENVOY_BIN;
    expect(locateEnvoy().path).toBe(real);
  });

  it('an explicit path wins over EPPKIT_ENVOY_BIN, and a non-executable one is reported, not used', () => {
    const dir = mkdtempSync(join(tmpdir(), 'eppkit-bin-'));
    const a = executable(join(dir, 'envoy-a'));
    const b = executable(join(dir, 'envoy-b'));
    process.env.EPPKIT_ENVOY_BIN = b;
    expect(locateEnvoy(a).path).toBe(a);
    expect(locateEnvoy().path).toBe(b);
    const notExec = join(dir, 'envoy-c');
    writeFileSync(notExec, '');
    const loc = locateEnvoy(notExec);
    expect(loc.path).toBeUndefined();
    expect(loc.searched).toContain('not an executable file');
  });

  it('reports where it looked when there is no venv', () => {
    process.env.EPPKIT_HOME = mkdtempSync(join(tmpdir(), 'eppkit-empty-'));
    delete process.env.EPPKIT_ENVOY_BIN;
    const loc = locateEnvoy();
    expect(loc.path).toBeUndefined();
    expect(loc.searched).toContain(join(process.env.EPPKIT_HOME, 'envoy-venv'));
  });
});
