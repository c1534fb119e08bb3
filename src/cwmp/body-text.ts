/**
 * The text of a CPE's SOAP body, in the character encoding the CPE used. Pure.
 *
 * Which encoding (RFC 7303 3.2 and 8.1, XML 1.0 4.3.3 and appendix F): a byte order mark first,
 * then the charset parameter of Content-Type, then the encoding in the XML declaration, else
 * UTF-8. One tolerance: a body labelled UTF-8 (or not labelled) that is not valid UTF-8 but whose
 * XML declaration names a single-byte encoding is read in that encoding; such CPEs send
 * ISO-8859-1 text under a fixed `charset="utf-8"` header.
 *
 * ISO-8859-1, US-ASCII and windows-1252 are all read as windows-1252, as the WHATWG Encoding
 * standard does: what senders labelled ISO-8859-1 use in 0x80-0x9F is windows-1252.
 */
import { isUtf8 } from 'node:buffer';

export type BodyCharset = 'utf-8' | 'utf-16le' | 'utf-16be' | 'windows-1252';

export interface BodyText {
  text: string;
  charset: BodyCharset;
  /** A charset label that was not recognised (the body was read as UTF-8), for a warning. */
  unknownLabel?: string;
}

const LABELS: ReadonlyMap<string, BodyCharset> = new Map([
  ['utf-8', 'utf-8'],
  ['utf8', 'utf-8'],
  ['unicode-1-1-utf-8', 'utf-8'],
  ['utf-16', 'utf-16le'],
  ['utf-16le', 'utf-16le'],
  ['utf-16be', 'utf-16be'],
  ['iso-8859-1', 'windows-1252'],
  ['iso8859-1', 'windows-1252'],
  ['iso_8859-1', 'windows-1252'],
  ['iso-ir-100', 'windows-1252'],
  ['latin1', 'windows-1252'],
  ['l1', 'windows-1252'],
  ['cp819', 'windows-1252'],
  ['us-ascii', 'windows-1252'],
  ['ascii', 'windows-1252'],
  ['windows-1252', 'windows-1252'],
  ['cp1252', 'windows-1252'],
]);

/** windows-1252 0x80-0x9F (undefined positions stay the C1 control, as WHATWG decodes them). */
const CP1252_HIGH =
  '\u20AC\u0081\u201A\u0192\u201E\u2026\u2020\u2021\u02C6\u2030\u0160\u2039\u0152\u008D\u017D\u008F' +
  '\u0090\u2018\u2019\u201C\u201D\u2022\u2013\u2014\u02DC\u2122\u0161\u203A\u0153\u009D\u017E\u0178';

function decodeCp1252(raw: Buffer): string {
  const s = raw.toString('latin1');
  return /[\u0080-\u009F]/.test(s) ? s.replace(/[\u0080-\u009F]/g, (c) => CP1252_HIGH[c.charCodeAt(0) - 0x80]!) : s;
}

function decode(raw: Buffer, charset: BodyCharset): string {
  switch (charset) {
    case 'utf-8':
      return raw.toString('utf8');
    case 'utf-16le':
      return raw.toString('utf16le');
    case 'utf-16be': {
      const even = Buffer.from(raw.subarray(0, raw.length & ~1));
      return even.swap16().toString('utf16le');
    }
    case 'windows-1252':
      return decodeCp1252(raw);
  }
}

/** The charset parameter of a Content-Type value, lower-cased, quotes removed; undefined if none. */
export function charsetParam(contentType: string | undefined): string | undefined {
  if (!contentType) return undefined;
  const m = /;\s*charset\s*=\s*(?:"([^"]*)"|([^\s;]+))/i.exec(contentType);
  if (m === null) return undefined;
  return (m[1] ?? m[2] ?? '').trim().toLowerCase();
}

/** The encoding named by an XML declaration at the start of an ASCII-compatible body. */
function declaredEncoding(raw: Buffer): string | undefined {
  const head = raw.toString('latin1', 0, Math.min(raw.length, 256));
  const m = /^\s*<\?xml[^>]*?\sencoding\s*=\s*["']([A-Za-z0-9._-]+)["']/.exec(head);
  return m === null ? undefined : m[1]!.toLowerCase();
}

export function bodyText(raw: Buffer, contentType?: string): BodyText {
  // Byte order marks (XML 1.0 appendix F); the UTF-8 one is stripped by the codec.
  if (raw.length >= 2) {
    if (raw[0] === 0xff && raw[1] === 0xfe) return { text: raw.subarray(2).toString('utf16le'), charset: 'utf-16le' };
    if (raw[0] === 0xfe && raw[1] === 0xff) return { text: decode(raw.subarray(2), 'utf-16be'), charset: 'utf-16be' };
    // UTF-16 without a mark: "<?" as 3C 00 3F 00 or 00 3C 00 3F.
    if (raw[0] === 0x3c && raw[1] === 0 && raw[2] === 0x3f && raw[3] === 0) return { text: decode(raw, 'utf-16le'), charset: 'utf-16le' };
    if (raw[0] === 0 && raw[1] === 0x3c && raw[2] === 0 && raw[3] === 0x3f) return { text: decode(raw, 'utf-16be'), charset: 'utf-16be' };
  }
  const label = charsetParam(contentType);
  let charset = label === undefined ? undefined : LABELS.get(label);
  const declared = declaredEncoding(raw);
  const fromDeclaration = declared === undefined ? undefined : LABELS.get(declared);
  if (charset === undefined) charset = fromDeclaration;
  if ((charset === undefined || charset === 'utf-8') && fromDeclaration === 'windows-1252' && !isUtf8(raw)) charset = 'windows-1252';
  const result: BodyText = { text: decode(raw, charset ?? 'utf-8'), charset: charset ?? 'utf-8' };
  if (label !== undefined && !LABELS.has(label)) result.unknownLabel = label;
  else if (label === undefined && declared !== undefined && fromDeclaration === undefined) result.unknownLabel = declared;
  return result;
}
