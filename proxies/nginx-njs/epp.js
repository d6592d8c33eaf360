// eppkit's NGINX + NJS baseline: the endpoint pick the way NGINX Gateway Fabric does it
// (written for eppkit; behaviour per the facts file §4). NGINX cannot speak gRPC from NJS, so
// the handler asks an HTTP shim (`eppkit node-proxy --shim`), which runs the ext_proc exchange
// with the EPP named by X-EPP-Host / X-EPP-Port and answers 200 with the pick in
// X-Gateway-Destination-Endpoint. Whatever happens, the request then goes on through an
// internal redirect; an empty $inference_workload_endpoint is resolved by nginx.conf's map
// (FailOpen -> the pool's upstream, FailClose -> a server answering 500).
//
// Variables read: $epp_host, $epp_port, $epp_internal_path, $epp_shim_url.
// Variable set:   $inference_workload_endpoint (declared with js_var).

const ENDPOINT_HEADER = 'X-Gateway-Destination-Endpoint';

// Headers ngx.fetch writes itself or that describe only the client's connection.
const NOT_FORWARDED = {
  'content-length': true,
  'transfer-encoding': true,
  connection: true,
  'keep-alive': true,
  'proxy-connection': true,
  te: true,
  upgrade: true,
  expect: true,
};

function shimHeaders(r, eppHost, eppPort) {
  const out = {};
  for (const name in r.headersIn) {
    if (NOT_FORWARDED[name.toLowerCase()]) continue;
    out[name] = r.headersIn[name];
  }
  out['X-EPP-Host'] = eppHost;
  out['X-EPP-Port'] = eppPort;
  return out;
}

function redirectTarget(r, internalPath) {
  const args = r.variables.args;
  return args ? `${internalPath}?${args}` : internalPath;
}

async function pickEndpoint(r) {
  const v = r.variables;
  const eppHost = v.epp_host;
  const eppPort = v.epp_port;
  const internalPath = v.epp_internal_path;
  if (!internalPath) {
    // A broken config, not a runtime failure: nowhere to send the request.
    r.error('eppkit epp.js: $epp_internal_path is not set');
    r.return(500);
    return;
  }
  if (!eppHost || !eppPort) {
    r.error('eppkit epp.js: $epp_host or $epp_port is not set; no endpoint pick');
  } else {
    const init = { method: r.method, headers: shimHeaders(r, eppHost, eppPort) };
    // The whole body, read into one buffer (client_body_in_single_buffer; a body spilled
    // to a temp file has no requestText, and then the pick fails like an EPP failure).
    const body = r.requestText;
    if (body !== undefined && body.length > 0) init.body = body;
    else if (r.headersIn['Content-Length'] && r.headersIn['Content-Length'] !== '0') {
      r.warn('eppkit epp.js: request body not in memory (larger than client_body_buffer_size?); sending none');
    }
    try {
      // The client's path and query go along, so the EPP sees the request's real :path.
      const res = await ngx.fetch(`${v.epp_shim_url}${v.request_uri}`, init);
      const endpoint = res.headers.get(ENDPOINT_HEADER);
      if (res.status === 200 && endpoint) {
        v.inference_workload_endpoint = endpoint;
      } else {
        // Only the status: awaiting res.text() here crashes the NJS 0.7.9 worker (SIGSEGV).
        r.warn(`eppkit epp.js: shim answered ${res.status} without an endpoint`);
      }
    } catch (e) {
      r.error(`eppkit epp.js: shim call failed: ${e}`);
    }
  }
  r.internalRedirect(redirectTarget(r, internalPath));
}

export default { pickEndpoint };
