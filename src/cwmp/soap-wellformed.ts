/**
 * A cheap XML well-formedness pre-check for the CWMP codec.
 *
 * fast-xml-parser's parser (without XMLValidator) silently accepts unclosed and mismatched
 * tags; XMLValidator catches them but costs about 40% of the parse time (bench/soap-parse.ts).
 * This scan jumps from '<' to '<' with indexOf and only walks the characters of the tags, so
 * it costs a few percent. It checks: one root element, nothing but whitespace, comments and
 * processing instructions outside it, matching start/end tags, well-formed start tags (quoted
 * attribute values without '<', whitespace between attributes), terminated comments, CDATA
 * sections and PIs, no DOCTYPE or other <! declaration, and limits on nesting, on attributes
 * per element and on namespace declarations per document (the parser's time grows faster than
 * linearly with the attributes of one element: 200,000 of them in 2 MB took seconds), and a
 * budget per request (ParseBudget: elements, attributes, time) checked before any tree is built.
 * Entity references are checked where values are decoded (xml-escape.ts unescapeXml).
 */

/** Why a document is not well-formed or not acceptable. */
export class WellFormednessError extends Error {
  constructor(
    message: string,
    readonly dtd = false,
  ) {
    super(message);
  }
}

/** Deepest element nesting accepted (a CWMP envelope needs 8; deep nesting is an attack). */
export const MAX_DEPTH = 64;
/** Most attributes on one element (a CWMP Envelope carries about 6 namespace declarations). */
export const MAX_ATTRIBUTES = 32;
/** Most namespace declarations in one document (each one is copied into every scope below it). */
export const MAX_NAMESPACE_DECLARATIONS = 128;

/**
 * What one request body may cost the decoder (config acs.limits.parse): elements and attributes
 * in the whole document and wall time. The scan counts them before the parser builds any tree, so
 * a body of a million empty elements is refused after reading its first maxElements tags.
 */
export interface ParseBudget {
  maxElements: number;
  maxAttributes: number;
  maxMs: number;
}

/**
 * Far above real CPE bodies: an 8 MB GetParameterValuesResponse (acs.maxBodyBytes) holds at most
 * ~75,000 ParameterValueStructs of 3 elements and 1 attribute each; the largest captured body is
 * far smaller. A body of a million empty elements (4 MB) is over it.
 */
export const DEFAULT_PARSE_BUDGET: ParseBudget = { maxElements: 500_000, maxAttributes: 250_000, maxMs: 5_000 };

/** The body is over its ParseBudget (not malformed: the caller answers 413). */
export class ParseBudgetError extends WellFormednessError {}

/** Tags scanned between two looks at the clock. */
const CLOCK_EVERY = 4096;

const isWs = (c: number): boolean => c === 32 || c === 10 || c === 9 || c === 13;

/**
 * Rejects DOCTYPE and ENTITY declarations anywhere in the text (even inside CDATA or comments:
 * cheaper and stricter than knowing where they are). Runs before any parsing.
 */
export function rejectDtd(xml: string): void {
  let k = xml.indexOf('<!');
  while (k !== -1) {
    let j = k + 2;
    while (j < xml.length && isWs(xml.charCodeAt(j))) j++;
    const word = xml.slice(j, j + 7).toUpperCase();
    if (word === 'DOCTYPE') throw new WellFormednessError('DOCTYPE is not allowed', true);
    if (word.startsWith('ENTITY')) throw new WellFormednessError('ENTITY declaration is not allowed', true);
    k = xml.indexOf('<!', k + 2);
  }
}

/** Throws WellFormednessError when the document is not well-formed XML. */
export function checkWellFormed(xml: string, budget: ParseBudget = DEFAULT_PARSE_BUDGET, startedMs = performance.now()): void {
  const len = xml.length;
  let elements = 0;
  let allAttributes = 0;
  const stack: string[] = [];
  let seenRoot = false;
  let declarations = 0;
  let i = 0;
  const fail: (msg: string, at: number) => never = (msg, at) => {
    throw new WellFormednessError(`${msg} (offset ${at})`);
  };
  while (i < len) {
    const lt = xml.indexOf('<', i);
    const textEnd = lt === -1 ? len : lt;
    if (stack.length === 0) {
      for (let k = i; k < textEnd; k++) {
        if (!isWs(xml.charCodeAt(k))) fail(seenRoot ? 'content after the root element' : 'content before the root element', k);
      }
    }
    if (lt === -1) break;
    const c1 = xml.charCodeAt(lt + 1);
    if (c1 === 47 /* / */) {
      const gt = xml.indexOf('>', lt + 2);
      if (gt === -1) fail('unterminated end tag', lt);
      let e = gt;
      while (e > lt + 2 && isWs(xml.charCodeAt(e - 1))) e--;
      const name = xml.slice(lt + 2, e);
      const open = stack.pop();
      if (open === undefined) fail(`end tag </${name}> without a start tag`, lt);
      if (open !== name) fail(`end tag </${name}> does not match <${open}>`, lt);
      i = gt + 1;
      continue;
    }
    if (c1 === 33 /* ! */) {
      if (xml.startsWith('<!--', lt)) {
        const e = xml.indexOf('-->', lt + 4);
        if (e === -1) fail('unterminated comment', lt);
        i = e + 3;
        continue;
      }
      if (xml.startsWith('<![CDATA[', lt)) {
        if (stack.length === 0) fail('CDATA section outside the root element', lt);
        const e = xml.indexOf(']]>', lt + 9);
        if (e === -1) fail('unterminated CDATA section', lt);
        i = e + 3;
        continue;
      }
      fail('markup declarations are not allowed', lt);
    }
    if (c1 === 63 /* ? */) {
      const e = xml.indexOf('?>', lt + 2);
      if (e === -1) fail('unterminated processing instruction', lt);
      const target = xml.slice(lt + 2, Math.min(e, lt + 6));
      if (/^xml(\s|$)/i.test(target) && lt !== 0) fail('XML declaration is not at the start of the document', lt);
      i = e + 2;
      continue;
    }
    // Start tag.
    if (stack.length === 0 && seenRoot) fail('more than one root element', lt);
    if (++elements > budget.maxElements) throw new ParseBudgetError(`more than ${budget.maxElements} elements (acs.limits.parse.maxElements)`);
    if (elements % CLOCK_EVERY === 0 && performance.now() - startedMs > budget.maxMs) {
      throw new ParseBudgetError(`decoding took more than ${budget.maxMs} ms (acs.limits.parse.maxMs)`);
    }
    let k = lt + 1;
    const nameStart = k;
    for (; k < len; k++) {
      const c = xml.charCodeAt(k);
      if (isWs(c) || c === 47 || c === 62) break;
      if (c === 60 || c === 61 || c === 34 || c === 39 || c === 38) fail('invalid character in tag name', k);
    }
    if (k === nameStart) fail("'<' not followed by a tag name", lt);
    const c0 = xml.charCodeAt(nameStart);
    if ((c0 >= 48 && c0 <= 57) || c0 === 45 || c0 === 46) fail('invalid tag name', nameStart);
    const name = xml.slice(nameStart, k);
    let attributes = 0;
    for (;;) {
      const hadWs = k < len && isWs(xml.charCodeAt(k));
      while (k < len && isWs(xml.charCodeAt(k))) k++;
      if (k >= len) fail(`unterminated start tag <${name}>`, lt);
      const c = xml.charCodeAt(k);
      if (c === 62 /* > */) {
        if (stack.length >= MAX_DEPTH) fail(`elements nested deeper than ${MAX_DEPTH}`, lt);
        stack.push(name);
        k++;
        break;
      }
      if (c === 47 /* / */) {
        if (xml.charCodeAt(k + 1) !== 62) fail(`malformed start tag <${name}>`, k);
        k += 2;
        break;
      }
      if (!hadWs) fail(`missing whitespace before attribute in <${name}>`, k);
      const an = k;
      for (; k < len; k++) {
        const d = xml.charCodeAt(k);
        if (d === 61 || isWs(d) || d === 62 || d === 47 || d === 60 || d === 34 || d === 39) break;
      }
      if (k === an) fail(`malformed attribute in <${name}>`, k);
      if (++attributes > MAX_ATTRIBUTES) fail(`more than ${MAX_ATTRIBUTES} attributes in <${name}>`, an);
      if (++allAttributes > budget.maxAttributes) throw new ParseBudgetError(`more than ${budget.maxAttributes} attributes (acs.limits.parse.maxAttributes)`);
      if (xml.startsWith('xmlns', an) && ++declarations > MAX_NAMESPACE_DECLARATIONS) {
        fail(`more than ${MAX_NAMESPACE_DECLARATIONS} namespace declarations`, an);
      }
      while (k < len && isWs(xml.charCodeAt(k))) k++;
      if (xml.charCodeAt(k) !== 61 /* = */) fail(`attribute without value in <${name}>`, k);
      k++;
      while (k < len && isWs(xml.charCodeAt(k))) k++;
      const q = xml.charCodeAt(k);
      if (q !== 34 && q !== 39) fail(`unquoted attribute value in <${name}>`, k);
      const e = xml.indexOf(q === 34 ? '"' : "'", k + 1);
      if (e === -1) fail(`unterminated attribute value in <${name}>`, k);
      const lt2 = xml.indexOf('<', k + 1);
      if (lt2 !== -1 && lt2 < e) fail(`'<' in attribute value in <${name}>`, lt2);
      k = e + 1;
    }
    seenRoot = true;
    i = k;
  }
  if (stack.length > 0) fail(`element <${stack[stack.length - 1]}> is not closed`, len);
  if (!seenRoot) fail('no root element', 0);
}
