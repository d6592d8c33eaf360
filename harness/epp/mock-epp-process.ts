// The mock EPP as a child process (`eppkit mock-epp`), driven through its admin API, so that
// scenario actions can really stop it (SIGTERM), kill it (SIGKILL) and restart it on the same
// gRPC and admin ports. The journal is read over HTTP and kept across restarts.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EppkitError } from '../../core/errors.ts';
import type { Runtime } from '../data-planes/data-plane-driver.ts';
import { eppkitInvocation, launch, type Launched } from '../launch/launch.ts';
import { Wait } from '../launch/wait-strategy.ts';

/** One ext_proc stream as the mock EPP recorded it (shape owned by mock-epp/). */
export type JournalEntry = Record<string, unknown>;

export interface MockEppProcessOptions {
  workDir: string;
  host?: string;
  /** 0 = a free port (the default); a fixed port for the external data plane. */
  port?: number;
  config: unknown;
  /** 'docker': run it in eppkit/node (host network, same ports). Default 'local'. */
  runtime?: Runtime;
}

/** The header every data plane warm-up request carries (drivers set it, the journal drops it). */
export const WARM_UP_HEADER = 'x-eppkit-warm-up';

export class MockEppProcess implements AsyncDisposable {
  private proc: Launched | undefined;
  private readonly runtime: Runtime;
  private readonly workDir: string;
  readonly host: string;
  port = 0;
  adminPort = 0;
  private config: unknown;
  private generation = 0;
  /** Entries of earlier incarnations (before a stop/kill), oldest first. */
  private history: JournalEntry[] = [];
  private allLogs = '';

  private constructor(opts: MockEppProcessOptions) {
    this.workDir = opts.workDir;
    this.host = opts.host ?? '127.0.0.1';
    this.port = opts.port ?? 0;
    this.config = opts.config;
    this.runtime = opts.runtime ?? 'local';
  }

  static async start(opts: MockEppProcessOptions): Promise<MockEppProcess> {
    const m = new MockEppProcess(opts);
    await m.launch();
    return m;
  }

  get address(): string {
    return `${this.host}:${this.port}`;
  }
  get adminUrl(): string {
    return `http://${this.host}:${this.adminPort}`;
  }
  /** The mock's process id (local runtime), for CPU accounting. */
  get pid(): number | undefined {
    return this.proc?.pid;
  }
  /** Its pid on this host (a container's init as the host sees it), for CPU accounting. */
  get hostPid(): number | undefined {
    return this.proc?.hostPid;
  }
  get running(): boolean {
    return this.proc?.running ?? false;
  }

  private async launch(): Promise<void> {
    this.generation++;
    const configFile = join(this.workDir, `mock-epp-config.${this.generation}.json`);
    writeFileSync(configFile, JSON.stringify(this.config ?? {}, null, 2));
    const proc = await launch(
      { workDir: this.workDir, runtime: this.runtime },
      {
        what: 'mock EPP',
        ...eppkitInvocation(['mock-epp', '--host', this.host, '--port', String(this.port), '--admin-port', String(this.adminPort), '--config', configFile]),
        // Both ports are printed (0 = a free one): read them back.
        waitFor: Wait.forAll(Wait.forLogLine(/admin listening on http:\/\/\S+:(\d+)/), Wait.forLogLine(/grpc listening on \S+:(\d+)/)),
        startupTimeoutMs: 15_000,
        logFile: join(this.workDir, 'mock-epp.log'),
        env: { NO_COLOR: '1' },
      },
    );
    this.proc = proc;
    const [admin, grpc] = proc.ready;
    this.port = Number(grpc[1]);
    this.adminPort = Number(admin[1]);
  }

  logs(): string {
    return this.allLogs + (this.proc?.logs() ?? '');
  }

  private async admin(method: string, path: string, body?: unknown, timeoutMs = 10_000): Promise<unknown> {
    if (!this.running) throw new EppkitError('EPPKIT_START_FAILED', { what: 'mock EPP', reason: 'it is not running (stopped or killed by a step)' });
    const res = await fetch(`${this.adminUrl}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    if (!res.ok) throw new EppkitError('EPPKIT_CONFIG_INVALID', { source: `mock EPP ${method} ${path}` }, [{ path: '', message: `HTTP ${res.status}: ${text.slice(0, 2000)}` }]);
    try {
      return text ? JSON.parse(text) : undefined;
    } catch {
      return text;
    }
  }

  /** Swaps the mock's configuration atomically (rules, picker, endpoints). */
  async setConfig(config: unknown): Promise<void> {
    await this.admin('PUT', '/config', config);
    this.config = config;
  }

  private static entries(x: unknown): JournalEntry[] {
    const all = Array.isArray(x) ? (x as JournalEntry[]) : x && typeof x === 'object' && Array.isArray((x as { entries?: unknown }).entries) ? (x as { entries: JournalEntry[] }).entries : [];
    // A plane's warm-up is never a scenario's stream, even when it ends after the journal was cleared.
    return all.filter((e) => !(e as { requestHeaders?: Record<string, string> }).requestHeaders?.[WARM_UP_HEADER]);
  }

  /** Every entry so far, across restarts. */
  async journal(): Promise<JournalEntry[]> {
    if (!this.running) return [...this.history];
    return [...this.history, ...MockEppProcess.entries(await this.admin('GET', '/journal'))];
  }

  /**
   * Waits until `total` streams (across restarts) have ended, or the timeout passes; then
   * returns every entry (fewer than `total` when it timed out).
   */
  async waitForJournal(total: number, timeoutMs: number): Promise<JournalEntry[]> {
    const n = total - this.history.length;
    if (!this.running || n <= 0) return this.journal();
    try {
      await this.admin('GET', `/journal?wait=${n}&timeoutMs=${timeoutMs}`, undefined, timeoutMs + 5000);
    } catch {
      // Timed out (or the mock went away): report what there is.
    }
    return this.journal();
  }

  async clearJournal(): Promise<void> {
    this.history = [];
    if (this.running) await this.admin('DELETE', '/journal');
  }

  private async saveJournal(): Promise<void> {
    if (!this.running) return;
    try {
      this.history.push(...MockEppProcess.entries(await this.admin('GET', '/journal', undefined, 3000)));
    } catch {
      // A mock that no longer answers has nothing more to tell.
    }
  }

  /** SIGTERM: the mock drains and exits; its ports close. */
  async stop(): Promise<void> {
    if (!this.proc) return;
    await this.saveJournal();
    await this.proc.stop();
    this.allLogs += this.proc.logs();
    this.proc = undefined;
  }

  /** SIGKILL: no drain, open streams are cut, as a crash. */
  async kill(): Promise<void> {
    if (!this.proc) return;
    await this.saveJournal();
    await this.proc.kill();
    this.allLogs += this.proc.logs();
    this.proc = undefined;
  }

  /** Starts it again on the same ports with the latest configuration. */
  async restart(): Promise<void> {
    await this.stop();
    await this.launch();
  }

  /** Starts it again if a step stopped it (same ports). */
  async startAgain(): Promise<void> {
    if (this.running) return;
    await this.launch();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}
