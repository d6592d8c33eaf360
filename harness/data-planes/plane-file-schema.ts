// The one schema of a plane file (`eppkit run --plane my-plane.yaml`): a data plane eppkit did
// not write, described by its user. Either `start` (eppkit renders its config files from
// templates with each scenario's route, starts it, waits until it is ready, collects its logs
// and stops it) or `url` (it already runs; `settings` say how it is configured, so scenarios
// adapt or skip with the reason). Published as JSON Schema (planes/plane.schema.json, by
// harness/scenarios/generate-schema.ts); documented in docs/your-data-plane.md.
import { z } from 'zod';
import { expectSchema, eppExpectSchema } from '../scenarios/scenario-schema.ts';
import { FEATURES } from './data-plane-driver.ts';

const NAME = /^[a-z0-9][a-z0-9-]*$/;
const posInt = z.number().int().positive();
const argv = z.array(z.string()).min(1);

const commandSchema = z
  .union([z.string().min(1), argv])
  .meta({ description: 'a command: a string run by /bin/sh -c, or an argv list (no shell); templates allowed' });

const readySchema = z
  .union([
    z.strictObject({ tcp: z.literal(true).meta({ description: 'ready when {{listen}} accepts a TCP connection' }) }),
    z.strictObject({
      http: z.strictObject({
        path: z.string().startsWith('/').default('/'),
        status: z.union([z.number().int().min(100).max(599), z.enum(['any'])]).default('any').meta({ description: 'the status that means ready; "any" = any answer' }),
      }),
    }),
    z.strictObject({
      log: z.strictObject({
        file: z.string().default('stdout').meta({ description: '"stdout" (stdout and stderr of the start command) or a log file relative to {{dir}}' }),
        matches: z.string().min(1).meta({ description: 'regular expression a line must match' }),
      }),
    }),
  ])
  .meta({ description: 'how eppkit knows the plane is ready: tcp, an http path, or a log line' });

const templateFileSchema = z.strictObject({
  from: z.string().min(1).meta({ description: 'template file, relative to the plane file' }),
  to: z.string().min(1).meta({ description: 'rendered file, relative to {{dir}} (the scenario\'s plane directory)' }),
});

const logFileSchema = z.union([
  z.string().min(1),
  z.strictObject({
    file: z.string().min(1).meta({ description: 'relative to {{dir}}, or absolute' }),
    kind: z.enum(['nginx', 'envoy', 'node', 'plain']).optional().meta({ description: 'default crash patterns of that kind (else the plane file\'s kind)' }),
  }),
]);

const startSchema = z
  .strictObject({
    command: commandSchema,
    env: z.record(z.string(), z.string()).default({}).meta({ description: 'extra environment (templates allowed)' }),
    templates: z.array(templateFileSchema).default([]).meta({ description: 'config files rendered per scenario before the command runs' }),
    ready: readySchema.default({ tcp: true }),
    readyTimeoutMs: posInt.default(15_000).meta({ description: 'how long the plane may take to become ready' }),
    logs: z.array(logFileSchema).default([]).meta({ description: 'log files to collect and scan (stdout and stderr are always kept)' }),
    stop: z
      .strictObject({
        signal: z.enum(['SIGTERM', 'SIGQUIT', 'SIGINT', 'SIGKILL']).default('SIGTERM'),
        command: commandSchema.optional().meta({ description: 'run instead of sending the signal (then the signal after graceMs)' }),
        graceMs: posInt.default(5000).meta({ description: 'SIGKILL after this long' }),
      })
      .default({ signal: 'SIGTERM', graceMs: 5000 }),
  })
  .meta({ description: 'eppkit starts the plane per scenario' });

const settingsSchema = z
  .strictObject({
    timeoutMs: posInt.optional().meta({ description: 'its per-message EPP timeout; timings of scenarios adapt to it' }),
    failureMode: z.enum(['open', 'close']).optional(),
    bodyMode: z.enum(['none', 'buffered', 'streamed']).optional(),
    pool: z.array(z.string()).optional().meta({ description: 'its fail-open pool (ip:port), when it has one: scenarios that need eppkit\'s own pool skip' }),
  })
  .meta({ description: 'how the running plane is configured; scenarios that need otherwise skip with the reason' });

const overrideSchema = z
  .strictObject({
    why: z.string().min(1).meta({ description: 'why this plane legitimately differs (shown in every report)' }),
    skip: z.literal(true).optional().meta({ description: 'skip the scenario (or the step) on this plane' }),
    step: z
      .union([posInt, z.string().min(1)])
      .optional()
      .meta({ description: 'the step (1-based index or name) this applies to; absent = every request step' }),
    expect: expectSchema.optional(),
    epp: eppExpectSchema.optional(),
  })
  .meta({ description: 'an expected difference of this plane, with its reason' });

export const planeFileSchema = z
  .strictObject({
    $schema: z.string().optional(),
    name: z.string().regex(NAME, { message: 'must be lower-case letters, digits and dashes (kebab-case)' }).meta({ description: 'names the plane in reports' }),
    description: z.string().min(1).optional(),
    kind: z.enum(['nginx', 'envoy', 'node', 'plain']).default('plain').meta({ description: 'default crash patterns for its logs' }),
    version: commandSchema.optional().meta({ description: 'a command whose output names the implementation (reports, conformance YAML)' }),
    features: z
      .array(z.enum(FEATURES, { message: `unknown feature; known: ${FEATURES.join(', ')}` }))
      .min(1)
      .meta({ description: 'what it supports (eppkit list shows the names); scenarios needing others skip' }),
    bbrExtProc: z
      .boolean()
      .default(false)
      .meta({ description: 'with feature bbr: eppkit starts a BBR ext_proc server per scenario ({{bbr.extProc}}) that the plane calls before the EPP (Envoy: a second ext_proc filter)' }),
    crashPatterns: z.array(z.string().min(1)).default([]).meta({ description: 'regular expressions: a log line matching one is a crash' }),
    start: startSchema.optional(),
    url: z.url({ protocol: /^https?$/ }).optional().meta({ description: 'a plane already running, e.g. http://127.0.0.1:8080' }),
    eppPort: z
      .number()
      .int()
      .min(1)
      .max(65535)
      .optional()
      .meta({ description: 'url form: the port (127.0.0.1) the plane expects the EPP on; eppkit starts the mock there' }),
    logFile: z.string().optional().meta({ description: 'url form: a log file of the plane to excerpt and scan' }),
    settings: settingsSchema.optional(),
    overrides: z.record(z.string(), z.union([overrideSchema, z.array(overrideSchema).min(1)])).default({}).meta({ description: 'per scenario name' }),
    warmUp: z
      .enum(['auto', 'routed', 'immediate', 'none'])
      .default('auto')
      .meta({ description: 'what eppkit sends until the plane reaches the EPP: auto = immediate when it claims immediate-response, else a routed request' }),
  })
  .superRefine((p, ctx) => {
    if (!p.start === !p.url) ctx.addIssue({ code: 'custom', path: [], message: 'needs exactly one of start (eppkit starts it per scenario) or url (it already runs)' });
    if (p.url && p.eppPort === undefined) ctx.addIssue({ code: 'custom', path: ['eppPort'], message: 'a running plane (url) needs eppPort: the port it expects the EPP on' });
    if (p.start && p.eppPort !== undefined) ctx.addIssue({ code: 'custom', path: ['eppPort'], message: 'eppPort is for url planes; a started plane gets {{epp.port}}' });
    if (p.start && p.settings) ctx.addIssue({ code: 'custom', path: ['settings'], message: 'settings are for url planes; a started plane gets each scenario\'s route ({{timeoutMs}}, ...)' });
    p.crashPatterns.forEach((re, i) => {
      try {
        new RegExp(re);
      } catch (e) {
        ctx.addIssue({ code: 'custom', path: ['crashPatterns', i], message: `not a regular expression: ${(e as Error).message}` });
      }
    });
    const rl = p.start?.ready;
    if (rl && 'log' in rl) {
      try {
        new RegExp(rl.log.matches);
      } catch (e) {
        ctx.addIssue({ code: 'custom', path: ['start', 'ready', 'log', 'matches'], message: `not a regular expression: ${(e as Error).message}` });
      }
    }
    if (p.bbrExtProc && !p.features.includes('bbr')) ctx.addIssue({ code: 'custom', path: ['bbrExtProc'], message: 'bbrExtProc is for body-based routing: features must list bbr' });
    const s = p.settings;
    const has = new Set<string>(p.features);
    if (s?.bodyMode && !has.has(`body-${s.bodyMode}`)) ctx.addIssue({ code: 'custom', path: ['settings', 'bodyMode'], message: `runs with body mode ${s.bodyMode}: features must list body-${s.bodyMode}` });
    if (s?.failureMode && !has.has(`fail-${s.failureMode}`)) ctx.addIssue({ code: 'custom', path: ['settings', 'failureMode'], message: `runs with failure mode ${s.failureMode}: features must list fail-${s.failureMode}` });
  });

export type PlaneFile = z.output<typeof planeFileSchema>;
export type PlaneOverride = z.output<typeof overrideSchema>;
