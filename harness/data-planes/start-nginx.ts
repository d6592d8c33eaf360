// Starting Debian's nginx for a data plane (the native module or the NJS baseline): render the
// config for a free port, start `nginx -p <workDir> -c <conf> -e <error.log> -g 'daemon off; ...'`
// locally or in a container, and wait until it has written its pid file and accepts connections.
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { EppkitError } from '../../core/errors.ts';
import { canConnect, freePort } from '../../core/net.ts';
import { CONTAINER_PATHS, startProcessOrContainer, type StartedProcessOrContainer } from '../containers/start-process-or-container.ts';
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

export async function startNginx(ctx: DriverContext, o: StartNginxOptions): Promise<{ proc: StartedProcessOrContainer; port: number; extraPorts: number[]; monitor: PlaneHealthMonitor }> {
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
    const proc = await startProcessOrContainer(ctx, {
      what: 'nginx',
      image: o.image,
      command: [CONTAINER_PATHS.nginx, ...args],
      localCommand: [o.nginxBin, ...args],
      logFile: stdoutLog,
      binds: o.binds ?? [],
    });
    try {
      await waitReady(proc, workDir, ctx.host, port, o.startTimeoutMs ?? 15_000);
      for (const p of extraPorts) if (!(await canConnect(ctx.host, p))) throw new EppkitError('EPPKIT_START_FAILED', { what: 'nginx', reason: `listener port ${p} does not accept connections` });
      // The master is the handle; workers are its children (pids()), and a worker's crash is
      // only visible in error.log ("worker process N exited on signal 11"), the master respawns it.
      const monitor = new PlaneHealthMonitor('nginx')
        .withProcess('nginx master', proc)
        .withLogFile('nginx error.log', errorLog, NGINX_CRASH_PATTERNS, errorLogFrom)
        .withLogFile('nginx', stdoutLog, NGINX_CRASH_PATTERNS, stdoutFrom);
      return { proc, port, extraPorts, monitor };
    } catch (e) {
      lastError = e;
      // SIGTERM, not SIGKILL: the master takes its workers down with it.
      await proc.stop(2000);
      if (!/Address already in use/.test(readTail(errorLog, 4000) + proc.logs())) throw e;
    }
  }
  throw lastError;
}

async function waitReady(proc: StartedProcessOrContainer, workDir: string, host: string, port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const pidFile = join(workDir, 'nginx.pid');
  const errorLog = join(workDir, 'error.log');
  while (Date.now() < deadline) {
    if (!proc.running) {
      throw new EppkitError('EPPKIT_START_FAILED', {
        what: 'nginx',
        reason: `exited before it was ready; output:\n${proc.tail(2000)}\nerror.log:\n${readTail(errorLog, 2000)}`,
      });
    }
    // nginx writes its pid file after binding; in a container the pid is of another namespace.
    const pidOk = existsSync(pidFile) && (proc.pid === undefined || readFileSync(pidFile, 'utf8').trim() === String(proc.pid));
    if (pidOk && (await canConnect(host, port))) return;
    await sleep(50);
  }
  throw new EppkitError('EPPKIT_START_FAILED', { what: 'nginx', reason: `not ready within ${timeoutMs} ms; error.log:\n${readTail(errorLog, 2000)}` });
}
