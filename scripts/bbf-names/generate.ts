/**
 * Builds the set of names a Broadband Forum data model defines (format: src/mapping/bbf-names.ts)
 * from its flattened "-full" XML (cwmp-datamodel schema, TR-106 Annex A): every object and
 * parameter of every version of the model, deleted ones included (status="deleted": defined by an
 * earlier version, so still a standard name, not a vendor's), with each table's NumberOfEntries
 * parameter. Pure: XML text in, the file's text out.
 */
import { all, attr, DmXmlError, type DmSource, parseDocument } from '../type-table/generate.js';
import { BBF_NAMES_FORMAT } from '../../src/mapping/bbf-names.js';

export interface NameSetModel {
  readonly source: { file: string; spec: string; model: string };
  /** Object path ("{i}" form) -> its parameter names and, for a table, its NumberOfEntries parameter. */
  readonly objects: Map<string, { params: string[]; numEntries?: string }>;
}

export function buildNameSet(src: DmSource): NameSetModel {
  const doc = parseDocument(src);
  const models = all(doc['model']);
  if (models.length !== 1) throw new DmXmlError(`${src.file}: expected exactly one model, found ${models.length}`);
  const model = models[0]!;
  if (model['component'] !== undefined) throw new DmXmlError(`${src.file}: model refers to components; give the flattened -full file`);
  const objects = new Map<string, { params: string[]; numEntries?: string }>();
  for (const o of all(model['object'])) {
    const path = attr(o, 'name');
    if (path === undefined) throw new DmXmlError(`${src.file}: object without name`);
    const params = [...new Set(all(o['parameter']).map((p) => attr(p, 'name') ?? ''))].filter((n) => n !== '').sort();
    const numEntries = attr(o, 'numEntriesParameter');
    const prev = objects.get(path);
    // An object deleted and defined again in a later version appears twice: one entry, names merged.
    const merged = prev ? [...new Set([...prev.params, ...params])].sort() : params;
    objects.set(path, { params: merged, ...((numEntries ?? prev?.numEntries) !== undefined ? { numEntries: numEntries ?? prev?.numEntries } : {}) });
  }
  return {
    source: { file: src.file, spec: attr(doc, 'spec') ?? '', model: attr(model, 'name') ?? '' },
    objects: new Map([...objects].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))),
  };
}

/** The file's text: deterministic, one object per line (readable diffs). */
export function serializeNameSet(m: NameSetModel): string {
  const lines = [...m.objects].map(
    ([path, o]) => `${JSON.stringify(path)}:${JSON.stringify(o.numEntries !== undefined ? [o.params, o.numEntries] : [o.params])}`,
  );
  const header = `{"format":${BBF_NAMES_FORMAT},"generator":"scripts/gen-bbf-names.ts","source":${JSON.stringify(m.source)},"objects":{`;
  return `${header}\n${lines.join(',\n')}\n}}\n`;
}
