# Envoy in front of an Endpoint Picker, written by hand for docs/your-data-plane.md (not
# eppkit's renderer). eppkit renders it per scenario into {{dir}}/envoy.yaml.
#  - ext_proc calls the EPP; its x-gateway-destination-endpoint mutation is applied and the
#    route cache cleared, so the "picked" route sends the request to that ip:port through an
#    ORIGINAL_DST cluster reading the header;
#  - no header (the EPP was skipped with failure_mode_allow): FailOpen goes to the pool,
#    FailClose answers 500;
#  - a client's own x-gateway-destination-endpoint is removed before ext_proc (else a skipped
#    EPP would let the client pick), and a list is cut to its first entry (ORIGINAL_DST takes one).
static_resources:
  listeners:
{{#multi}}    # Several routes: a front listener per gateway routes by path prefix, split by weight,
    # to each entry's own listener below (on a loopback port of its own), which has
    # that pool's EPP, timeout and failure mode. One tier cannot: ext_proc runs before the
    # weighted split picks a pool, and a per-route override cannot set the message timeout.
{{#listeners}}    - name: front_{{index}}
      address:
        socket_address: { address: {{listen.host}}, port_value: {{listen.port}} }
      per_connection_buffer_limit_bytes: {{maxBodyBytes}}
      filter_chains:
        - filters:
            - name: envoy.filters.network.http_connection_manager
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                stat_prefix: front_{{index}}
                generate_request_id: false
                stream_idle_timeout: 15s
                route_config:
                  virtual_hosts:
                    - name: all
                      domains: ["*"]
                      routes:
{{#rules}}                        - match: { {{#root}}prefix: "/"{{/root}}{{^root}}path_separated_prefix: "{{pathPrefix}}"{{/root}} }
                          route:
                            timeout: 0s
                            weighted_clusters:
                              clusters:
{{#pools}}                                - { name: entry_{{index}}, weight: {{weightPercent}} }
{{/pools}}{{/rules}}{{^hasRoot}}                        - match: { prefix: "/" }
                          direct_response: { status: 404 }
{{/hasRoot}}                http_filters:
                  - name: envoy.filters.http.router
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
                      suppress_envoy_headers: true
{{/listeners}}{{/multi}}{{#entries}}    - name: main_{{index}}
      address:
        socket_address: { address: {{bind.host}}, port_value: {{bind.port}} }
      per_connection_buffer_limit_bytes: {{maxBodyBytes}}
      filter_chains:
        - filters:
            - name: envoy.filters.network.http_connection_manager
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                stat_prefix: main_{{index}}
                # FULL_DUPLEX_STREAMED applies no message_timeout: this ends a request whose EPP hangs.
                stream_idle_timeout: 15s
                access_log:
                  - name: envoy.access_loggers.file
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
                      path: {{dir}}/access.log
                route_config:
                  virtual_hosts:
                    - name: all
                      domains: ["*"]
                      routes:
                        - name: picked
                          match:
                            prefix: "{{pathPrefix}}"
                            headers: [{ name: x-gateway-destination-endpoint, present_match: true }]
                          route: { cluster: picked_{{index}}, timeout: 0s }
{{#failOpen}}{{#pool.any}}                        - name: pool
                          match: { prefix: "{{pathPrefix}}" }
                          route: { cluster: pool_{{index}}, timeout: 0s }
{{/pool.any}}{{/failOpen}}                        - name: no_endpoint
                          match: { prefix: "{{pathPrefix}}" }
                          direct_response: { status: 500, body: { inline_string: "no endpoint picked\n" } }
                http_filters:
                  - name: strip_client_pick
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua
                      default_source_code:
                        inline_string: |
                          function envoy_on_request(handle)
                            if handle:headers():get("x-gateway-destination-endpoint") ~= nil then
                              handle:headers():remove("x-gateway-destination-endpoint")
                              handle:clearRouteCache()
                            end
{{#subsetHint.any}}                            handle:streamInfo():dynamicMetadata():set("envoy.lb.subset_hint", "x-gateway-destination-endpoint-subset", { {{#subsetHint}}"{{.}}", {{/subsetHint}} })
{{/subsetHint.any}}                          end
{{#bodyBuffered}}                  # Buffered: the whole body first, so the EPP gets it as one message (413 beyond the limit).
                  - name: envoy.filters.http.buffer
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer
                      max_request_bytes: {{maxBodyBytes}}
{{/bodyBuffered}}{{#bbr}}                  # Body-based routing: a BBR ext_proc server puts the body's model into a header
                  # before the EPP is asked (its failures never decide: failure_mode_allow).
                  - name: bbr
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor
                      grpc_service:
                        envoy_grpc: { cluster_name: bbr_{{index}} }
                        timeout: 300s
                      failure_mode_allow: true
                      message_timeout: {{timeoutSeconds}}s
                      processing_mode:
                        request_header_mode: SEND
                        response_header_mode: SKIP
                        request_body_mode: FULL_DUPLEX_STREAMED
                        response_body_mode: NONE
                        request_trailer_mode: SEND
                        response_trailer_mode: SKIP
{{/bbr}}                  - name: envoy.filters.http.ext_proc
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor
                      grpc_service:
                        envoy_grpc: { cluster_name: epp_{{index}} }
                        timeout: 300s
                      failure_mode_allow: {{failOpen}}
                      message_timeout: {{timeoutSeconds}}s
                      # The real EPPs answer the headers only after the body has ended and answer each
                      # body message with an empty BodyResponse: BUFFERED would wait for the headers
                      # answer (a deadlock until message_timeout) and FULL_DUPLEX_STREAMED rejects the
                      # empty body answers. So the body is STREAMED, sent without waiting.
                      processing_mode:
                        request_header_mode: SEND
                        response_header_mode: {{#responseProcessing}}SEND{{/responseProcessing}}{{^responseProcessing}}SKIP{{/responseProcessing}}
                        request_body_mode: {{#bodyNone}}NONE{{/bodyNone}}{{^bodyNone}}STREAMED{{/bodyNone}}
                        response_body_mode: NONE
                        request_trailer_mode: SKIP
                        response_trailer_mode: SKIP
{{^bodyNone}}                      send_body_without_waiting_for_header_response: true
{{/bodyNone}}                      route_cache_action: CLEAR
                      metadata_options:
                        receiving_namespaces: { untyped: [envoy.lb] }
                        forwarding_namespaces: { untyped: [envoy.lb.subset_hint, envoy.lb] }
                  - name: first_endpoint
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua
                      default_source_code:
                        inline_string: |
                          -- Exact ip:port entries only in this example (eppkit's renderer also takes CIDRs).
                          local allow = { {{#allow}}["{{.}}"] = true, {{/allow}} }
                          local check = {{allow.any}}
                          function envoy_on_request(handle)
                            local v = handle:headers():get("x-gateway-destination-endpoint")
                            if v == nil then return end
                            local first = string.match(v, "^%s*([^,%s]+)")
                            if first == nil then return end
                            if check and not allow[string.lower(first)] then
                              handle:respond({ [":status"] = "500" }, "endpoint not allowed: " .. first .. "\n")
                              return
                            end
                            if first ~= v then handle:headers():replace("x-gateway-destination-endpoint", first) end
                            handle:streamInfo():dynamicMetadata():set("my", "picked", first)
                          end
                          -- The served endpoint for the response-headers phase (envoy.lb, forwarded above).
                          function envoy_on_response(handle)
                            if handle:headers():get("x-envoy-upstream-service-time") == nil then return end
                            local md = handle:streamInfo():dynamicMetadata():get("my")
                            if md ~= nil and md["picked"] ~= nil then
                              handle:streamInfo():dynamicMetadata():set("envoy.lb", "x-gateway-destination-endpoint-served", md["picked"])
                            end
                          end
                  - name: envoy.filters.http.router
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
{{/entries}}  clusters:
{{#multi}}{{#entries}}    - name: entry_{{index}}
      type: STATIC
      connect_timeout: 1s
      per_connection_buffer_limit_bytes: {{maxBodyBytes}}
      load_assignment:
        cluster_name: entry_{{index}}
        endpoints:
          - lb_endpoints:
              - endpoint: { address: { socket_address: { address: {{bind.host}}, port_value: {{bind.port}} } } }
{{/entries}}{{/multi}}{{#entries}}    - name: epp_{{index}}
      type: STATIC
      connect_timeout: 1s
      typed_extension_protocol_options:
        envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
          "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
          explicit_http_config: { http2_protocol_options: {} }
      load_assignment:
        cluster_name: epp_{{index}}
        endpoints:
          - lb_endpoints:
              - endpoint: { address: { socket_address: { address: {{epp.host}}, port_value: {{epp.port}} } } }
{{#tls}}      transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
          sni: "{{#tls.serverName}}{{tls.serverName}}{{/tls.serverName}}{{^tls.serverName}}{{epp.host}}{{/tls.serverName}}"
          common_tls_context:
            alpn_protocols: [h2]
{{#tls.caFile}}{{^tls.insecureSkipVerify}}            validation_context: { trusted_ca: { filename: "{{tls.caFile}}" } }
{{/tls.insecureSkipVerify}}{{/tls.caFile}}{{/tls}}{{#bbr}}    - name: bbr_{{index}}
      type: STATIC
      connect_timeout: 1s
      typed_extension_protocol_options:
        envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
          "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
          explicit_http_config: { http2_protocol_options: {} }
      load_assignment:
        cluster_name: bbr_{{index}}
        endpoints:
          - lb_endpoints:
              - endpoint: { address: { socket_address: { address: {{bbr.extProc.host}}, port_value: {{bbr.extProc.port}} } } }
{{/bbr}}    - name: picked_{{index}}
      type: ORIGINAL_DST
      lb_policy: CLUSTER_PROVIDED
      connect_timeout: 2s
      cleanup_interval: 5s
      original_dst_lb_config: { use_http_header: true, http_header_name: x-gateway-destination-endpoint }
      per_connection_buffer_limit_bytes: {{maxBodyBytes}}
{{#failOpen}}{{#pool.any}}    - name: pool_{{index}}
      type: STATIC
      lb_policy: ROUND_ROBIN
      connect_timeout: 2s
      per_connection_buffer_limit_bytes: {{maxBodyBytes}}
      load_assignment:
        cluster_name: pool_{{index}}
        endpoints:
          - lb_endpoints:
{{#pool}}              - endpoint: { address: { socket_address: { address: "{{.host}}", port_value: {{.port}} } } }
{{/pool}}{{/pool.any}}{{/failOpen}}
{{/entries}}