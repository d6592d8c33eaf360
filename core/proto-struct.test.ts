import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { fromProtoStruct, toProtoStruct, type Json } from './proto-struct.ts';

// protobufjs's own Struct type: the one the proto loader encodes dynamic_metadata with.
const root = protobuf.Root.fromJSON(protobuf.common.get('google/protobuf/struct.proto') as protobuf.INamespace);
const Struct = root.lookupType('google.protobuf.Struct');

const sample: { [k: string]: Json } = {
  'envoy.lb': { 'x-gateway-destination-endpoint': '10.0.0.1:8000,10.0.0.2:8000', n: 3, ok: true, none: null },
  list: ['a', 1, false],
};

describe('Struct <-> JSON', () => {
  it('survives a real protobufjs encode/decode round trip (camelCase on the wire)', () => {
    const bytes = Struct.encode(Struct.fromObject(toProtoStruct(sample))).finish();
    expect(bytes.length).toBeGreaterThan(40); // snake_case keys would encode to empty Values
    const decoded = Struct.toObject(Struct.decode(bytes), { oneofs: true });
    expect(fromProtoStruct(decoded)).toEqual(sample);
  });

  it('reads snake_case objects too', () => {
    expect(fromProtoStruct({ fields: { a: { string_value: 'x' } as never, b: { struct_value: { fields: {} } } as never } })).toEqual({ a: 'x', b: {} });
  });

  it('reads a decoded message by its kind, not by prototype defaults', () => {
    const msg = Struct.decode(Struct.encode(Struct.fromObject(toProtoStruct({ k: 'v' }))).finish());
    expect(fromProtoStruct(msg as never)).toEqual({ k: 'v' });
  });
});
