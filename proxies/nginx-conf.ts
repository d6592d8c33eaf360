// Pieces of nginx.conf that both nginx data planes render (the native module and the NJS
// baseline), so the two configs quote, size and list endpoints the same way.
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';

export function splitHostPort(addr: string): { host: string; port: string } {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(addr.trim());
  if (!m) throw new Error(`not a host:port address: ${addr}`);
  return { host: m[1]!, port: m[2]! };
}

/** host:port as nginx wants it (IPv6 in brackets). */
export function hostPort(addr: string): string {
  const { host, port } = splitHostPort(addr);
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

export function quote(s: string): string {
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** nginx size literal, whole kibibytes. */
export function sizeK(bytes: number): string {
  return `${Math.ceil(bytes / 1024)}k`;
}

/** One `server` line per endpoint, indented for an upstream block inside http. */
export function serverLines(endpoints: readonly string[]): string {
  return endpoints.map((e) => `        server ${hostPort(e)};`).join('\n');
}

/** A server on a unix socket that answers 500: where a FailClose request with no pick goes. */
export function failCloseServer(sock: string, message: string): string {
  return `    server {
        listen unix:${sock};
        access_log off;
        return 500 "${message.replace(/["\\]/g, '\\$&')}\\n";
    }`;
}

/**
 * Where the fail-close server listens: workDir/fail-close.sock, unless that path is longer than
 * a unix socket address allows (108 bytes with the NUL; nginx refuses the config with "too long
 * path"), as under a deep report folder with a long scenario name; then a short path in the
 * temp dir, unique per workDir.
 */
export function failCloseSocketPath(workDir: string): string {
  const wd = workDir.replace(/\/$/, '');
  const inDir = `${wd}/fail-close.sock`;
  if (Buffer.byteLength(inDir) <= 100) return inDir;
  return `${tmpdir()}/eppkit-${createHash('sha256').update(wd).digest('hex').slice(0, 16)}.sock`;
}
