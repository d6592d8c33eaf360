// Starting Debian's nginx for a data plane (the native module or the NJS baseline): render the
// config for a free port, start `nginx -p <workDir> -c <conf> -e <error.log> -g 'daemon off; ...'`
// locally or in a container, and wait until it has written its pid file and accepts connections
// on every listener.
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../../core/net.ts';
import { CONTAINER_PATHS } from '../containers/image-roles.ts';
import { launch, type Launched } from '../launch/launch.ts';
import { Wait } from '../launch/wait-strategy.ts';
import type { DriverContext } from './data-plane-driver.ts';
import { NGINX_CRASH_PATTERNS, PlaneHealthMonitor } from './plane-health.ts';

export interface StartNginxOptions {
  /** workDir must be absolute (it is mounted at the same path in a container). */
  workDir: string;
  /** The image for --runtime docker. */
  image: string;
  /** The local nginx binary. */
  nginxBin: string;
  /** nginx.conf for the given listen port (and the extra listeners' ports, multi-pool). */
  renderConfig: (port: number, extraPorts: number[]) => string;
  /** multi-pool: more listeners, each on its own free port. Default 0. */
  extraPorts?: number;
  /** `master_process on` (workers, as in production). Default false. */
  masterProcess?: boolean;
  /** Files outside workDir the config names (mounted in a container). */
  binds?: string[];
  /** Default 15 s. */
  startTimeoutMs?: number;
}

/** The last `maxChars` of a file, '' when it does not exist. */
export function readTail(file: string, maxChars: number): string {
  if (!existsSync(file)) return '';
  const t = readFileSync(file, 'utf8');
  return t.length > maxChars ? `…${t.slice(-maxChars)}` : t;
}

export async function startNginx(ctx: DriverContext, o: StartNginxOptions): Promise<{ proc: Launched; port: number; extraPorts: number[]; monitor: PlaneHealthMonitor }> {
  const { workDir } = o;
  const confFile = join(workDir, 'nginx.conf');
  const errorLog = join(workDir, 'error.log');
  let lastError: unknown;
  // nginx cannot listen on port 0 and tell us: a freshly freed port may be taken meanwhile.
  for (let attempt = 1; attempt <= 3; attempt++) {
    const port = await freePort(ctx.host);
    const extraPorts: number[] = [];
    while (extraPorts.length < (o.extraPorts ?? 0)) {
      const p = await freePort(ctx.host);
      if (p !== port && !extraPorts.includes(p)) extraPorts.push(p);
    }
    writeFileSync(confFile, o.renderConfig(port, extraPorts));
    rmSync(join(workDir, 'nginx.pid'), { force: true });
    // Plane health scans error.log from here: an earlier attempt's bind() [emerg] is not this plane's.
    const errorLogFrom = existsSync(errorLog) ? statSync(errorLog).size : 0;
    const stdoutLog = join(workDir, 'nginx.log');
    const stdoutFrom = existsSync(stdoutLog) ? statSync(stdoutLog).size : 0;
    // -e: the error log before the config is read (the default is /var/log/nginx).
    const args = ['-p', `${workDir}/`, '-c', confFile, '-e', errorLog, '-g', `daemon off;${o.masterProcess ? ' master_process on;' : ''}`];
    try {
      const proc = await launch(ctx, {
        what: 'nginx',
        image: o.image,
        command: [CONTAINER_PATHS.nginx, ...args],
        localCommand: [o.nginxBin, ...args],
        logFile: stdoutLog,
        binds: o.binds ?? [],
        // nginx writes its pid file after binding; then every listener must accept.
        waitFor: Wait.forAll(Wait.forPidFile(join(workDir, 'nginx.pid')), ...[port, ...extraPorts].map((p) => Wait.forTcp(ctx.host, p))),
        startupTimeoutMs: o.startTimeoutMs ?? 15_000,
        failureContext: () => `error.log:\n${readTail(errorLog, 2000)}`,
      });
      // The master is the handle; workers are its children (pids()), and a worker's crash is
      // only visible in error.log ("worker process N exited on signal 11"), the master respawns it.
      const monitor = new PlaneHealthMonitor('nginx')
        .withProcess('nginx master', proc)
        .withLogFile('nginx error.log', errorLog, NGINX_CRASH_PATTERNS, errorLogFrom)
        .withLogFile('nginx', stdoutLog, NGINX_CRASH_PATTERNS, stdoutFrom);
      return { proc, port, extraPorts, monitor };
    } catch (e) {
      lastError = e;
      // A freshly freed port taken meanwhile: try other ports.
      if (!/Address already in use/.test(`${readTail(errorLog, 4000)}\n${String(e)}`)) throw e;
    }
  }
  throw lastError;
}
