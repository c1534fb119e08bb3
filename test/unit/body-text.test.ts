/** The character encoding of a CPE's SOAP body: BOM, Content-Type charset, XML declaration. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bodyText, charsetParam } from '../../src/cwmp/body-text.js';

const XML = (decl: string, text: string): string => `${decl}<a>${text}</a>`;

test('charsetParam: quoted, unquoted, spacing, case, other parameters', () => {
  assert.equal(charsetParam('text/xml; charset="utf-8"'), 'utf-8');
  assert.equal(charsetParam('text/xml;charset=UTF-8'), 'utf-8');
  assert.equal(charsetParam('application/soap+xml; action="urn:x#Inform"; charset = ISO-8859-1'), 'iso-8859-1');
  assert.equal(charsetParam('text/xml'), undefined);
  assert.equal(charsetParam(undefined), undefined);
  assert.equal(charsetParam(''), undefined);
});

test('UTF-8 by default, by header, by declaration', () => {
  const s = 'Grüße 日本 😀';
  for (const ct of [undefined, 'text/xml', 'text/xml; charset=utf-8', 'application/soap+xml']) {
    const r = bodyText(Buffer.from(XML('<?xml version="1.0"?>', s), 'utf8'), ct);
    assert.equal(r.text, XML('<?xml version="1.0"?>', s), String(ct));
    assert.equal(r.charset, 'utf-8');
  }
});

test('ISO-8859-1 / windows-1252: by header, by declaration, and under a wrong utf-8 header', () => {
  const latin = (decl: string): Buffer => Buffer.concat([Buffer.from(decl, 'latin1'), Buffer.from([0x3c, 0x61, 0x3e, 0xe9, 0x80, 0x3c, 0x2f, 0x61, 0x3e])]);
  const want = (decl: string): string => `${decl}<a>é€</a>`;
  assert.equal(bodyText(latin('<?xml version="1.0"?>'), 'text/xml; charset=ISO-8859-1').text, want('<?xml version="1.0"?>'));
  const decl = "<?xml version='1.0' encoding='ISO-8859-1'?>";
  assert.deepEqual(bodyText(latin(decl), 'text/xml'), { text: want(decl), charset: 'windows-1252' });
  assert.deepEqual(bodyText(latin(decl), 'text/xml; charset="utf-8"'), { text: want(decl), charset: 'windows-1252' });
  // Valid UTF-8 under a utf-8 header stays UTF-8 whatever the declaration says.
  const utf = Buffer.from('<?xml version="1.0" encoding="ISO-8859-1"?><a>é</a>', 'utf8');
  assert.equal(bodyText(utf, 'text/xml; charset=utf-8').text, '<?xml version="1.0" encoding="ISO-8859-1"?><a>é</a>');
  assert.equal(bodyText(Buffer.from([0x61, 0xe9]), 'text/plain; charset=us-ascii').text, 'aé');
});

test('UTF-16 with a byte order mark, and without one by the "<?" pattern (XML 1.0 appendix F)', () => {
  const s = '<?xml version="1.0" encoding="UTF-16"?><a>日本</a>';
  const le = Buffer.from(s, 'utf16le');
  const be = Buffer.from(le).swap16();
  assert.deepEqual(bodyText(Buffer.concat([Buffer.from([0xff, 0xfe]), le])), { text: s, charset: 'utf-16le' });
  assert.deepEqual(bodyText(Buffer.concat([Buffer.from([0xfe, 0xff]), be]), 'text/xml; charset=utf-8'), { text: s, charset: 'utf-16be' });
  assert.deepEqual(bodyText(le), { text: s, charset: 'utf-16le' });
  assert.deepEqual(bodyText(be), { text: s, charset: 'utf-16be' });
  // An odd trailing byte is dropped, not a crash.
  assert.equal(bodyText(Buffer.concat([Buffer.from([0xfe, 0xff]), be, Buffer.from([0x41])])).text, s);
});

test('an unknown charset is read as UTF-8 and reported; an empty body is empty', () => {
  const r = bodyText(Buffer.from('<a>x</a>'), 'text/xml; charset=klingon');
  assert.deepEqual(r, { text: '<a>x</a>', charset: 'utf-8', unknownLabel: 'klingon' });
  assert.deepEqual(bodyText(Buffer.from('<?xml version="1.0" encoding="EBCDIC-X"?><a/>')).unknownLabel, 'ebcdic-x');
  assert.deepEqual(bodyText(Buffer.alloc(0)), { text: '', charset: 'utf-8' });
  assert.deepEqual(bodyText(Buffer.from([0xff])), { text: '\uFFFD', charset: 'utf-8' });
});
