#!/usr/bin/env node
// Entry point. eppkit is TypeScript run by Node's built-in type stripping (Node >= 22.18),
// so there is no build step. Where the Node on PATH is older, re-run under the Node 24
// that `npm ci` installs (the npm package `node`), so `npx eppkit` works on a machine with Node 20.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const [major, minor] = process.versions.node.split('.').map(Number);
const supported = major > 22 || (major === 22 && minor >= 18);

if (!supported) {
  const bundled = join(root, 'node_modules', 'node', 'bin', 'node');
  if (!existsSync(bundled)) {
    process.stderr.write(
      `eppkit needs Node >= 22.18 (found ${process.versions.node}). Run \`npm ci\` in ${root} to install Node 24, or install it yourself.\n`,
    );
    process.exit(2);
  }
  const r = spawnSync(bundled, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
} else {
  await import('../cli/eppkit.ts');
}
