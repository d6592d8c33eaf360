import { describe, expect, it } from 'vitest';
import { routeWithDefaults, type RouteModel } from '../../core/route-model.ts';
import { renderNginxNjsConfig } from './nginx-njs-config.ts';

const OPTS = {
  workDir: '/tmp/wd/',
  listenHost: '127.0.0.1',
  listenPort: 18080,
  shimUrl: 'http://127.0.0.1:18081',
  njsModule: '/usr/lib/nginx/modules/ngx_http_js_module.so',
  runAsRoot: false,
};

function render(r: Partial<RouteModel>): string {
  return renderNginxNjsConfig(routeWithDefaults({ eppAddress: '127.0.0.1:9002', ...r }), OPTS);
}

describe('renderNginxNjsConfig', () => {
  it('FailOpen maps an empty pick to the pool upstream built from fallbackEndpoints', () => {
    const conf = render({ failureMode: 'open', fallbackEndpoints: ['127.0.0.2:8000', '[::1]:8001'] });
    expect(conf).toMatch(/""\s+eppkit_pool;/);
    expect(conf).toContain('server 127.0.0.2:8000;');
    expect(conf).toContain('server [::1]:8001;');
  });

  it('FailClose maps an empty pick to the 500 server on the work directory socket', () => {
    const conf = render({ failureMode: 'close', fallbackEndpoints: ['127.0.0.2:8000'] });
    expect(conf).toMatch(/""\s+unix:\/tmp\/wd\/fail-close\.sock:;/);
    expect(conf).toContain('listen unix:/tmp/wd/fail-close.sock;');
    expect(conf).toMatch(/return 500 /);
  });

  it('passes the EPP address, internal path and shim URL to epp.js as variables', () => {
    const conf = render({ eppAddress: '127.0.0.9:9123' });
    expect(conf).toContain('set $epp_host "127.0.0.9";');
    expect(conf).toContain('set $epp_port "9123";');
    expect(conf).toContain('set $epp_shim_url "http://127.0.0.1:18081";');
    expect(conf).toContain('js_content epp.pickEndpoint;');
    expect(conf).toContain('js_var $inference_workload_endpoint;');
  });

  it('keeps the whole body in one memory buffer up to maxBodyBytes', () => {
    const conf = render({ maxBodyBytes: 8 * 1024 * 1024 });
    expect(conf).toContain('client_max_body_size 8192k;');
    expect(conf).toContain('client_body_buffer_size 8192k;');
    expect(conf).toContain('client_body_in_single_buffer on;');
  });

  it('serves only the path prefix (404 elsewhere) and writes every file under the work directory', () => {
    const conf = render({ pathPrefix: '/v1/' });
    expect(conf).toContain('location /v1/ {');
    expect(conf).toMatch(/location \/ \{\s+return 404;/);
    expect(conf).not.toContain('user root;');
    for (const line of conf.split('\n').filter((l) => /^(\w+_temp_path|js_path|pid|error_log|access_log \/)/.test(l.trim()))) {
      expect(line).toContain('/tmp/wd');
    }
  });
});
