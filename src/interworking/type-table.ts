/**
 * The standard parameter type table: for every object and parameter of the Broadband Forum CWMP data
 * models Device:2 (TR-181) and InternetGatewayDevice:1 (TR-098), the CWMP xsi:type, the access the
 * ACS has and whether the value is secured, so the proxy never has to learn types by asking a CPE for
 * its whole tree. Generated from the data-model XML by scripts/gen-type-table.ts into
 * assets/param-types.json; this module only reads it.
 *
 * File format (format 1), one JSON object:
 *   { "format": 1, "generator": "...", "sources": [{ "file", "spec", "model"? }, ...],
 *     "objects": { "<object path>": [flags, params, uniqueKeys?, numEntriesParameter?], ... } }
 * - object path: the data model's own {i} notation, e.g. "Device.WiFi.SSID.{i}." (a table's rows)
 *   or "Device.ManagementServer.".
 * - flags: a string holding "t" when the object is a multi-instance object (a table row, path ends
 *   in "{i}.") and "w" when its access is readWrite (the ACS may AddObject / DeleteObject).
 * - params: { "<parameter name>": code }. code = one type letter, then "w" when the ACS may write the
 *   parameter (readWrite, or writeOnceReadOnly such as Alias), then "*" when it is secured (syntax
 *   hidden="true" or secured="true", or the {{hidden}} description template: whatever its value,
 *   a read returns the type's null value, "" for a string, false for a boolean).
 *   Type letters: s xsd:string, i xsd:int, u xsd:unsignedInt, l xsd:long, L xsd:unsignedLong,
 *   b xsd:boolean, t xsd:dateTime, B xsd:base64, x xsd:hexBinary, d xsd:decimal.
 * - uniqueKeys: lists of parameter names, one list per uniqueKey element ([] for none); present
 *   only when the object has keys or a numEntriesParameter.
 * - numEntriesParameter: the name of the parameter in the parent object counting the table's rows.
 * Named data types, lists and the like are already resolved by the generator to the CWMP type.
 */
import { readFileSync } from 'node:fs';
import type { XsdType } from '../cwmp/types.js';
import { assetPath } from '../util/assets.js';

export const TYPE_TABLE_FORMAT = 1;

/** The one-letter type codes of the file format (shared with the generator). */
export const XSD_TYPE_CODES: Readonly<Record<string, XsdType>> = Object.freeze({
  s: 'xsd:string',
  i: 'xsd:int',
  u: 'xsd:unsignedInt',
  l: 'xsd:long',
  L: 'xsd:unsignedLong',
  b: 'xsd:boolean',
  t: 'xsd:dateTime',
  B: 'xsd:base64',
  x: 'xsd:hexBinary',
  d: 'xsd:decimal',
});

export interface StandardParameter {
  readonly type: XsdType;
  /** The ACS may set it (access readWrite, or writeOnceReadOnly). */
  readonly writable: boolean;
  /** hidden / secured (passwords, keys, PSKs): a Get returns the type's null value ("" for strings), and it is never logged. */
  readonly secured: boolean;
}

export interface StandardObject {
  /** A multi-instance object (table). */
  readonly table: boolean;
  /** Object access readWrite: the ACS may AddObject / DeleteObject rows. */
  readonly writable: boolean;
  readonly uniqueKeys: readonly (readonly string[])[];
  readonly numEntriesParameter?: string;
}

export class TypeTableError extends Error {}

const INSTANCES = /\.[0-9]+(?=\.|$)/g;
const VENDOR = /(^|\.)X_/;

/**
 * A concrete path in the data model's {i} notation: every instance-number segment becomes {i}
 * ("Device.WiFi.SSID.3.Enable" -> "Device.WiFi.SSID.{i}.Enable"). Standard names never start
 * with a digit, so a numeric segment is always an instance number.
 */
export function schemaPathOf(concretePath: string): string {
  return concretePath.replace(INSTANCES, '.{i}');
}

/** The decoded table: lookups are one schemaPathOf and one Map probe. */
export class TypeTable {
  private readonly params = new Map<string, StandardParameter>();
  private readonly objects = new Map<string, StandardObject>();

  /** Decodes the file format above; throws TypeTableError on anything else. */
  static parse(text: string): TypeTable {
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (e) {
      throw new TypeTableError(`type table is not JSON: ${(e as Error).message}`);
    }
    return new TypeTable(doc);
  }

  private constructor(doc: unknown) {
    if (!isRecord(doc) || doc['format'] !== TYPE_TABLE_FORMAT || !isRecord(doc['objects'])) {
      throw new TypeTableError(`type table is not format ${TYPE_TABLE_FORMAT}`);
    }
    const codes = new Map<string, StandardParameter>();
    for (const [path, entry] of Object.entries(doc['objects'])) {
      if (!Array.isArray(entry) || typeof entry[0] !== 'string' || !isRecord(entry[1])) throw new TypeTableError(`bad object entry ${path}`);
      const [flags, params, keys = [], numEntries] = entry as [string, Record<string, unknown>, unknown, unknown];
      if (!isKeyList(keys) || (numEntries !== undefined && typeof numEntries !== 'string')) throw new TypeTableError(`bad object entry ${path}`);
      const table = flags.includes('t');
      const obj: StandardObject = Object.freeze({
        table,
        writable: flags.includes('w'),
        uniqueKeys: Object.freeze(keys.map((k) => Object.freeze([...k]))),
        ...(numEntries !== undefined ? { numEntriesParameter: numEntries } : {}),
      });
      this.objects.set(path, obj);
      // The table itself ("Device.WiFi.SSID.") answers with its rows' definition.
      if (table) this.objects.set(path.slice(0, -'{i}.'.length), obj);
      for (const [name, code] of Object.entries(params)) {
        if (typeof code !== 'string') throw new TypeTableError(`bad code for ${path}${name}`);
        let p = codes.get(code);
        if (p === undefined) codes.set(code, (p = decodeParameter(code, `${path}${name}`)));
        this.params.set(path + name, p);
      }
    }
  }

  /** A parameter by concrete or {i} path; undefined for vendor extensions and unknown names. */
  parameter(path: string): StandardParameter | undefined {
    if (path.endsWith('.') || VENDOR.test(path)) return undefined;
    return this.params.get(schemaPathOf(path));
  }

  /** An object by table path ("Device.WiFi.SSID."), row path ("...SSID.3." or "...SSID.{i}.") or single-instance path. */
  object(path: string): StandardObject | undefined {
    if (!path.endsWith('.') || VENDOR.test(path)) return undefined;
    return this.objects.get(schemaPathOf(path));
  }
}

function decodeParameter(code: string, where: string): StandardParameter {
  const type = XSD_TYPE_CODES[code[0] ?? ''];
  const flags = code.slice(1);
  if (type === undefined || !/^w?\*?$/.test(flags)) throw new TypeTableError(`bad code ${JSON.stringify(code)} for ${where}`);
  return Object.freeze({ type, writable: flags.includes('w'), secured: flags.includes('*') });
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isKeyList(v: unknown): v is string[][] {
  return Array.isArray(v) && v.every((k) => Array.isArray(k) && k.every((n) => typeof n === 'string'));
}

let shipped: TypeTable | undefined;

/** The table shipped in assets/param-types.json, read once on first use. */
export function standardTypeTable(): TypeTable {
  return (shipped ??= TypeTable.parse(readFileSync(assetPath('param-types.json'), 'utf8')));
}

/** TR-181 / TR-098 definition of a parameter ("Device.WiFi.SSID.3.Enable"); undefined for X_ extensions. */
export function standardParameter(path: string): StandardParameter | undefined {
  return standardTypeTable().parameter(path);
}

/** TR-181 / TR-098 definition of an object, a table ("Device.WiFi.SSID.") or its rows ("Device.WiFi.SSID.3."). */
export function standardObject(path: string): StandardObject | undefined {
  return standardTypeTable().object(path);
}

/** Whether the standard marks the parameter hidden / secured (a Get returns "" for it). */
export function isSecured(path: string): boolean {
  return standardTypeTable().parameter(path)?.secured === true;
}
