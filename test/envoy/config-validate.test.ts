// Every combination of the route model that the envoy driver can render is accepted by the
// real Envoy binary (`envoy --mode validate`): no proto field or enum Envoy 1.40 rejects.
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { routeWithDefaults, type BodyMode, type FailureMode } from '../../core/route-model.ts';
import { EnvoyDriver } from '../../harness/data-planes/envoy-driver.ts';
import { locateEnvoy } from '../../proxies/envoy/envoy-binary.ts';
import { renderEnvoyYaml } from '../../proxies/envoy/envoy-config.ts';
import { gateFor, workDir } from '../support/envoy-test-kit.ts';

const run = promisify(execFile);
const gate = await gateFor(new EnvoyDriver());

describe.skipIf(gate.skip)('envoy --mode validate accepts every rendered config', () => {
  it('envoy is available (CI=true demands it)', () => {
    expect(gate.availability).toEqual({ ok: true });
  });

  it('all body modes × failure modes × response processing × TLS, with and without fallback endpoints', async () => {
    const bin = locateEnvoy().path!;
    const dir = workDir('envoy-validate');
    const configs: string[] = [];
    for (const bodyMode of ['none', 'buffered', 'streamed'] as BodyMode[]) {
      for (const failureMode of ['open', 'close'] as FailureMode[]) {
        const variants = [
          {},
          { responseProcessing: true, fallbackEndpoints: ['127.0.0.2:8000', '[::1]:8001'], subsetHint: ['127.0.0.2:8000', '[::1]:8001'] },
          { eppTls: { caFile: '/etc/ssl/certs/ca-certificates.crt', serverName: 'epp.local' }, pathPrefix: '/v1/' },
          { eppTls: { insecureSkipVerify: true }, allow: ['127.0.0.0/8', '[::1]:8000', '::2'] },
        ];
        for (const v of variants) {
          const file = join(dir, `envoy-${configs.length}.yaml`);
          const route = routeWithDefaults({ eppAddress: '127.0.0.1:9002', bodyMode, failureMode, ...v });
          writeFileSync(file, renderEnvoyYaml(route, { host: '127.0.0.1', port: 0, adminHost: '127.0.0.1', adminPort: 0, accessLogPath: join(dir, 'access.log') }));
          configs.push(file);
        }
      }
    }
    // Sequential: each validation is a full Envoy start-up without listeners (about 0.3 s).
    for (const file of configs) {
      const out = await run(bin, ['--mode', 'validate', '-c', file, '--use-dynamic-base-id', '-l', 'error'], { encoding: 'utf8' }).catch(
        (e: { stdout?: string; stderr?: string }) => ({ stdout: e.stdout ?? '', stderr: e.stderr ?? '' }),
      );
      expect(`${out.stdout}${out.stderr}`, file).toContain('OK');
    }
  }, 120_000);
});
