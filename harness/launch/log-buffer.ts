// What a launched process or container printed: kept in memory (the last maxChars, for failure
// excerpts), appended to a file (for the report), split in lines that waiters can match, and
// "ended" once its streams closed. One buffer for both runtimes.
import { createWriteStream, type WriteStream } from 'node:fs';
import type { Readable } from 'node:stream';

export interface LogBufferOptions {
  /** Keep at most this many characters in memory. Default 256 KiB. */
  maxChars?: number;
  /** Append everything to this file. */
  logFile?: string;
}

/** Lines kept for waiters that start late (a line printed before the wait still counts). */
const MAX_LINES = 10_000;

export class LogBuffer {
  private buf = '';
  private partial = '';
  private lines: string[] = [];
  private waiters: Array<{ re: RegExp; resolve: (m: RegExpMatchArray) => void }> = [];
  private endListeners: Array<() => void> = [];
  private file: WriteStream | undefined;
  private readonly maxChars: number;
  private isEnded = false;

  constructor(opts: LogBufferOptions = {}) {
    this.maxChars = opts.maxChars ?? 256 * 1024;
    if (opts.logFile) this.file = createWriteStream(opts.logFile, { flags: 'a' });
  }

  /** Everything `stream` says goes in; with `lines: false` it is kept but never matched (a process's stderr). */
  attach(stream: Readable, opts: { lines?: boolean; endsBuffer?: boolean } = {}): void {
    stream.on('data', (d: Buffer | string) => this.push(typeof d === 'string' ? d : d.toString('utf8'), opts.lines ?? true));
    if (opts.endsBuffer ?? true) for (const ev of ['error', 'end', 'close']) stream.on(ev, () => this.end());
  }

  push(text: string, lines = true): void {
    this.buf += text;
    if (this.buf.length > this.maxChars) this.buf = this.buf.slice(this.buf.length - this.maxChars);
    this.file?.write(text);
    if (!lines) return;
    const parts = (this.partial + text).split('\n');
    this.partial = parts.pop() ?? '';
    for (const line of parts) {
      this.lines.push(line);
      if (this.lines.length > MAX_LINES) this.lines.shift();
      this.waiters = this.waiters.filter((w) => {
        const m = line.match(w.re);
        if (m) w.resolve(m);
        return !m;
      });
    }
  }

  get ended(): boolean {
    return this.isEnded;
  }

  /** Marks the output as complete (the process or container is gone). */
  end(): void {
    if (this.isEnded) return;
    this.isEnded = true;
    for (const f of this.endListeners) f();
    this.endListeners = [];
  }

  /** Calls `f` once when the output has ended (at once when it has). */
  onEnded(f: () => void): void {
    if (this.isEnded) f();
    else this.endListeners.push(f);
  }

  /** Resolves when the output has ended, or after `ms`. */
  whenEnded(ms: number): Promise<void> {
    if (this.isEnded) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.onEnded(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  /** The first line seen so far that matches `re`. */
  find(re: RegExp): RegExpMatchArray | undefined {
    for (const line of this.lines) {
      const m = line.match(re);
      if (m) return m;
    }
    return undefined;
  }

  /** The first line matching `re`, seen already or still to come (never rejects: race it). */
  nextMatch(re: RegExp): Promise<RegExpMatchArray> {
    const seen = this.find(re);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve) => this.waiters.push({ re, resolve }));
  }

  text(): string {
    return this.buf;
  }

  tail(chars: number): string {
    return this.buf.length > chars ? `…${this.buf.slice(-chars)}` : this.buf;
  }

  /** Flushes and closes the file (the memory copy stays). */
  close(): Promise<void> {
    const f = this.file;
    this.file = undefined;
    if (!f) return Promise.resolve();
    return new Promise((resolve) => f.end(resolve));
  }
}
