import { assetPath } from '../../util/assets.js';
import path from 'node:path';
import protobuf from 'protobufjs';

/** Where our .proto files live: assets/proto. */
export function protoDir(): string {
  return assetPath('proto');
}

export const RECORD_PROTO = 'usp-record-1-4.proto';
export const MSG_PROTO = 'usp-msg-1-4.proto';

let root: protobuf.Root | undefined;

/** Our two USP schemas in one protobufjs Root (packages `usp_record` and `usp`), loaded once. */
export function uspRoot(): protobuf.Root {
  if (!root) {
    const dir = protoDir();
    root = protobuf.loadSync([path.join(dir, RECORD_PROTO), path.join(dir, MSG_PROTO)]);
    root.resolveAll();
    omitEmptyMapEntryFields(root);
  }
  return root;
}

/**
 * protobufjs writes both fields of every map entry, even an empty value (`12 00`); obuspa
 * (protobuf-c) leaves an empty key or value out, as proto3 does for any field at its default.
 * Both decode the same. To give byte-identical output for identical content (golden tests, and
 * the smallest encoding), the encoder of every type with a map<string,string> field is wrapped:
 * protobufjs encodes the other fields, then we write the map entries without empty fields.
 * In USP 1.4 every map is the last field of its message, so field order (by number) is kept;
 * a type where that would not hold is left to protobufjs.
 */
export function omitEmptyMapEntryFields(ns: protobuf.NamespaceBase): void {
  for (const nested of ns.nestedArray) {
    if (nested instanceof protobuf.Type) wrapMapEncoder(nested);
    if (nested instanceof protobuf.Namespace || nested instanceof protobuf.Type) omitEmptyMapEntryFields(nested);
  }
}

function wrapMapEncoder(type: protobuf.Type): void {
  const fields = [...type.fieldsArray].sort((a, b) => a.id - b.id);
  const maps: protobuf.MapField[] = [];
  for (const f of fields) if (f instanceof protobuf.MapField) maps.push(f);
  if (maps.length === 0) return;
  const firstMap = fields.findIndex((f) => f.map);
  const mapsLast = fields.slice(firstMap).every((f) => f.map);
  const stringMaps = maps.every((f) => f.keyType === 'string' && f.type === 'string');
  if (!mapsLast || !stringMaps) return;
  type.setup(); // generates encode/decode now, so a later setup() cannot undo the wrapper
  const base = type.encode.bind(type);
  const mapNames = new Set(maps.map((f) => f.name));
  const tags = maps.map((f) => ({ name: f.name, tag: ((f.id << 3) | 2) >>> 0 }));
  type.encode = (message: protobuf.Message<object> | { [k: string]: unknown }, writer?: protobuf.Writer): protobuf.Writer => {
    const m = message as { [k: string]: unknown };
    const rest: { [k: string]: unknown } = {};
    for (const k of Object.keys(m)) if (!mapNames.has(k)) rest[k] = m[k];
    const w = base(rest, writer);
    for (const { name, tag } of tags) {
      const map = m[name] as { [k: string]: string } | null | undefined;
      if (map == null || !Object.hasOwn(m, name)) continue;
      for (const k of Object.keys(map)) {
        const v = map[k]!;
        w.uint32(tag).fork();
        if (k !== '') w.uint32(10).string(k);
        if (v !== '') w.uint32(18).string(v);
        w.ldelim();
      }
    }
    const unknowns = (m as { $unknowns?: Uint8Array[] }).$unknowns;
    if (unknowns && Object.hasOwn(m, '$unknowns')) {
      for (const u of unknowns) w.raw(u);
    }
    return w;
  };
}
