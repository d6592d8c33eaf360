// Unit tests of what needs no Docker: staging of build contexts (sources in, tests out, the CA
// bundle beside them), missing inputs turned into a skip reason, the loopback-only readiness
// checks, and the printed result lines.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { IMAGES, IMAGE_NAMES, formatImageResult, hostNpmDir } from './build-images.ts';

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'eppkit-stage-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  delete process.env.EPPKIT_NGINX_MODULE;
  delete process.env.EPPKIT_ENVOY;
  delete process.env.EPPKIT_CA_BUNDLE;
});

const spec = (name: string) => {
  const s = IMAGES.find((i) => i.name === name);
  if (!s) throw new Error(`no image ${name}`);
  return s;
};

describe('image build contexts', () => {
  it('lists the images in build order, each parent before its child', () => {
    expect(IMAGE_NAMES).toEqual(['node', 'nginx-njs', 'nginx-epp', 'envoy']);
    for (const [i, s] of IMAGES.entries()) {
      const parent = IMAGES.findIndex((p) => p.tag === s.from);
      expect(parent).toBeLessThan(i);
    }
  });

  it('stages eppkit sources under src/ without tests, node_modules or Rust targets, and the CA bundle beside them', () => {
    const d = tmp();
    process.env.EPPKIT_CA_BUNDLE = join(d, 'missing-ca.crt');
    expect(spec('node').stage(d)).toBeUndefined();
    expect(existsSync(join(d, 'src', 'package-lock.json'))).toBe(true);
    expect(existsSync(join(d, 'src', 'bin', 'eppkit.js'))).toBe(true);
    expect(existsSync(join(d, 'src', 'harness', 'containers', 'build-images.ts'))).toBe(true);
    expect(existsSync(join(d, 'src', 'harness', 'containers', 'build-images.test.ts'))).toBe(false);
    expect(existsSync(join(d, 'src', 'node_modules'))).toBe(false);
    expect(existsSync(join(d, 'src', 'proxies', 'nginx-epp', 'target'))).toBe(false);
    // The host's Node and npm run `npm ci` in the image's build stage (when npm is on PATH).
    const npm = hostNpmDir();
    expect(existsSync(join(d, 'bootstrap', 'npm', 'bin', 'npm-cli.js'))).toBe(npm !== undefined);
    expect(existsSync(join(d, 'bootstrap', 'bin', 'node'))).toBe(npm !== undefined);
    // No CA bundle on the host: an empty file, which the Dockerfile treats as "none".
    expect(readFileSync(join(d, 'host-ca-certificates.crt'), 'utf8')).toBe('');
  });

  it('turns a missing nginx module or Envoy binary into a skip reason that says what to run', () => {
    process.env.EPPKIT_NGINX_MODULE = '/nonexistent/module.so';
    process.env.EPPKIT_ENVOY = '/nonexistent/envoy';
    expect(spec('nginx-epp').stage(tmp())).toMatch(/eppkit build nginx/);
    expect(spec('envoy').stage(tmp())).toMatch(/setup-system\.sh/);
  });

  it('prints one line per image', () => {
    expect(formatImageResult({ name: 'node', tag: 'eppkit/node', status: 'reused', ms: 1234, sizeBytes: 308e6 })).toBe('reused eppkit/node (1.2 s, 308 MB)');
    expect(formatImageResult({ name: 'envoy', tag: 'eppkit/envoy', status: 'skipped', reason: 'no envoy', ms: 0 })).toBe('skipped eppkit/envoy: no envoy');
  });
});
