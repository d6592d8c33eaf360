#!/usr/bin/env node
// Entry point. eppkit is TypeScript run by Node's built-in type stripping (Node >= 22.18),
// so there is no build step. Where the Node on PATH is older, re-run under the Node 24
// that `npm ci` installs (the npm package `node`), so `npx eppkit` works on a machine with Node 20.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

// `npx eppkit ...` runs us under npm, which passes no signal on: `kill <npm's pid>` would leave
// this process orphaned and serving. So under npm exec, npm's going away is our stop signal.
const npmParent = process.env.npm_command === 'exec' ? process.ppid : undefined;
function whenNpmIsGone(stop) {
  if (npmParent === undefined) return;
  const t = setInterval(() => {
    if (process.ppid !== npmParent) {
      clearInterval(t);
      stop();
    }
  }, 250);
  t.unref();
}
// Node's on-disk compile cache: the TypeScript of every eppkit process (a mock EPP, backend or
// node-proxy per scenario) is stripped and compiled once, not at each start — about 0.9 s of
// CPU per start becomes 0.5 s, which is what made starts time out on a busy machine. Set in
// the environment so that the processes eppkit starts use it from their first line.
process.env.NODE_COMPILE_CACHE ??= join(tmpdir(), 'eppkit-compile-cache');
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
  // A child, not an exec (Node has none): every signal this process gets goes on to it, so
  // `kill <pid>` and Ctrl-C stop the real eppkit; its exit becomes ours. One exception: Ctrl-C
  // at a terminal already reaches the child (same process group), and a second SIGINT would cut
  // its graceful stop short, so SIGINT is forwarded only when no terminal is attached.
  const child = spawn(bundled, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' });
  const interactive = process.stdin.isTTY || process.stdout.isTTY || process.stderr.isTTY;
  const forward = (sig) => {
    if (sig === 'SIGINT' && interactive) return;
    if (child.exitCode === null && child.signalCode === null) child.kill(sig);
  };
  const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];
  for (const sig of SIGNALS) process.on(sig, forward);
  whenNpmIsGone(() => forward('SIGTERM'));
  child.on('error', (e) => {
    process.stderr.write(`eppkit: could not start ${bundled}: ${e.message}\n`);
    process.exit(2);
  });
  // Died of a signal: exit as a shell reports it (128 + n); re-raising SIGUSR1 would start
  // Node's inspector here instead.
  child.on('exit', (code, signal) => process.exit(signal ? 128 + (constants.signals[signal] ?? 0) : (code ?? 1)));
} else {
  whenNpmIsGone(() => process.kill(process.pid, 'SIGTERM'));
  // This process read the environment before the line above: enable the cache for it too.
  (await import('node:module')).enableCompileCache?.(process.env.NODE_COMPILE_CACHE);
  await import('../cli/eppkit.ts');
}
