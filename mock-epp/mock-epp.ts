// The programmable mock Endpoint Picker: an ext_proc gRPC server (plus gRPC health) and an
// admin HTTP API. Builder in the testcontainers style:
//   await using epp = await new MockEpp(cfg).withHost('127.0.0.1').withPort(0).withAdminPort(0).start();
import { readFileSync } from 'node:fs';
import { EppkitError } from '../core/errors.ts';
import { silentLogger, type Logger } from '../core/logger.ts';
import { EXT_PROC_METHOD_PATH, EXT_PROC_SERVICE, messageTypes } from '../core/proto.ts';
import { decodeProcessingRequest, encodeHealthCheckResponse, encodeProcessingResponse } from './ext-proc-codec.ts';
import { GrpcH2Server } from './grpc-h2-server.ts';
import { GrpcJsServer } from './grpc-js-transport.ts';
import { TRANSPORTS, type Codec, type GrpcServerCall, type GrpcTransportServer, type MethodHandler, type Transport } from './grpc-transport.ts';
import { AdminServer } from './admin-server.ts';
import { BbrSession } from './bbr-session.ts';
import { ExtProcSession, type ConfigState, type ExtProcCall, type SessionEnv } from './ext-proc-session.ts';
import { FuzzSession, type FuzzBook } from './fuzz-session.ts';
import { FuzzScriptBook } from './fuzz-book.ts';
import type { FuzzScript } from './fuzz-script.ts';
import { Journal, type JournalEntry } from './journal.ts';
import { parseConfigReplacement, parseMockEppConfig, withProfile, type MockEppConfig, type MockEppConfigInput } from './mock-epp-config.ts';
import type { ProfileName } from './fidelity-profiles.ts';
import { MockEppMetrics } from './mock-epp-metrics.ts';
import { createPicker } from './pickers.ts';
import { compileRules } from './rules.ts';

export type { JournalAnswer, JournalBody, JournalEntry, JournalPhase, StreamEnd } from './journal.ts';
export type { Transport } from './grpc-transport.ts';
export type { MockEppConfig, MockEppConfigInput, PickerConfig, Rule, RuleAction, RuleMatch } from './mock-epp-config.ts';

export interface MockEppTls {
  /** PEM text or a file path, for each. */
  cert: string;
  key: string;
}

/** Health service names the mock answers SERVING for (facts §3). */
export const HEALTH_SERVICES = ['', 'liveness', 'readiness', EXT_PROC_SERVICE] as const;

function pem(v: string): Buffer {
  return Buffer.from(v.includes('-----BEGIN') ? v : readFileSync(v, 'utf8'));
}

export class MockEpp {
  #config: unknown;
  #profile: ProfileName | undefined;
  #host = '127.0.0.1';
  #port = 0;
  #adminHost: string | undefined;
  #adminPort: number | null = 0;
  #adminToken: string | undefined;
  #tls: MockEppTls | undefined;
  #logger: Logger = silentLogger;
  #directives: boolean | undefined;
  #transport: Transport = 'h2';
  #fuzz: FuzzBook | undefined;
  #fuzzFromConfig = false;

  constructor(config?: MockEppConfigInput | MockEppConfig | unknown) {
    this.#config = config ?? {};
  }

  withConfig(config: unknown): this {
    this.#config = config;
    return this;
  }
  withHost(host: string): this {
    this.#host = host;
    return this;
  }
  withPort(port: number): this {
    this.#port = port;
    return this;
  }
  /** `null` runs no admin server. Default 0 (a free port). */
  withAdminPort(port: number | null): this {
    this.#adminPort = port;
    return this;
  }
  /** Admin listens on this host; default the gRPC host. Keep it on loopback. */
  withAdminHost(host: string): this {
    this.#adminHost = host;
    return this;
  }
  /** Require `Authorization: Bearer <token>` on the admin API (except GET /healthz). */
  withAdminToken(token: string | undefined): this {
    this.#adminToken = token;
    return this;
  }
  withTls(tls: MockEppTls | undefined): this {
    this.#tls = tls;
    return this;
  }
  withLogger(logger: Logger): this {
    this.#logger = logger;
    return this;
  }
  /** Overrides the config's `directives` (the CLI's --no-directives). */
  withDirectives(on: boolean): this {
    this.#directives = on;
    return this;
  }

  /** Answers like this real EPP (mock-epp/fidelity-profiles.ts); overrides the config's `profile`. */
  withProfile(profile: ProfileName): this {
    this.#profile = profile;
    return this;
  }

  /**
   * The gRPC transport: `h2` (default; the mock's own on node:http2) or `grpc-js`
   * (@grpc/grpc-js Server). docs/mock-epp.md#transports says why h2 is the default.
   */
  withTransport(transport: Transport): this {
    if (!(TRANSPORTS as readonly string[]).includes(transport)) {
      throw new EppkitError('EPPKIT_USAGE', { reason: `transport must be one of ${TRANSPORTS.join(', ')}, got '${String(transport)}'` });
    }
    this.#transport = transport;
    return this;
  }

  /**
   * Fuzz mode: every ext_proc stream is answered by the script the book holds for its case
   * (mock-epp/fuzz-session.ts) instead of the config's rules. Needs the h2 transport (raw bytes).
   */
  withFuzz(book: FuzzBook): this {
    this.#fuzz = book;
    return this;
  }

  async start(): Promise<StartedMockEpp> {
    if (this.#fuzz && this.#transport !== 'h2') throw new EppkitError('EPPKIT_USAGE', { reason: 'the fuzz mode runs on the h2 transport only' });
    let config = parseMockEppConfig(this.#config);
    if (this.#profile !== undefined && config.profile !== this.#profile) config = withProfile(config, this.#profile);
    if (this.#directives !== undefined && config.directives !== this.#directives) {
      config = parseMockEppConfig({ ...config, directives: this.#directives });
    }
    let tls: { cert: Buffer; key: Buffer } | undefined;
    if (this.#tls) {
      try {
        tls = { cert: pem(this.#tls.cert), key: pem(this.#tls.key) };
      } catch (e) {
        throw new EppkitError('EPPKIT_CONFIG_UNREADABLE', { source: 'TLS certificate/key', reason: (e as Error).message });
      }
    }
    const started = new StartedMockEpp(config, this.#logger, this.#directives, this.#tls !== undefined, this.#transport, this.#fuzz);
    await started.listen(this.#host, this.#port, tls, this.#adminPort, this.#adminHost ?? this.#host, this.#adminToken);
    return started;
  }
}

type AnyCodec = Codec<unknown> & { serializeRes: (m: unknown) => Buffer };
function codec(req: string, res: string): AnyCodec {
  const types = messageTypes as unknown as Record<string, { serialize: (m: unknown) => Buffer; deserialize: (b: Buffer) => unknown }>;
  const rq = types[req];
  const rs = types[res];
  if (!rq || !rs) throw new Error(`proto types ${req} / ${res} missing`);
  return { serialize: rq.serialize, deserialize: rq.deserialize, serializeRes: rs.serialize };
}
const EXT_PROC_CODEC: AnyCodec = {
  ...codec('envoy.service.ext_proc.v3.ProcessingRequest', 'envoy.service.ext_proc.v3.ProcessingResponse'),
  deserialize: decodeProcessingRequest,
  serializeRes: encodeProcessingResponse,
};
const HEALTH_CODEC: AnyCodec = { ...codec('grpc.health.v1.HealthCheckRequest', 'grpc.health.v1.HealthCheckResponse'), serializeRes: encodeHealthCheckResponse };
const HEALTH_CHECK_PATH = '/grpc.health.v1.Health/Check';
const HEALTH_WATCH_PATH = '/grpc.health.v1.Health/Watch';

function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

export class StartedMockEpp implements AsyncDisposable {
  readonly metrics = new MockEppMetrics();
  readonly tls: boolean;
  /** The gRPC transport serving this mock. */
  readonly transport: Transport;
  #state: ConfigState;
  #journal: Journal;
  #server: GrpcTransportServer | undefined;
  #admin: AdminServer | undefined;
  #sessions = new Set<{ abort(): void }>();
  #fuzz: FuzzBook | undefined;
  #fuzzFromConfig = false;
  #nextId = 0;
  #serving = true;
  #healthWatchers = new Map<GrpcServerCall<unknown>, string>();
  #stopped: Promise<void> | undefined;
  #logger: Logger;
  #directivesOverride: boolean | undefined;
  #host = '';
  #port = 0;

  constructor(config: MockEppConfig, logger: Logger, directivesOverride: boolean | undefined, tls: boolean, transport: Transport = 'h2', fuzz?: FuzzBook) {
    this.#fuzz = fuzz ?? StartedMockEpp.#bookFrom(config);
    this.#fuzzFromConfig = fuzz === undefined && this.#fuzz !== undefined;
    this.#state = StartedMockEpp.#stateFor(config);
    this.#journal = new Journal(config.journal.maxEntries);
    this.#logger = logger;
    this.#directivesOverride = directivesOverride;
    this.tls = tls;
    this.transport = transport;
  }

  /** A config with a `fuzz` section runs the fuzz mode with its cases. */
  static #bookFrom(config: MockEppConfig): FuzzBook | undefined {
    if (!config.fuzz) return undefined;
    const book = new FuzzScriptBook(config.endpoints, config.defaultBodyMode === 'FULL_DUPLEX_STREAMED', config.journal.maxEntries);
    for (const [key, c] of Object.entries(config.fuzz.cases)) book.set(key, c.script as unknown as FuzzScript, c.pick);
    return book;
  }

  static #stateFor(config: MockEppConfig): ConfigState {
    const rules = compileRules(config.rules);
    const needsModel = rules.some((r) => r.needsModel) || (config.picker.type === 'consistent-hash' && config.picker.header === undefined);
    const needsBody = needsModel || rules.some((r) => r.needsBody);
    return { config, rules, picker: createPicker(config.picker), needsModel, needsBody, ordinal: 0 };
  }

  /** gRPC address `host:port`. */
  get address(): string {
    return formatHostPort(this.#host, this.#port);
  }
  get host(): string {
    return this.#host;
  }
  get port(): number {
    return this.#port;
  }
  get adminUrl(): string {
    if (!this.#admin) throw new EppkitError('EPPKIT_USAGE', { reason: 'this mock EPP runs without an admin server' });
    return this.#admin.url;
  }
  get config(): MockEppConfig {
    return this.#state.config;
  }
  /** Every ext_proc stream, oldest first (open ones have no `end` yet). */
  get journal(): JournalEntry[] {
    return this.#journal.entries;
  }
  clearJournal(): void {
    this.#journal.clear();
  }
  /** Resolves with the ended entries once at least n streams have ended. */
  waitForJournal(n: number, timeoutMs = 5000): Promise<JournalEntry[]> {
    return this.#journal.waitFor(n, timeoutMs).catch((e: Error) => {
      if (e.message === 'mock EPP stopped') throw e;
      throw new EppkitError('EPPKIT_TIMEOUT', { what: `waiting for ${n} journal entries (${e.message})`, ms: timeoutMs });
    });
  }
  /**
   * Validates and swaps the config atomically (open streams keep the old one). Throws
   * EppkitError listing every problem. Without `endpoints` the current pool stays; `null` is
   * an error (mock-epp-config.ts parseConfigReplacement).
   */
  setConfig(input: unknown, source = 'setConfig'): MockEppConfig {
    let config = parseConfigReplacement(input, this.#state.config, source);
    if (this.#directivesOverride !== undefined && config.directives !== this.#directivesOverride) {
      config = parseMockEppConfig({ ...config, directives: this.#directivesOverride }, source);
    }
    this.#install(config);
    return config;
  }
  /** Installs an already validated config (admin PUT /config). */
  installValidated(config: MockEppConfig): void {
    this.#install(config);
  }
  #install(config: MockEppConfig): void {
    this.#state = StartedMockEpp.#stateFor(config);
    // A book given with withFuzz() stays; one that came from a config follows the config.
    if (this.#fuzzFromConfig || !this.#fuzz) {
      this.#fuzz = StartedMockEpp.#bookFrom(config);
      this.#fuzzFromConfig = this.#fuzz !== undefined;
    }
    this.#journal.maxEntries = config.journal.maxEntries;
    this.#logger.info({ endpoints: config.endpoints.length, rules: config.rules.length, picker: config.picker.type }, 'mock EPP config installed');
  }
  /** Simulated queue depth per endpoint (least-loaded picker), else undefined. */
  queueDepths(): Record<string, number> | undefined {
    return this.#state.picker.depths?.();
  }
  renderMetrics(): string {
    const depths = this.queueDepths();
    return this.metrics.render({ poolSize: this.#state.config.endpoints.length, journalEntries: this.#journal.size, ...(depths ? { queueDepths: depths } : {}) });
  }
  get openStreams(): number {
    return this.#sessions.size;
  }

  async listen(host: string, port: number, tls: { cert: Buffer; key: Buffer } | undefined, adminPort: number | null, adminHost: string, token: string | undefined): Promise<void> {
    // Bodies are checked against maxBodyBytes by the session; a message a little over it still gets through to be answered 413.
    const serverOpts = { maxMessageBytes: Math.min(this.#state.config.maxBodyBytes + 1024 * 1024, 2 ** 31 - 1), ...(tls ? { tls } : {}) };
    const server: GrpcTransportServer = this.transport === 'grpc-js' ? new GrpcJsServer(serverOpts) : new GrpcH2Server(serverOpts);
    const extProc: MethodHandler = { codec: EXT_PROC_CODEC, handle: (call) => this.#onStream(call as unknown as ExtProcCall) };
    server.addMethod(EXT_PROC_METHOD_PATH, extProc);
    server.addMethod(HEALTH_CHECK_PATH, {
      codec: HEALTH_CODEC,
      handle: (call) => {
        call.once('message', (m: { service?: string; undecodable?: string }) => {
          if (m.undecodable !== undefined) return call.end(3, 'undecodable HealthCheckRequest');
          const st = this.#healthStatus(m.service ?? '');
          if (st === undefined) return call.end(5, `unknown service '${m.service ?? ''}'`);
          call.write({ status: st });
          call.end(0);
        });
        call.once('halfClose', () => {
          if (!call.ended) call.end(3, 'no HealthCheckRequest');
        });
      },
    });
    server.addMethod(HEALTH_WATCH_PATH, {
      codec: HEALTH_CODEC,
      handle: (call) => {
        call.once('message', (m: { service?: string }) => {
          const svc = m.service ?? '';
          call.write({ status: this.#healthStatus(svc) ?? 3 /* SERVICE_UNKNOWN */ });
          if (!this.#serving) return call.end(0);
          this.#healthWatchers.set(call, svc);
          call.once('cancelled', () => this.#healthWatchers.delete(call));
        });
      },
    });
    const address = formatHostPort(host, port);
    const bound = await server.listen(host, port).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'EADDRINUSE') throw new EppkitError('EPPKIT_PORT_IN_USE', { address });
      throw new EppkitError('EPPKIT_LISTEN_FAILED', { address, reason: e.message });
    });
    this.#server = server;
    this.#host = host;
    this.#port = bound;
    if (adminPort !== null) {
      this.#admin = new AdminServer(this, token, this.#logger);
      try {
        await this.#admin.listen(adminHost, adminPort);
      } catch (e) {
        await server.close(0);
        throw e;
      }
    }
    this.#logger.info({ address: this.address, admin: this.#admin?.url, tls: this.tls, transport: this.transport }, 'mock EPP listening');
  }

  #healthStatus(service: string): number | undefined {
    if (!(HEALTH_SERVICES as readonly string[]).includes(service)) return undefined;
    return this.#serving ? 1 : 2;
  }

  #onStream(call: ExtProcCall): void {
    if (!this.#serving) {
      call.end(14, 'mock EPP is draining');
      return;
    }
    if (this.#fuzz) {
      this.metrics.streamsTotal++;
      this.#sessions.add(new FuzzSession(call, ++this.#nextId, this.#fuzz, this.#logger, (s) => this.#sessions.delete(s)));
      return;
    }
    // The BBR role answers in its own session type (mock-epp/bbr-session.ts).
    const Session = this.#state.config.role === 'bbr' ? BbrSession : ExtProcSession;
    this.#sessions.add(new Session(call, this.#sessionEnv()));
  }

  /** One env per config in effect, shared by its streams (no closures per stream). */
  #envFor: { state: ConfigState; env: SessionEnv } | undefined;
  #sessionEnv(): SessionEnv {
    if (this.#envFor?.state !== this.#state) {
      const env: SessionEnv = {
        state: this.#state,
        journal: this.#journal,
        metrics: this.metrics,
        logger: this.#logger,
        nextId: () => ++this.#nextId,
        onClosed: (s) => this.#sessions.delete(s),
      };
      this.#envFor = { state: this.#state, env };
    }
    return this.#envFor.env;
  }

  /**
   * Stops: reports NOT_SERVING, refuses new streams, lets open streams finish for `graceMs`,
   * then ends what is left (hung streams) and closes both servers.
   */
  stop(graceMs = 2000): Promise<void> {
    this.#stopped ??= this.#doStop(graceMs);
    return this.#stopped;
  }

  async #doStop(graceMs: number): Promise<void> {
    this.#serving = false;
    for (const [w, svc] of this.#healthWatchers) {
      if ((HEALTH_SERVICES as readonly string[]).includes(svc)) w.write({ status: 2 });
      w.end(0);
    }
    this.#healthWatchers.clear();
    await this.#server?.close(graceMs, () => {
      for (const s of this.#sessions) s.abort();
    });
    for (const s of this.#sessions) s.abort();
    this.#journal.close();
    await this.#admin?.close();
    this.#logger.info('mock EPP stopped');
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop(500);
  }
}
