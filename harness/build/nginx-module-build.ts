// `eppkit build nginx`: builds ngx_http_rust_epp_module against the nginx this machine runs.
// Steps (each skipped when already done, so a second run takes seconds):
//  1. copy Debian's nginx-dev tree (/usr/share/nginx/src) to $cache/nginx-src-<version> and run
//     its configure with Debian's own flags (conf_flags) plus -fPIC: the module signature then
//     equals /usr/sbin/nginx's, so load_module accepts the .so;
//  2. cargo build --release of proxies/nginx-epp with NGINX_SOURCE_DIR/NGINX_BUILD_DIR there
//     (never ngx's `vendored` feature: it downloads nginx) and PROTOC for the repo's protos.
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EppkitError } from '../../core/errors.ts';
import { env, eppkitHome, nginxBin } from '../../core/env.ts';

export const MODULE_FILE = 'libngx_http_rust_epp_module.so';
export const CRATE_DIR = fileURLToPath(new URL('../../proxies/nginx-epp/', import.meta.url));

export interface NginxModuleBuildOptions {
  /** Default $EPPKIT_HOME or ~/.cache/eppkit. */
  cacheDir?: string;
  /** Default $CARGO_TARGET_DIR or <cacheDir>/cargo-target. */
  targetDir?: string;
  /** Default $EPPKIT_NGINX_BIN or /usr/sbin/nginx. */
  nginxBin?: string;
  /** Default /usr/share/nginx/src (Debian's nginx-dev). */
  nginxDevDir?: string;
  /** cargo -j. Default 2. */
  jobs?: number;
  /** Build progress (cargo's output); default: none. */
  onOutput?: (chunk: string) => void;
}

export function cargoTargetDir(cacheDir = eppkitHome()): string {
  return process.env.CARGO_TARGET_DIR ?? join(cacheDir, 'cargo-target');
}

/** Where `eppkit build nginx` leaves the module (EPPKIT_NGINX_MODULE overrides). */
export function defaultNginxModulePath(): string {
  return env().EPPKIT_NGINX_MODULE ?? join(cargoTargetDir(), 'release', MODULE_FILE);
}

export function nginxVersion(nginxBin: string): string {
  const v = spawnSync(nginxBin, ['-v'], { encoding: 'utf8' });
  const m = /nginx\/(\d+\.\d+\.\d+)/.exec(`${v.stderr ?? ''}${v.stdout ?? ''}`);
  if (v.error || !m) {
    throw new EppkitError('EPPKIT_TOOL_MISSING', { tool: `nginx (${nginxBin})`, reason: 'cannot run `nginx -v`; install it: bash scripts/setup-system.sh (apt nginx nginx-dev)' });
  }
  return m[1]!;
}

function tail(s: string, n = 4000): string {
  return s.length > n ? `…${s.slice(-n)}` : s;
}

export function runBuildStep(what: string, command: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; onOutput?: (s: string) => void }): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = '';
    const child = spawn(command, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const take = (d: Buffer): void => {
      const s = d.toString('utf8');
      out = tail(out + s, 64 * 1024);
      opts.onOutput?.(s);
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.once('error', (e) => reject(new EppkitError('EPPKIT_BUILD_FAILED', { what, reason: `cannot run \`${command}\`: ${e.message}` })));
    child.once('exit', (code, signal) => {
      if (code === 0) resolve();
      else
        reject(
          new EppkitError('EPPKIT_BUILD_FAILED', {
            what,
            reason: `\`${[command, ...args].join(' ')}\` exited with ${code ?? signal}; last output:\n${tail(out)}`,
          }),
        );
    });
  });
}

/** Configured nginx tree for this nginx version; created once. */
export async function ensureNginxTree(o: NginxModuleBuildOptions = {}): Promise<string> {
  const cacheDir = o.cacheDir ?? eppkitHome();
  const version = nginxVersion(o.nginxBin ?? nginxBin());
  const dir = join(cacheDir, `nginx-src-${version}`);
  if (existsSync(join(dir, 'objs', 'ngx_auto_config.h'))) return dir;
  const devDir = o.nginxDevDir ?? '/usr/share/nginx/src';
  if (!existsSync(join(devDir, 'configure')) || !existsSync(join(devDir, 'conf_flags'))) {
    throw new EppkitError('EPPKIT_TOOL_MISSING', { tool: 'nginx-dev', reason: `${devDir}/configure not found; run: apt-get install nginx-dev (scripts/setup-system.sh)` });
  }
  mkdirSync(cacheDir, { recursive: true });
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  cpSync(devDir, tmp, { recursive: true });
  // Configure only (no make): headers + objs/ngx_auto_config.h are what bindgen needs.
  await runBuildStep('nginx (configure)', 'bash', ['-c', '. ./conf_flags && ./configure "${NGX_CONF_FLAGS[@]}" --with-cc-opt=-fPIC --with-ld-opt=-fPIC'], { cwd: tmp, onOutput: o.onOutput });
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
  return dir;
}

/** Fails with a clear message when cargo is not installed. */
export function requireCargo(forWhat: string): void {
  const cargo = spawnSync('cargo', ['--version'], { encoding: 'utf8' });
  if (cargo.error || cargo.status !== 0) {
    throw new EppkitError('EPPKIT_TOOL_MISSING', { tool: 'cargo', reason: `the Rust toolchain is needed to build ${forWhat} (rustup, or apt-get install cargo)` });
  }
}

/** Builds (or finds up to date) the module; returns the absolute path of the .so. */
export async function buildNginxModule(o: NginxModuleBuildOptions = {}): Promise<string> {
  requireCargo('the nginx module');
  const nginxDir = await ensureNginxTree(o);
  const targetDir = o.targetDir ?? cargoTargetDir(o.cacheDir ?? eppkitHome());
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    CARGO_TARGET_DIR: targetDir,
    NGINX_SOURCE_DIR: nginxDir,
    NGINX_BUILD_DIR: join(nginxDir, 'objs'),
    PROTOC: process.env.PROTOC ?? '/usr/bin/protoc',
  };
  await runBuildStep('ngx_http_rust_epp_module (cargo build)', 'cargo', ['build', '--release', '--locked', '-j', String(o.jobs ?? 2), '--manifest-path', join(CRATE_DIR, 'Cargo.toml')], {
    env,
    onOutput: o.onOutput,
  });
  const so = join(targetDir, 'release', MODULE_FILE);
  if (!existsSync(so)) throw new EppkitError('EPPKIT_BUILD_FAILED', { what: 'ngx_http_rust_epp_module', reason: `cargo succeeded but ${so} is missing` });
  return so;
}
