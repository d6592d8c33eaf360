// Loopback socket helpers shared by drivers, benches and tests.
import { connect, createServer } from 'node:net';

/** A port that was free on `host` a moment ago (bind to 0, read it, close). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolvePort(port));
    });
  });
}

/** Whether a TCP connection to host:port is accepted right now. */
export function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((res) => {
    const sock = connect({ host, port });
    sock.once('connect', () => {
      sock.destroy();
      res(true);
    });
    sock.once('error', () => res(false));
  });
}
