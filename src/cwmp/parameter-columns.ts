/**
 * A long parameter list in columns, for the trip from a decode worker back to the main thread
 * (decode-pool.ts). Pure.
 */
import type { SoapEnvelope } from './types.js';

/** What a decode gives (decode-pool.ts DecodeResult): the envelope is all this module touches. */
interface Decoded {
  envelope: SoapEnvelope | null;
}

/**
 * A long ParameterList of a response in columns, as a worker posts it: the main thread reads one
 * message back per body, and 2,000 objects of three strings each cost it about three times the
 * time of three arrays of 2,000 strings (structured clone: a map transition per object).
 */
export type PackedList =
  | { method: 'GetParameterValuesResponse'; names: string[]; values: string[]; types: string[] }
  | { method: 'GetParameterNamesResponse'; names: string[]; writable: boolean[] };

/** Lists this long and longer are packed. */
const PACK_MIN_ENTRIES = 64;

/** Moves a long parameter list out of a decoded result into columns (the result's list left empty). */
export function packLists(result: Decoded): PackedList | undefined {
  const body = result.envelope?.body;
  if (body?.method === 'GetParameterValuesResponse' && body.parameterList.length >= PACK_MIN_ENTRIES) {
    const l = body.parameterList;
    body.parameterList = [];
    return { method: body.method, names: l.map((p) => p.name), values: l.map((p) => p.value), types: l.map((p) => p.type) };
  }
  if (body?.method === 'GetParameterNamesResponse' && body.parameterList.length >= PACK_MIN_ENTRIES) {
    const l = body.parameterList;
    body.parameterList = [];
    return { method: body.method, names: l.map((p) => p.name), writable: l.map((p) => p.writable) };
  }
  return undefined;
}

/** Puts a packed list back into its result (the inverse of packLists). */
export function unpackLists(result: Decoded, packed: PackedList): void {
  const body = result.envelope?.body;
  if (packed.method === 'GetParameterValuesResponse' && body?.method === packed.method) {
    const { names, values, types } = packed;
    body.parameterList = names.map((name, i) => ({ name, value: values[i]!, type: types[i]! }));
  } else if (packed.method === 'GetParameterNamesResponse' && body?.method === packed.method) {
    const { names, writable } = packed;
    body.parameterList = names.map((name, i) => ({ name, writable: writable[i]! }));
  }
}
