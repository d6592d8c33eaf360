import { describe, expect, it } from 'vitest';
import { routeWithDefaults, type RouteModel } from '../../core/route-model.ts';
import { renderNginxNjsMultiConfig } from './nginx-njs-multi-config.ts';

const a = routeWithDefaults({ eppAddress: '127.0.0.1:1001', pathPrefix: '/w', weight: 2 });
const b = routeWithDefaults({ eppAddress: '127.0.0.1:1002', pathPrefix: '/w', weight: 1, failureMode: 'open', fallbackEndpoints: ['127.0.0.2:80'] });
const c = routeWithDefaults({ eppAddress: '127.0.0.1:1003', pathPrefix: '/other', listener: 1 });
const plane: RouteModel = { ...a, routes: [a, b, c] };

describe('nginx-njs multi-pool config', () => {
  const conf = renderNginxNjsMultiConfig(plane, { workDir: '/tmp/wd', listenHost: '127.0.0.1', listenPort: 8001, listenPorts: [8001, 8002], shimUrl: 'http://127.0.0.1:5', njsModule: '/n.so', runAsRoot: false });

  it('splits a rule by weight (67/33) to per-pool locations that each ask their own EPP through the shim', () => {
    expect(conf).toMatch(/split_clients "\$\{request_id\}" \$eppkit_split_0 \{\n\s+67% \/_eppkit_pool_0;\n\s+\* \/_eppkit_pool_1;/);
    expect(conf).toContain('location = /_eppkit_pool_1 {\n            internal;\n            set $epp_host "127.0.0.1";\n            set $epp_port "1002";');
    expect(conf).toContain('set $epp_internal_path /_eppkit_inference_1;');
  });

  it("maps an empty pick per pool: FailOpen to that pool's upstream, FailClose to the 500 server", () => {
    expect(conf).toMatch(/map \$inference_workload_endpoint \$inference_backend_1 \{\n\s+""\s+eppkit_pool_1;/);
    expect(conf).toMatch(/map \$inference_workload_endpoint \$inference_backend_0 \{\n\s+""\s+unix:/);
    expect(conf).toContain('proxy_pass http://$inference_backend_1$request_uri;');
  });

  it('one server per listener, each with only its rules', () => {
    const second = conf.slice(conf.indexOf('listen 127.0.0.1:8002;'));
    expect(conf).toContain('listen 127.0.0.1:8001;');
    expect(second).toContain('set $epp_port "1003";');
    expect(second).not.toContain('$eppkit_split_0');
  });
});
