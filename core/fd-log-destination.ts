// pino's destination for eppkit's servers: log lines to a file descriptor, written by the main
// thread in batches.
//
// Why not pino.destination({ sync: false })? It hands every line to libuv's thread pool (a
// thread wake-up to write, another to report back), and each write wakes whoever reads the
// pipe. node-proxy logs one line per request: at 1,000 req/s that was ~50 µs of CPU per request
// (docs/BENCHMARKS.md), a sixth of its cost, plus the reader's wake-ups on the same cores.
// Here, like nginx's `access_log … buffer= flush=` and Envoy's access-log flush interval:
// - info and below wait up to FLUSH_MS, or until PIPE_BUF bytes are pending;
// - warn and above go out at the end of the current event-loop turn, with everything before them;
// - the rest is written when the process exits (also after an uncaught exception).
// A write is at most PIPE_BUF bytes cut at line ends, so lines of processes sharing one pipe
// (cluster workers) never interleave mid-line.
import { writeSync } from 'node:fs';

/** POSIX: writes of at most this many bytes to a pipe are atomic. */
export const PIPE_BUF = 4096;
/** Longest an info line waits before it is written. */
export const FLUSH_MS = 100;
/** Bytes held while the reader does not keep up; lines beyond are counted and dropped. */
export const MAX_PENDING_BYTES = 8 * 1024 * 1024;
const RETRY_MS = 10;
/** How long the exit flush waits for a full pipe before it gives up (the process is ending). */
const EXIT_FLUSH_MS = 2000;
const WARN = 40;
/** pino sets `lastLevel` on a stream that carries this symbol, before each write. */
const PINO_METADATA: unique symbol = Symbol.for('pino.metadata') as never;

/** Writes the bytes; returns how many went out (fewer on EAGAIN), or -1 when the fd is gone. */
export type FdWriter = (fd: number, data: Buffer) => number;

const writeFd: FdWriter = (fd, data) => {
  let off = 0;
  while (off < data.length) {
    try {
      off += writeSync(fd, data, off, data.length - off);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN' || code === 'EWOULDBLOCK') return off;
      if (code === 'EINTR') continue;
      // EPIPE, EBADF, ENOSPC…: nobody can read the log any more; the server goes on without it.
      return -1;
    }
  }
  return off;
};

export class FdLogDestination {
  readonly [PINO_METADATA] = true;
  lastLevel = 0;

  private readonly fd: number;
  private readonly writer: FdWriter;
  private lines: string[] = [];
  private pendingBytes = 0;
  /** The unwritten rest of a chunk the fd took only in part. */
  private partial: Buffer | undefined;
  private turn: NodeJS.Immediate | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** The fd was full: a retry is due; new lines wait for it. */
  private blocked = false;
  private dropped = 0;
  private gone = false;

  constructor(fd: number, writer: FdWriter = writeFd) {
    this.fd = fd;
    this.writer = writer;
  }

  /** pino's stream interface: one serialised line, newline included. */
  write(line: string): boolean {
    if (this.gone) return true;
    const n = Buffer.byteLength(line);
    if (this.pendingBytes + n > MAX_PENDING_BYTES) {
      this.dropped++;
      return true;
    }
    this.lines.push(line);
    this.pendingBytes += n;
    if (this.blocked) return true;
    if (this.lastLevel >= WARN || this.pendingBytes >= PIPE_BUF) {
      if (this.turn === undefined) {
        this.turn = setImmediate(this.onDue);
        // A process with nothing else to do may exit: the exit hook writes what is left.
        this.turn.unref();
      }
    } else if (this.timer === undefined) {
      this.timer = setTimeout(this.onDue, FLUSH_MS);
      this.timer.unref();
    }
    return true;
  }

  private readonly onDue = (): void => {
    this.cancelSchedule();
    this.blocked = !this.flushOnce();
    if (this.blocked) {
      this.timer = setTimeout(this.onDue, RETRY_MS);
      this.timer.unref();
    }
  };

  private cancelSchedule(): void {
    if (this.turn !== undefined) clearImmediate(this.turn);
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.turn = this.timer = undefined;
  }

  /** Writes everything it can; false when the fd is full (try again later). */
  flushOnce(): boolean {
    if (this.gone) return true;
    if (this.partial !== undefined) {
      const w = this.writer(this.fd, this.partial);
      if (w < 0) return this.goneNow();
      if (w < this.partial.length) {
        this.partial = this.partial.subarray(w);
        return false;
      }
      this.partial = undefined;
    }
    if (this.dropped > 0) {
      const note = `${JSON.stringify({ level: WARN, time: Date.now(), event: 'log_lines_dropped', count: this.dropped, msg: 'the log reader did not keep up' })}\n`;
      this.dropped = 0;
      this.lines.unshift(note);
      this.pendingBytes += note.length;
    }
    while (this.lines.length > 0) {
      const chunk = this.takeChunk();
      const w = this.writer(this.fd, chunk);
      if (w < 0) return this.goneNow();
      if (w < chunk.length) {
        this.partial = chunk.subarray(w);
        return false;
      }
    }
    return true;
  }

  /** The next lines, up to PIPE_BUF bytes (a longer line alone). */
  private takeChunk(): Buffer {
    let bytes = 0;
    let i = 0;
    while (i < this.lines.length) {
      const n = Buffer.byteLength(this.lines[i] as string);
      if (i > 0 && bytes + n > PIPE_BUF) break;
      bytes += n;
      i++;
    }
    const taken = this.lines.splice(0, i);
    this.pendingBytes -= bytes;
    return Buffer.from(i === 1 ? (taken[0] as string) : taken.join(''));
  }

  private goneNow(): boolean {
    this.gone = true;
    this.lines = [];
    this.pendingBytes = 0;
    this.partial = undefined;
    return true;
  }

  /** Writes everything now, waiting up to 2 s for a full pipe (at exit). */
  flushSync(): void {
    this.cancelSchedule();
    this.blocked = false;
    const deadline = Date.now() + EXIT_FLUSH_MS;
    const nap = new Int32Array(new SharedArrayBuffer(4));
    while (!this.flushOnce() && Date.now() < deadline) Atomics.wait(nap, 0, 0, 1);
  }

  /** pino's logger.flush(cb). */
  flush(cb?: (err?: Error) => void): void {
    this.flushSync();
    cb?.();
  }
}

let stderr: FdLogDestination | undefined;

/** The process's one destination on fd 2, flushed when the process exits. */
export function stderrLogDestination(): FdLogDestination {
  if (stderr === undefined) {
    const d = new FdLogDestination(2);
    stderr = d;
    process.once('exit', () => d.flushSync());
  }
  return stderr;
}
