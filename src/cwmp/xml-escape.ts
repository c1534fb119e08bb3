/**
 * XML text escaping and unescaping for the CWMP codec. Pure string functions.
 *
 * Encoding: & < > " ' become the five predefined entities; CR becomes &#13; (a raw CR would
 * be turned into LF by every conformant parser, XML 1.0 section 2.11); characters that XML 1.0
 * cannot carry at all (C0 controls other than TAB/LF/CR, U+FFFE, U+FFFF, lone surrogates) are
 * dropped, because no escape for them is legal either (section 2.2).
 *
 * Decoding: the five predefined entities and numeric character references only; any other
 * reference is malformed XML (we never read a DTD, so no other entity can be defined).
 */

// Characters escapeXml must touch: the five specials, CR, and everything not allowed in XML 1.0.
// eslint-disable-next-line no-control-regex
const NEEDS_ESCAPE = /[&<>"'\r\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF\uD800-\uDFFF]/;
// eslint-disable-next-line no-control-regex
const ESCAPE_ALL = /[&<>"'\r\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF][\uDC00-\uDFFF]?|[\uDC00-\uDFFF]/g;

function escapeChar(c: string): string {
  switch (c) {
    case '&':
      return '&amp;';
    case '<':
      return '&lt;';
    case '>':
      return '&gt;';
    case '"':
      return '&quot;';
    case "'":
      return '&apos;';
    case '\r':
      return '&#13;';
    default:
      // A valid surrogate pair is kept; a lone surrogate or forbidden control is dropped.
      return c.length === 2 ? c : '';
  }
}

/** Escapes a string for use as XML 1.0 element text or a quoted attribute value. */
export function escapeXml(s: string): string {
  return NEEDS_ESCAPE.test(s) ? s.replace(ESCAPE_ALL, escapeChar) : s;
}

/** True when the code point may appear in an XML 1.0 document (production [2] Char). */
export function isXmlChar(cp: number): boolean {
  return cp === 0x9 || cp === 0xa || cp === 0xd || (cp >= 0x20 && cp <= 0xd7ff) || (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff);
}

/** Thrown by unescapeXml; the codec turns it into SoapError('malformed-xml'). */
export class XmlEntityError extends Error {}

/**
 * Decodes raw element text or attribute value: line-end normalisation (CRLF/CR -> LF, done
 * before references so &#13; survives) then the predefined entities and numeric references.
 */
export function unescapeXml(raw: string): string {
  let s = raw;
  if (s.indexOf('\r') !== -1) s = s.replace(/\r\n?/g, '\n');
  let amp = s.indexOf('&');
  if (amp === -1) return s;
  let out = '';
  let from = 0;
  while (amp !== -1) {
    const semi = s.indexOf(';', amp + 1);
    if (semi === -1 || semi - amp > 12) throw new XmlEntityError(`bare '&' or unterminated reference at "${s.slice(amp, amp + 12)}"`);
    const ref = s.slice(amp + 1, semi);
    let ch: string;
    switch (ref) {
      case 'amp':
        ch = '&';
        break;
      case 'lt':
        ch = '<';
        break;
      case 'gt':
        ch = '>';
        break;
      case 'quot':
        ch = '"';
        break;
      case 'apos':
        ch = "'";
        break;
      default: {
        let cp = NaN;
        if (/^#x[0-9a-fA-F]+$/.test(ref)) cp = parseInt(ref.slice(2), 16);
        else if (/^#[0-9]+$/.test(ref)) cp = parseInt(ref.slice(1), 10);
        else throw new XmlEntityError(`undefined entity &${ref};`);
        if (!isXmlChar(cp)) throw new XmlEntityError(`character reference &${ref}; is not an XML 1.0 character`);
        ch = String.fromCodePoint(cp);
      }
    }
    out += s.slice(from, amp) + ch;
    from = semi + 1;
    amp = s.indexOf('&', from);
  }
  return out + s.slice(from);
}
