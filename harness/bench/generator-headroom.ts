// Generator headroom: is the load client itself the limit? In the same run, right after eppkit's
// own client measured `direct` (straight to the backend), Debian's `wrk` (C, epoll, a few µs per
// request) hits the same URL with the same connections. If wrk gets far more out of direct than
// eppkit's client did, then the client's direct rate is a ceiling: a data plane that comes near
// it is measured against the generator, not against its own cost. The report states both rates
// and, per data plane, how close it came to the client's ceiling.
import { spawn, spawnSync } from 'node:child_process';

export interface HeadroomCheck {
  /** wrk's answered requests per second on direct (closed loop, same connections). */
  wrkRps: number;
  /** eppkit's client on direct in the same run. */
  clientRps: number;
  /** clientRps / wrkRps: near 1 = the client could drive what the backend can take. */
  clientShare: number;
  threads: number;
  connections: number;
  durationMs: number;
}

/** Whether wrk can run here, and if not what to do. */
export function wrkAvailable(): { ok: true } | { ok: false; reason: string } {
  const r = spawnSync('wrk', ['--version'], { encoding: 'utf8' });
  // wrk --version prints its banner and exits 1.
  if (r.error) return { ok: false, reason: 'wrk not found: apt-get install wrk (scripts/setup-system.sh installs it)' };
  return { ok: true };
}

/** Parses wrk's "Requests/sec: N" (and the non-2xx / error lines). */
export function parseWrk(out: string): { rps: number; non2xx: number; errors: number } | undefined {
  const m = /Requests\/sec:\s+([\d.]+)/.exec(out);
  if (!m) return undefined;
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0);
  const e = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors = e ? Number(e[1]) + Number(e[2]) + Number(e[3]) + Number(e[4]) : 0;
  return { rps: Number(m[1]), non2xx, errors };
}

/** Runs wrk against `url` (closed loop) and compares with the client's direct rate. */
export function checkHeadroom(o: { url: string; headers: Record<string, string>; connections: number; threads: number; durationMs: number; clientRps: number }): Promise<HeadroomCheck | { failed: string }> {
  const threads = Math.max(1, Math.min(o.threads, o.connections));
  const secs = Math.max(1, Math.round(o.durationMs / 1000));
  const args = [`-t${threads}`, `-c${Math.max(threads, o.connections)}`, `-d${secs}s`, '--timeout', '10s'];
  for (const [k, v] of Object.entries(o.headers)) args.push('-H', `${k}: ${v}`);
  args.push(o.url);
  return new Promise((resolve) => {
    const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.once('error', (e) => resolve({ failed: `wrk could not run: ${e.message}` }));
    child.once('exit', () => {
      const p = parseWrk(out);
      if (!p) return resolve({ failed: `wrk printed no rate: ${out.trim().slice(-300)}` });
      const wrkRps = Math.round(p.rps);
      resolve({ wrkRps, clientRps: o.clientRps, clientShare: wrkRps > 0 ? Math.round((o.clientRps / wrkRps) * 100) / 100 : 0, threads, connections: o.connections, durationMs: secs * 1000 });
    });
  });
}

/** The sentences the report carries about the check, one per data plane near the ceiling. */
export function headroomNotes(h: HeadroomCheck, planes: ReadonlyArray<{ target: string; rps: number }>, closedLoop: boolean): string[] {
  const notes = [
    `generator headroom: on direct, wrk (${h.threads} thread${h.threads === 1 ? '' : 's'}, ${h.connections} connections, ${h.durationMs / 1000} s) reached ${h.wrkRps.toLocaleString('en-US')} req/s, eppkit's client ${Math.round(h.clientRps).toLocaleString('en-US')} req/s (${Math.round(h.clientShare * 100)} % of wrk).`,
  ];
  if (h.clientShare > 1.1) {
    // The compiled client (one thread, a few µs per request) out-drives wrk's threads, which
    // compete with the backend for the cores: wrk then shows no headroom the client lacks. A load
    // change between the two runs lowers wrk's rate the same way; the report cannot tell them apart.
    notes.push(`generator headroom: eppkit's client drove direct ${Math.round((h.clientShare - 1) * 100)} % faster than wrk, so wrk shows no headroom the client lacks (unless the machine's load rose between the two runs; the client's own CPU is in the direct row).`);
  }
  if (!closedLoop) return notes;
  for (const p of planes) {
    const share = h.clientRps > 0 ? p.rps / h.clientRps : 0;
    if (share >= 0.8) notes.push(`${p.target}: ${Math.round(share * 100)} % of the client's own rate on direct: the load client may be the limit here, not the data plane (raise --workers, or compare CPU per request).`);
  }
  return notes;
}
