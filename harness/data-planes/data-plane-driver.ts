// The contract between the harness and every data plane it can drive.
// A driver renders its own config from the RouteModel, starts the data plane (local process
// or container), and hands back a started thing that is AsyncDisposable.
import type { RouteModel } from '../../core/route-model.ts';
import type { PlaneHealth } from './plane-health.ts';

export type { PlaneHealth, PlaneProblem, CrashPattern } from './plane-health.ts';

/**
 * What a scenario may need. A data plane that lacks a feature a scenario requires gets that
 * scenario skipped, with the reason, as Gateway API conformance does.
 */
export const FEATURES = [
  'body-none', // headers-only EPP exchange
  'body-buffered', // headers then the whole body
  'body-streamed', // FULL_DUPLEX_STREAMED chunks
  'fail-open', // falls back to the pool on EPP failure
  'fail-close',
  'fallback-list', // tries the EPP's comma-separated list in order
  'immediate-response', // relays ImmediateResponse status, headers and body
  'header-mutation', // applies the EPP's other request header mutations
  'metadata-endpoint', // reads the endpoint from dynamic_metadata envoy.lb
  'served-endpoint', // reports the served endpoint on the response-headers phase
  'response-header-mutation', // applies the EPP's response-headers answer to the client's response
  'timeout', // enforces the per-message EPP timeout
  'endpoint-validation', // refuses garbage endpoints instead of proxying them
  'allowlist', // refuses endpoints outside an allowlist
  'tls', // TLS to the EPP
  'client-abort', // cancels the EPP call when the client goes away
  'subset-hint', // sends the envoy.lb.subset_hint metadata (endpoints the EPP may pick from)
  'ipv6-endpoint', // proxies to an endpoint written [v6]:port
  'bbr', // body-based routing: the body's `model` into X-Gateway-Model-Name before the EPP call
  // Several routes (path prefixes or listeners), each with its own EPP, pool, failure mode and
  // weighted split across pools: the multi-pool conformance scenarios need it. A plane that can
  // render only one route lacks it and those scenarios skip with that reason.
  'multi-pool',
] as const;
export type Feature = (typeof FEATURES)[number];

/** What every full ext_proc plane here does: the three body modes, both failure modes, the EPP's answers applied, its timeout. */
export const EXT_PROC_CORE_FEATURES: readonly Feature[] = ['body-none', 'body-buffered', 'body-streamed', 'fail-open', 'fail-close', 'immediate-response', 'header-mutation', 'timeout'];

export type Runtime = 'local' | 'docker';

export interface DriverContext {
  /** A fresh directory for this data plane's config, logs and temp files. */
  workDir: string;
  runtime: Runtime;
  /** Preferred listen host (loopback). */
  host: string;
  signal?: AbortSignal;
}

export interface Availability {
  ok: boolean;
  /** When not ok: what is missing and what to install or run. */
  reason?: string;
}

/**
 * A running data plane. Beyond its URL and logs it answers two questions every verdict asks
 * (the runner after each step and at scenario end, bench per target, fuzz per case):
 *
 * - `pids()`: every OS process of the plane right now, as pids of this host (an nginx master
 *   and all its workers, Envoy, the node process, the NJS shim; a container's processes as the
 *   host sees them). Empty when eppkit cannot know (an external plane without a pid source).
 *   Feed them to core/proc-sampler.ts for CPU, RSS and fds.
 * - `health()`: problems found since start, cumulative, cheap (reads only what the logs gained
 *   since the last call), never throws: a process eppkit started that exited before stop()
 *   (code or signal from the process handle, `docker inspect` for a container), and log lines
 *   matching the driver's crash/alert patterns (plane-health.ts: nginx `exited on signal`,
 *   `[alert]`, `[emerg]`, `core dumped`; Envoy crash and backtrace lines; Node fatal errors; a
 *   plane file's own `crashPatterns`). `ok: false` fails the scenario (or bench target) with
 *   the first problem's line, whatever the statuses said.
 *
 * Drivers build both from a PlaneHealthMonitor (plane-health.ts): withProcess() for each handle
 * they started, withLogFile() for each log with its patterns, withPids() for pids known another
 * way; and run their stop through monitor.stopping() so the exits they cause are not problems.
 */
export interface StartedDataPlane extends AsyncDisposable {
  readonly name: string;
  /** Base URL clients send requests to, e.g. http://127.0.0.1:38211 */
  readonly url: string;
  /**
   * multi-pool: the base URL of each listener ("gateway"), by listener index; [0] is `url`.
   * Absent = one listener.
   */
  readonly listenerUrls?: readonly string[];
  /** Everything the data plane logged so far (stdout, stderr, error/access logs). */
  logs(): string;
  /** Every process of the plane now (host pids); [] when unknown. */
  pids(): number[];
  /** Crashes, alerts and unexpected exits since start (see above). */
  health(): PlaneHealth;
  stop(): Promise<void>;
}

/**
 * Settings a plane runs with whatever a scenario prefers (a plane already running, by `url`).
 * The route takes them; scenarios that need other values are skipped with the reason.
 */
export interface FixedSettings {
  timeoutMs?: number;
  failureMode?: 'open' | 'close';
  bodyMode?: 'none' | 'buffered' | 'streamed';
  /** Where they come from, for skip reasons ("my-plane.yaml settings"). */
  source?: string;
}

/** An expected difference of a plane for one scenario, with its reason (plane files). */
export interface PlaneOverrideSpec {
  why: string;
  skip?: true | undefined;
  /** 1-based step index or step name; absent = every request step (or, with skip, the scenario). */
  step?: number | string | undefined;
  expect?: Record<string, unknown> | undefined;
  epp?: Record<string, unknown> | undefined;
}

export interface DataPlaneDriver {
  readonly name: string;
  readonly description: string;
  readonly features: ReadonlySet<Feature>;
  /** Cheap check: binaries, modules, images present? Never throws. */
  available(runtime: Runtime): Promise<Availability>;
  start(route: RouteModel, ctx: DriverContext): Promise<StartedDataPlane>;
  /**
   * Optional: why this data plane cannot serve this route (e.g. an external data plane whose
   * configuration is fixed by its user); undefined = it can. The scenario is then skipped.
   */
  unsupportedRoute?(route: RouteModel): string | undefined;
  /** Optional: settings fixed by the plane (see FixedSettings). */
  fixedSettings?(): FixedSettings;
  /** Optional: expected differences for a scenario (plane files' `overrides`), shown in reports. */
  overridesFor?(scenario: string): readonly PlaneOverrideSpec[];
  /** Optional: what implementation this is (a plane file's `version` command output). */
  version?(): string | undefined;
  /**
   * Optional: the mock EPP must listen on this port (the data plane is configured for it, e.g.
   * `external`). Scenarios on such a data plane then run one at a time.
   */
  fixedEppPort?(): number | undefined;
  /**
   * Optional: this plane does body-based routing by chaining a BBR ext_proc server before the
   * EPP (Envoy: two ext_proc filters). The harness then starts a mock EPP in the BBR role and
   * passes its address in `route.bbr.extProcAddress`.
   */
  readonly bbrViaExtProc?: boolean;
}
