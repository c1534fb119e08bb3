/**
 * USP path grammar (TR-369 "Path Names" and "Data Model Path Grammar"): a typed AST,
 * a single-pass linear parser with precise 7008 errors, and a canonical formatter.
 *
 * Pure: no I/O, no globals. The resolver that needs a data model lives in path-resolve.ts.
 */

/** Longest path text accepted. TR-369 sets no limit; 4096 bounds work on hostile input. */
export const MAX_PATH_LENGTH = 4096;
/** Largest instance number (TR-106 instance numbers are unsignedInt). */
export const MAX_INSTANCE_NUMBER = 4294967295;

/** A path problem carrying its USP error code (7008 invalid path syntax, 7026 invalid path, ...). */
export class PathError extends Error {
  readonly code: number;
  /** Offset in the path text where the problem was found, when it is a syntax problem. */
  readonly offset: number | undefined;
  constructor(code: number, message: string, offset?: number) {
    super(message);
    this.name = 'PathError';
    this.code = code;
    this.offset = offset;
  }
}

/** 7008 Invalid path syntax. Message: `invalid path syntax at offset N: expected ...`. */
export class PathSyntaxError extends PathError {
  declare readonly code: 7008;
  constructor(offset: number, detail: string) {
    super(7008, `invalid path syntax at offset ${offset}: ${detail}`, offset);
    this.name = 'PathSyntaxError';
  }
}

export type PathKind = 'object' | 'parameter' | 'command' | 'event';

/** `#n+` / `#*+` / `+`. `index` absent means the bare `+` (same meaning as `#1+`). */
export interface RefFollow {
  readonly index?: number | '*';
}

export type SearchOperator = '==' | '!=' | '~=' | '<' | '>' | '<=' | '>=';

/**
 * Expression constant. `string` = a double-quoted literal (value is percent-decoded: %22 -> '"',
 * %25 -> '%'); `literal` = an unquoted token (number, boolean, dateTime, hexBinary ...) kept verbatim.
 */
export type SearchValue = { readonly type: 'string'; readonly value: string } | { readonly type: 'literal'; readonly text: string };

/** One part of an expression parameter (relpath); only the last part may not carry `ref`. */
export interface RelPathPart {
  readonly name: string;
  readonly ref?: RefFollow;
}

export interface SearchTerm {
  readonly param: readonly RelPathPart[];
  readonly op: SearchOperator;
  readonly value: SearchValue;
}

export type Segment =
  | { readonly type: 'name'; readonly name: string; readonly ref?: RefFollow }
  | { readonly type: 'instance'; readonly instance: number }
  | { readonly type: 'wildcard' }
  | { readonly type: 'search'; readonly terms: readonly SearchTerm[] };

/** Object (and "partial") path: `Device.` + segments, each followed by '.'. */
export interface ObjectPath {
  readonly kind: 'object';
  readonly segments: readonly Segment[];
}

/** Parameter `...Name`, command `...Name()`, event `...Name!`; `leaf` is the bare name. */
export interface LeafPath {
  readonly kind: 'parameter' | 'command' | 'event';
  readonly segments: readonly Segment[];
  readonly leaf: string;
}

/** A parsed path below the root `Device.` (the root is implicit and not a segment). */
export type UspPath = ObjectPath | LeafPath;

export interface ParseOptions {
  /** Reject wildcards, search expressions and reference following (7008). */
  readonly instantiated?: boolean;
  /** Reject wildcards and reference following (7008): what a reference value may hold (R-ARC.11). */
  readonly reference?: boolean;
}

const ROOT = 'Device';

function isNameStart(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95; // A-Z a-z _
}
function isNameChar(c: number): boolean {
  // TR-369 BNF: [A-Za-z_0-9]. TR-106 also allows '-' after the first character (vendor
  // prefixes like X_EXAMPLE-COM_), so we accept it too.
  return isNameStart(c) || isDigit(c) || c === 45;
}
function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}
/** Characters of an unquoted expression constant: numbers, true/false, dateTime, hexBinary. */
function isLiteralChar(c: number): boolean {
  return isNameChar(c) || c === 43 /* + */ || c === 46 /* . */ || c === 58 /* : */;
}
function isSpace(c: number): boolean {
  return c === 32 || c === 9;
}

function describe(text: string, pos: number): string {
  if (pos >= text.length) return 'end of path';
  return JSON.stringify(text[pos]);
}

/** Single-pass recursive-descent-free parser: every loop advances `pos`, so it is O(n). */
class Parser {
  pos = 0;
  constructor(
    readonly text: string,
    readonly opts: ParseOptions,
  ) {}

  fail(detail: string, at = this.pos): never {
    throw new PathSyntaxError(at, detail);
  }
  expected(what: string, at = this.pos): never {
    this.fail(`expected ${what}, found ${describe(this.text, at)}`, at);
  }
  peek(): number {
    return this.pos < this.text.length ? this.text.charCodeAt(this.pos) : -1;
  }
  skipSpaces(): void {
    while (isSpace(this.peek())) this.pos++;
  }
  notInstantiated(what: string, at: number, allowedInReference = false): void {
    if (this.opts.instantiated) this.fail(`${what} not allowed in an instantiated path`, at);
    if (this.opts.reference && !allowedInReference) this.fail(`${what} not allowed in a reference value`, at);
  }

  name(what: string): string {
    const start = this.pos;
    if (!isNameStart(this.peek())) this.expected(what);
    this.pos++;
    while (isNameChar(this.peek())) this.pos++;
    return this.text.slice(start, this.pos);
  }

  posnum(what: string): number {
    const start = this.pos;
    if (!isDigit(this.peek())) this.expected(what);
    if (this.peek() === 48) this.fail(`${what} must be a positive integer without leading zeros`);
    while (isDigit(this.peek())) this.pos++;
    const digits = this.text.slice(start, this.pos);
    const n = digits.length > 10 ? Infinity : Number(digits);
    if (n > MAX_INSTANCE_NUMBER) this.fail(`${what} ${digits.length > 20 ? digits.slice(0, 20) + '...' : digits} exceeds ${MAX_INSTANCE_NUMBER}`, start);
    return n;
  }

  /** At '#' or '+': reffollow ::= ('#' (posnum | '*'))? '+' */
  refFollow(): RefFollow {
    this.notInstantiated('reference following', this.pos);
    if (this.peek() === 43) {
      this.pos++;
      return {};
    }
    this.pos++; // '#'
    let index: number | '*';
    if (this.peek() === 42) {
      this.pos++;
      index = '*';
    } else {
      index = this.posnum("list item number or '*' after '#'");
    }
    if (this.peek() !== 43) this.expected("'+' after reference list index");
    this.pos++;
    return { index };
  }

  parse(): UspPath {
    const { text } = this;
    if (text.length === 0) this.fail("empty path: expected 'Device.'");
    if (text.length > MAX_PATH_LENGTH) this.fail(`path longer than ${MAX_PATH_LENGTH} characters`, MAX_PATH_LENGTH);
    const root = this.name("root object name 'Device'");
    if (this.peek() !== 46) this.expected(`'.' after root object ${JSON.stringify(root)}`);
    this.pos++;
    const segments: Segment[] = [];
    let result: UspPath | undefined;
    while (result === undefined) {
      const c = this.peek();
      const start = this.pos;
      if (c === -1) {
        result = { kind: 'object', segments };
        break;
      }
      const prev = segments.length > 0 ? segments[segments.length - 1] : undefined;
      const instanceAllowed = prev !== undefined && prev.type === 'name' && prev.ref === undefined;
      if (isDigit(c) || c === 42 || c === 91) {
        if (!instanceAllowed) {
          this.fail(
            prev === undefined
              ? 'instance identifier must follow a table name'
              : prev.type === 'name'
                ? "instance identifier cannot follow reference following: expected a name after '+.'"
                : 'instance identifier cannot follow another instance identifier',
            start,
          );
        }
        if (isDigit(c)) {
          segments.push({ type: 'instance', instance: this.posnum('instance number') });
        } else if (c === 42) {
          this.notInstantiated("wildcard '*'", start);
          this.pos++;
          segments.push({ type: 'wildcard' });
        } else {
          this.notInstantiated('search expression', start, true);
          segments.push({ type: 'search', terms: this.expression() });
        }
        if (this.peek() !== 46) this.expected("'.' after instance identifier");
        this.pos++;
        continue;
      }
      if (c === 46) this.fail("empty path segment ('..')");
      if (!isNameStart(c)) this.expected("object or parameter name, instance number, '*' or '['");
      const name = this.name('name');
      const next = this.peek();
      if (next === 46) {
        this.pos++;
        segments.push({ type: 'name', name });
      } else if (next === 43 || next === 35) {
        const ref = this.refFollow();
        if (this.peek() !== 46) this.expected("'.' after reference following '+'");
        this.pos++;
        segments.push({ type: 'name', name, ref });
      } else if (next === 40) {
        this.pos++;
        if (this.peek() !== 41) this.expected("')' after '(' (commands take no arguments in a path)");
        this.pos++;
        result = { kind: 'command', segments, leaf: name };
      } else if (next === 33) {
        this.pos++;
        result = { kind: 'event', segments, leaf: name };
      } else if (next === -1) {
        result = { kind: 'parameter', segments, leaf: name };
      } else {
        this.expected("'.', '()', '!', '+' or end of path after name");
      }
    }
    if (this.pos !== text.length) {
      this.fail(`unexpected ${describe(text, this.pos)} after ${result.kind === 'command' ? "'()'" : "'!'"}: a ${result.kind} name must end the path`);
    }
    if (root !== ROOT) {
      // Well-formed, but USP agents only have the Device:2 model (TR-369 "Data Models").
      throw new PathError(7026, `invalid path: root object must be 'Device', found ${JSON.stringify(root)}`, 0);
    }
    return result;
  }

  /** At '[': expr ::= '[' exprcomp ('&&' exprcomp)* ']' */
  expression(): SearchTerm[] {
    const open = this.pos;
    this.pos++;
    const terms: SearchTerm[] = [];
    this.skipSpaces();
    if (this.peek() === 93) this.fail('empty search expression');
    for (;;) {
      terms.push(this.term());
      this.skipSpaces();
      const c = this.peek();
      if (c === 93) {
        this.pos++;
        return terms;
      }
      if (c === 38) {
        if (this.text.charCodeAt(this.pos + 1) !== 38) this.expected("'&&'");
        this.pos += 2;
        this.skipSpaces();
        continue;
      }
      if (c === 124) this.fail("'|' is not supported in search expressions: only '&&' (TR-369 Searching with Expressions)");
      if (c === -1) this.fail(`unterminated search expression opened at offset ${open}: expected ']'`);
      this.expected("'&&' or ']' after search term");
    }
  }

  term(): SearchTerm {
    const param: RelPathPart[] = [];
    // relpath ::= name (reffollow? '.' name)*   -- never an instance: no child tables (TR-369).
    for (;;) {
      const name = this.name('parameter name in search expression');
      const c = this.peek();
      if (c === 43 || c === 35) {
        const ref = this.refFollow();
        if (this.peek() !== 46) this.expected("'.' after reference following '+'");
        this.pos++;
        param.push({ name, ref });
      } else if (c === 46) {
        this.pos++;
        param.push({ name });
        const n = this.peek();
        if (isDigit(n) || n === 42 || n === 91) this.fail('search expression parameter cannot descend into a child table');
      } else {
        param.push({ name });
        break;
      }
    }
    this.skipSpaces();
    const opAt = this.pos;
    const op = this.operator();
    this.skipSpaces();
    const value = this.value();
    if (value.type === 'string' && op !== '==' && op !== '!=' && op !== '~=') {
      // TR-369: for string types only '==' and '!=' are valid (and '~=' for lists).
      this.fail(`operator '${op}' cannot be used with a string constant`, opAt);
    }
    return { param, op, value };
  }

  operator(): SearchOperator {
    const a = this.peek();
    const b = this.pos + 1 < this.text.length ? this.text.charCodeAt(this.pos + 1) : -1;
    if (b === 61 && (a === 61 || a === 33 || a === 126 || a === 60 || a === 62)) {
      this.pos += 2;
      return (String.fromCharCode(a) + '=') as SearchOperator;
    }
    if (a === 60 || a === 62) {
      this.pos++;
      return a === 60 ? '<' : '>';
    }
    return this.expected("operator '==', '!=', '~=', '<', '>', '<=' or '>='");
  }

  value(): SearchValue {
    if (this.peek() === 34) {
      const open = this.pos;
      const close = this.text.indexOf('"', open + 1);
      if (close < 0) this.fail(`unterminated string constant opened at offset ${open}: expected '"'`, this.text.length);
      this.pos = close + 1;
      return { type: 'string', value: decodeStringConstant(this.text.slice(open + 1, close)) };
    }
    const start = this.pos;
    while (isLiteralChar(this.peek())) this.pos++;
    if (this.pos === start) {
      this.expected('constant (a number, true/false, or a double-quoted string)');
    }
    return { type: 'literal', text: this.text.slice(start, this.pos) };
  }
}

/** TR-369: '"' inside a string constant is written %22 and '%' is written %25. */
function decodeStringConstant(raw: string): string {
  if (!raw.includes('%')) return raw;
  return raw.replace(/%(22|25)/gi, (_m, hex: string) => (hex === '22' ? '"' : '%'));
}
function encodeStringConstant(value: string): string {
  return value.replace(/[%"]/g, (c) => (c === '%' ? '%25' : '%22'));
}

/**
 * Parse a USP Path Name / Search Path (TR-369 "Data Model Path Grammar", instantiated model).
 * Throws PathSyntaxError (7008) with the offset, or PathError 7026 when the root is not `Device`.
 */
export function parsePath(text: string, opts: ParseOptions = {}): UspPath {
  return new Parser(text, opts).parse();
}

/** Parse a path that may contain only names and instance numbers (no `*`, `[...]`, `+`). */
export function parseInstantiatedPath(text: string): UspPath {
  return parsePath(text, { instantiated: true });
}

/**
 * Parse the value of a reference parameter (TR-369 "Reference Following"): an object (instance)
 * path that may omit the trailing '.', addressed by instance numbers or unique keys (R-ARC.11).
 * Wildcards and reference following are rejected (7008); a non-object path is 7008 too.
 */
export function parseReference(text: string): ObjectPath {
  const p = parsePath(text.endsWith('.') ? text : text + '.', { reference: true });
  if (p.kind !== 'object') throw new PathSyntaxError(text.length, `a reference must name an object, not a ${p.kind}`);
  return p;
}

function formatRef(ref: RefFollow): string {
  return ref.index === undefined ? '+' : `#${ref.index}+`;
}

export function formatSearchTerm(t: SearchTerm): string {
  let s = '';
  for (const p of t.param) s += p.ref ? `${p.name}${formatRef(p.ref)}.` : `${p.name}.`;
  s = s.slice(0, -1) + t.op;
  return s + (t.value.type === 'string' ? `"${encodeStringConstant(t.value.value)}"` : t.value.text);
}

export function formatSegment(seg: Segment): string {
  switch (seg.type) {
    case 'name':
      return seg.ref ? seg.name + formatRef(seg.ref) : seg.name;
    case 'instance':
      return String(seg.instance);
    case 'wildcard':
      return '*';
    case 'search':
      return `[${seg.terms.map(formatSearchTerm).join('&&')}]`;
  }
}

/** Canonical text: no whitespace, strings with only %22/%25 escapes. formatPath(parsePath(s)) === s for canonical s. */
export function formatPath(path: UspPath): string {
  let s = ROOT + '.';
  for (const seg of path.segments) s += formatSegment(seg) + '.';
  switch (path.kind) {
    case 'object':
      return s;
    case 'parameter':
      return s + path.leaf;
    case 'command':
      return s + path.leaf + '()';
    case 'event':
      return s + path.leaf + '!';
  }
}

/** Only names and instance numbers: addresses at most one thing without consulting values. */
export function isInstantiated(path: UspPath): boolean {
  return path.segments.every((s) => s.type === 'instance' || (s.type === 'name' && s.ref === undefined));
}

/** True for a Search Path (TR-369 "Path Names" item 6): a wildcard or a search expression. */
export function hasWildcardOrSearch(path: UspPath): boolean {
  return path.segments.some((s) => s.type === 'wildcard' || s.type === 'search');
}
/** Alias of hasWildcardOrSearch, named after the spec term. */
export const isSearchPath = hasWildcardOrSearch;

export function hasReferenceFollowing(path: UspPath): boolean {
  return path.segments.some((s) => s.type === 'name' && s.ref !== undefined);
}

/**
 * True when a `[...]` has the unique-key addressing shape (TR-369 "Addressing by Unique Key"):
 * every term is `==` on a direct parameter of the row. Whether those parameters are the table's
 * unique key is data-model knowledge; without all key parameters it is a search.
 */
export function isUniqueKeyShape(seg: Segment): boolean {
  return seg.type === 'search' && seg.terms.every((t) => t.op === '==' && t.param.length === 1 && t.param[0]!.ref === undefined);
}

/** `Device.A.1.B` -> `Device.A.{i}.B`: the Supported Data Model name of an instantiated path. */
export function toSupportedPath(instantiated: string): string {
  return instantiated.replace(/\.[1-9][0-9]*(?=\.)/g, '.{i}');
}

/**
 * Split an instantiated path text at its last '.': `Device.A.1.B` -> {object: 'Device.A.1.', leaf: 'B'},
 * `Device.A.1.` -> {object: 'Device.A.1.', leaf: undefined}, `Device.X.Reset()` -> leaf 'Reset()'.
 */
export function splitPath(path: string): { object: string; leaf: string | undefined } {
  if (path.endsWith('.')) return { object: path, leaf: undefined };
  const dot = path.lastIndexOf('.');
  if (dot < 0) throw new RangeError(`not a USP path: ${JSON.stringify(path)}`);
  return { object: path.slice(0, dot + 1), leaf: path.slice(dot + 1) };
}

/** Like splitPath, for a parameter path: throws RangeError when there is no parameter name. */
export function splitParamPath(path: string): { object: string; param: string } {
  const { object, leaf } = splitPath(path);
  if (leaf === undefined || leaf.length === 0) throw new RangeError(`not a parameter path: ${JSON.stringify(path)}`);
  return { object, param: leaf };
}

/** Parent object of an object path: `Device.A.1.` -> `Device.A.`, `Device.A.` -> `Device.`; `Device.` -> undefined. */
export function parentObjectPath(objectPath: string): string | undefined {
  if (!objectPath.endsWith('.')) throw new RangeError(`not an object path: ${JSON.stringify(objectPath)}`);
  const dot = objectPath.lastIndexOf('.', objectPath.length - 2);
  return dot < 0 ? undefined : objectPath.slice(0, dot + 1);
}

/**
 * The key of GetResp result_params (TR-369 R-GET.2/R-GET.3 and "Relative Paths"): `fullPath`
 * relative to the object path `resolvedPath`. Throws RangeError when it is not underneath.
 */
export function relativePath(resolvedPath: string, fullPath: string): string {
  if (!resolvedPath.endsWith('.') || !fullPath.startsWith(resolvedPath)) {
    throw new RangeError(`${JSON.stringify(fullPath)} is not under ${JSON.stringify(resolvedPath)}`);
  }
  return fullPath.slice(resolvedPath.length);
}

/**
 * Does the instantiated path `concrete` match `pattern` (names, instance numbers, `*`)?
 * mode 'exact': same kind and same length; mode 'prefix': `pattern` is an object path and
 * `concrete` is it or anything underneath (how a subscription's object path covers its subtree).
 * Search segments match nothing unless `searchMatchesAnyInstance` (they need values: use
 * resolvePath); reference-following segments never match. Unparseable `concrete` -> false.
 */
export function matchesInstantiated(pattern: UspPath, concrete: string, opts: { mode?: 'exact' | 'prefix'; searchMatchesAnyInstance?: boolean } = {}): boolean {
  let c: UspPath;
  try {
    c = parseInstantiatedPath(concrete);
  } catch {
    return false;
  }
  const mode = opts.mode ?? 'exact';
  if (mode === 'exact') {
    if (c.kind !== pattern.kind || c.segments.length !== pattern.segments.length) return false;
    if (c.kind !== 'object' && pattern.kind !== 'object' && c.leaf !== pattern.leaf) return false;
  } else {
    if (pattern.kind !== 'object' || c.segments.length < pattern.segments.length) return false;
  }
  for (let i = 0; i < pattern.segments.length; i++) {
    const p = pattern.segments[i]!;
    const s = c.segments[i]!;
    switch (p.type) {
      case 'name':
        if (p.ref !== undefined || s.type !== 'name' || s.name !== p.name) return false;
        break;
      case 'instance':
        if (s.type !== 'instance' || s.instance !== p.instance) return false;
        break;
      case 'wildcard':
        if (s.type !== 'instance') return false;
        break;
      case 'search':
        if (!opts.searchMatchesAnyInstance || s.type !== 'instance') return false;
        break;
    }
  }
  return true;
}
