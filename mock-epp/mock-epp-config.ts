// The one schema of the mock EPP's configuration (file, CLI, admin PUT /config, API).
// Validated through core/config-file.ts so every problem is reported at once with its path;
// the parsed result is frozen and swapped atomically.
import { z } from 'zod';
import { loadConfigFile, parseText, validate } from '../core/config-file.ts';
import { EppkitError } from '../core/errors.ts';
import { DEFAULT_PROFILE, HOLD_HEADERS, PROFILES, PROFILE_SWITCHES, type FidelitySwitches, type ProfileName } from './fidelity-profiles.ts';

export const PHASES = [
  'request_headers',
  'request_body',
  'request_trailers',
  'response_headers',
  'response_body',
  'response_trailers',
] as const;
export type Phase = (typeof PHASES)[number];

export const BODY_MODE_NAMES = ['NONE', 'STREAMED', 'BUFFERED', 'BUFFERED_PARTIAL', 'FULL_DUPLEX_STREAMED'] as const;
export type BodyModeName = (typeof BODY_MODE_NAMES)[number];

/** gRPC status names accepted wherever a code is asked for (numbers 0-16 too). */
export const GRPC_CODE_NAMES = [
  'OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS',
  'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE',
  'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED',
] as const;

/** Parses a gRPC status given as number or name; undefined when it is neither. */
export function parseGrpcCode(v: string | number): number | undefined {
  if (typeof v === 'number') return Number.isInteger(v) && v >= 0 && v <= 16 ? v : undefined;
  const t = v.trim();
  if (/^\d+$/.test(t)) return parseGrpcCode(Number(t));
  const i = (GRPC_CODE_NAMES as readonly string[]).indexOf(t.toUpperCase());
  return i >= 0 ? i : undefined;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
/** `ip:port` with an IPv4 address or a bracketed IPv6 one: what a pool endpoint must be. */
export function isEndpoint(s: string): boolean {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\]]+)):(\d{1,5})$/.exec(s);
  if (!m) return false;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return false;
  return m[1] !== undefined ? m[1].includes(':') : IPV4.test(m[2] ?? '');
}

const endpointSchema = z.string().refine(isEndpoint, { message: 'must be ip:port (IPv4, or [IPv6]:port)' });
const phaseSchema = z.enum(PHASES);
const nonNegInt = z.number().int().nonnegative();
const grpcCodeSchema = z
  .union([z.number(), z.string()])
  .refine((v) => parseGrpcCode(v) !== undefined, { message: 'must be a gRPC status code 0-16 or its name' });
const regexSchema = z.string().refine(
  (s) => {
    try {
      new RegExp(s);
      return true;
    } catch {
      return false;
    }
  },
  { message: 'must be a valid regular expression' },
);

const stringMatch = z.union([
  z.string(),
  z
    .object({ exact: z.string().optional(), regex: regexSchema.optional(), present: z.boolean().optional() })
    .strict()
    .refine((o) => [o.exact, o.regex, o.present].filter((x) => x !== undefined).length === 1, {
      message: 'give exactly one of exact, regex, present',
    }),
]);
export type StringMatch = z.output<typeof stringMatch>;

const matchSchema = z
  .object({
    headers: z.record(z.string(), stringMatch).optional(),
    method: stringMatch.optional(),
    path: stringMatch.optional(),
    /** `model` field of a JSON request body. */
    model: stringMatch.optional(),
    bodySize: z.object({ min: nonNegInt.optional(), max: nonNegInt.optional() }).strict().optional(),
    /** 1-based ordinal of the stream since start (or since the last config swap). */
    nth: z.number().int().positive().optional(),
    everyKth: z.number().int().positive().optional(),
    probability: z.number().min(0).max(1).optional(),
    seed: z.number().int().optional(),
  })
  .strict();
export type RuleMatch = z.output<typeof matchSchema>;

const withPhase = <T extends z.ZodRawShape>(shape: T, defaultPhase: Phase = 'request_headers') =>
  z.object({ ...shape, phase: phaseSchema.default(defaultPhase) }).strict();

const delaySchema = z.union([
  withPhase({ ms: nonNegInt }),
  withPhase({ uniform: z.object({ min: nonNegInt, max: nonNegInt }).strict() }),
  withPhase({ logNormal: z.object({ medianMs: z.number().positive(), sigma: z.number().nonnegative() }).strict() }),
]);
export type DelaySpec = z.output<typeof delaySchema>;

const phaseOnly = z.union([z.literal(true).transform(() => ({ phase: 'request_headers' as Phase })), withPhase({})]);

export const MALFORMED_KINDS = [
  'wrong-phase',
  'empty-oneof',
  'garbage-endpoint',
  'ipv6-endpoint',
  'value-and-raw-value',
] as const;
export type MalformedKind = (typeof MALFORMED_KINDS)[number];

const bodyModeSchema = z.enum(BODY_MODE_NAMES);
const headerModeSchema = z.enum(['DEFAULT', 'SEND', 'SKIP']);

const actionSchema = z
  .object({
    /** Literal endpoint value(s) for the pick, sent as is (even garbage). */
    endpoint: z.union([z.string(), z.array(z.string()).min(1)]).optional(),
    immediate: withPhase({
      status: z.number().int().min(0).max(999),
      headers: z.record(z.string(), z.string()).optional(),
      body: z.string().optional(),
      details: z.string().optional(),
    }).optional(),
    grpcError: withPhase({ code: grpcCodeSchema, message: z.string().optional() }).optional(),
    delay: delaySchema.optional(),
    hang: phaseOnly.optional(),
    /** Close the stream early with gRPC OK. */
    close: phaseOnly.optional(),
    /** Reset the HTTP/2 stream (RST_STREAM). */
    reset: phaseOnly.optional(),
    malformed: z.union([z.enum(MALFORMED_KINDS), withPhase({ kind: z.enum(MALFORMED_KINDS) })]).optional(),
    setHeaders: z.record(z.string(), z.string()).optional(),
    /** Header mutations with `append: true` (BoolValue): added beside the request's own value. */
    appendHeaders: z.record(z.string(), z.string()).optional(),
    removeHeaders: z.array(z.string()).optional(),
    /** Replaces the request body (sent on the request-body answer). */
    replaceBody: z.string().optional(),
    modeOverride: z
      .object({
        requestHeaderMode: headerModeSchema.optional(),
        responseHeaderMode: headerModeSchema.optional(),
        requestBodyMode: bodyModeSchema.optional(),
        responseBodyMode: bodyModeSchema.optional(),
        requestTrailerMode: headerModeSchema.optional(),
        responseTrailerMode: headerModeSchema.optional(),
      })
      .strict()
      .optional(),
  })
  .strict();
export type RuleAction = z.output<typeof actionSchema>;

const ruleSchema = z
  .object({
    name: z.string().optional(),
    match: matchSchema.default({}),
    action: actionSchema,
  })
  .strict();
export type Rule = z.output<typeof ruleSchema>;

const PICKER_NAMES = ['round-robin', 'random', 'weighted', 'consistent-hash', 'least-loaded'] as const;
const pickerObject = z.discriminatedUnion('type', [
  z.object({ type: z.literal('round-robin') }).strict(),
  z.object({ type: z.literal('random'), seed: z.number().int().optional() }).strict(),
  z
    .object({
      type: z.literal('weighted'),
      /** endpoint -> weight; endpoints not listed weigh 1. */
      weights: z.record(z.string(), z.number().nonnegative()).default({}),
      seed: z.number().int().optional(),
    })
    .strict(),
  z
    .object({
      type: z.literal('consistent-hash'),
      /** Hash this request header; without it, the `model` of a JSON body. */
      header: z.string().optional(),
    })
    .strict(),
  z
    .object({
      type: z.literal('least-loaded'),
      /** Simulated queue depth each endpoint starts with (endpoint -> depth). */
      initialDepth: z.record(z.string(), nonNegInt).default({}),
    })
    .strict(),
]);
const pickerSchema = z
  .union([z.enum(PICKER_NAMES), pickerObject])
  .default('round-robin')
  .transform((p) => (typeof p === 'string' ? pickerObject.parse({ type: p }) : p));
export type PickerConfig = z.output<typeof pickerObject>;

/** The BBR role (`role: bbr`): what upstream BBR does, with the few choices it makes spelled out. */
const bbrRoleSchema = z
  .object({
    /** Header the model goes into. */
    header: z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, { message: 'must be a header name' }).default('X-Gateway-Model-Name'),
    /** Body bytes scanned for the model at most; beyond, the request passes on without the header. */
    maxBodyBytes: z.number().int().positive().default(16 * 1024 * 1024),
    /** A body without a usable model: ImmediateResponse 400 (413 beyond maxBodyBytes) instead of passing on. */
    requireModel: z.boolean().default(false),
    /** `model` that is not a string: `stringify` it as upstream BBR does (Go's %v), or `skip` the header. */
    nonStringModel: z.enum(['stringify', 'skip']).default('stringify'),
    /** A body that is not JSON: end the stream with gRPC UNKNOWN as upstream BBR does, or `pass` without the header. */
    invalidJson: z.enum(['grpc-error', 'pass']).default('grpc-error'),
    /** Size of each streamed_response chunk the body is echoed in (FULL_DUPLEX_STREAMED). */
    chunkBytes: z.number().int().positive().default(62 * 1024),
  })
  .strict();
export type BbrRoleConfig = z.output<typeof bbrRoleSchema>;

export const mockEppConfigSchema = z
  .object({
    /**
     * `epp` (default): the Endpoint Picker. `bbr`: body-based routing as the Gateway API
     * Inference Extension's BBR ext_proc server does it (mock-epp/bbr-session.ts); picks nothing.
     */
    role: z.enum(['epp', 'bbr']).default('epp'),
    bbr: bbrRoleSchema.default(bbrRoleSchema.parse({})),
    /** The pool: `ip:port` each. */
    endpoints: z.array(endpointSchema).default([]),
    picker: pickerSchema,
    /** How many further pool endpoints follow the pick as fallbacks (`a,b,c`). */
    fallbacks: nonNegInt.default(0),
    /** Per-request `x-eppkit-*` directives in request headers. */
    directives: z.boolean().default(true),
    /** Body mode assumed when the first message carries no protocol_config. */
    defaultBodyMode: bodyModeSchema.default('BUFFERED'),
    /** Request or response body bytes beyond which the stream is answered 413. */
    maxBodyBytes: z.number().int().positive().default(32 * 1024 * 1024),
    /**
     * Which real EPP the mock answers like (mock-epp/fidelity-profiles.ts, docs/mock-epp.md).
     * Every switch below overrides the profile's value when given.
     */
    profile: z.enum(PROFILES).default(DEFAULT_PROFILE),
    holdHeaders: z.enum(HOLD_HEADERS).optional(),
    noEndpoint: z
      .union([
        z.object({ grpcStatus: grpcCodeSchema, message: z.string().optional() }).strict(),
        z.object({ status: z.number().int().min(100).max(599) }).strict(),
      ])
      .optional(),
    clearRouteCache: z.boolean().optional(),
    responseHeadersAnswer: z
      .object({ servedEndpoint: z.boolean().default(false), wentInto: z.boolean().default(false), echo: z.boolean().default(false) })
      .strict()
      .optional(),
    echoRequestHeaders: z.boolean().optional(),
    append: z.enum(['unset', 'bool-value', 'append-action']).optional(),
    trailers: z.enum(['stall', 'answer']).optional(),
    emptySelection: z.enum(['whole-pool', 'no-endpoint']).optional(),
    bodyAnswer: z.enum(['empty', 'streamed-echo']).optional(),
    bodyAnswerBeforeHeaders: z.boolean().optional(),
    conformanceEchoHeader: z.boolean().optional(),
    rules: z.array(ruleSchema).default([]),
    /**
     * Fuzz mode (docs/fuzz.md): every stream is answered by the script of the case its
     * `x-eppkit-fuzz` request header names (a case exported by `eppkit fuzz`); streams that
     * name none get the strict real EPP's answers with the first endpoint. Rules are not used.
     */
    fuzz: z
      .object({
        cases: z.record(
          z.string(),
          z
            .object({
              pick: endpointSchema,
              script: z
                .object({
                  turns: z.array(z.array(z.looseObject({ do: z.enum(['answer', 'immediate', 'raw', 'delay', 'end', 'reset', 'hang']) }))),
                  rest: z.enum(['valid', 'hang', 'close', 'reset']).default('valid'),
                  restAppend: z.enum(['absent', 'true', 'false', 'empty']).optional(),
                })
                .strict(),
            })
            .strict(),
        ),
      })
      .strict()
      .optional(),
    journal: z
      .object({
        /** Oldest entries are dropped beyond this many. */
        maxEntries: z.number().int().positive().default(10_000),
        /** How many leading body bytes each phase records. */
        firstBytes: nonNegInt.default(64),
      })
      .strict()
      .default({ maxEntries: 10_000, firstBytes: 64 }),
  })
  .strict()
  // The profile fills every switch not given; the result always has all of them.
  .transform((c): Omit<typeof c, keyof FidelitySwitches> & FidelitySwitches => {
    const base = PROFILE_SWITCHES[c.profile];
    const out: Record<string, unknown> = { ...c };
    for (const k of Object.keys(base) as Array<keyof FidelitySwitches>) {
      if (c[k] === undefined) out[k] = structuredClone(base[k]);
    }
    if (c.noEndpoint && 'grpcStatus' in c.noEndpoint) {
      out.noEndpoint = { ...c.noEndpoint, grpcStatus: parseGrpcCode(c.noEndpoint.grpcStatus) as number };
    }
    return out as unknown as Omit<typeof c, keyof FidelitySwitches> & FidelitySwitches;
  });

export type MockEppConfigInput = z.input<typeof mockEppConfigSchema>;
export type MockEppConfig = z.output<typeof mockEppConfigSchema>;

/**
 * The same config under another profile: switches that only held their old profile's value
 * follow the new one; switches set to anything else stay as set.
 */
export function withProfile(config: MockEppConfig, profile: ProfileName, source = '--profile'): MockEppConfig {
  const old = PROFILE_SWITCHES[config.profile];
  const raw: Record<string, unknown> = { ...config, profile };
  for (const k of Object.keys(old) as Array<keyof FidelitySwitches>) {
    if (JSON.stringify(config[k]) === JSON.stringify(old[k])) delete raw[k];
  }
  return parseMockEppConfig(raw, source);
}

/** Validates a plain object; throws one EppkitError listing every problem. Frozen result. */
export function parseMockEppConfig(input: unknown, source = 'mock EPP config'): MockEppConfig {
  return validate(mockEppConfigSchema, input ?? {}, source);
}

/** Validates YAML or JSON text, with line numbers. */
export function parseMockEppConfigText(text: string, source = 'PUT /config'): MockEppConfig {
  const { data, lineOf } = parseText(text, source);
  return validate(mockEppConfigSchema, data ?? {}, source, { lineOf });
}

/**
 * A config that replaces the one in effect (admin PUT /config, StartedMockEpp.setConfig).
 * Everything given replaces, everything else takes its default, except the pool: without an
 * `endpoints` key the current pool stays (it usually comes from --endpoints or DNS, and a PUT
 * that changes the rules must not empty it); `endpoints: []` empties it. An empty body or
 * `null` is an error, never "all defaults with no pool".
 */
export function parseConfigReplacement(
  data: unknown,
  current: { readonly endpoints: readonly string[] },
  source: string,
  lineOf?: (path: ReadonlyArray<PropertyKey>) => number | undefined,
): MockEppConfig {
  if (data === null || data === undefined) {
    throw new EppkitError('EPPKIT_CONFIG_INVALID', { source }, [
      { path: '', message: 'empty config: send the config as a YAML or JSON object (`{}` for the defaults; the pool stays unless `endpoints` is given)' },
    ]);
  }
  let input = data;
  if (typeof data === 'object' && !Array.isArray(data) && !Object.hasOwn(data, 'endpoints')) input = { ...data, endpoints: [...current.endpoints] };
  return validate(mockEppConfigSchema, input, source, lineOf ? { lineOf } : {});
}

/** parseConfigReplacement for YAML or JSON text (admin PUT /config), with line numbers. */
export function parseConfigReplacementText(text: string, current: { readonly endpoints: readonly string[] }, source = 'PUT /config'): MockEppConfig {
  const { data, lineOf } = parseText(text, source);
  return parseConfigReplacement(data, current, source, lineOf);
}

export function loadMockEppConfigFile(file: string): MockEppConfig {
  return loadConfigFile(mockEppConfigSchema, file);
}
