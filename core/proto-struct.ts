// google.protobuf.Struct <-> plain JSON, for dynamic_metadata and metadata_context.
// Written in the camelCase names protobufjs encodes (see ProtoStruct in core/proto.ts); read
// in either case, since a hand-built or foreign object may use the proto's snake_case names.
import type { ProtoStruct, ProtoValue } from './proto.ts';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

export function toProtoValue(v: Json): ProtoValue {
  if (v === null) return { nullValue: 0 };
  if (typeof v === 'boolean') return { boolValue: v };
  if (typeof v === 'number') return { numberValue: v };
  if (typeof v === 'string') return { stringValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map(toProtoValue) } };
  return { structValue: toProtoStruct(v) };
}

export function toProtoStruct(obj: { [k: string]: Json }): ProtoStruct {
  const fields: Record<string, ProtoValue> = {};
  for (const [k, v] of Object.entries(obj)) fields[k] = toProtoValue(v);
  return { fields };
}

const MEMBERS = ['string', 'number', 'bool', 'struct', 'list', 'null'] as const;
type Member = (typeof MEMBERS)[number];

/** Which member of the Value oneof is set, and its content. */
function memberOf(v: ProtoValue): [Member, unknown] | undefined {
  const any = v as Record<string, unknown>;
  // Decoded messages name the set member in `kind`; protobufjs message instances also carry
  // defaults for unset members on their prototype, so presence checks alone would misread them.
  if (typeof v.kind === 'string') {
    const m = v.kind.replace(/_value$|Value$/, '') as Member;
    return MEMBERS.includes(m) ? [m, any[v.kind]] : undefined;
  }
  for (const m of MEMBERS) {
    for (const key of [`${m}Value`, `${m}_value`]) if (any[key] !== undefined) return [m, any[key]];
  }
  return undefined;
}

export function fromProtoValue(v: ProtoValue | undefined): Json {
  const found = v && memberOf(v);
  if (!found) return null;
  const [m, x] = found;
  switch (m) {
    case 'string':
      return String(x);
    case 'number':
      return Number(x);
    case 'bool':
      return Boolean(x);
    case 'struct':
      return fromProtoStruct(x as ProtoStruct);
    case 'list':
      return ((x as { values?: ProtoValue[] } | undefined)?.values ?? []).map(fromProtoValue);
    default:
      return null;
  }
}

export function fromProtoStruct(s: ProtoStruct | undefined): { [k: string]: Json } {
  const out: { [k: string]: Json } = {};
  for (const [k, v] of Object.entries(s?.fields ?? {})) out[k] = fromProtoValue(v);
  return out;
}
