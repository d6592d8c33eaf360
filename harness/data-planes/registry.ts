// Every data plane `eppkit run` knows, by name. A driver adds itself with one import and one
// entry in DRIVERS (order = the order of `eppkit list` and of `--data-plane all`).
import { didYouMean } from '../../core/did-you-mean.ts';
import { EppkitError } from '../../core/errors.ts';
import type { DataPlaneDriver } from './data-plane-driver.ts';
import { envoyDriver } from './envoy-driver.ts';
import { externalDriver } from './external-driver.ts';
import { nginxDirectDriver, nginxDriver } from './nginx-driver.ts';
import { nginxNjsDriver } from './nginx-njs-driver.ts';
import { nodeProxyDriver } from './node-proxy-driver.ts';

export const DRIVERS: readonly DataPlaneDriver[] = [
  nodeProxyDriver,
  envoyDriver,
  nginxDriver,
  nginxDirectDriver,
  nginxNjsDriver,
  externalDriver,
];

export function driverNames(): string[] {
  return DRIVERS.map((d) => d.name);
}

export function findDriver(name: string): DataPlaneDriver {
  const d = DRIVERS.find((x) => x.name === name);
  if (!d) {
    const guess = didYouMean(name, driverNames());
    throw new EppkitError('EPPKIT_USAGE', { reason: `unknown data plane "${name}"${guess ? ` (did you mean "${guess}"?)` : ''}; known: ${driverNames().join(', ')}` });
  }
  return d;
}
