// The nginx.conf renderer: both forms carry the route's settings as the module's directives.
import { describe, expect, it } from 'vitest';
import { routeWithDefaults } from '../../core/route-model.ts';
import { INTERNAL_PATH, renderNginxEppConfig } from './nginx-epp-config.ts';

const base = { workDir: '/tmp/w', listenHost: '127.0.0.1', listenPort: 8080, modulePath: '/m/epp.so', runAsRoot: false };

describe('renderNginxEppConfig', () => {
  it('NGF form: $epp_* variables, epp_get_endpoint, the fail-open map to the pool', () => {
    const conf = renderNginxEppConfig(
      routeWithDefaults({ eppAddress: '127.0.0.1:9002', failureMode: 'open', timeoutMs: 300, bodyMode: 'streamed', fallbackEndpoints: ['127.0.0.5:80', '[::1]:81'] }),
      base,
    );
    expect(conf).toContain('load_module /m/epp.so;');
    expect(conf).toContain('set $epp_host "127.0.0.1";');
    expect(conf).toContain('set $epp_port "9002";');
    expect(conf).toContain(`set $epp_internal_path ${INTERNAL_PATH};`);
    expect(conf).toContain('epp_get_endpoint on;');
    expect(conf).toContain('epp_timeout_ms 300;');
    expect(conf).toContain('epp_failure_mode_allow on;');
    expect(conf).toContain('epp_body_mode streamed;');
    expect(conf).toMatch(/""\s+eppkit_pool;/);
    expect(conf).toContain('server 127.0.0.5:80;');
    expect(conf).toContain('server [::1]:81;');
    expect(conf).toContain('proxy_pass http://$inference_backend$request_uri;');
    expect(conf).toContain('$epp_status');
    expect(conf).not.toContain('user root;');
  });

  it('direct form: epp_endpoint and proxy_pass in one location; TLS, served report, allowlist, subset hint', () => {
    const conf = renderNginxEppConfig(
      routeWithDefaults({
        eppAddress: '[::1]:9002',
        eppTls: { caFile: '/ca.pem', serverName: 'epp.local' },
        responseProcessing: true,
        allow: ['10.0.0.0/8', '127.0.0.2:80'],
        subsetHint: ['127.0.0.2:80'],
        maxBodyBytes: 1024 * 1024,
      }),
      { ...base, form: 'direct', runAsRoot: true },
    );
    expect(conf).toContain('epp_endpoint [::1]:9002;');
    expect(conf).toContain('proxy_pass http://$inference_workload_endpoint;');
    expect(conf).not.toContain('epp_get_endpoint');
    expect(conf).toContain('epp_failure_mode_allow off;');
    expect(conf).toContain('epp_tls on;');
    expect(conf).toContain('epp_tls_verify on;');
    expect(conf).toContain('epp_tls_ca "/ca.pem";');
    expect(conf).toContain('epp_tls_server_name "epp.local";');
    expect(conf).toContain('epp_report_served on;');
    expect(conf).toContain('epp_allow "10.0.0.0/8" "127.0.0.2:80";');
    expect(conf).toContain('epp_subset_hint "127.0.0.2:80";');
    expect(conf).toContain('client_max_body_size 1024k;');
    expect(conf).toContain('epp_max_body_size 1024k;');
    expect(conf).toContain('user root;');
  });

  it('balancer form: both forms proxy to the epp_balancer upstream; its servers are the pool, or the fail-close socket', () => {
    const route = routeWithDefaults({ eppAddress: '127.0.0.1:9002', failureMode: 'open', fallbackEndpoints: ['127.0.0.5:80', '[::1]:81'] });
    for (const form of ['ngf', 'direct'] as const) {
      const conf = renderNginxEppConfig(route, { ...base, form, balancer: true });
      // `keepalive` after `epp_balancer`: nginx's keepalive module wraps the peer selection it finds.
      expect(conf).toMatch(/upstream eppkit_pick \{\s+epp_balancer;\s+server 127\.0\.0\.5:80;\s+server \[::1\]:81;\s+keepalive 256;\s+\}/);
      expect(conf).toContain('proxy_next_upstream error timeout;');
      expect(conf).toContain(form === 'ngf' ? 'proxy_pass http://eppkit_pick$request_uri;' : 'proxy_pass http://eppkit_pick;');
      expect(conf).not.toContain('$inference_backend');
      expect(conf).not.toContain('epp_default_upstream');
    }
    const closed = renderNginxEppConfig(routeWithDefaults({ eppAddress: '127.0.0.1:9002' }), { ...base, balancer: true });
    expect(closed).toMatch(/epp_balancer;\s+server unix:\/tmp\/w\/fail-close\.sock;/);
  });
});
