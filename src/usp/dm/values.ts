/**
 * Value checks for TR-106 types (TR-369: a value of the wrong type is 7011 invalid type;
 * a well-typed value out of range or outside the enumeration is 7012 invalid value).
 */
import type { ParamSchema, ParamType } from './types.js';

const RANGES: Partial<Record<ParamType, [bigint, bigint]>> = {
  int: [-(2n ** 31n), 2n ** 31n - 1n],
  unsignedInt: [0n, 2n ** 32n - 1n],
  long: [-(2n ** 63n), 2n ** 63n - 1n],
  unsignedLong: [0n, 2n ** 64n - 1n],
};

const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?$/;

/** null when the value is acceptable for the parameter. */
export function checkValue(p: Pick<ParamSchema, 'type' | 'enumeration' | 'list'>, value: string): { code: 7011 | 7012; message: string } | null {
  const items = p.list ? (value === '' ? [] : value.split(',').map((s) => s.trim())) : [value];
  for (const v of items) {
    const bad = checkOne(p.type, v);
    if (bad) return { code: 7011, message: bad };
    if (p.enumeration && !p.enumeration.includes(v)) return { code: 7012, message: `"${v}" is not one of ${p.enumeration.join(', ')}` };
  }
  return null;
}

function checkOne(type: ParamType, v: string): string | null {
  switch (type) {
    case 'boolean':
      return /^(true|false|1|0)$/i.test(v) ? null : `expected a boolean (got "${v}")`;
    case 'int':
    case 'unsignedInt':
    case 'long':
    case 'unsignedLong': {
      if (!/^-?\d+$/.test(v)) return `expected ${type} (got "${v}")`;
      const [min, max] = RANGES[type]!;
      const n = BigInt(v);
      return n < min || n > max ? `${v} is out of range for ${type}` : null;
    }
    case 'decimal':
      return /^-?\d+(\.\d+)?$/.test(v) ? null : `expected a decimal (got "${v}")`;
    case 'dateTime':
      return DATE_TIME.test(v) && !Number.isNaN(Date.parse(v.replace(/Z?$/, v.endsWith('Z') || /[+-]\d{2}:\d{2}$/.test(v) ? '' : 'Z')))
        ? null
        : `expected a dateTime (got "${v}")`;
    case 'base64':
      return /^[A-Za-z0-9+/]*={0,2}$/.test(v) && v.length % 4 === 0 ? null : 'expected base64';
    case 'hexBinary':
      return /^([0-9A-Fa-f]{2})*$/.test(v) ? null : 'expected hexBinary';
    case 'string':
      return null;
  }
}
