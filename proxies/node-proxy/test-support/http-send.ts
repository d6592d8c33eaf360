// A plain node:http client for tests: exact control over method, path (sent byte for byte),
// headers (raw list), and body (one buffer with a length, or chunks sent chunked).
import * as http from 'node:http';

export interface SendOptions {
  method?: string;
  path?: string;
  /** Raw header list [name, value, ...] or an object. */
  headers?: string[] | Record<string, string>;
  /** Sent with content-length. */
  body?: Buffer | string;
  /** Sent with transfer-encoding: chunked, one write each. */
  chunks?: Array<Buffer | string>;
  /** A fresh connection, closed afterwards (no pooling between tests). */
  agent?: http.Agent | false;
}

export interface SendResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  body: Buffer;
  text(): string;
  json<T = unknown>(): T;
}

export function send(baseUrl: string, opts: SendOptions = {}): Promise<SendResult> {
  const u = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    let headers: string[] = [];
    if (Array.isArray(opts.headers)) headers = [...opts.headers];
    else if (opts.headers) for (const [k, v] of Object.entries(opts.headers)) headers.push(k, v);
    if (!headers.some((h, i) => i % 2 === 0 && h.toLowerCase() === 'host')) headers.unshift('Host', u.host);
    if (opts.body !== undefined) headers.push('Content-Length', String(Buffer.byteLength(opts.body)));
    if (opts.chunks) headers.push('Transfer-Encoding', 'chunked');
    const req = http.request({
      host: u.hostname.replace(/^\[|\]$/g, ''),
      port: u.port,
      method: opts.method ?? (opts.body !== undefined || opts.chunks ? 'POST' : 'GET'),
      path: opts.path ?? '/',
      headers: headers as unknown as http.OutgoingHttpHeaders,
      setHost: false,
      agent: opts.agent ?? false,
    });
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          rawHeaders: res.rawHeaders,
          body,
          text: () => body.toString('utf8'),
          json: <T>() => JSON.parse(body.toString('utf8')) as T,
        });
      });
    });
    if (opts.chunks) {
      for (const c of opts.chunks) req.write(c);
      req.end();
    } else req.end(opts.body);
  });
}
