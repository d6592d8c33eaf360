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
import { isEppkitError } from '../../core/errors.ts';
import type { RouteModel } from '../../core/route-model.ts';
import { FEATURES, type Availability, type DataPlaneDriver, type DriverContext, type Feature, type FixedSettings, type StartedDataPlane } from './data-plane-driver.ts';
import { PlaneFileDriver } from './plane-file-driver.ts';
import { planeFileSchema } from './plane-file-schema.ts';

const DEFAULT_FEATURES: Feature[] = ['body-buffered', 'fail-close', 'immediate-response'];
const SOURCE = 'EPPKIT_EXTERNAL_* environment';

function env(name: string): string | undefined {
  const v = process.env[name];
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

function externalFeatures(): Set<Feature> {
  const raw = env('EPPKIT_EXTERNAL_FEATURES');
  if (!raw) return new Set(DEFAULT_FEATURES);
  const known = new Set<string>(FEATURES);
  return new Set(raw.split(',').map((s) => s.trim()).filter((s): s is Feature => known.has(s)));
}

/** The plane file the environment describes; throws EPPKIT_PLANE_INVALID naming the variables. */
function fromEnv(): PlaneFileDriver {
  const fm = env('EPPKIT_EXTERNAL_FAILURE_MODE') ?? 'close';
  const bm = env('EPPKIT_EXTERNAL_BODY_MODE') ?? 'buffered';
  const to = env('EPPKIT_EXTERNAL_TIMEOUT_MS');
  const features = externalFeatures();
  // The configured modes are what it does, whatever the feature list forgot.
  features.add(`body-${bm}` as Feature);
  features.add(`fail-${fm}` as Feature);
  const plane = validate(
    planeFileSchema,
    {
      name: 'external',
      description: 'a data plane you already run, pointed at the mock EPP on a fixed port (EPPKIT_EXTERNAL_URL, EPPKIT_EXTERNAL_EPP_PORT)',
      url: env('EPPKIT_EXTERNAL_URL'),
      eppPort: Number(env('EPPKIT_EXTERNAL_EPP_PORT')),
      features: [...features],
      settings: { failureMode: fm, bodyMode: bm, ...(to ? { timeoutMs: Number(to) } : {}) },
      ...(env('EPPKIT_EXTERNAL_LOG_FILE') ? { logFile: env('EPPKIT_EXTERNAL_LOG_FILE') } : {}),
    },
    SOURCE,
    { code: 'EPPKIT_PLANE_INVALID' },
  );
  return new PlaneFileDriver(SOURCE, { plane, templates: new Map() });
}

export const externalDriver: DataPlaneDriver = {
  name: 'external',
  description: 'a data plane you already run, pointed at the mock EPP on a fixed port (EPPKIT_EXTERNAL_URL, EPPKIT_EXTERNAL_EPP_PORT)',
  get features(): ReadonlySet<Feature> {
    return externalFeatures();
  },

  async available(): Promise<Availability> {
    const url = env('EPPKIT_EXTERNAL_URL');
    const port = env('EPPKIT_EXTERNAL_EPP_PORT');
    if (!url) return { ok: false, reason: 'set --external-url (or EPPKIT_EXTERNAL_URL) to the URL of your data plane' };
    try {
      new URL(url);
    } catch {
      return { ok: false, reason: `EPPKIT_EXTERNAL_URL is not a URL: ${url}` };
    }
    if (!port || !/^\d+$/.test(port) || Number(port) < 1 || Number(port) > 65535)
      return { ok: false, reason: 'set --external-epp-port (or EPPKIT_EXTERNAL_EPP_PORT) to the port your data plane expects the EPP on (127.0.0.1)' };
    try {
      fromEnv();
    } catch (e) {
      if (isEppkitError(e)) return { ok: false, reason: e.format().replace(/\n\s*/g, '; ') };
      throw e;
    }
    return { ok: true };
  },

  fixedEppPort(): number | undefined {
    const port = env('EPPKIT_EXTERNAL_EPP_PORT');
    return port ? Number(port) : undefined;
  },

  fixedSettings(): FixedSettings {
    return { ...fromEnv().fixedSettings(), source: 'EPPKIT_EXTERNAL_FAILURE_MODE / _BODY_MODE / _TIMEOUT_MS' };
  },

  unsupportedRoute(route: RouteModel): string | undefined {
    return fromEnv().unsupportedRoute(route);
  },

  start(route: RouteModel, ctx: DriverContext): Promise<StartedDataPlane> {
    return fromEnv().start(route, ctx);
  },
};
