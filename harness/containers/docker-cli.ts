// The few Docker CLI calls eppkit makes outside testcontainers: is the daemon reachable, what
// does a local image carry (id, labels), build and remove images. Debian's docker.io 20.10 is
// the daemon here; a newer client in /usr/local/bin may refuse to talk to it, so the Debian
// client is preferred. Override with EPPKIT_DOCKER=/path/to/docker.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { Availability } from '../data-planes/data-plane-driver.ts';
import { env as eppkitEnv } from '../../core/env.ts';

export function dockerBin(): string {
  const env = eppkitEnv().EPPKIT_DOCKER;
  if (env) return env;
  return existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';
}

export interface DockerResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the docker client; never throws (a missing binary is code 127). */
export function docker(args: string[], timeoutMs = 30_000): Promise<DockerResult> {
  return new Promise((resolve) => {
    execFile(dockerBin(), args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { code?: number | string }) | null;
      const code = e ? (typeof e.code === 'number' ? e.code : e.code === 'ENOENT' ? 127 : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr || (e && !e.code ? e.message : '')) });
    });
  });
}

let cachedAvailability: Promise<Availability> | undefined;

/** Whether a Docker daemon answers (cached for the life of the process). */
export function dockerAvailable(): Promise<Availability> {
  cachedAvailability ??= (async (): Promise<Availability> => {
    const r = await docker(['version', '--format', '{{.Server.Version}}'], 10_000);
    if (r.code === 127) return { ok: false, reason: `no docker client (${dockerBin()}); install docker.io (scripts/setup-system.sh does)` };
    if (r.code !== 0 || !r.stdout.trim()) {
      const why = r.stderr.trim().split('\n')[0] ?? 'no answer';
      return { ok: false, reason: `the Docker daemon does not answer (${why}); start it: scripts/setup-system.sh` };
    }
    return { ok: true };
  })();
  return cachedAvailability;
}

export interface ImageInfo {
  id: string;
  labels: Record<string, string>;
  sizeBytes: number;
}

/** The local image `ref`, or undefined when there is none. */
export async function inspectImage(ref: string): Promise<ImageInfo | undefined> {
  const r = await docker(['image', 'inspect', '--format', '{{json .Id}}|{{json .Config.Labels}}|{{.Size}}', ref]);
  if (r.code !== 0) return undefined;
  const [id, labels, size] = r.stdout.trim().split('|');
  return {
    id: JSON.parse(id ?? '""') as string,
    labels: (JSON.parse(labels ?? 'null') as Record<string, string> | null) ?? {},
    sizeBytes: Number(size ?? 0),
  };
}
