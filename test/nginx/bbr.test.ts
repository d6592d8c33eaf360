// Body-based routing in the native module with an nginx.conf written by hand, as a user
// would: BBR alone before a plain proxy_pass (no EPP), BBR inherited from the server level by
// both locations of the NGF form (runs once), a custom header name, epp_bbr_require_model, and
// a body in a temp file. The renderer's forms are covered by the bbr scenarios.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nginxBin } from '../../core/env.ts';
import { defaultNginxModulePath } from '../../harness/build/nginx-module-build.ts';
import type { StartedEchoBackend } from '../../harness/backends/echo-backend.ts';
import type { Launched } from '../../harness/launch/launch.ts';
import { NginxDriver } from '../../harness/data-planes/nginx-driver.ts';
import { startNginx } from '../../harness/data-planes/start-nginx.ts';
import { IMAGES_BY_ROLE } from '../../harness/containers/image-roles.ts';
import { chatBody } from '../../harness/runner/request-body.ts';
import { MockEpp, type StartedMockEpp } from '../../mock-epp/mock-epp.ts';
import { eventually } from '../support/eventually.ts';
import { gateFor, send, startBackends, workDir } from '../support/envoy-test-kit.ts';

const gate = await gateFor(new NginxDriver());
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe.skipIf(gate.skip)('nginx-epp body-based routing, hand-written config', () => {
  let a: StartedEchoBackend;
  let epp: StartedMockEpp;
  let nginx: { proc: Launched; port: number };
  let dir: string;
  let base: string;

  beforeAll(async () => {
    [a] = (await startBackends('a')) as [StartedEchoBackend];
    epp = await new MockEpp({ endpoints: [a.address] }).withHost('127.0.0.1').withPort(0).withAdminPort(null).start();
    dir = workDir('nginx-epp-bbr');
    const [eh, ep] = [epp.host, String(epp.port)];
    nginx = await startNginx(
      { workDir: dir, runtime: 'local', host: '127.0.0.1' },
      {
        workDir: dir,
        image: IMAGES_BY_ROLE.nginxEpp,
        nginxBin: nginxBin(),
        renderConfig: (port) => `
load_module ${defaultNginxModulePath()};
${process.getuid?.() === 0 ? 'user root;' : ''}
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
events { worker_connections 256; }
http {
    log_format bbr '$request_uri bbr=$epp_bbr_status model=$epp_model';
    access_log ${dir}/access.log bbr;
    client_body_temp_path ${dir}/client_body_temp;
    proxy_temp_path ${dir}/proxy_temp;
    client_body_buffer_size 1k;
    server {
        listen 127.0.0.1:${port};
        epp_bbr on;
        location /alone/ {
            proxy_pass http://${a.address};
        }
        location /custom/ {
            epp_bbr_header X-Model;
            proxy_pass http://${a.address};
        }
        location /strict/ {
            epp_bbr_require_model on;
            epp_bbr_max_body_size 4k;
            proxy_pass http://${a.address};
        }
        location /off/ {
            epp_bbr off;
            proxy_pass http://${a.address};
        }
        location /ngf/ {
            set $epp_host ${eh};
            set $epp_port ${ep};
            set $epp_internal_path /_inference;
            epp_get_endpoint on;
        }
        location /_inference {
            internal;
            proxy_pass http://$inference_workload_endpoint$request_uri;
        }
    }
}
`,
      },
    );
    base = `http://127.0.0.1:${nginx.port}`;
  });
  afterAll(async () => {
    await nginx?.proc.stop(3000);
    await epp?.stop();
    await a?.stop();
  });

  it('nginx and the built module are available (CI=true demands it)', () => {
    expect(gate.availability).toEqual({ ok: true });
  });

  it('BBR alone (no EPP): the model header reaches the backend, a client copy replaced, the body intact', async () => {
    const body = Buffer.from('{"messages":[{"role":"user","content":"\\"model\\":\\"no\\""}],"model":"llama-3"}');
    const r = await send(`${base}/alone/x`, { body, headers: { 'content-type': 'application/json', 'x-gateway-model-name': 'spoof' } });
    expect(r.status).toBe(200);
    expect(r.receivedHeaders?.['x-gateway-model-name']).toBe('llama-3');
    expect(r.bodySha256).toBe(sha(body));
  });

  it('BBR alone: a 256 KiB body in a temp file, model last', async () => {
    const body = chatBody(256 * 1024, 'qwen', true);
    const r = await send(`${base}/alone/big`, { body, timeoutMs: 20_000 });
    expect(r.status).toBe(200);
    expect(r.receivedHeaders?.['x-gateway-model-name']).toBe('qwen');
    expect(r.bodySha256).toBe(sha(body));
  });

  it('epp_bbr_header names the header; epp_bbr off turns it off', async () => {
    const r = await send(`${base}/custom/x`, { body: '{"model":"m1"}' });
    expect(r.receivedHeaders?.['x-model']).toBe('m1');
    expect(r.receivedHeaders?.['x-gateway-model-name']).toBeUndefined();
    const off = await send(`${base}/off/x`, { body: '{"model":"m1"}' });
    expect(off.status).toBe(200);
    expect(off.receivedHeaders?.['x-gateway-model-name']).toBeUndefined();
  });

  it('epp_bbr_require_model: 400 without a usable model, 413 beyond the scan limit, GET passes', async () => {
    expect((await send(`${base}/strict/x`, { body: '{"prompt":"x"}' })).status).toBe(400);
    expect((await send(`${base}/strict/x`, { body: 'not json' })).status).toBe(400);
    expect((await send(`${base}/strict/x`, { body: '{"model":7}' })).status).toBe(400);
    expect((await send(`${base}/strict/x`, { body: chatBody(16 * 1024, 'late', true) })).status).toBe(413);
    expect((await send(`${base}/strict/x`, { body: chatBody(16 * 1024, 'early', false) })).receivedHeaders?.['x-gateway-model-name']).toBe('early');
    expect((await send(`${base}/strict/x`)).status).toBe(200);
    // The connection stays usable after a refusal with an unread body.
    expect((await send(`${base}/strict/x`, { body: '{"model":"ok"}' })).status).toBe(200);
  });

  it('NGF form with epp_bbr inherited by both locations: the EPP and the backend get the header, BBR runs once', async () => {
    epp.clearJournal();
    const body = Buffer.from('{"model":"mistral","prompt":"x"}');
    const r = await send(`${base}/ngf/v1/completions`, { body });
    expect(r.status).toBe(200);
    expect(r.receivedHeaders?.['x-gateway-model-name']).toBe('mistral');
    expect(r.bodySha256).toBe(sha(body));
    const [e] = await epp.waitForJournal(1, 10_000);
    expect(e?.requestHeaders?.['x-gateway-model-name']).toBe('mistral');
    expect(e?.model).toBe('mistral');
    expect(e?.requestBody?.sha256).toBe(sha(body));
    // nginx writes the access log line after the response went out (log phase): wait for it.
    const line = /\/ngf\/v1\/completions bbr=ok model=mistral/;
    await eventually(() => line.test(readFileSync(join(dir, 'access.log'), 'utf8')), 'the access log line of the NGF request');
    // Not logged as a refusal or run twice: one info line per problem body, none for this one.
    const err = readFileSync(join(dir, 'error.log'), 'utf8');
    expect(err).not.toMatch(/\[(alert|crit|emerg)\]/);
  });
});
