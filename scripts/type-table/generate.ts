/**
 * Builds the parameter type table (format: src/interworking/type-table.ts) from Broadband Forum
 * data-model XML (cwmp-datamodel schema, TR-106 Annex A): flattened "-full" model documents such
 * as tr-181-2-17-0-cwmp-full.xml and tr-098-1-8-0-full.xml, plus documents holding only named
 * data types (tr-106-types.xml). Pure: XML text in, the file's text out.
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { TYPE_TABLE_FORMAT, XSD_TYPE_CODES } from '../../src/interworking/type-table.js';

export interface DmSource {
  /** File name recorded in the table's header. */
  readonly file: string;
  readonly xml: string;
}

/** One object of the table, before encoding. */
export interface TableObject {
  readonly path: string;
  readonly table: boolean;
  readonly writable: boolean;
  readonly uniqueKeys: string[][];
  readonly numEntriesParameter?: string;
  /** name -> parameter code (type letter, "w", "*"), see the format description. */
  readonly params: Map<string, string>;
}

export interface TypeTableModel {
  readonly sources: { file: string; spec: string; model?: string }[];
  readonly objects: TableObject[];
}

export class DmXmlError extends Error {}

export type Node = Record<string, unknown>;

// Element names of the data-model base types, to the CWMP xsi:type of the same name.
const BASE_TYPES: ReadonlyMap<string, string> = new Map([
  ['string', 'xsd:string'],
  ['int', 'xsd:int'],
  ['unsignedInt', 'xsd:unsignedInt'],
  ['long', 'xsd:long'],
  ['unsignedLong', 'xsd:unsignedLong'],
  ['boolean', 'xsd:boolean'],
  ['dateTime', 'xsd:dateTime'],
  ['base64', 'xsd:base64'],
  ['hexBinary', 'xsd:hexBinary'],
  ['decimal', 'xsd:decimal'],
]);

const CODE_OF_TYPE: ReadonlyMap<string, string> = new Map(Object.entries(XSD_TYPE_CODES).map(([code, type]) => [type, code]));

const PARSER = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '',
  parseTagValue: false,
  parseAttributeValue: false,
  removeNSPrefix: true,
  // Every element as an array, attributes as plain strings.
  isArray: (_name, _jpath, _leaf, isAttribute) => !isAttribute,
  // Descriptions are only searched for the {{hidden}} template: kept as raw text, not parsed.
  stopNodes: ['*.description'],
});

export function parseDocument(src: DmSource): Node {
  // The parser alone accepts truncated documents: a cut-off file would give a silently partial table.
  const valid = XMLValidator.validate(src.xml);
  if (valid !== true) throw new DmXmlError(`${src.file}:${valid.err.line}: ${valid.err.msg}`);
  let parsed: Node;
  try {
    parsed = PARSER.parse(src.xml) as Node;
  } catch (e) {
    throw new DmXmlError(`${src.file}: ${(e as Error).message}`);
  }
  const doc = first(parsed['document']);
  if (doc === undefined) throw new DmXmlError(`${src.file}: no dm:document element`);
  return doc;
}

export function all(v: unknown): Node[] {
  return Array.isArray(v) ? (v as Node[]) : [];
}

function first(v: unknown): Node | undefined {
  return all(v)[0];
}

export function attr(n: Node, name: string): string | undefined {
  const v = n[name];
  return typeof v === 'string' ? v : undefined;
}

/** Raw text of a stop node (description): the string itself, or its #text when it has attributes. */
function rawText(v: unknown): string {
  const n: unknown = Array.isArray(v) ? v[0] : undefined;
  if (typeof n === 'string') return n;
  const t = typeof n === 'object' && n !== null ? (n as Node)['#text'] : undefined;
  return typeof t === 'string' ? t : '';
}

/** Named data types of one document, resolved to a CWMP type on demand (cycles and unknown names throw). */
class DataTypes {
  private readonly defs = new Map<string, Node>();
  private readonly resolved = new Map<string, string>();
  private readonly resolving = new Set<string>();

  constructor(
    documents: readonly Node[],
    private readonly fallback?: DataTypes,
  ) {
    for (const doc of documents) for (const dt of all(doc['dataType'])) if (attr(dt, 'name') !== undefined) this.defs.set(attr(dt, 'name')!, dt);
  }

  has(name: string): boolean {
    return this.defs.has(name) || this.fallback?.has(name) === true;
  }

  named(name: string, where: string): string {
    const done = this.resolved.get(name);
    if (done !== undefined) return done;
    const def = this.defs.get(name);
    if (def === undefined) {
      if (this.fallback?.has(name)) return this.fallback.named(name, where);
      throw new DmXmlError(`${where}: unknown dataType ${name}`);
    }
    if (this.resolving.has(name)) throw new DmXmlError(`${where}: dataType ${name} refers to itself`);
    this.resolving.add(name);
    try {
      const t = this.of(def, `dataType ${name}`);
      this.resolved.set(name, t);
      return t;
    } finally {
      this.resolving.delete(name);
    }
  }

  /** The type a syntax or dataType element gives: a list of anything is a string
   * (the comma-separated list travels as one string). */
  of(n: Node, where: string): string {
    if (n['list'] !== undefined) return 'xsd:string';
    for (const [element, type] of BASE_TYPES) if (n[element] !== undefined) return type;
    const dt = first(n['dataType']);
    if (dt !== undefined) {
      const ref = attr(dt, 'ref') ?? attr(dt, 'base');
      // An anonymous <dataType> restricting a named one, e.g. <dataType base="TenthdB">.
      if (ref !== undefined) return dt['list'] !== undefined ? 'xsd:string' : this.named(ref, where);
      return this.of(dt, where);
    }
    const base = attr(n, 'base');
    if (base !== undefined) return this.named(base, where);
    throw new DmXmlError(`${where}: no type in syntax`);
  }
}

/** Builds the table model from model documents (their own dataTypes first) and data-type documents. */
export function buildTypeTable(models: readonly DmSource[], typeDocs: readonly DmSource[]): TypeTableModel {
  const typeDocNodes = typeDocs.map(parseDocument);
  const shared = new DataTypes(typeDocNodes);
  const sources: TypeTableModel['sources'] = [];
  const objects = new Map<string, TableObject>();
  for (const src of models) {
    const doc = parseDocument(src);
    const types = new DataTypes([doc], shared);
    const modelNodes = all(doc['model']);
    if (modelNodes.length !== 1) throw new DmXmlError(`${src.file}: expected exactly one model, found ${modelNodes.length}`);
    const model = modelNodes[0]!;
    if (model['component'] !== undefined) throw new DmXmlError(`${src.file}: model refers to components; give the flattened -full file`);
    sources.push({ file: src.file, spec: attr(doc, 'spec') ?? '', model: attr(model, 'name') ?? '' });
    for (const o of all(model['object'])) {
      const obj = tableObject(o, types, src.file);
      if (obj === undefined) continue;
      if (objects.has(obj.path)) throw new DmXmlError(`${src.file}: object ${obj.path} defined twice`);
      objects.set(obj.path, obj);
    }
  }
  for (const [path, o] of objects) {
    // The table path ("Device.WiFi.SSID.") names the rows' definition: it must not be an object too.
    if (o.table && objects.has(path.slice(0, -'{i}.'.length))) throw new DmXmlError(`object ${path} clashes with its table path`);
  }
  for (const [i, d] of typeDocs.entries()) sources.push({ file: d.file, spec: attr(typeDocNodes[i]!, 'spec') ?? '' });
  return { sources, objects: [...objects.values()].sort((a, b) => cmp(a.path, b.path)) };
}

// status="deleted": no longer part of the model; deprecated and obsoleted items still are.
const isDeleted = (n: Node): boolean => attr(n, 'status') === 'deleted';

function tableObject(o: Node, types: DataTypes, file: string): TableObject | undefined {
  const path = attr(o, 'name');
  if (path === undefined) throw new DmXmlError(`${file}: object without name`);
  if (isDeleted(o)) return undefined;
  if (!/^[A-Za-z][A-Za-z0-9_-]*\.(([A-Za-z][A-Za-z0-9_-]*|\{i\})\.)*$/.test(path)) throw new DmXmlError(`${file}: bad object name ${path}`);
  const params = new Map<string, string>();
  for (const p of all(o['parameter'])) {
    const name = attr(p, 'name');
    if (name === undefined) throw new DmXmlError(`${file}: parameter without name in ${path}`);
    if (isDeleted(p)) continue;
    if (params.has(name)) throw new DmXmlError(`${file}: parameter ${path}${name} defined twice`);
    params.set(name, parameterCode(p, types, `${file}: ${path}${name}`));
  }
  const numEntriesParameter = attr(o, 'numEntriesParameter');
  return {
    path,
    table: path.endsWith('.{i}.'),
    // No access attribute (two TR-181 2.17 MUConfig/MUStats objects): taken as readOnly.
    writable: attr(o, 'access') === 'readWrite',
    uniqueKeys: all(o['uniqueKey']).map((k) => all(k['parameter']).map((r) => attr(r, 'ref') ?? '')),
    ...(numEntriesParameter !== undefined ? { numEntriesParameter } : {}),
    params: new Map([...params].sort((a, b) => cmp(a[0], b[0]))),
  };
}

function parameterCode(p: Node, types: DataTypes, where: string): string {
  const syntax = first(p['syntax']);
  if (syntax === undefined) throw new DmXmlError(`${where}: no syntax`);
  const code = CODE_OF_TYPE.get(types.of(syntax, where));
  if (code === undefined) throw new DmXmlError(`${where}: type without a table code`);
  // writeOnceReadOnly (Alias): the ACS may set it, once (TR-069 3.6.1).
  const access = attr(p, 'access');
  const writable = access === 'readWrite' || access === 'writeOnceReadOnly';
  const secured = attr(syntax, 'hidden') === 'true' || attr(syntax, 'secured') === 'true' || rawText(p['description']).includes('{{hidden}}');
  return code + (writable ? 'w' : '') + (secured ? '*' : '');
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The file's text: deterministic, one object per line (readable diffs), no other whitespace.
 * Header: format, generator, sources (file, spec URN, model name and version).
 */
export function serializeTypeTable(t: TypeTableModel): string {
  const lines = t.objects.map((o) => {
    const entry: unknown[] = [(o.table ? 't' : '') + (o.writable ? 'w' : ''), Object.fromEntries(o.params)];
    if (o.uniqueKeys.length > 0 || o.numEntriesParameter !== undefined) entry.push(o.uniqueKeys);
    if (o.numEntriesParameter !== undefined) entry.push(o.numEntriesParameter);
    return `${JSON.stringify(o.path)}:${JSON.stringify(entry)}`;
  });
  const header = `{"format":${TYPE_TABLE_FORMAT},"generator":"scripts/gen-type-table.ts","sources":${JSON.stringify(t.sources)},"objects":{`;
  return `${header}\n${lines.join(',\n')}\n}}\n`;
}

/** Objects, parameters and secured parameters per root ("Device.", "InternetGatewayDevice."). */
export function typeTableCounts(t: TypeTableModel): Map<string, { objects: number; parameters: number; secured: number }> {
  const out = new Map<string, { objects: number; parameters: number; secured: number }>();
  for (const o of t.objects) {
    const root = o.path.slice(0, o.path.indexOf('.') + 1);
    let c = out.get(root);
    if (c === undefined) out.set(root, (c = { objects: 0, parameters: 0, secured: 0 }));
    c.objects++;
    c.parameters += o.params.size;
    for (const code of o.params.values()) if (code.endsWith('*')) c.secured++;
  }
  return out;
}
