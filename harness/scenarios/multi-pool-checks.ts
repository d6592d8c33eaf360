// Cross-checks of the multi-pool parts of a scenario (setup.pools, setup.routes, request.route,
// epps, expect.split, an action's pool): every name resolves, pools and routes come together,
// and the single-route keys are not mixed in. Called from the scenario schema's superRefine, so
// its problems are reported with all the others, with their paths.
import type { Scenario } from './scenario-schema.ts';

type Issue = (path: PropertyKey[], message: string) => void;

/** The pool names of a route entry (strings or {pool, weight}). */
export function routePoolNames(r: NonNullable<Scenario['setup']['routes']>[number]): string[] {
  return r.pools.map((p) => (typeof p === 'string' ? p : p.pool));
}

/** Gateway API PathPrefix: whole path elements (`/a` covers `/a`, `/a/b`, not `/ab`). */
export function underPrefix(path: string, prefix: string): boolean {
  const p = path.split('?')[0] ?? path;
  return prefix === '/' || p === prefix || p.startsWith(prefix.endsWith('/') ? prefix : `${prefix}/`) || p.includes('{{');
}

export function checkMultiPool(s: Scenario, issue: Issue, knownEndpoint: (x: string) => boolean, defaultRoute: unknown): void {
  const { pools, routes } = s.setup;
  const multi = pools !== undefined || routes !== undefined;
  if (multi) {
    if (!pools) issue(['setup', 'routes'], 'routes need pools: declare setup.pools (each with its backends and its EPP)');
    if (!routes) issue(['setup', 'pools'], 'pools need routes: declare setup.routes (path prefix, listener, pools) to send traffic to them');
    if (JSON.stringify(s.setup.route) !== JSON.stringify(defaultRoute))
      issue(['setup', 'route'], 'with pools, give each pool its route settings (failureMode, fallback, ...) instead of setup.route');
    if (Object.keys(s.setup.epp).length > 0) issue(['setup', 'epp'], "with pools, give each pool its EPP config (pools[].epp) instead of setup.epp");
    // Features are stated, never implied: a plane without it must skip, not render one route.
    if (!s.features.includes('multi-pool')) issue(['features'], 'pools and routes need the multi-pool feature: add multi-pool to features');
    pools?.forEach((p, i) => {
      if (p.bodyMode && !s.features.includes(`body-${p.bodyMode}`)) issue(['setup', 'pools', i, 'bodyMode'], `bodyMode ${p.bodyMode} needs feature body-${p.bodyMode} in features`);
      if (p.failureMode && !s.features.includes(`fail-${p.failureMode}`)) issue(['setup', 'pools', i, 'failureMode'], `failureMode ${p.failureMode} needs feature fail-${p.failureMode} in features`);
    });
  }
  const backendNames = new Set(s.setup.backends.map((b) => b.name));
  const poolNames = new Set<string>();
  pools?.forEach((p, i) => {
    if (poolNames.has(p.name)) issue(['setup', 'pools', i, 'name'], `duplicate pool name "${p.name}"`);
    poolNames.add(p.name);
    p.backends.forEach((b, j) => {
      if (!backendNames.has(b)) issue(['setup', 'pools', i, 'backends', j], `unknown backend "${b}"`);
    });
    for (const key of ['fallback', 'subsetHint'] as const) {
      (p[key] ?? []).forEach((f, j) => {
        if (!knownEndpoint(f)) issue(['setup', 'pools', i, key, j], `"${f}" is neither a backend name nor ip:port`);
      });
    }
  });
  const routeNames = new Map<string, NonNullable<typeof routes>[number]>();
  const used = new Set<string>();
  const rules = new Set<string>();
  routes?.forEach((r, i) => {
    if (routeNames.has(r.name)) issue(['setup', 'routes', i, 'name'], `duplicate route name "${r.name}"`);
    routeNames.set(r.name, r);
    const rule = `${r.listener} ${r.pathPrefix}`;
    if (rules.has(rule)) issue(['setup', 'routes', i, 'pathPrefix'], `listener "${r.listener}" already has a route for ${r.pathPrefix}: put both pools in one route's pools with weights`);
    rules.add(rule);
    const seen = new Set<string>();
    routePoolNames(r).forEach((p, j) => {
      if (!poolNames.has(p)) issue(['setup', 'routes', i, 'pools', j], `unknown pool "${p}"`);
      if (seen.has(p)) issue(['setup', 'routes', i, 'pools', j], `pool "${p}" twice in one route`);
      seen.add(p);
      used.add(p);
    });
  });
  pools?.forEach((p, i) => {
    if (routes && !used.has(p.name)) issue(['setup', 'pools', i, 'name'], `pool "${p.name}" is in no route: no request could reach it`);
  });
  const poolOf = new Map<string, string[]>();
  for (const p of pools ?? []) for (const b of p.backends) poolOf.set(b, [...(poolOf.get(b) ?? []), p.name]);

  s.steps.forEach((st, i) => {
    if ('action' in st) {
      if (st.pool !== undefined && !multi) issue(['steps', i, 'pool'], 'pool is for multi-pool scenarios (setup.pools)');
      else if (st.pool !== undefined && !poolNames.has(st.pool)) issue(['steps', i, 'pool'], `unknown pool "${st.pool}"`);
      return;
    }
    // parallel / pipelined groups: their request steps are checked by the main schema only.
    if (!('request' in st)) return;
    const rq = st.request;
    if (rq.route !== undefined) {
      const r = routeNames.get(rq.route);
      if (!multi) issue(['steps', i, 'request', 'route'], 'route is for multi-pool scenarios (setup.routes)');
      else if (!r) issue(['steps', i, 'request', 'route'], `unknown route "${rq.route}"`);
      else if (!underPrefix(rq.path, r.pathPrefix)) issue(['steps', i, 'request', 'path'], `${rq.path} is not under route "${r.name}"'s prefix ${r.pathPrefix}`);
    }
    for (const [name, w] of Object.entries(st.epps ?? {})) {
      if (!multi) issue(['steps', i, 'epps'], 'epps is for multi-pool scenarios; use epp');
      else if (!poolNames.has(name)) issue(['steps', i, 'epps', name], `unknown pool "${name}"`);
      // As for epp: what of the body reached the EPP depends on a stated body mode.
      else if ((w.bodySha256 !== undefined || w.bodyBytes !== undefined || w.phases !== undefined) && !pools?.find((p) => p.name === name)?.bodyMode)
        issue(['steps', i, 'epps', name], `checks what of the body reached pool ${name}'s EPP: set that pool's bodyMode and list body-<mode> in features, or drop the check`);
    }
    const split = st.expect.split;
    if (split) {
      if (!multi) issue(['steps', i, 'expect', 'split'], 'split is for multi-pool scenarios (setup.pools)');
      const names = Object.keys(split.weights);
      if (names.length < 2) issue(['steps', i, 'expect', 'split', 'weights'], 'a split needs at least two pools');
      for (const n of names) if (multi && !poolNames.has(n)) issue(['steps', i, 'expect', 'split', 'weights', n], `unknown pool "${n}"`);
      // A response is attributed to a pool by the backend that served it.
      for (const [b, ps] of poolOf) {
        const inSplit = ps.filter((p) => names.includes(p));
        if (inSplit.length > 1) issue(['steps', i, 'expect', 'split', 'weights'], `backend "${b}" is in pools ${inSplit.join(' and ')}: a response could not be attributed to one`);
      }
      if (st.request.repeat < 20) issue(['steps', i, 'request', 'repeat'], 'a split is judged statistically: repeat at least 20 requests (a few hundred give a useful tolerance)');
    }
  });
}
