import { describe, expect, it } from 'vitest';
import { routeWithDefaults, type RouteModel } from '../../core/route-model.ts';
import { renderNginxEppMultiConfig } from './nginx-epp-multi-config.ts';

const entry = (o: Partial<RouteModel> & { eppAddress: string }): RouteModel => routeWithDefaults(o);
const a = entry({ eppAddress: '127.0.0.1:1001', pathPrefix: '/w', weight: 70, failureMode: 'open', fallbackEndpoints: ['127.0.0.2:80'] });
const b = entry({ eppAddress: '127.0.0.1:1002', pathPrefix: '/w', weight: 30 });
const c = entry({ eppAddress: '127.0.0.1:1003', pathPrefix: '/other', listener: 1, timeoutMs: 900 });
const plane: RouteModel = { ...a, routes: [a, b, c] };
const opts = { workDir: '/tmp/wd', listenHost: '127.0.0.1', listenPort: 8001, listenPorts: [8001, 8002], modulePath: '/m.so', runAsRoot: false };

describe('nginx-epp multi-pool config', () => {
  it('NGF form: a split by weight to per-pool internal locations, one server per listener', () => {
    const conf = renderNginxEppMultiConfig(plane, { ...opts, form: 'ngf', balancer: true });
    expect(conf).toMatch(/split_clients "\$\{request_id\}" \$eppkit_split_0 \{\n\s+70% \/_eppkit_pool_0;\n\s+\* \/_eppkit_pool_1;/);
    expect(conf).toContain('location /w {\n            rewrite ^ $eppkit_split_0 last;');
    expect(conf).toContain('set $epp_port "1001";');
    expect(conf).toContain('set $epp_port "1002";');
    expect(conf).toContain('set $epp_internal_path /_eppkit_inference_1;');
    // FailOpen pool 0 falls back to its own servers; pool 1 (FailClose) to the 500 socket.
    expect(conf).toMatch(/upstream eppkit_pick_0 \{\n\s+epp_balancer;\n\s+server 127\.0\.0\.2:80;/);
    expect(conf).toMatch(/upstream eppkit_pick_1 \{\n\s+epp_balancer;\n\s+server unix:/);
    expect(conf).toMatch(/upstream eppkit_pick_1 \{\n\s+epp_balancer;\n\s+server unix:[^\n]+\n\s+keepalive 256;\n\s+\}/);
    expect(conf).toContain('proxy_pass http://eppkit_pick_1$request_uri;');
    expect(conf.match(/listen 127\.0\.0\.1:800\d;/g)).toEqual(['listen 127.0.0.1:8001;', 'listen 127.0.0.1:8002;']);
    // The second listener serves only its route (and 404 elsewhere), with its own timeout.
    const second = conf.slice(conf.indexOf('listen 127.0.0.1:8002;'));
    expect(second).toContain('location /other {');
    expect(second).toContain('epp_timeout_ms 900;');
    expect(second).not.toContain('location /w');
    expect(second).toContain('return 404;');
  });

  it('direct form: each pool location proxies with the client URI after the rewrite', () => {
    const conf = renderNginxEppMultiConfig(plane, { ...opts, form: 'direct', balancer: false });
    expect(conf).toContain('location = /_eppkit_pool_0 {\n            internal;\n            epp_endpoint 127.0.0.1:1001;\n            epp_default_upstream eppkit_pool_0;');
    expect(conf).toContain('proxy_pass http://$inference_workload_endpoint$request_uri;');
    // A rule of one pool keeps nginx's own URI handling, as the single-route form.
    expect(conf).toContain('epp_endpoint 127.0.0.1:1003;');
    expect(conf).toMatch(/location \/other \{[^}]*proxy_pass http:\/\/\$inference_workload_endpoint;/);
    expect(conf).not.toContain('$epp_internal_path');
  });
});
