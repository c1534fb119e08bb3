/**
 * Pure report encoders of TR-369 "HTTP Bulk Data Collection" (extension, "Encoding of JSON Bulk
 * Data" and "Encoding of CSV Bulk Data"). A report is the values collected at one time; several
 * reports go in one body when earlier ones failed to be sent (retained failed reports).
 */
import type { ParamType } from '../usp/dm/types.js';

export interface ReportValue {
  /** The name in the report: the parameter path, or the path with Parameter.{i}.Name applied. */
  name: string;
  value: string;
  /** TR-106 base type (decides the JSON type and the CSV ParameterType column). */
  type: ParamType;
}

export interface Report {
  /** When the values were collected (epoch ms). */
  collectedAt: number;
  values: readonly ReportValue[];
}

export type Timestamp = 'Unix-Epoch' | 'ISO-8601' | 'None';

export interface JsonEncoding {
  reportFormat: 'ObjectHierarchy' | 'NameValuePair';
  reportTimestamp: Timestamp;
}

export interface CsvEncoding {
  fieldSeparator: string;
  /** As the data model holds it: XML character references allowed ("&#13;&#10;"). */
  rowSeparator: string;
  escapeCharacter: string;
  reportFormat: 'ParameterPerRow' | 'ParameterPerColumn';
  rowTimestamp: Timestamp;
}

const NUMERIC = new Set<ParamType>(['int', 'long', 'unsignedInt', 'unsignedLong', 'decimal']);
const NUMBER_TEXT = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/;

/**
 * A value as JSON text, typed as the extension's "Translating Data Types" table says. Numbers are
 * written as their digits (an unsignedLong above 2^53 stays exact); a value that is not what its
 * type says (a device's empty counter) goes as a string rather than as broken JSON.
 */
export function jsonValue(v: ReportValue): string {
  if (v.type === 'boolean') {
    if (v.value === 'true' || v.value === '1') return 'true';
    if (v.value === 'false' || v.value === '0') return 'false';
  }
  if (NUMERIC.has(v.type) && NUMBER_TEXT.test(v.value)) return v.value;
  return JSON.stringify(v.value);
}

function timestampJson(ms: number, t: Timestamp): string | null {
  if (t === 'None') return null;
  return t === 'Unix-Epoch' ? String(Math.floor(ms / 1000)) : JSON.stringify(isoSeconds(ms));
}

function isoSeconds(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z');
}

interface Node {
  leaf?: string;
  children: Map<string, Node>;
}

function writeNode(n: Node): string {
  if (n.leaf !== undefined && n.children.size === 0) return n.leaf;
  return `{${[...n.children].map(([k, c]) => `${JSON.stringify(k)}:${writeNode(c)}`).join(',')}}`;
}

/** One report instance: {"CollectionTime":..., ...values}. */
function jsonReport(r: Report, enc: JsonEncoding): string {
  const parts: string[] = [];
  const ts = timestampJson(r.collectedAt, enc.reportTimestamp);
  if (ts !== null) parts.push(`"CollectionTime":${ts}`);
  if (enc.reportFormat === 'NameValuePair') {
    // The translated name has no trailing period (extension, NameValuePair note).
    for (const v of r.values) parts.push(`${JSON.stringify(v.name.replace(/\.$/, ''))}:${jsonValue(v)}`);
    return `{${parts.join(',')}}`;
  }
  // ObjectHierarchy: each path segment becomes a nested JSON object.
  const root: Node = { children: new Map() };
  for (const v of r.values) {
    let n = root;
    for (const seg of v.name.replace(/\.$/, '').split('.')) {
      let c = n.children.get(seg);
      if (!c) n.children.set(seg, (c = { children: new Map() }));
      n = c;
    }
    n.leaf = jsonValue(v);
  }
  for (const [k, c] of root.children) parts.push(`${JSON.stringify(k)}:${writeNode(c)}`);
  return `{${parts.join(',')}}`;
}

/** The JSON body: {"Report":[failed..., current]} (extension, "Layout of Content for Failed Report Transmissions"). */
export function encodeJson(reports: readonly Report[], enc: JsonEncoding): string {
  return `{"Report":[${reports.map((r) => jsonReport(r, enc)).join(',')}]}`;
}

/** XML character references as the data model writes separators ("&#13;&#10;", "&quot;"). */
export function decodeCharRefs(s: string): string {
  return s
    .replace(/&#x([0-9a-fA-F]+);/g, (_, h: string) => String.fromCodePoint(parseInt(h, 16)))
    .replace(/&#(\d+);/g, (_, d: string) => String.fromCodePoint(Number(d)))
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

/**
 * The CSV body. Retained failed reports add their rows without a second header (extension, CSV
 * "Layout of Content for Failed Report Transmissions"). ParameterPerColumn takes its columns from
 * the first report.
 */
export function encodeCsv(reports: readonly Report[], enc: CsvEncoding): string {
  const fs = decodeCharRefs(enc.fieldSeparator) || ',';
  const rs = decodeCharRefs(enc.rowSeparator) || '\r\n';
  const esc = decodeCharRefs(enc.escapeCharacter);
  const field = (s: string): string => {
    if (!esc || !(s.includes(fs) || s.includes(esc) || /[\r\n]/.test(s) || s.includes(rs))) return s;
    return esc + s.split(esc).join(esc + esc) + esc;
  };
  const stamp = enc.rowTimestamp === 'None' ? null : (ms: number) => (enc.rowTimestamp === 'Unix-Epoch' ? String(Math.floor(ms / 1000)) : isoSeconds(ms));
  const rows: string[][] = [];
  const withTs = (ms: number, cells: string[]): string[] => (stamp ? [stamp(ms), ...cells] : cells);
  if (enc.reportFormat === 'ParameterPerRow') {
    // R-BULK.12: ParameterName, ParameterValue, ParameterType in that order.
    rows.push(withTs(0, ['ParameterName', 'ParameterValue', 'ParameterType']).map((c, i) => (stamp && i === 0 ? 'ReportTimestamp' : c)));
    for (const r of reports) for (const v of r.values) rows.push(withTs(r.collectedAt, [v.name, v.value, v.type]));
  } else {
    const names = reports[0]?.values.map((v) => v.name) ?? [];
    rows.push(stamp ? ['ReportTimestamp', ...names] : names);
    for (const r of reports) {
      const byName = new Map(r.values.map((v) => [v.name, v.value]));
      rows.push(
        withTs(
          r.collectedAt,
          names.map((n) => byName.get(n) ?? ''),
        ),
      );
    }
  }
  return rows.map((cells) => cells.map(field).join(fs)).join(rs) + rs;
}
