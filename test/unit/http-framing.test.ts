/** The request framer for CPE HTTP stacks (bare LF, close-delimited HTTP/1.0 bodies), bytes in, bytes out. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { connectionFraming, FramingError, MAX_HEAD_BYTES, RequestFramer } from '../../src/cwmp/http-framing.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const str = (bufs: Buffer[]): string => Buffer.concat(bufs).toString('latin1');

/** Feeds the input in the given pieces, then the client's close; returns everything produced. */
function frame(pieces: string[], close = false, max = 1 << 20): string {
  const f = new RequestFramer(max);
  const out: Buffer[] = [];
  for (const p of pieces) out.push(...f.push(b(p)));
  if (close) out.push(...f.end());
  return str(out);
}

test('connectionFraming: persistent CRLF connections go to node, single-request and bare-LF ones are framed', () => {
  const cases: [string, 'node' | 'frame'][] = [
    ['POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n', 'node'],
    ['POST / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n', 'node'],
    ['POST / HTTP/1.0\r\nConnection: Keep-Alive\r\nContent-Length: 3\r\n\r\nabc', 'node'],
    ['POST / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n', 'frame'],
    ['POST / HTTP/1.1\r\nHost: a\r\nConnection: TE, close\r\n\r\n', 'frame'],
    ['POST / HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc', 'frame'],
    ['POST / HTTP/1.0\r\n\r\n', 'frame'],
    ['POST / HTTP/1.1\nHost: a\n\n', 'frame'],
    ['POST / HTTP/1.1\r\nHost: a\nContent-Length: 0\r\n\r\n', 'frame'],
    // Too little to tell, or not HTTP at all: node decides (and times out or refuses).
    ['POST / HT', 'node'],
    ['POST / HTTP/1.0\r\nContent-Len', 'node'],
    ['\u0016\u0003\u0001\u0002\u0000\u0001', 'node'],
    ['GARBAGE\r\n\r\n', 'node'],
  ];
  for (const [input, want] of cases) assert.equal(connectionFraming(b(input)), want, JSON.stringify(input));
});

test('bare LF heads become CRLF; Content-Length bodies pass through byte for byte, in any split', () => {
  const body = 'a\nb\r\nc\n\n<x/>';
  const input = `POST /acs HTTP/1.1\nHost: a\nContent-Length: ${body.length}\n\n${body}POST / HTTP/1.1\nHost: a\nContent-Length: 0\n\n`;
  const want = `POST /acs HTTP/1.1\r\nHost: a\r\nContent-Length: ${body.length}\r\n\r\n${body}POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n`;
  assert.equal(frame([input]), want);
  fc.assert(
    fc.property(fc.array(fc.nat({ max: input.length }), { maxLength: 6 }), (cuts) => {
      const at = [...new Set([0, ...cuts, input.length])].sort((x, y) => x - y);
      const pieces = at.slice(1).map((e, i) => input.slice(at[i], e));
      assert.equal(frame(pieces), want);
    }),
    { numRuns: 300 },
  );
});

test('chunked bodies: LF chunk lines and trailers become CRLF, chunk data is untouched', () => {
  const input = 'POST / HTTP/1.1\nHost: a\nTransfer-Encoding: chunked\n\n3;ext=1\nab\n\r\n0\nX-T: 1\n\n';
  const want = 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nab\n\r\n0\r\nX-T: 1\r\n\r\n';
  assert.equal(frame([input]), want);
  assert.equal(frame(input.split('')), want, 'one byte at a time');
  // No trailer fields, then the next request on the connection.
  assert.equal(
    frame(['POST / HTTP/1.1\nTransfer-Encoding: chunked\n\n0\n\nPOST / HTTP/1.1\nContent-Length: 0\n\n']),
    'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nPOST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n',
  );
});

test('HTTP/1.0 POST without a length: held until the close, then passed on with Content-Length', () => {
  const f = new RequestFramer(1000);
  assert.deepEqual(f.push(b('POST / HTTP/1.0\r\nContent-Type: text/xml\r\n\r\n<a>')), []);
  assert.equal(f.awaitingCloseDelimitedBody, true);
  assert.equal(f.closeDelimitedBytes, 3);
  assert.deepEqual(f.push(b('</a>')), []);
  assert.equal(str(f.end()), 'POST / HTTP/1.0\r\nContent-Type: text/xml\r\nContent-Length: 7\r\n\r\n<a></a>');
  assert.equal(f.awaitingCloseDelimitedBody, false);
  assert.deepEqual(f.push(b('more')), [], 'nothing can follow the close');
  assert.deepEqual(f.end(), []);
  // Bodiless (the grace ran out, or the close came first), with bare LF.
  assert.equal(frame(['POST / HTTP/1.0\nCookie: s=1\n\n'], true), 'POST / HTTP/1.0\r\nCookie: s=1\r\nContent-Length: 0\r\n\r\n');
  // With keep-alive, a GET, or a length, nothing is held.
  assert.equal(frame(['POST / HTTP/1.0\nConnection: keep-alive\n\n']), 'POST / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
  assert.equal(frame(['GET / HTTP/1.0\n\n']), 'GET / HTTP/1.0\r\n\r\n');
  assert.equal(frame(['POST / HTTP/1.0\nContent-Length: 2\n\nab']), 'POST / HTTP/1.0\r\nContent-Length: 2\r\n\r\nab');
});

test('limits: head over 16 KiB (431), close-delimited body over the limit (413), endless chunk-size line (400)', () => {
  const huge = `POST / HTTP/1.1\n${'X: y\n'.repeat(MAX_HEAD_BYTES / 5 + 1)}`;
  assert.throws(
    () => frame([huge]),
    (e: unknown) => e instanceof FramingError && e.status === 431,
  );
  assert.throws(
    () => frame(huge.match(/[\s\S]{1,1000}/g)!),
    (e: unknown) => e instanceof FramingError && e.status === 431,
  );
  assert.throws(
    () => frame(['POST / HTTP/1.0\n\n', 'x'.repeat(600), 'x'.repeat(600)], false, 1000),
    (e: unknown) => e instanceof FramingError && e.status === 413,
  );
  assert.throws(
    () => frame(['POST / HTTP/1.1\nTransfer-Encoding: chunked\n\n', '1'.repeat(5000)]),
    (e: unknown) => e instanceof FramingError && e.status === 400,
  );
});

test('what node must judge is passed on as it is: bad request line, bad length, bad chunk', () => {
  assert.equal(frame(['NOT A REQUEST\n\nrest']), 'NOT A REQUEST\n\nrest');
  assert.equal(frame(['POST / HTTP/1.1\nContent-Length: x\n\nabc']), 'POST / HTTP/1.1\r\nContent-Length: x\r\n\r\nabc');
  assert.equal(frame(['POST / HTTP/1.1\nTransfer-Encoding: chunked\n\nzz\nabc']), 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc');
  assert.equal(frame(['POST / HTTP/1.1\nTransfer-Encoding: chunked\n\n1\nab\n']), 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\n');
  // Empty lines before a request line are skipped (RFC 9112 2.2).
  assert.equal(frame(['\r\n\nPOST / HTTP/1.1\nContent-Length: 0\n\n']), 'POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n');
});

test('property: on any input the framer throws nothing but FramingError', () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.string({
          unit: fc.constantFrom('POST / HTTP/1.0', 'HTTP/1.1', '\n', '\r', '\r\n', ':', 'Content-Length: 3', 'Transfer-Encoding: chunked', '0', 'a', ' '),
        }),
        { maxLength: 8 },
      ),
      (pieces) => {
        try {
          frame(pieces, true, 64);
        } catch (e) {
          if (!(e instanceof FramingError)) throw e;
        }
      },
    ),
    { numRuns: 1000 },
  );
});
