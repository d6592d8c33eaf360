// google.protobuf.Struct <-> plain JSON in the form the proto loader really uses.
// protobufjs always takes google/protobuf/struct.proto from its bundled copy, whose field
// names are camelCase (stringValue, structValue, listValue, ...) even with keepCase, so
// snake_case keys are silently dropped on encode. Build camelCase; read both.
import type { Json } from '../core/proto-struct.ts';
import type { ProtoStruct } from '../core/proto.ts';

interface WireValue {
  nullValue?: number;
  numberValue?: number;
  stringValue?: string;
  boolValue?: boolean;
  structValue?: WireStruct;
  listValue?: { values?: WireValue[] };
}
interface WireStruct {
  fields?: Record<string, WireValue>;
}

function toValue(v: Json): WireValue {
  if (v === null) return { nullValue: 0 };
  if (typeof v === 'boolean') return { boolValue: v };
  if (typeof v === 'number') return { numberValue: v };
  if (typeof v === 'string') return { stringValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map(toValue) } };
  return { structValue: toWire(v) };
}

function toWire(obj: { [k: string]: Json }): WireStruct {
  const fields: Record<string, WireValue> = {};
  for (const [k, v] of Object.entries(obj)) fields[k] = toValue(v);
  return { fields };
}

/** A Struct the loader encodes correctly (typed as core's ProtoStruct for the message interfaces). */
export function jsonToStruct(obj: { [k: string]: Json }): ProtoStruct {
  return toWire(obj) as unknown as ProtoStruct;
}

type AnyValue = WireValue & {
  null_value?: number;
  number_value?: number;
  string_value?: string;
  bool_value?: boolean;
  struct_value?: AnyStruct;
  list_value?: { values?: AnyValue[] };
};
type AnyStruct = { fields?: Record<string, AnyValue> };

function fromValue(v: AnyValue | undefined): Json {
  if (!v) return null;
  // Decoded messages name their set member in the `kind` oneof (protobufjs messages also carry
  // defaults for the unset members on their prototype, so `??` alone would misread them).
  const kind = (v as { kind?: string }).kind;
  if (typeof kind === 'string') {
    const x = (v as Record<string, unknown>)[kind];
    switch (kind) {
      case 'stringValue':
      case 'string_value':
        return x as string;
      case 'numberValue':
      case 'number_value':
        return x as number;
      case 'boolValue':
      case 'bool_value':
        return x as boolean;
      case 'structValue':
      case 'struct_value':
        return structToJson(x as ProtoStruct);
      case 'listValue':
      case 'list_value':
        return (((x as { values?: AnyValue[] }) ?? {}).values ?? []).map((e) => fromValue(e));
      default:
        return null;
    }
  }
  const s = v.stringValue ?? v.string_value;
  if (s !== undefined) return s;
  const n = v.numberValue ?? v.number_value;
  if (n !== undefined) return n;
  const b = v.boolValue ?? v.bool_value;
  if (b !== undefined) return b;
  const st = v.structValue ?? v.struct_value;
  if (st !== undefined) return structToJson(st as ProtoStruct);
  const l = v.listValue ?? v.list_value;
  if (l !== undefined) return (l.values ?? []).map((x) => fromValue(x as AnyValue));
  return null;
}

/** Reads a decoded Struct (camelCase from the loader, or snake_case) into plain JSON. */
export function structToJson(s: ProtoStruct | undefined): { [k: string]: Json } {
  const out: { [k: string]: Json } = {};
  for (const [k, v] of Object.entries((s as AnyStruct | undefined)?.fields ?? {})) out[k] = fromValue(v);
  return out;
}
