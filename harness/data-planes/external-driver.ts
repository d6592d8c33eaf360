// A data plane the user already runs and configured to use the mock EPP on a fixed port.
// eppkit starts the mock EPP (on that port) and the backends, then sends traffic to the URL.
// The data plane's own configuration is fixed by its user, so scenarios whose route needs
// another failure mode / body mode / fallback list are skipped with that reason.
//   EPPKIT_EXTERNAL_URL            base URL of the data plane (required), e.g. http://127.0.0.1:8080
//   EPPKIT_EXTERNAL_EPP_PORT       port the mock EPP must listen on, on 127.0.0.1 (required)
//   EPPKIT_EXTERNAL_FEATURES       comma-separated features it supports (default: body-buffered,fail-close,immediate-response)
//   EPPKIT_EXTERNAL_FAILURE_MODE   open|close as configured (default close)
//   EPPKIT_EXTERNAL_BODY_MODE      none|buffered|streamed as configured (default buffered)
//   EPPKIT_EXTERNAL_TIMEOUT_MS     its EPP message timeout as configured (default: not checked)
//   EPPKIT_EXTERNAL_LOG_FILE       a log file of the data plane to excerpt on failure (optional)
// `eppkit run --external-url ... --external-epp-port ...` sets the first two.
import { existsSync, readFileSync, statSync } from 'node:fs';
import type { RouteModel } from '../../core/route-model.ts';
import { FEATURES, type Availability, type DataPlaneDriver, type Feature, type FixedSettings, type StartedDataPlane } from './data-plane-driver.ts';

const DEFAULT_FEATURES: Feature[] = ['body-buffered', 'fail-close', 'immediate-response'];

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

/**
 * The user's data plane was configured before this run's mock EPP existed (and the mock is
 * restarted on the same port for each scenario), so its gRPC channel may be in reconnect
 * backoff. Probe through it with an immediate-response directive until the EPP answers (204),
 * at most 15 s; the runner clears the journal afterwards.
 */
async function warmUp(url: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    try {
      const r = await fetch(`${url}/eppkit-warm-up`, { headers: { 'x-eppkit-immediate': '204' }, signal: AbortSignal.timeout(2000) });
      await r.arrayBuffer();
      if (r.status === 204) return;
    } catch {
      // not answering yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
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
    return { ok: true };
  },

  fixedEppPort(): number | undefined {
    const port = env('EPPKIT_EXTERNAL_EPP_PORT');
    return port ? Number(port) : undefined;
  },

  // What it was configured with; scenarios adapt (timings relative to the timeout) or skip.
  fixedSettings(): FixedSettings {
    const fm = env('EPPKIT_EXTERNAL_FAILURE_MODE') ?? 'close';
    const bm = env('EPPKIT_EXTERNAL_BODY_MODE') ?? 'buffered';
    const to = env('EPPKIT_EXTERNAL_TIMEOUT_MS');
    return {
      failureMode: fm === 'open' ? 'open' : 'close',
      bodyMode: bm === 'none' || bm === 'streamed' ? bm : 'buffered',
      ...(to && /^\d+$/.test(to) ? { timeoutMs: Number(to) } : {}),
      source: 'EPPKIT_EXTERNAL_FAILURE_MODE / _BODY_MODE / _TIMEOUT_MS',
    };
  },

  unsupportedRoute(route: RouteModel): string | undefined {
    if (route.fallbackEndpoints.length > 0) return 'needs a fallback pool made of eppkit backends, which an external data plane cannot know';
    if (route.subsetHint) return 'needs a subset hint, which an external data plane cannot be told';
    if (route.responseProcessing) return 'needs response processing switched on per route';
    return undefined;
  },

  async start(): Promise<StartedDataPlane> {
    const url = (env('EPPKIT_EXTERNAL_URL') ?? '').replace(/\/$/, '');
    const logFile = env('EPPKIT_EXTERNAL_LOG_FILE');
    const from = logFile && existsSync(logFile) ? statSync(logFile).size : 0;
    const logs = (): string => {
      if (!logFile || !existsSync(logFile)) return '';
      return readFileSync(logFile).subarray(from).toString('utf8');
    };
    await warmUp(url);
    // Nothing to start or stop: the user owns this process.
    return { name: 'external', url, logs, stop: async () => {}, [Symbol.asyncDispose]: async () => {} };
  },
};
