// The facts a benchmark number is meaningless without: CPU, cores, memory, OS, Node, load at
// start, and each data plane's version. Best effort: a fact that cannot be read says so.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, release, totalmem, type as osType } from 'node:os';
import { locateEnvoy } from '../../proxies/envoy/envoy-binary.ts';
import type { DataPlaneDriver } from '../data-planes/data-plane-driver.ts';
import { nginxBin } from '../../core/env.ts';

export interface MachineFacts {
  cpuModel: string;
  cores: number;
  memGiB: number;
  os: string;
  node: string;
  eppkit: string;
  /** 1-minute load average when the bench started: a loaded machine gives slower numbers. */
  loadAvg1: number;
  /** The same when it ended (set by the runner): a busy neighbour shows up here. */
  loadAvg1End?: number;
}

export function currentLoadAvg(): number {
  return Math.round((loadavg()[0] ?? 0) * 100) / 100;
}

export function machineFacts(): MachineFacts {
  let eppkit = 'unknown';
  try {
    eppkit = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    // keep 'unknown'
  }
  let os = `${osType()} ${release()}`;
  try {
    const pretty = /^PRETTY_NAME="?([^"\n]+)"?/m.exec(readFileSync('/etc/os-release', 'utf8'));
    if (pretty?.[1]) os = `${pretty[1]}, ${os}`;
  } catch {
    // not Linux, or no os-release
  }
  return {
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    cores: availableParallelism(),
    memGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    os,
    node: process.version,
    eppkit,
    loadAvg1: currentLoadAvg(),
  };
}

function firstLine(cmd: string, args: string[]): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 5000 }, (err, stdout, stderr) => {
      if (err && !stdout && !stderr) return resolve(undefined);
      const line = `${stdout}\n${stderr}`.split('\n').map((l) => l.trim()).find(Boolean);
      resolve(line);
    });
  });
}

/**
 * The version of a data plane: the driver's own `version()` when it has one (optional, duck
 * typed), else a probe of the binary the stock drivers use.
 */
export async function dataPlaneVersion(driver: DataPlaneDriver): Promise<string> {
  const own = (driver as { version?: () => Promise<string> | string }).version;
  if (typeof own === 'function') {
    try {
      return String(await own.call(driver));
    } catch {
      // fall through to the probes
    }
  }
  const facts = machineFacts();
  switch (driver.name) {
    case 'node-proxy':
      return `eppkit ${facts.eppkit} on Node ${process.version}`;
    case 'envoy': {
      const bin = locateEnvoy().path;
      if (!bin) return 'unknown (envoy not found)';
      const line = await firstLine(bin, ['--version']);
      const v = line && /version: \S+?\/(\d+\.\d+\.\d+)/.exec(line);
      return v?.[1] ? `Envoy ${v[1]}` : (line ?? 'unknown');
    }
    default: {
      if (!driver.name.startsWith('nginx')) return 'unknown';
      const line = await firstLine(nginxBin(), ['-v']);
      const v = line && /nginx\/(\S+)/.exec(line);
      const nginx = v?.[1] ? `nginx ${v[1]}` : 'nginx (version unknown)';
      if (driver.name === 'nginx-njs') {
        const njs = await firstLine('dpkg-query', ['-W', '-f', '${Version}', 'libnginx-mod-http-js']);
        return njs && /^\d/.test(njs) ? `${nginx} + njs ${njs.replace(/-.*/, '')}` : `${nginx} + njs`;
      }
      return `${nginx} + eppkit module`;
    }
  }
}
