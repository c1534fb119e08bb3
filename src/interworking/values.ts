/**
 * Values crossing between CWMP and USP: booleans, xsi:types and secured parameters, in one place
 * for both device backends and the event bridge.
 */
import type { ParamType } from '../usp/dm/types.js';
import { isSecured } from './type-table.js';

/** A CWMP boolean ("1", "0", "true", "false", any case) as USP writes it; null when not a boolean. */
export function uspBoolean(v: string): 'true' | 'false' | null {
  const t = v.trim().toLowerCase();
  if (t === 'true' || t === '1') return 'true';
  if (t === 'false' || t === '0') return 'false';
  return null;
}

/** USP booleans are true/false whatever the CPE sends (TR-106 3.2.1 allows 0/1 on the CWMP side). */
export function toUspValue(type: string | undefined, value: string): string {
  if (type === 'xsd:boolean') return uspBoolean(value) ?? value;
  return value;
}

/** SetParameterValues sends booleans as true/false (TR-106 3.2.1: both forms are valid). */
export function toCwmpValue(type: string | undefined, value: string): string {
  if (type === 'xsd:boolean') return uspBoolean(value) ?? value;
  return value;
}

const XSD_TO_PARAM: Readonly<Record<string, ParamType>> = {
  'xsd:string': 'string',
  'xsd:int': 'int',
  'xsd:unsignedInt': 'unsignedInt',
  'xsd:long': 'long',
  'xsd:unsignedLong': 'unsignedLong',
  'xsd:boolean': 'boolean',
  'xsd:dateTime': 'dateTime',
  'xsd:base64': 'base64',
  'xsd:base64Binary': 'base64',
  'xsd:hexBinary': 'hexBinary',
  'xsd:decimal': 'decimal',
};

/** xsi:type -> the TR-369 ParamValueType name (unknown types read as string). */
export function paramTypeOf(xsd: string | undefined): ParamType {
  return (xsd && XSD_TO_PARAM[xsd.replace(/^[^:]*:/, 'xsd:')]) || 'string';
}

/** The xsi:type of a USP type name. */
export function xsdOf(t: ParamType | string): string {
  return t === 'base64' ? 'xsd:base64' : `xsd:${t}`;
}

/** Vendor parameters that hold secrets by name (TR-181 marks the standard ones secured). */
const SECRET_NAME = /(Password|Passphrase|PreSharedKey|WEPKey|SecretKey|PSK|Secret)$/i;

/**
 * Secured parameters read as an empty string (TR-106 "secured"/"hidden"; TR-069 A.3.2.2), whatever
 * the CPE reports: passwords, keys and passphrases never reach a controller or a log.
 */
export function isSecret(path: string): boolean {
  return isSecured(path) || SECRET_NAME.test(path.slice(path.lastIndexOf('.') + 1));
}

/** What a secured parameter reads as: the null value of its type ("" for strings, false, 0). */
export function securedValue(type: string | undefined): string {
  switch (paramTypeOf(type)) {
    case 'boolean':
      return 'false';
    case 'int':
    case 'long':
    case 'unsignedInt':
    case 'unsignedLong':
    case 'decimal':
      return '0';
    default:
      return '';
  }
}
