/** Property tests for the USP path grammar: round trips, and total failure behaviour on junk. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  parsePath,
  formatPath,
  PathError,
  MAX_INSTANCE_NUMBER,
  type UspPath,
  type Segment,
  type SearchTerm,
  type RefFollow,
  type SearchValue,
  type RelPathPart,
} from '../../src/usp/path/index.js';

const RUNS = 2000;

const name = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_-]{0,7}$/);
const posnum = fc.oneof(fc.integer({ min: 1, max: 20 }), fc.integer({ min: 1, max: MAX_INSTANCE_NUMBER }));
const ref: fc.Arbitrary<RefFollow> = fc.oneof(
  fc.constant({}),
  posnum.map((index) => ({ index })),
  fc.constant({ index: '*' as const }),
);
const stringValue: fc.Arbitrary<SearchValue> = fc
  .oneof(fc.string({ maxLength: 8 }), fc.string({ unit: 'binary', maxLength: 8 }))
  .map((value) => ({ type: 'string' as const, value }));
const literalValue: fc.Arbitrary<SearchValue> = fc.stringMatching(/^[A-Za-z0-9_+.:-]{1,10}$/).map((text) => ({ type: 'literal' as const, text }));
const relpath: fc.Arbitrary<RelPathPart[]> = fc
  .tuple(fc.array(fc.tuple(name, fc.option(ref, { nil: undefined })), { maxLength: 2 }), name)
  .map(([parts, last]) => [...parts.map(([n, r]) => (r === undefined ? { name: n } : { name: n, ref: r })), { name: last }]);
const term: fc.Arbitrary<SearchTerm> = fc
  .oneof(
    fc.record({ param: relpath, op: fc.constantFrom('==' as const, '!=' as const, '~=' as const), value: fc.oneof(stringValue, literalValue) }),
    fc.record({
      param: relpath,
      op: fc.constantFrom('==' as const, '!=' as const, '~=' as const, '<' as const, '>' as const, '<=' as const, '>=' as const),
      value: literalValue,
    }),
  )
  .map((t) => ({ ...t })); // fc.record builds null-prototype objects; the parser builds plain ones
const instance: fc.Arbitrary<Segment> = fc.oneof(
  posnum.map((n) => ({ type: 'instance' as const, instance: n })),
  fc.constant({ type: 'wildcard' as const }),
  fc.array(term, { minLength: 1, maxLength: 3 }).map((terms) => ({ type: 'search' as const, terms })),
);
/** A group is a name, a table name + instance identifier, or a name with reference following. */
const group: fc.Arbitrary<Segment[]> = fc.oneof(
  name.map((n) => [{ type: 'name' as const, name: n }]),
  fc.tuple(name, instance).map(([n, i]) => [{ type: 'name' as const, name: n }, i]),
  fc.tuple(name, ref).map(([n, r]) => [{ type: 'name' as const, name: n, ref: r }]),
);
const ast: fc.Arbitrary<UspPath> = fc
  .tuple(fc.array(group, { maxLength: 6 }), fc.constantFrom('object' as const, 'parameter' as const, 'command' as const, 'event' as const), name)
  .map(([groups, kind, leaf]) => {
    const segments = groups.flat();
    return kind === 'object' ? { kind, segments } : { kind, segments, leaf };
  });

test('generated ASTs: parse(format(ast)) deep-equals ast', () => {
  fc.assert(
    fc.property(ast, (a) => {
      const text = formatPath(a);
      assert.deepEqual(parsePath(text), a);
      assert.equal(formatPath(parsePath(text)), text);
    }),
    { numRuns: RUNS },
  );
});

/** The parser's only failure mode: a PathError with 7008, or 7026 for a well-formed path with another root. */
function parseTotal(s: string): void {
  let p: UspPath;
  try {
    p = parsePath(s);
  } catch (e) {
    assert.ok(e instanceof PathError, `not a PathError for ${JSON.stringify(s)}: ${String(e)}`);
    if (e.code === 7026) {
      assert.match(e.message, /root object must be 'Device'/);
      return;
    }
    assert.equal(e.code, 7008);
    assert.ok(e.offset !== undefined && e.offset >= 0 && e.offset <= s.length, `offset ${e.offset} out of range for ${JSON.stringify(s)}`);
    return;
  }
  // Accepted input is stable under canonicalisation.
  const canon = formatPath(p);
  assert.deepEqual(parsePath(canon), p);
}

const alphabet = [...'Device.IP[]*"=!~<>&|#+()0123456789Aaz_- %\t,{}'];
const junk = fc.oneof(
  fc.string({ maxLength: 200 }),
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.string({ unit: fc.constantFrom(...alphabet), maxLength: 200 }).map((s) => 'Device.' + s),
);

// "Never hangs" is the test timeout's job, not a timed assertion: a wall-clock bound per call
// fails on a loaded machine while catching nothing the timeout would not.
test('arbitrary strings: parse succeeds or throws PathError 7008 (never hangs, never anything else)', { timeout: 120_000 }, () => {
  fc.assert(
    fc.property(junk, (s) => {
      parseTotal(s);
    }),
    { numRuns: RUNS },
  );
});

type Edit = { kind: 'insert' | 'replace' | 'delete'; at: number; ch: string };
const edit: fc.Arbitrary<Edit> = fc.record({
  kind: fc.constantFrom('insert' as const, 'replace' as const, 'delete' as const),
  at: fc.nat(),
  ch: fc.constantFrom(...alphabet, '\u0000', 'é', '\u{1F600}'),
});

function mutate(text: string, edits: Edit[]): string {
  let s = text;
  for (const e of edits) {
    const at = s.length === 0 ? 0 : e.at % (s.length + (e.kind === 'insert' ? 1 : 0));
    if (e.kind === 'insert') s = s.slice(0, at) + e.ch + s.slice(at);
    else if (e.kind === 'replace') s = s.slice(0, at) + e.ch + s.slice(at + 1);
    else s = s.slice(0, at) + s.slice(at + 1);
  }
  return s.slice(0, 2048);
}

test('mutated valid paths: parse succeeds or throws PathError 7008', { timeout: 120_000 }, () => {
  fc.assert(
    fc.property(ast, fc.array(edit, { minLength: 1, maxLength: 4 }), (a, edits) => {
      parseTotal(mutate(formatPath(a), edits));
    }),
    { numRuns: RUNS },
  );
});
