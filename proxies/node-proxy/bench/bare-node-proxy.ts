// The floor under node-proxy's CPU per request (docs/BENCHMARKS.md): a Node reverse proxy with
// nothing of node-proxy's — no EPP hop, no logs, no metrics — node:http's server and a keep-alive
// http.Agent to one fixed backend. Whatever node-proxy costs above this, at the same rate, is
// its own; what this costs is Node's and the machine's.
//   node proxies/node-proxy/bench/bare-node-proxy.ts --listen 127.0.0.1:18080 --backend 127.0.0.1:18081
import * as http from 'node:http';
import { parseArgs } from 'node:util';
import { parseListen } from '../node-proxy-config.ts';
import { listenOn } from '../node-proxy.ts';

const { values } = parseArgs({ options: { listen: { type: 'string', default: '127.0.0.1:0' }, backend: { type: 'string' } } });
const backend = parseListen(values.backend ?? '');
if (!backend) {
  process.stderr.write('usage: bare-node-proxy.ts --backend host:port [--listen host:port]\n');
  process.exit(2);
}
const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity, scheduling: 'lifo' });

const server = http.createServer((req, res) => {
  const up = http.request({ host: backend.host, port: backend.port, method: req.method, path: req.url, headers: req.headers, agent }, (ures) => {
    res.writeHead(ures.statusCode ?? 502, ures.headers);
    ures.pipe(res);
  });
  up.on('error', () => res.destroy());
  req.pipe(up);
});
const at = await listenOn(server, values.listen);
process.stdout.write(`listening on http://${at.host.includes(':') ? `[${at.host}]` : at.host}:${at.port}\n`);
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => server.close(() => process.exit(0)));
