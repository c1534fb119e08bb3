/**
 * Device import (POST /api/devices/import, docs/nbi.md): a JSON list or CSV with a header line,
 * one device per row: its DeviceId parts (TR-069 A.3.3.1 DeviceIdStruct), optionally its root
 * model and pre-provisioned per-device CPE credentials (ManagementServer.Username/Password the CPE
 * was configured with at the factory). Parsing only, no I/O.
 */
import type { DeviceIdStruct } from '../cwmp/types.js';

export interface ImportRow {
  deviceId: DeviceIdStruct;
  rootModel: 'Device' | 'InternetGatewayDevice';
  /** Both or neither. */
  cpeUsername: string | null;
  cpePassword: string | null;
  /** Replaces the device's tags when given (CSV: separated by ";"). */
  tags: string[] | null;
}

/** An operator tag (admin API, store migration 9). */
export const TAG = /^[A-Za-z0-9_.:-]{1,64}$/;
export const MAX_TAGS = 32;

export class ImportError extends Error {}

/** Rows per import: one request's work stays bounded. */
export const MAX_IMPORT_ROWS = 10_000;
const COLUMNS = ['oui', 'productClass', 'serialNumber', 'manufacturer', 'rootModel', 'cpeUsername', 'cpePassword', 'tags'] as const;

/** One CSV line (RFC 4180 quoting, no line breaks inside a field). */
function csvFields(line: string, n: number): string[] {
  const out: string[] = [];
  let i = 0;
  for (;;) {
    let field = '';
    if (line[i] === '"') {
      i++;
      for (;;) {
        if (i >= line.length) throw new ImportError(`line ${n}: unterminated quoted field`);
        if (line[i] === '"') {
          if (line[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        field += line[i++];
      }
      if (i < line.length && line[i] !== ',') throw new ImportError(`line ${n}: text after a quoted field`);
    } else {
      const end = line.indexOf(',', i);
      field = end < 0 ? line.slice(i) : line.slice(i, end);
      i = end < 0 ? line.length : end;
    }
    out.push(field.trim());
    if (i >= line.length) return out;
    i++; // the comma
  }
}

/** Rows of a CSV text whose first line names the columns (COLUMNS, any order, unknown ones refused). */
export function parseCsv(text: string): Record<string, string>[] {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  if (lines.length === 0) throw new ImportError('empty CSV: a header line naming the columns is needed');
  const header = csvFields(lines[0]!, 1);
  for (const h of header) if (!(COLUMNS as readonly string[]).includes(h)) throw new ImportError(`unknown CSV column "${h}" (known: ${COLUMNS.join(', ')})`);
  if (lines.length - 1 > MAX_IMPORT_ROWS) throw new ImportError(`more than ${MAX_IMPORT_ROWS} rows`);
  return lines.slice(1).map((l, i) => {
    const f = csvFields(l, i + 2);
    if (f.length !== header.length) throw new ImportError(`line ${i + 2}: ${f.length} fields, the header has ${header.length}`);
    return Object.fromEntries(header.map((h, j) => [h, f[j]!]));
  });
}

const PART = /^[\x20-\x7e]{1,64}$/;

/** Checked rows from a JSON list or the CSV rows; errors name the row (1-based). */
export function importRows(raw: unknown): ImportRow[] {
  const list = Array.isArray(raw) ? raw : (raw as { devices?: unknown } | null)?.devices;
  if (!Array.isArray(list) || list.length === 0) throw new ImportError('a non-empty list of devices (or {"devices": [...]}) is needed');
  if (list.length > MAX_IMPORT_ROWS) throw new ImportError(`more than ${MAX_IMPORT_ROWS} rows`);
  return list.map((r, i) => {
    const row = `row ${i + 1}`;
    if (typeof r !== 'object' || r === null) throw new ImportError(`${row}: not an object`);
    const o = r as Record<string, unknown>;
    const str = (k: string, required: boolean, max = 64): string | null => {
      const v = o[k];
      if (v === undefined || v === null || v === '') {
        if (required) throw new ImportError(`${row}: ${k} is required`);
        return null;
      }
      if (typeof v !== 'string' || v.length > max || (max === 64 && !PART.test(v)))
        throw new ImportError(`${row}: ${k} must be printable text of at most ${max} characters`);
      return v;
    };
    const oui = str('oui', true)!;
    if (!/^[0-9A-Fa-f]{6}$/.test(oui)) throw new ImportError(`${row}: oui must be 6 hexadecimal digits`);
    const root = str('rootModel', false) ?? 'Device';
    if (root !== 'Device' && root !== 'InternetGatewayDevice') throw new ImportError(`${row}: rootModel must be Device or InternetGatewayDevice`);
    const cpeUsername = str('cpeUsername', false, 256);
    const cpePassword = str('cpePassword', false, 256);
    if ((cpeUsername === null) !== (cpePassword === null)) throw new ImportError(`${row}: cpeUsername and cpePassword go together`);
    let tags: string[] | null = null;
    if (o.tags !== undefined && o.tags !== '') {
      const list = typeof o.tags === 'string' ? o.tags.split(';').map((t) => t.trim()) : o.tags;
      if (!Array.isArray(list) || list.length > MAX_TAGS || !list.every((t) => typeof t === 'string' && TAG.test(t)))
        throw new ImportError(`${row}: tags must be at most ${MAX_TAGS} names of 1-64 letters, digits, "_", ".", ":" or "-"`);
      tags = [...new Set(list as string[])];
    }
    return {
      deviceId: {
        manufacturer: str('manufacturer', false) ?? '',
        oui: oui.toUpperCase(),
        productClass: str('productClass', false) ?? '',
        serialNumber: str('serialNumber', true)!,
      },
      rootModel: root,
      cpeUsername,
      cpePassword,
      tags,
    };
  });
}
