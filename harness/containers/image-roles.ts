// The images of `eppkit build images`, where things live inside them, and whether one can run
// here: what launch() needs to run a command in a container instead of as a local process.
import { env } from '../../core/env.ts';
import { EppkitError } from '../../core/errors.ts';
import type { Availability } from '../data-planes/data-plane-driver.ts';
import { dockerAvailable, inspectImage } from './docker-cli.ts';

export const IMAGES_BY_ROLE = {
  /** eppkit itself: `eppkit mock-epp|node-proxy|backend ...` */
  eppkit: 'eppkit/node',
  nginxEpp: 'eppkit/nginx-epp',
  nginxNjs: 'eppkit/nginx-njs',
  envoy: 'eppkit/envoy',
} as const;

export const CONTAINER_PATHS = {
  /** `load_module` path of the Rust EPP module in eppkit/nginx-epp. */
  nginxEppModule: '/usr/lib/nginx/modules/ngx_http_rust_epp_module.so',
  /** Debian's NJS module (same path on the host and in eppkit/nginx-njs, eppkit/nginx-epp). */
  nginxNjsModule: '/usr/lib/nginx/modules/ngx_http_js_module.so',
  nginx: '/usr/sbin/nginx',
  envoy: '/usr/local/bin/envoy',
  eppkit: 'eppkit',
} as const;

/** For a driver's available(): docker reachable and the image built. Never throws. */
export async function containerAvailable(image: string): Promise<Availability> {
  const d = await dockerAvailable();
  if (!d.ok) return d;
  if (!(await inspectImage(image))) return { ok: false, reason: `image ${image} is not built: run \`eppkit build images\`` };
  return { ok: true };
}

let eppkitImageChecked: Promise<void> | undefined;

/**
 * eppkit/node carries a copy of this checkout's sources: make sure it is the current one
 * before the first container of a run (a no-op costing a hash of the sources when nothing
 * changed), so `--runtime docker` never tests stale code. Once per process; skipped with
 * EPPKIT_DOCKER_NO_REFRESH.
 */
export function ensureEppkitImageCurrent(): Promise<void> {
  if (env().EPPKIT_DOCKER_NO_REFRESH) return Promise.resolve();
  eppkitImageChecked ??= (async () => {
    const { buildImages, formatImageResult } = await import('./build-images.ts');
    const results = await buildImages({ only: ['node'] }).catch((e: unknown) => {
      const why = e instanceof EppkitError ? e.message : String(e);
      throw new EppkitError('EPPKIT_BUILD_FAILED', {
        what: IMAGES_BY_ROLE.eppkit,
        reason: `refreshing it from this checkout failed (${why}); set EPPKIT_DOCKER_NO_REFRESH=1 to run the image as it is`,
      });
    });
    for (const r of results) if (r.status === 'built') process.stderr.write(`[eppkit] ${IMAGES_BY_ROLE.eppkit} was out of date: ${formatImageResult(r)}\n`);
  })();
  return eppkitImageChecked;
}
