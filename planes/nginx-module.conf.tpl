# NGINX + eppkit's EPP module, direct form, written by hand for docs/your-data-plane.md.
# eppkit renders this per scenario (variables from the tables in that guide) into {{dir}}.
# One route is one listener with one rule and one entry; a multi-pool scenario has several
# listeners ("gateways"), rules (path prefixes) and entries (a pool with its own EPP each).
load_module {{tools.nginxModule}};
# The tests run as root and keep everything under {{dir}}: workers as root can reach it.
user root;
worker_processes 1;
pid {{dir}}/nginx.pid;
error_log {{dir}}/error.log info;

events {
    worker_connections 1024;
}

http {
    log_format epp '$remote_addr "$request" $status epp=$epp_status endpoint="$inference_workload_endpoint" upstream="$upstream_addr"';
    access_log {{dir}}/access.log epp;
    client_body_temp_path {{dir}}/client_body_temp;
    proxy_temp_path {{dir}}/proxy_temp;
    fastcgi_temp_path {{dir}}/fastcgi_temp;
    uwsgi_temp_path {{dir}}/uwsgi_temp;
    scgi_temp_path {{dir}}/scgi_temp;

    # Each entry's pick (and its fallbacks, in order) through epp_balancer. Without a pick,
    # FailOpen goes to the entry's pool; FailClose (or no pool) to a server that answers 500.
{{#entries}}    upstream picked_{{index}} {
        epp_balancer;
{{#failOpen}}{{#pool}}        server {{.}};
{{/pool}}{{/failOpen}}{{^failOpen}}        server unix:{{runDir}}/fail-close.sock;
{{/failOpen}}{{#failOpen}}{{^pool}}        server unix:{{runDir}}/fail-close.sock;
{{/pool}}{{/failOpen}}        keepalive 64;   # after epp_balancer: reuse backend connections
    }
{{/entries}}
    # A rule split across pools by weight: a pool per request, then that pool's location.
{{#listeners}}{{#rules}}{{#split}}    split_clients "${request_id}" $split_{{index}} {
{{#pools}}        {{#last}}*{{/last}}{{^last}}{{weightPercent}}%{{/last}} /_pool_{{index}};
{{/pools}}    }
{{/split}}{{/rules}}{{/listeners}}
    server {
        listen unix:{{runDir}}/fail-close.sock;
        access_log off;
        return 500 "no endpoint picked\n";
    }
    # A server per listener, a location per rule (longest prefix first). The locations must cover
    # every path clients use ("/" for one route). After a split's rewrite the URI is /_pool_N,
    # so those locations send the client's own ($request_uri).
{{#listeners}}
    server {
        listen {{listen}};
        client_max_body_size {{maxBodyKiB}}k;
{{#rules}}{{#split}}
        location {{pathPrefix}} {
            rewrite ^ $split_{{index}} last;
        }
{{/split}}{{#pools}}
        # The location must cover every path clients use ("/" for one route).
        location {{#split}}= /_pool_{{index}}{{/split}}{{^split}}{{pathPrefix}}{{/split}} {
{{#split}}            internal;
{{/split}}            epp_endpoint {{epp}};
            epp_timeout_ms {{timeoutMs}};
            epp_failure_mode_allow {{#failOpen}}on{{/failOpen}}{{^failOpen}}off{{/failOpen}};
            epp_body_mode {{bodyMode}};
            epp_max_body_size {{maxBodyKiB}}k;
{{#allow.any}}            epp_allow{{#allow}} {{.}}{{/allow}};
{{/allow.any}}{{#subsetHint.any}}            epp_subset_hint "{{subsetHint}}";
{{/subsetHint.any}}{{#bbr}}            epp_bbr on;
            epp_bbr_header "{{bbr.header}}";
            epp_bbr_max_body_size {{bbr.maxBodyKiB}}k;
{{#bbr.requireModel}}            epp_bbr_require_model on;
{{/bbr.requireModel}}{{/bbr}}{{#responseProcessing}}            epp_report_served on;
{{/responseProcessing}}{{#tls}}            epp_tls on;
            epp_tls_verify {{#tls.insecureSkipVerify}}off{{/tls.insecureSkipVerify}}{{^tls.insecureSkipVerify}}on{{/tls.insecureSkipVerify}};
{{#tls.caFile}}            epp_tls_ca {{tls.caFile}};
{{/tls.caFile}}{{#tls.serverName}}            epp_tls_server_name {{tls.serverName}};
{{/tls.serverName}}{{/tls}}            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_next_upstream error timeout;
            proxy_pass http://picked_{{index}}{{#split}}$request_uri{{/split}};
        }
{{/pools}}{{/rules}}{{^hasRoot}}
        location / {
            return 404;
        }
{{/hasRoot}}    }
{{/listeners}}}
