// What a scenario, a bench target or an nginx bench runs against: echo backends, mock EPPs, a
// data plane and any helper process, started one by one (each may need the addresses of the
// ones before it) and all stopped together, last started first, when the bed is disposed.
// The same code path for `eppkit run`, `eppkit bench` and proxies/nginx-epp/bench/.
//
//   await using bed = new TestBed({ workDir, runtime });
//   const a = await bed.withEchoBackend(new EchoBackend('a').withHost('127.0.0.2'));
//   const epp = await bed.withMockEpp({ config: { endpoints: [a.address] } });
//   const dp = await bed.withDataPlane(nginxDriver, routeWithDefaults({ eppAddress: epp.address }));
//
// A stop that fails does not keep the others running (and is not the verdict's business).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { RouteModel } from '../../core/route-model.ts';
import type { EchoBackend, StartedEchoBackend } from '../backends/echo-backend.ts';
import type { DataPlaneDriver, Runtime } from '../data-planes/data-plane-driver.ts';
import { MockEppProcess } from '../epp/mock-epp-process.ts';
import { launch, type Launched, type LaunchSpec } from './launch.ts';

export interface TestBedOptions {
  /** The directory everything writes its config and logs to (mounted in containers). */
  workDir: string;
  /** Where mock EPPs, data planes and eppkit helpers run (compiled helpers always run locally). */
  runtime: Runtime;
  /** The data plane's listen host. Default 127.0.0.1. */
  host?: string;
  /** Cancels starts in progress and kills what they started (a scenario's timeout). */
  signal?: AbortSignal;
}

export class TestBed implements AsyncDisposable {
  readonly workDir: string;
  readonly runtime: Runtime;
  readonly host: string;
  readonly signal: AbortSignal | undefined;
  private readonly stack = new AsyncDisposableStack();

  constructor(o: TestBedOptions) {
    this.workDir = o.workDir;
    this.runtime = o.runtime;
    this.host = o.host ?? '127.0.0.1';
    this.signal = o.signal;
    mkdirSync(this.workDir, { recursive: true });
  }

  /** Stops `stop` with the bed (once, whatever else stops it before). */
  private onDispose(stop: () => Promise<unknown>): void {
    let done: Promise<unknown> | undefined;
    this.stack.defer(async () => {
      done ??= stop().catch(() => undefined);
      await done;
    });
  }

  /** Something started elsewhere (an in-process server, a process started by hand): stopped with the bed. */
  use<T extends AsyncDisposable>(thing: T): T {
    this.onDispose(async () => thing[Symbol.asyncDispose]());
    return thing;
  }

  /** An echo backend in this process (the scenarios' model servers). */
  async withEchoBackend(backend: EchoBackend): Promise<StartedEchoBackend> {
    return this.use(await backend.start());
  }

  /** A mock EPP as its own process (or container), driven over its admin API; `dir` under the bed's work dir. */
  async withMockEpp(o: { config: unknown; port?: number; dir?: string }): Promise<MockEppProcess> {
    const workDir = o.dir ? join(this.workDir, o.dir) : this.workDir;
    mkdirSync(workDir, { recursive: true });
    return this.use(await MockEppProcess.start({ workDir, port: o.port ?? 0, config: o.config, runtime: this.runtime }));
  }

  /** The mock in the BBR role for planes that chain a BBR ext_proc server before the EPP (Envoy). */
  withBbrMock(bbr: NonNullable<RouteModel['bbr']>): Promise<MockEppProcess> {
    return this.withMockEpp({ config: bbrMockConfig(bbr), dir: 'bbr' });
  }

  /** Any other process: an eppkit helper, a compiled tool (`runtime: 'local'`: not in an image), a plain nginx. */
  async withLaunched<T>(spec: LaunchSpec<T>, o: { runtime?: Runtime } = {}): Promise<Launched<T>> {
    const started = await launch({ runtime: o.runtime ?? this.runtime, workDir: this.workDir, signal: this.signal }, spec);
    this.onDispose(() => started.stop());
    return started;
  }

  /** The data plane under test, started by its driver with the route. */
  async withDataPlane<D extends DataPlaneDriver>(driver: D, route: RouteModel): Promise<Awaited<ReturnType<D['start']>>> {
    const dp = (await driver.start(route, { workDir: this.workDir, runtime: this.runtime, host: this.host, ...(this.signal ? { signal: this.signal } : {}) })) as Awaited<ReturnType<D['start']>>;
    this.onDispose(() => dp.stop());
    return dp;
  }

  /** Stops everything, the last started first. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stack.disposeAsync();
  }
}

/** The BBR-role mock's config, with the route's semantics. */
export function bbrMockConfig(bbr: NonNullable<RouteModel['bbr']>): Record<string, unknown> {
  return { role: 'bbr', bbr: { header: bbr.header, maxBodyBytes: bbr.maxBodyBytes, requireModel: bbr.requireModel, nonStringModel: 'skip' } };
}
