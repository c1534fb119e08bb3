import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deviceKeyOf, encodeUnreserved } from '../../src/cwmp/device-id.js';
import {
  authenticate,
  basicAuthorization,
  basicChallenge,
  checkNonce,
  digestAuthorization,
  digestChallenge,
  digestResponse,
  makeNonce,
  parseAuthorization,
  parseChallenge,
  pickChallenge,
  safeEqual,
  verifyBasic,
  verifyDigest,
  type Challenge,
} from '../../src/cwmp/http-auth.js';

// RFC 2617 section 3.5.
const RFC2617_CHALLENGE =
  'Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"';
const RFC2617_AUTHORIZATION =
  'Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", qop=auth, nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41"';

// RFC 7616 section 3.9.1.
const RFC7616 = {
  realm: 'http-auth@example.org',
  nonce: '7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v',
  opaque: 'FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS',
  cnonce: 'f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ',
  md5: '8ca523f5e9506fed4657c9700eebdbec',
  sha256: '753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1',
};

test('digestResponse: RFC 2617 3.5 known answer', () => {
  const r = digestResponse({
    username: 'Mufasa',
    realm: 'testrealm@host.com',
    password: 'Circle Of Life',
    method: 'GET',
    uri: '/dir/index.html',
    nonce: 'dcd98b7102dd2f0e8b11d0f600bfb0c093',
    qop: 'auth',
    nc: '00000001',
    cnonce: '0a4f113b',
  });
  assert.equal(r, '6629fae49393a05397450978507c4ef1');
});

test('digestResponse: RFC 7616 3.9.1 known answers (MD5 and SHA-256)', () => {
  const base = {
    username: 'Mufasa',
    realm: RFC7616.realm,
    password: 'Circle of Life',
    method: 'GET',
    uri: '/dir/index.html',
    nonce: RFC7616.nonce,
    qop: 'auth',
    nc: '00000001',
    cnonce: RFC7616.cnonce,
  };
  assert.equal(digestResponse({ ...base, algorithm: 'MD5' }), RFC7616.md5);
  assert.equal(digestResponse({ ...base, algorithm: 'SHA-256' }), RFC7616.sha256);
});

test('client: digestAuthorization answers the RFC 2617 challenge with the RFC response', () => {
  const [challenge] = parseChallenge(RFC2617_CHALLENGE);
  assert.ok(challenge);
  const header = digestAuthorization({
    challenge,
    method: 'GET',
    uri: '/dir/index.html',
    username: 'Mufasa',
    password: 'Circle Of Life',
    nc: 1,
    cnonce: '0a4f113b',
  });
  assert.match(header, /^Digest /);
  assert.match(header, /response="6629fae49393a05397450978507c4ef1"/);
  assert.match(header, /qop=auth,/);
  assert.match(header, /nc=00000001/);
  assert.match(header, /opaque="5ccc069c403ebaf9f0171e9517f40e41"/);
  // And the server side accepts what the client side built.
  const parsed = parseAuthorization(header);
  assert.ok(parsed);
  assert.equal(verifyDigest(parsed, { method: 'GET', password: 'Circle Of Life', realm: 'testrealm@host.com' }), true);
});

test('client: SHA-256 challenge (RFC 7616 3.9.1) gives the RFC response', () => {
  const [challenge] = parseChallenge(
    `Digest realm="${RFC7616.realm}", qop="auth, auth-int", algorithm=SHA-256, nonce="${RFC7616.nonce}", opaque="${RFC7616.opaque}"`,
  );
  const header = digestAuthorization({
    challenge: challenge!,
    method: 'GET',
    uri: '/dir/index.html',
    username: 'Mufasa',
    password: 'Circle of Life',
    cnonce: RFC7616.cnonce,
  });
  assert.match(header, new RegExp(`response="${RFC7616.sha256}"`));
  assert.match(header, /algorithm=SHA-256/);
});

test('server: verifyDigest on the RFC 2617 Authorization header', () => {
  const parsed = parseAuthorization(RFC2617_AUTHORIZATION);
  assert.ok(parsed && parsed.scheme === 'Digest');
  assert.equal(parsed.username, 'Mufasa');
  assert.equal(parsed.nc, '00000001');
  const opts = { method: 'GET', password: 'Circle Of Life', realm: 'testrealm@host.com' };
  assert.equal(verifyDigest(parsed, opts), true);
  assert.equal(verifyDigest(parsed, { ...opts, requestUri: '/dir/index.html' }), true);
  assert.equal(verifyDigest(parsed, { ...opts, opaque: '5ccc069c403ebaf9f0171e9517f40e41' }), true);
  assert.equal(verifyDigest(parsed, { ...opts, password: 'Circle of Life' }), false, 'wrong password');
  assert.equal(verifyDigest(parsed, { ...opts, method: 'POST' }), false, 'wrong method');
  assert.equal(verifyDigest(parsed, { ...opts, realm: 'other' }), false, 'wrong realm');
  assert.equal(verifyDigest(parsed, { ...opts, requestUri: '/other' }), false, 'wrong uri');
  assert.equal(verifyDigest(parsed, { ...opts, opaque: 'x' }), false, 'wrong opaque');
  assert.equal(verifyDigest({ ...parsed, nc: undefined }, opts), false, 'qop=auth without nc');
  assert.equal(verifyDigest({ ...parsed, qop: 'auth-int' }, opts), false, 'auth-int refused');
  assert.equal(verifyDigest({ ...parsed, algorithm: 'SHA-512-256' }, opts), false, 'unknown algorithm');
  assert.equal(verifyDigest({ scheme: 'Basic', username: 'Mufasa', password: 'Circle Of Life' }, opts), false);
});

test('server: legacy RFC 2069 digest without qop is verified', () => {
  // Expected value computed independently with Python hashlib: MD5(HA1:nonce:HA2).
  const header =
    'Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", response="1949323746fe6a43ef61f9606e7febea"';
  const parsed = parseAuthorization(header);
  assert.ok(parsed);
  assert.equal(verifyDigest(parsed, { method: 'GET', password: 'CircleOfLife', realm: 'testrealm@host.com' }), true);
  assert.equal(verifyDigest(parsed, { method: 'GET', password: 'CircleOfLife!', realm: 'testrealm@host.com' }), false);
  // And a client answering a no-qop challenge produces exactly that form.
  const [challenge] = parseChallenge('Digest realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093"');
  const built = digestAuthorization({ challenge: challenge!, method: 'GET', uri: '/dir/index.html', username: 'Mufasa', password: 'CircleOfLife' });
  assert.match(built, /response="1949323746fe6a43ef61f9606e7febea"/);
  assert.doesNotMatch(built, /qop=|nc=|cnonce=/);
});

test('server: MD5-sess round trip', () => {
  const [challenge] = parseChallenge('Digest realm="r", qop="auth", nonce="abc", algorithm=MD5-sess');
  const header = digestAuthorization({ challenge: challenge!, method: 'GET', uri: '/', username: 'u', password: 'p' });
  const parsed = parseAuthorization(header)!;
  assert.equal(verifyDigest(parsed, { method: 'GET', password: 'p', realm: 'r' }), true);
  assert.equal(verifyDigest(parsed, { method: 'GET', password: 'q', realm: 'r' }), false);
});

test('server: MD5-sess known answer (RFC 2617 3.2.2.2), and no cnonce is refused', () => {
  // Expected value computed independently with Python hashlib:
  // MD5(MD5(MD5(user:realm:pass):nonce:cnonce):nonce:nc:cnonce:auth:MD5(POST:/acs)).
  const header =
    'Digest username="cpe-00D09E", realm="cwmp", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/acs", algorithm=MD5-sess, ' +
    'qop=auth, nc=00000001, cnonce="0a4f113b", response="fd80a200c08207afcad68f9038b663ca"';
  const parsed = parseAuthorization(header);
  assert.ok(parsed && parsed.scheme === 'Digest');
  const opts = { method: 'POST', password: 's3cret', realm: 'cwmp', requestUri: '/acs' };
  assert.equal(verifyDigest(parsed, opts), true);
  assert.equal(verifyDigest(parsed, { ...opts, password: 's3cret!' }), false);
  assert.equal(verifyDigest({ ...parsed, algorithm: 'md5-SESS' }, opts), true, 'algorithm names are case-insensitive');
  assert.equal(verifyDigest({ ...parsed, algorithm: 'MD5' }, opts), false, 'the same response under plain MD5');
  // H(A1) of -sess needs the cnonce: without one the response is refused, whatever it is.
  const noCnonce = { ...parsed, qop: undefined, nc: undefined, cnonce: undefined };
  const forged = digestResponse({
    algorithm: 'MD5-sess',
    username: 'cpe-00D09E',
    realm: 'cwmp',
    password: 's3cret',
    method: 'POST',
    uri: '/acs',
    nonce: parsed.nonce,
  });
  assert.equal(verifyDigest({ ...noCnonce, response: forged }, opts), false);
});

test('parseChallenge: several challenges in one header, commas inside quoted strings, escapes', () => {
  const header =
    'Newauth realm="apps", type=1, title="Login to \\"apps\\"", Basic realm="simple, with comma", ' +
    'Digest realm="a, b", qop="auth,auth-int", nonce="n1", algorithm=MD5, ' +
    'Digest realm="a, b", qop="auth", nonce="n2", algorithm=SHA-256, Negotiate abc==';
  const cs = parseChallenge(header);
  assert.deepEqual(
    cs.map((c) => c.scheme),
    ['Newauth', 'Basic', 'Digest', 'Digest', 'Negotiate'],
  );
  assert.deepEqual(cs[0]!.params, { realm: 'apps', type: '1', title: 'Login to "apps"' });
  assert.deepEqual(cs[1]!.params, { realm: 'simple, with comma' });
  assert.deepEqual(cs[2]!.params, { realm: 'a, b', qop: 'auth,auth-int', nonce: 'n1', algorithm: 'MD5' });
  assert.equal(cs[4]!.token68, 'abc==');
  // The strongest usable Digest wins over MD5 and Basic.
  assert.equal(pickChallenge(cs)?.params.nonce, 'n2');
  // Basic is the fallback; nothing usable gives null.
  assert.equal(pickChallenge(parseChallenge('Basic realm="x", Digest realm="y", nonce="z", qop="auth-conf"'))?.scheme, 'Basic');
  assert.equal(pickChallenge(parseChallenge('Negotiate abc')), null);
});

test('parseChallenge: arrays of header lines, case-insensitive names, odd spacing', () => {
  const cs = parseChallenge(['basic REALM = "x"', '  DIGEST Realm=y ,NONCE="n" , , qop=auth']);
  assert.equal(cs.length, 2);
  assert.deepEqual(cs[0]!.params, { realm: 'x' });
  assert.deepEqual(cs[1]!.params, { realm: 'y', nonce: 'n', qop: 'auth' });
  assert.deepEqual(parseChallenge(undefined), []);
  assert.deepEqual(parseChallenge(''), []);
  // Unterminated quote: what parsed before it is kept.
  assert.deepEqual(
    parseChallenge('Basic realm="ok", Digest realm="broken').map((c) => c.scheme),
    ['Basic'],
  );
});

test('server challenges are parseable by the client side', () => {
  const d = parseChallenge(digestChallenge({ realm: 'r "q"', nonce: 'N', opaque: 'O', stale: true }));
  assert.deepEqual(d[0]!.params, { realm: 'r "q"', qop: 'auth', nonce: 'N', opaque: 'O', algorithm: 'MD5', stale: 'true' });
  const b = parseChallenge(basicChallenge('cwmp'));
  assert.equal(b[0]!.scheme, 'Basic');
  assert.equal(b[0]!.params.realm, 'cwmp');
});

test('Basic: password containing ":" and non-ASCII round-trips', () => {
  const header = basicAuthorization('cpe-01', 'pa:ss:wörd');
  const parsed = parseAuthorization(header);
  assert.deepEqual(parsed, { scheme: 'Basic', username: 'cpe-01', password: 'pa:ss:wörd' });
  assert.equal(verifyBasic(parsed!, 'cpe-01', 'pa:ss:wörd'), true);
  assert.equal(verifyBasic(parsed!, 'cpe-01', 'pa:ss'), false);
  assert.equal(verifyBasic(parsed!, 'cpe-02', 'pa:ss:wörd'), false);
  // RFC 2617 2: the Aladdin example.
  assert.deepEqual(parseAuthorization('Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=='), {
    scheme: 'Basic',
    username: 'Aladdin',
    password: 'open sesame',
  });
});

test('Basic: user-id with ":" is refused without revealing the password', () => {
  assert.throws(
    () => basicAuthorization('a:b', 'TopSecret'),
    (err: Error) => !err.message.includes('TopSecret'),
  );
});

test('parseAuthorization: malformed and foreign headers give null', () => {
  for (const h of [
    undefined,
    '',
    'Basic',
    'Basic !!!',
    'Basic ' + Buffer.from('nocolon').toString('base64'),
    'Bearer abc',
    'Digest',
    'Digest username="u", realm="r"',
    'Digest username="u" realm',
    'Digest username="u, realm="r", nonce="n", uri="/", response="x"',
  ]) {
    assert.equal(parseAuthorization(h), null, String(h));
  }
  // A repeated parameter cannot override the first.
  const p = parseAuthorization('Digest username="u", realm="r", nonce="n", uri="/", response="x", username="admin"');
  assert.equal(p?.username, 'u');
});

test('errors never carry secrets', () => {
  const [challenge] = parseChallenge('Digest realm="r", nonce="n", algorithm=SHA-512-256');
  assert.throws(
    () => digestAuthorization({ challenge: challenge!, method: 'GET', uri: '/', username: 'u', password: 'TopSecret' }),
    (err: Error) => /unsupported/.test(err.message) && !err.message.includes('TopSecret'),
  );
  const c2: Challenge = { scheme: 'Digest', params: { realm: 'r', nonce: 'n', qop: 'auth-conf' } };
  assert.throws(
    () => digestAuthorization({ challenge: c2, method: 'GET', uri: '/', username: 'u', password: 'TopSecret' }),
    (err: Error) => !err.message.includes('TopSecret'),
  );
});

test('safeEqual', () => {
  assert.equal(safeEqual('abc', 'abc'), true);
  assert.equal(safeEqual('abc', 'abd'), false);
  assert.equal(safeEqual('abc', 'abcd'), false);
  assert.equal(safeEqual('', ''), true);
});

test('nonces: fresh ok, expired stale, forged / foreign / future / garbage invalid', () => {
  const secret = 'nonce-secret';
  const t0 = 1_700_000_000_000;
  const n = makeNonce(secret, t0);
  assert.notEqual(makeNonce(secret, t0), n, 'random part differs');
  assert.equal(checkNonce(secret, n, t0, 60_000), 'ok');
  assert.equal(checkNonce(secret, n, t0 + 60_000, 60_000), 'ok');
  assert.equal(checkNonce(secret, n, t0 + 60_001, 60_000), 'stale');
  assert.equal(checkNonce('other-secret', n, t0, 60_000), 'invalid');
  // Flip one character of the MAC part, and separately of the timestamp part.
  const flip = (s: string, i: number): string => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
  assert.equal(checkNonce(secret, flip(n, n.length - 3), t0, 60_000), 'invalid');
  assert.equal(checkNonce(secret, flip(n, 3), t0, 60_000), 'invalid');
  assert.equal(checkNonce(secret, makeNonce(secret, t0 + 3_600_000), t0, 60_000), 'invalid', 'from the future');
  assert.equal(checkNonce(secret, 'dcd98b7102dd2f0e8b11d0f600bfb0c093', t0, 60_000), 'invalid');
  assert.equal(checkNonce(secret, '', t0, 60_000), 'invalid');
});

test('authenticate: digest mode end to end (ok, wrong password, unknown user, forged and stale nonce)', async () => {
  const secret = 'k';
  const t0 = 1_700_000_000_000;
  const users: Record<string, string> = { cpe1: 'pw1' };
  const base = { mode: 'digest' as const, realm: 'cwmp', method: 'POST', nonceSecret: secret, nonceMaxAgeMs: 60_000, lookup: (u: string) => users[u] };

  const first = await authenticate(undefined, { ...base, now: t0 });
  assert.equal(first.ok, false);
  assert.ok(!first.ok && first.reason === 'missing');
  const answer = (challengeHeader: string, username: string, password: string): string =>
    digestAuthorization({ challenge: parseChallenge(challengeHeader)[0]!, method: 'POST', uri: '/acs', username, password });

  const challengeHeader = !first.ok ? first.challenge : '';
  const good = answer(challengeHeader, 'cpe1', 'pw1');
  const nonce = parseChallenge(challengeHeader)[0]!.params.nonce;
  // The nonce and nc come back for replay tracking (nonce-tracker.ts).
  assert.deepEqual(await authenticate(good, { ...base, now: t0 + 1000, requestUri: '/acs' }), { ok: true, username: 'cpe1', nonce, nc: 1 });

  const wrong = await authenticate(answer(challengeHeader, 'cpe1', 'nope'), { ...base, now: t0 });
  assert.ok(!wrong.ok && wrong.reason === 'bad-credentials');
  const unknown = await authenticate(answer(challengeHeader, 'ghost', 'pw1'), { ...base, now: t0 });
  assert.ok(!unknown.ok && unknown.reason === 'unknown-user');

  // A valid digest over a nonce we never issued.
  const forged = answer('Digest realm="cwmp", qop="auth", nonce="AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"', 'cpe1', 'pw1');
  const f = await authenticate(forged, { ...base, now: t0 });
  assert.ok(!f.ok && f.reason === 'bad-nonce');

  // Correct digest, expired nonce: stale=true so the CPE retries without a new password.
  const stale = await authenticate(good, { ...base, now: t0 + 120_000 });
  assert.ok(!stale.ok && stale.reason === 'stale-nonce');
  assert.equal(parseChallenge(!stale.ok ? stale.challenge : '')[0]!.params.stale, 'true');

  const basicSent = await authenticate(basicAuthorization('cpe1', 'pw1'), { ...base, now: t0 });
  assert.ok(!basicSent.ok && basicSent.reason === 'wrong-scheme');
});

test('requireQop: the RFC 2069 form (no qop, no cnonce) is refused; qop=auth passes', async () => {
  const secret = 'k';
  const base = { mode: 'digest' as const, realm: 'cwmp', method: 'POST', nonceSecret: secret, lookup: () => 'pw1', requireQop: true };
  const first = await authenticate(undefined, base);
  const challenge = parseChallenge(!first.ok ? first.challenge : '')[0]!;
  const { qop: _offered, ...noQop } = challenge.params;
  const legacy = digestAuthorization({ challenge: { ...challenge, params: noQop }, method: 'POST', uri: '/', username: 'u', password: 'pw1' });
  assert.doesNotMatch(legacy, /cnonce|qop/);
  const r = await authenticate(legacy, base);
  assert.ok(!r.ok && r.reason === 'bad-credentials');
  assert.equal((await authenticate(legacy, { ...base, requireQop: false })).ok, true, 'allowed when not required');
  const modern = digestAuthorization({ challenge, method: 'POST', uri: '/', username: 'u', password: 'pw1' });
  assert.equal((await authenticate(modern, base)).ok, true);
});

test('authenticate: basic mode', async () => {
  const base = { mode: 'basic' as const, realm: 'cwmp', method: 'POST', lookup: async (u: string) => (u === 'cpe' ? 'p:w' : null) };
  assert.deepEqual(await authenticate(basicAuthorization('cpe', 'p:w'), base), { ok: true, username: 'cpe' });
  const bad = await authenticate(basicAuthorization('cpe', 'p'), base);
  assert.ok(!bad.ok && bad.reason === 'bad-credentials' && bad.challenge.startsWith('Basic realm="cwmp"'));
  const unknown = await authenticate(basicAuthorization('x', 'p:w'), base);
  assert.ok(!unknown.ok && unknown.reason === 'unknown-user');
  const garbage = await authenticate('Basic %%%', base);
  assert.ok(!garbage.ok && garbage.reason === 'malformed');
});

test('client: every Authorization carries a fresh 24-hex-digit cnonce, across the random pool refills', () => {
  const [challenge] = parseChallenge('Digest realm="cpe", nonce="n0", qop="auth"');
  const seen = new Set<string>();
  // 400 x 12 bytes is more than one 4 KiB draw of the pool.
  for (let nc = 1; nc <= 400; nc++) {
    const header = digestAuthorization({ challenge: challenge!, method: 'GET', uri: '/cr', username: 'u', password: 'p', nc });
    const cnonce = /cnonce="([0-9a-f]+)"/.exec(header)?.[1];
    assert.match(cnonce ?? '', /^[0-9a-f]{24}$/);
    seen.add(cnonce!);
    // The response verifies with that cnonce (the header is whole and consistent).
    const response = /response="([0-9a-f]+)"/.exec(header)?.[1];
    assert.equal(
      response,
      digestResponse({
        username: 'u',
        realm: 'cpe',
        password: 'p',
        method: 'GET',
        uri: '/cr',
        nonce: 'n0',
        qop: 'auth',
        nc: nc.toString(16).padStart(8, '0'),
        cnonce,
      }),
    );
  }
  assert.equal(seen.size, 400);
});

test('device keys: unreserved parts are kept as they are, the others %-encoded (R-ARC.5)', () => {
  assert.equal(encodeUnreserved('00D09E'), '00D09E');
  assert.equal(encodeUnreserved('SN-0001_a.b~'), 'SN-0001_a.b~');
  assert.equal(encodeUnreserved(''), '');
  assert.equal(encodeUnreserved('A B/é'), 'A%20B%2F%C3%A9');
  assert.equal(deviceKeyOf({ manufacturer: 'M', oui: '00D09E', productClass: 'IGD-X', serialNumber: 'SN-1' }), '00D09E-IGD%2DX-SN-1');
});
