// google.protobuf.Struct <-> plain JSON, for dynamic_metadata and metadata_context.
import type { ProtoStruct, ProtoValue } from './proto.ts';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

export function toProtoValue(v: Json): ProtoValue {
  if (v === null) return { null_value: 0 };
  if (typeof v === 'boolean') return { bool_value: v };
  if (typeof v === 'number') return { number_value: v };
  if (typeof v === 'string') return { string_value: v };
  if (Array.isArray(v)) return { list_value: { values: v.map(toProtoValue) } };
  return { struct_value: toProtoStruct(v) };
}

export function toProtoStruct(obj: { [k: string]: Json }): ProtoStruct {
  const fields: Record<string, ProtoValue> = {};
  for (const [k, v] of Object.entries(obj)) fields[k] = toProtoValue(v);
  return { fields };
}

export function fromProtoValue(v: ProtoValue | undefined): Json {
  if (!v) return null;
  if (v.string_value !== undefined) return v.string_value;
  if (v.number_value !== undefined) return v.number_value;
  if (v.bool_value !== undefined) return v.bool_value;
  if (v.struct_value !== undefined) return fromProtoStruct(v.struct_value);
  if (v.list_value !== undefined) return (v.list_value.values ?? []).map(fromProtoValue);
  return null;
}

export function fromProtoStruct(s: ProtoStruct | undefined): { [k: string]: Json } {
  const out: { [k: string]: Json } = {};
  for (const [k, v] of Object.entries(s?.fields ?? {})) out[k] = fromProtoValue(v);
  return out;
}
