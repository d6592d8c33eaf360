// A small HTTP/1.1 backend for node-proxy's tests and benchmark: it tells what it received
// (raw headers, body length and sha256) and can misbehave on request.
//   GET /anything          -> 200 JSON { port, method, url, rawHeaders, bodyLength, bodySha256 }
//   /__echo-body...        -> 200 with the request body as the response body (byte-exact)
//   /__reset...            -> destroys the connection without answering
//   /__reset-mid...        -> sends the head and part of the body, then destroys the connection
//   /__big?bytes=N         -> N bytes of a deterministic pattern
//   /__slow?ms=N           -> answers after N ms (counts requests that were cut off meanwhile)
// Response headers always include x-echo-port and x-echo-body-sha256.
import { createHash } from 'node:crypto';
import * as http from 'node:http';

export interface EchoRequest {
  port: number;
  method: string;
  url: string;
  rawHeaders: string[];
  bodyLength: number;
  bodySha256: string;
}

export interface StartedEchoBackend extends AsyncDisposable {
  readonly port: number;
  readonly address: string;
  readonly url: string;
  /** Requests fully received, in order. */
  readonly received: EchoRequest[];
  /** /__slow requests whose connection closed before the answer. */
  cutOff(): number;
  /** Connections open now. */
  openConnections(): number;
  stop(): Promise<void>;
}

export function pattern(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + (i >> 8)) & 0xff;
  return b;
}

export async function startEchoBackend(host = '127.0.0.1', opts: { record?: boolean } = {}): Promise<StartedEchoBackend> {
  const record = opts.record ?? true;
  const received: EchoRequest[] = [];
  const cutOff = { n: 0 };
  const sockets = new Set<import('node:net').Socket>();
  let port = 0;
  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    if (url.startsWith('/__reset') && !url.startsWith('/__reset-mid')) {
      req.socket.destroy();
      return;
    }
    const hash = createHash('sha256');
    const chunks: Buffer[] = [];
    let len = 0;
    const keep = url.startsWith('/__echo-body');
    req.on('data', (c: Buffer) => {
      hash.update(c);
      len += c.length;
      if (keep) chunks.push(c);
    });
    req.on('end', () => {
      const info: EchoRequest = { port, method: req.method ?? '', url, rawHeaders: req.rawHeaders, bodyLength: len, bodySha256: hash.digest('hex') };
      if (record) received.push(info);
      const common = { 'x-echo-port': String(port), 'x-echo-body-sha256': info.bodySha256 };
      if (url.startsWith('/__reset-mid')) {
        res.writeHead(200, { ...common, 'content-length': '1000' });
        res.write(Buffer.alloc(100, 1));
        setTimeout(() => req.socket.destroy(), 20);
        return;
      }
      if (keep) {
        const body = Buffer.concat(chunks);
        res.writeHead(200, { ...common, 'content-type': 'application/octet-stream', 'content-length': String(body.length) });
        res.end(body);
        return;
      }
      if (url.startsWith('/__slow')) {
        const ms = Number(new URL(url, 'http://x').searchParams.get('ms') ?? '1000');
        const t = setTimeout(() => {
          res.writeHead(200, { ...common, 'content-length': '4' });
          res.end('slow');
        }, ms);
        res.on('close', () => {
          if (!res.writableFinished) {
            clearTimeout(t);
            cutOff.n++;
          }
        });
        return;
      }
      if (url.startsWith('/__big')) {
        const n = Number(new URL(url, 'http://x').searchParams.get('bytes') ?? '0');
        res.writeHead(200, { ...common, 'content-type': 'application/octet-stream' });
        res.end(pattern(n));
        return;
      }
      const body = JSON.stringify(info);
      res.writeHead(200, { ...common, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) });
      res.end(body);
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  port = (server.address() as import('node:net').AddressInfo).port;
  const stop = (): Promise<void> =>
    new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  return {
    port,
    address,
    url: `http://${address}`,
    received,
    openConnections: () => sockets.size,
    cutOff: () => cutOff.n,
    stop,
    [Symbol.asyncDispose]: stop,
  };
}
