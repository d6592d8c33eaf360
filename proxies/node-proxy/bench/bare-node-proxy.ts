// The floor under node-proxy's CPU per request (docs/BENCHMARKS.md): a Node reverse proxy with
// nothing of node-proxy's — no EPP hop, no logs, no metrics — node:http's server and a keep-alive
// http.Agent to one fixed backend. Whatever node-proxy costs above this, at the same rate, is
// its own; what this costs is Node's and the machine's.
//   node proxies/node-proxy/bench/bare-node-proxy.ts --listen 127.0.0.1:18080 --backend 127.0.0.1:18081
// `--upstream socket` measures how low that floor goes without http.Agent: a minimal keep-alive
// HTTP/1.1 client over net.Socket (one write per request; answers with a content-length only,
// as the echo backends send). A measuring tool, not a proxy: GET only (a request body is dropped),
// no chunked answers, no errors handled.
// `--upstream agent-buffered`: http.Agent, the answer's body gathered and sent with one `end`
// (no pipe), which tells the client's share of the difference from the response path's.
// `--upstream undici`: undici's Pool through its dispatch API, the client node-proxy uses
// (upstream-client.ts), the answer's body written to the response as it comes.
import * as http from 'node:http';
import * as net from 'node:net';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { parseListen } from '../node-proxy-config.ts';
import { listenOn } from '../node-proxy.ts';

const { values } = parseArgs({
  options: { listen: { type: 'string', default: '127.0.0.1:0' }, backend: { type: 'string' }, upstream: { type: 'string', default: 'agent' } },
});
const backend = parseListen(values.backend ?? '');
const UPSTREAMS = ['agent', 'agent-buffered', 'socket', 'undici'];
if (!backend || !UPSTREAMS.includes(values.upstream as string)) {
  process.stderr.write('usage: bare-node-proxy.ts --backend host:port [--listen host:port] [--upstream agent|agent-buffered|socket|undici]\n');
  process.exit(2);
}
const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity, scheduling: 'lifo' });

function viaAgent(req: http.IncomingMessage, res: http.ServerResponse): void {
  const up = http.request({ host: backend!.host, port: backend!.port, method: req.method, path: req.url, headers: req.headers, agent }, (ures) => {
    if (values.upstream === 'agent') {
      res.writeHead(ures.statusCode ?? 502, ures.headers);
      ures.pipe(res);
      return;
    }
    const parts: Buffer[] = [];
    ures.on('data', (c: Buffer) => parts.push(c));
    ures.on('end', () => {
      res.writeHead(ures.statusCode ?? 502, ures.headers);
      res.end(parts.length === 1 ? parts[0] : Buffer.concat(parts));
    });
  });
  up.on('error', () => res.destroy());
  req.pipe(up);
}

type Answer = (status: number, headers: string[], body: Buffer) => void;

/** One upstream connection: a request at a time, its answer read by content-length. */
class SocketConn {
  readonly sock: net.Socket;
  #buf: Buffer | undefined;
  #answer: Answer | undefined;

  constructor(onFree: (c: SocketConn) => void) {
    this.sock = net.connect(backend!.port, backend!.host);
    this.sock.setNoDelay(true);
    this.sock.on('error', () => this.#answer?.(502, [], Buffer.alloc(0)));
    this.sock.on('data', (d: Buffer) => {
      const b = (this.#buf = this.#buf ? Buffer.concat([this.#buf, d]) : d);
      const end = b.indexOf('\r\n\r\n');
      if (end < 0) return;
      const lines = b.toString('latin1', 0, end).split('\r\n');
      const headers: string[] = [];
      let length = 0;
      for (let i = 1; i < lines.length; i++) {
        const line = lines[i] as string;
        const colon = line.indexOf(':');
        const name = line.slice(0, colon);
        const value = line.slice(colon + 1).trim();
        if (name.toLowerCase() === 'content-length') length = Number(value);
        headers.push(name, value);
      }
      if (b.length < end + 4 + length) return;
      this.#buf = b.length > end + 4 + length ? b.subarray(end + 4 + length) : undefined;
      const answer = this.#answer as Answer;
      this.#answer = undefined;
      onFree(this);
      answer(Number((lines[0] as string).slice(9, 12)), headers, b.subarray(end + 4, end + 4 + length));
    });
  }

  send(head: string, answer: Answer): void {
    this.#answer = answer;
    this.sock.write(head, 'latin1');
  }
}

const idle: SocketConn[] = [];
const hostHeader = `host: ${backend.host}:${backend.port}\r\n`;

function viaSocket(req: http.IncomingMessage, res: http.ServerResponse): void {
  let head = `${req.method} ${req.url} HTTP/1.1\r\n${hostHeader}`;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    if (name !== 'host' && name !== 'connection') head += `${raw[i]}: ${raw[i + 1]}\r\n`;
  }
  req.resume();
  const conn = idle.pop() ?? new SocketConn((c) => idle.push(c));
  conn.send(`${head}\r\n`, (status, headers, body) => {
    res.writeHead(status, headers);
    res.end(body);
  });
}

const pool = new Pool(`http://${backend.host.includes(':') ? `[${backend.host}]` : backend.host}:${backend.port}`, { connections: null });

function viaUndici(req: http.IncomingMessage, res: http.ServerResponse): void {
  const raw = req.rawHeaders;
  const headers: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    if (name !== 'connection') headers.push(raw[i] as string, raw[i + 1] as string);
  }
  const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
  if (!hasBody) req.resume();
  pool.dispatch(
    { path: req.url ?? '/', method: req.method ?? 'GET', headers, body: hasBody ? req : null },
    {
      onRequestStart() {},
      onResponseStart(_c, status, h) {
        res.writeHead(status, h as http.OutgoingHttpHeaders);
      },
      onResponseData(c, chunk) {
        if (!res.write(chunk)) {
          c.pause();
          res.once('drain', () => c.resume());
        }
      },
      onResponseEnd() {
        res.end();
      },
      onResponseError(_c, e) {
        process.stderr.write(`upstream: ${e.message}\n`);
        res.destroy();
      },
    },
  );
}

const server = http.createServer(values.upstream === 'socket' ? viaSocket : values.upstream === 'undici' ? viaUndici : viaAgent);
const at = await listenOn(server, values.listen);
process.stdout.write(`listening on http://${at.host.includes(':') ? `[${at.host}]` : at.host}:${at.port}\n`);
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => server.close(() => process.exit(0)));
