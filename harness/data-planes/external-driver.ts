// `--data-plane external`: a data plane the user already runs, described by flags and
// environment variables instead of a plane file. A thin case of the url form of plane files
// (plane-file-driver.ts): the same settings, skips, warm-up and reports.
//   EPPKIT_EXTERNAL_URL            base URL of the data plane (required), e.g. http://127.0.0.1:8080
//   EPPKIT_EXTERNAL_EPP_PORT       port the mock EPP must listen on, on 127.0.0.1 (required)
//   EPPKIT_EXTERNAL_FEATURES       comma-separated features it supports (default: body-buffered,fail-close,immediate-response)
//   EPPKIT_EXTERNAL_FAILURE_MODE   open|close as configured (default close)
//   EPPKIT_EXTERNAL_BODY_MODE      none|buffered|streamed as configured (default buffered)
//   EPPKIT_EXTERNAL_TIMEOUT_MS     its EPP message timeout as configured (default: the scenarios')
//   EPPKIT_EXTERNAL_LOG_FILE       a log file of the data plane to excerpt on failure (optional)
// `eppkit run --external-url ... --external-epp-port ...` sets the first two. The equivalent
// plane file (`url`, `eppPort`, `features`, `settings`, `logFile`) is docs/your-data-plane.md's
// third worked example; it adds overrides and a version command.
import { validate } from '../../core/config-file.ts';
import { env as eppkitEnv, type EppkitEnv } from '../../core/env.ts';
import { isEppkitError } from '../../core/errors.ts';
import type { RouteModel } from '../../core/route-model.ts';
import { FEATURES, type Availability, type DataPlaneDriver, type DriverContext, type Feature, type FixedSettings, type StartedDataPlane } from './data-plane-driver.ts';
import { PlaneFileDriver } from './plane-file-driver.ts';
import { planeFileSchema } from './plane-file-schema.ts';

const DEFAULT_FEATURES: Feature[] = ['body-buffered', 'fail-close', 'immediate-response'];
const SOURCE = 'EPPKIT_EXTERNAL_* environment';
const DESCRIPTION = 'a data plane you already run, pointed at the mock EPP on a fixed port (EPPKIT_EXTERNAL_URL, EPPKIT_EXTERNAL_EPP_PORT)';

/** What `eppkit run --external-url/--external-epp-port` say; they win over the environment. */
export interface ExternalOverrides {
  url?: string | undefined;
  eppPort?: number | undefined;
}

/** The environment's EPPKIT_EXTERNAL_* settings (validated by core/env.ts) with the flags over them. */
function settings(o: ExternalOverrides): EppkitEnv {
  const e = eppkitEnv();
  return { ...e, EPPKIT_EXTERNAL_URL: o.url ?? e.EPPKIT_EXTERNAL_URL, EPPKIT_EXTERNAL_EPP_PORT: o.eppPort ?? e.EPPKIT_EXTERNAL_EPP_PORT };
}

function externalFeatures(e: EppkitEnv): Set<Feature> {
  const raw = e.EPPKIT_EXTERNAL_FEATURES;
  if (!raw) return new Set(DEFAULT_FEATURES);
  const known = new Set<string>(FEATURES);
  return new Set(raw.split(',').map((s) => s.trim()).filter((s): s is Feature => known.has(s)));
}

/** The plane file the settings describe; throws EPPKIT_PLANE_INVALID naming the variables. */
function planeOf(e: EppkitEnv): PlaneFileDriver {
  const fm = e.EPPKIT_EXTERNAL_FAILURE_MODE ?? 'close';
  const bm = e.EPPKIT_EXTERNAL_BODY_MODE ?? 'buffered';
  const to = e.EPPKIT_EXTERNAL_TIMEOUT_MS;
  const features = externalFeatures(e);
  // The configured modes are what it does, whatever the feature list forgot.
  features.add(`body-${bm}` as Feature);
  features.add(`fail-${fm}` as Feature);
  const plane = validate(
    planeFileSchema,
    {
      name: 'external',
      description: DESCRIPTION,
      url: e.EPPKIT_EXTERNAL_URL,
      eppPort: e.EPPKIT_EXTERNAL_EPP_PORT,
      features: [...features],
      settings: { failureMode: fm, bodyMode: bm, ...(to ? { timeoutMs: to } : {}) },
      ...(e.EPPKIT_EXTERNAL_LOG_FILE ? { logFile: e.EPPKIT_EXTERNAL_LOG_FILE } : {}),
    },
    SOURCE,
    { code: 'EPPKIT_PLANE_INVALID' },
  );
  return new PlaneFileDriver(SOURCE, { plane, templates: new Map() });
}

export class ExternalDriver implements DataPlaneDriver {
  readonly name = 'external';
  readonly description = DESCRIPTION;
  private readonly overrides: ExternalOverrides;

  constructor(overrides: ExternalOverrides = {}) {
    this.overrides = overrides;
  }

  /** The same driver with the flags' values over the environment's. */
  withOverrides(o: ExternalOverrides): ExternalDriver {
    return new ExternalDriver({ url: o.url ?? this.overrides.url, eppPort: o.eppPort ?? this.overrides.eppPort });
  }

  get features(): ReadonlySet<Feature> {
    try {
      return externalFeatures(settings(this.overrides));
    } catch {
      // A bad environment is reported by available() (and by the CLI); listing must not throw.
      return new Set(DEFAULT_FEATURES);
    }
  }

  async available(): Promise<Availability> {
    let e: EppkitEnv;
    try {
      e = settings(this.overrides);
      if (!e.EPPKIT_EXTERNAL_URL) return { ok: false, reason: 'set --external-url (or EPPKIT_EXTERNAL_URL) to the URL of your data plane' };
      if (!e.EPPKIT_EXTERNAL_EPP_PORT) return { ok: false, reason: 'set --external-epp-port (or EPPKIT_EXTERNAL_EPP_PORT) to the port your data plane expects the EPP on (127.0.0.1)' };
      planeOf(e);
    } catch (err) {
      if (isEppkitError(err)) return { ok: false, reason: err.format().replace(/\n\s*/g, '; ') };
      throw err;
    }
    return { ok: true };
  }

  fixedEppPort(): number | undefined {
    return settings(this.overrides).EPPKIT_EXTERNAL_EPP_PORT;
  }

  fixedSettings(): FixedSettings {
    return { ...planeOf(settings(this.overrides)).fixedSettings(), source: 'EPPKIT_EXTERNAL_FAILURE_MODE / _BODY_MODE / _TIMEOUT_MS' };
  }

  unsupportedRoute(route: RouteModel): string | undefined {
    return planeOf(settings(this.overrides)).unsupportedRoute(route);
  }

  start(route: RouteModel, ctx: DriverContext): Promise<StartedDataPlane> {
    return planeOf(settings(this.overrides)).start(route, ctx);
  }
}

export const externalDriver = new ExternalDriver();
