/**
 * HTTP Basic (RFC 7617) and Digest (RFC 7616, RFC 2617, and the RFC 2069 form without
 * qop that old CPEs still send) for both sides of CWMP:
 *  - server: the ACS authenticating CPEs (TR-069 3.4.4), the simulator authenticating
 *    connection requests (TR-069 3.2.2);
 *  - client: the ACS sending connection requests, the simulator logging in to the ACS.
 * Pure functions, no I/O. Secrets never appear in thrown errors or results.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

// ---------------------------------------------------------------- types

export type DigestAlgorithm = 'MD5' | 'MD5-sess' | 'SHA-256' | 'SHA-256-sess';

/** Credentials from a Basic Authorization header. */
export interface BasicAuthorization {
  scheme: 'Basic';
  username: string;
  password: string;
}

/** Parameters from a Digest Authorization header (names lower-cased, values unquoted). */
export interface DigestAuthorizationParams {
  scheme: 'Digest';
  username: string;
  realm: string;
  nonce: string;
  uri: string;
  response: string;
  /** As sent; absent means MD5. */
  algorithm?: string;
  /** "auth" (or "auth-int"); absent in RFC 2069 digests. */
  qop?: string;
  nc?: string;
  cnonce?: string;
  opaque?: string;
  /** RFC 7616 userhash=true: username is H(username:realm). */
  userhash?: boolean;
}

export type ParsedAuthorization = BasicAuthorization | DigestAuthorizationParams;

/** One challenge of a WWW-Authenticate header. */
export interface Challenge {
  /** The auth-scheme as sent; compare case-insensitively (or use isScheme). */
  scheme: string;
  /** auth-params, names lower-cased, quoted values unescaped. */
  params: Record<string, string>;
  /** token68 form (e.g. "Negotiate abc=="), when the challenge used it. */
  token68?: string;
}

// ---------------------------------------------------------------- small helpers

const TOKEN_CHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;

function hashHex(alg: string, data: string): string {
  return createHash(alg).update(data, 'utf8').digest('hex');
}

/** node:crypto name of a Digest algorithm, or null when unsupported. */
function hashOf(algorithm: string | undefined): { hash: 'md5' | 'sha256'; sess: boolean } | null {
  switch ((algorithm ?? 'MD5').toUpperCase()) {
    case 'MD5':
      return { hash: 'md5', sess: false };
    case 'MD5-SESS':
      return { hash: 'md5', sess: true };
    case 'SHA-256':
      return { hash: 'sha256', sess: false };
    case 'SHA-256-SESS':
      return { hash: 'sha256', sess: true };
    default:
      return null;
  }
}

/** True when the Digest algorithm (absent = MD5) is one this module implements. */
export function isSupportedAlgorithm(algorithm: string | undefined): boolean {
  return hashOf(algorithm) !== null;
}

/**
 * Constant-time string equality. Both sides are hashed first so that neither the
 * content nor the length of the secret side leaks through timing.
 */
export function safeEqual(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a, 'utf8').digest();
  const hb = createHash('sha256').update(b, 'utf8').digest();
  return timingSafeEqual(ha, hb);
}

function quote(value: string): string {
  return '"' + value.replace(/[\\"]/g, (c) => '\\' + c) + '"';
}

/** Case-insensitive auth-scheme comparison. */
export function isScheme(c: { scheme: string }, name: string): boolean {
  return c.scheme.toLowerCase() === name.toLowerCase();
}

// ---------------------------------------------------------------- header grammar (RFC 9110 11.2-11.6)

class Cursor {
  pos = 0;
  constructor(readonly s: string) {}
  get done(): boolean {
    return this.pos >= this.s.length;
  }
  peek(): string {
    return this.s[this.pos] ?? '';
  }
  ws(): void {
    while (this.pos < this.s.length && (this.s[this.pos] === ' ' || this.s[this.pos] === '\t')) this.pos++;
  }
  token(): string {
    const start = this.pos;
    while (this.pos < this.s.length && TOKEN_CHAR.test(this.s[this.pos]!)) this.pos++;
    return this.s.slice(start, this.pos);
  }
  /** A quoted-string with backslash escapes; null when unterminated. */
  quoted(): string | null {
    if (this.peek() !== '"') return null;
    let out = '';
    for (let i = this.pos + 1; i < this.s.length; i++) {
      const c = this.s[i]!;
      if (c === '\\' && i + 1 < this.s.length) {
        out += this.s[++i];
      } else if (c === '"') {
        this.pos = i + 1;
        return out;
      } else {
        out += c;
      }
    }
    return null;
  }
  /** A parameter value: quoted-string, or (leniently, as broken CPEs send) anything up to , or whitespace. */
  value(): string | null {
    if (this.peek() === '"') return this.quoted();
    const start = this.pos;
    while (this.pos < this.s.length && !/[,\s]/.test(this.s[this.pos]!)) this.pos++;
    return this.s.slice(start, this.pos);
  }
}

const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*(?=\s*(,|$))/;

/** Parses `name=value` params after a scheme until the next scheme or the end. */
function parseParams(cur: Cursor, stopAtScheme: boolean): Record<string, string> | null {
  const params: Record<string, string> = {};
  for (;;) {
    cur.ws();
    if (cur.done) return params;
    if (cur.peek() === ',') {
      cur.pos++;
      continue;
    }
    const mark = cur.pos;
    const name = cur.token();
    if (!name) return null;
    cur.ws();
    if (cur.peek() !== '=') {
      if (stopAtScheme) {
        cur.pos = mark; // a token not followed by '=' starts the next challenge
        return params;
      }
      return null;
    }
    cur.pos++;
    cur.ws();
    const value = cur.value();
    if (value === null) return null;
    const key = name.toLowerCase();
    // First occurrence wins; a repeated parameter must not override what was checked.
    if (!(key in params)) params[key] = value;
  }
}

/**
 * Parses a WWW-Authenticate (or Proxy-Authenticate) value that may carry several
 * challenges, e.g. `Digest realm="a, b", qop="auth,auth-int", nonce="x", Basic realm="c"`.
 * Node joins repeated header lines with ", ", which this grammar also accepts; an array
 * of lines is accepted too. Malformed trailing input ends the list (what parsed is kept).
 */
export function parseChallenge(header: string | readonly string[] | undefined | null): Challenge[] {
  if (header == null) return [];
  if (typeof header !== 'string') return header.flatMap((h) => parseChallenge(h));
  const cur = new Cursor(header);
  const out: Challenge[] = [];
  for (;;) {
    cur.ws();
    while (cur.peek() === ',' || cur.peek() === ' ' || cur.peek() === '\t') cur.pos++;
    if (cur.done) return out;
    const scheme = cur.token();
    if (!scheme) return out;
    cur.ws();
    const rest = header.slice(cur.pos);
    const t68 = TOKEN68.exec(rest);
    if (t68 && !/^[^=]+=[^=,\s]/.test(rest)) {
      cur.pos += t68[0].length;
      out.push({ scheme, params: {}, token68: t68[0] });
      continue;
    }
    const params = parseParams(cur, true);
    if (params === null) return out;
    out.push({ scheme, params });
  }
}

/**
 * Parses an Authorization header (Basic or Digest). Returns null for absent, malformed or
 * other-scheme headers, and for Digest headers missing a required parameter.
 */
export function parseAuthorization(header: string | undefined | null): ParsedAuthorization | null {
  if (!header) return null;
  const m = /^\s*([!#$%&'*+\-.^_`|~0-9A-Za-z]+)(?:\s+([\s\S]*))?$/.exec(header);
  if (!m) return null;
  const scheme = m[1]!.toLowerCase();
  const rest = (m[2] ?? '').trim();
  if (scheme === 'basic') {
    if (!/^[A-Za-z0-9+/]+=*$/.test(rest)) return null;
    const decoded = Buffer.from(rest, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return null;
    // RFC 7617: the user-id cannot contain ':', the password may.
    return { scheme: 'Basic', username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  if (scheme === 'digest') {
    const cur = new Cursor(rest);
    const p = parseParams(cur, false);
    if (!p) return null;
    const { username, realm, nonce, uri, response } = p;
    if (username === undefined || realm === undefined || nonce === undefined || uri === undefined || response === undefined) {
      return null;
    }
    const out: DigestAuthorizationParams = { scheme: 'Digest', username, realm, nonce, uri, response };
    if (p.algorithm !== undefined) out.algorithm = p.algorithm;
    if (p.qop !== undefined) out.qop = p.qop;
    if (p.nc !== undefined) out.nc = p.nc;
    if (p.cnonce !== undefined) out.cnonce = p.cnonce;
    if (p.opaque !== undefined) out.opaque = p.opaque;
    if (p.userhash !== undefined) out.userhash = p.userhash.toLowerCase() === 'true';
    return out;
  }
  return null;
}

// ---------------------------------------------------------------- Digest computation

export interface DigestInput {
  algorithm?: string;
  username: string;
  realm: string;
  password: string;
  method: string;
  uri: string;
  nonce: string;
  /** "auth" / "auth-int", or undefined for RFC 2069. */
  qop?: string;
  nc?: string;
  cnonce?: string;
  /** Entity body, for qop=auth-int only (default empty). */
  body?: string | Uint8Array;
}

/** The request-digest ("response") of RFC 7616 3.4.1 / RFC 2617 3.2.2.1 / RFC 2069. */
export function digestResponse(i: DigestInput): string {
  const alg = hashOf(i.algorithm);
  if (!alg) throw new Error(`unsupported Digest algorithm ${JSON.stringify(i.algorithm)}`);
  const H = (s: string): string => hashHex(alg.hash, s);
  let ha1 = H(`${i.username}:${i.realm}:${i.password}`);
  if (alg.sess) ha1 = H(`${ha1}:${i.nonce}:${i.cnonce ?? ''}`);
  let ha2: string;
  if (i.qop === 'auth-int') {
    const body = i.body ?? '';
    const bodyHash = createHash(alg.hash)
      .update(typeof body === 'string' ? Buffer.from(body, 'utf8') : body)
      .digest('hex');
    ha2 = H(`${i.method}:${i.uri}:${bodyHash}`);
  } else {
    ha2 = H(`${i.method}:${i.uri}`);
  }
  if (i.qop === undefined) return H(`${ha1}:${i.nonce}:${ha2}`);
  return H(`${ha1}:${i.nonce}:${i.nc ?? ''}:${i.cnonce ?? ''}:${i.qop}:${ha2}`);
}

// ---------------------------------------------------------------- server side

/** `WWW-Authenticate` value for Basic (RFC 7617). */
export function basicChallenge(realm: string): string {
  return `Basic realm=${quote(realm)}, charset="UTF-8"`;
}

export interface DigestChallengeOptions {
  realm: string;
  nonce: string;
  opaque?: string;
  /** The nonce was valid but expired: the client may retry with the new one without asking the user. */
  stale?: boolean;
  /** Default MD5 (what CPEs implement). */
  algorithm?: DigestAlgorithm;
}

/** `WWW-Authenticate` value for Digest with qop="auth". */
export function digestChallenge(o: DigestChallengeOptions): string {
  let s = `Digest realm=${quote(o.realm)}, qop="auth", nonce=${quote(o.nonce)}`;
  if (o.opaque !== undefined) s += `, opaque=${quote(o.opaque)}`;
  s += `, algorithm=${o.algorithm ?? 'MD5'}`;
  if (o.stale) s += ', stale=true';
  return s;
}

/** Checks Basic credentials in constant time (both fields are always compared). */
export function verifyBasic(parsed: ParsedAuthorization, username: string, password: string): boolean {
  if (parsed.scheme !== 'Basic') return false;
  const u = safeEqual(parsed.username, username);
  const p = safeEqual(parsed.password, password);
  return u && p;
}

export interface VerifyDigestOptions {
  /** HTTP method of the request being authenticated. */
  method: string;
  /** The user's password (looked up by parsed.username). */
  password: string;
  /** The realm this server challenges with; a digest for another realm fails. */
  realm: string;
  /**
   * The request-target as received; when given, the digest's uri must name it (some
   * CPEs send the absolute URI, so a matching path+query is accepted too).
   */
  requestUri?: string;
  /** Expected opaque, when the server sent one. */
  opaque?: string;
  /** Refuse the RFC 2069 form (no qop, no cnonce): the ACS requires qop=auth (replay protection needs nc). */
  requireQop?: boolean;
}

/**
 * Verifies a Digest response: qop=auth (nc and cnonce required), and the RFC 2069 form
 * without qop. MD5-sess and SHA-256-sess (RFC 2617 3.2.2.2, RFC 7616 3.4.2) need a cnonce,
 * which goes into H(A1). qop=auth-int and unknown algorithms are refused. The nonce's own
 * validity is checked separately (checkNonce) so callers can answer stale=true.
 */
export function verifyDigest(parsed: ParsedAuthorization, o: VerifyDigestOptions): boolean {
  if (parsed.scheme !== 'Digest') return false;
  const alg = hashOf(parsed.algorithm);
  if (!alg) return false;
  if (alg.sess && !parsed.cnonce) return false;
  if (parsed.realm !== o.realm) return false;
  if (parsed.userhash) return false; // we never offer userhash
  if (o.opaque !== undefined && parsed.opaque !== o.opaque) return false;
  if (o.requestUri !== undefined && !uriMatches(parsed.uri, o.requestUri)) return false;
  let qop: string | undefined;
  if (parsed.qop === undefined && o.requireQop) return false;
  if (parsed.qop !== undefined) {
    if (parsed.qop.toLowerCase() !== 'auth') return false;
    if (!parsed.cnonce || !parsed.nc || !/^[0-9a-fA-F]{8}$/.test(parsed.nc)) return false;
    qop = 'auth';
  }
  const expected = digestResponse({
    algorithm: parsed.algorithm,
    username: parsed.username,
    realm: o.realm,
    password: o.password,
    method: o.method,
    uri: parsed.uri,
    nonce: parsed.nonce,
    qop,
    nc: parsed.nc,
    cnonce: parsed.cnonce,
  });
  return safeEqual(parsed.response.toLowerCase(), expected);
}

function uriMatches(digestUri: string, requestUri: string): boolean {
  if (digestUri === requestUri) return true;
  try {
    const a = new URL(digestUri, 'http://x');
    const b = new URL(requestUri, 'http://x');
    return a.pathname + a.search === b.pathname + b.search;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------- stateless nonces

/**
 * Stateless nonce: base64url(8-byte ms timestamp | 8 random bytes | 16-byte HMAC-SHA256
 * of both). Validity is checked by recomputing the MAC, so no per-device memory is kept.
 * (Without server state, nc replay within maxAge is not detected; TLS or short maxAge
 * bounds that, as in most ACS implementations.)
 */
export function makeNonce(secret: string | Uint8Array, now: number = Date.now()): string {
  const body = Buffer.alloc(16);
  body.writeBigUInt64BE(BigInt(Math.max(0, Math.floor(now))), 0);
  randomBytes(8).copy(body, 8);
  const mac = createHmac('sha256', secret).update(body).digest().subarray(0, 16);
  return Buffer.concat([body, mac]).toString('base64url');
}

export type NonceCheck = 'ok' | 'stale' | 'invalid';

/**
 * 'ok' when the nonce was made with this secret and is at most maxAgeMs old; 'stale' when
 * genuine but expired (answer a fresh challenge with stale=true); 'invalid' when forged,
 * malformed, or dated in the future beyond a small clock allowance.
 */
export function checkNonce(secret: string | Uint8Array, nonce: string, now: number = Date.now(), maxAgeMs = 300_000): NonceCheck {
  if (!/^[A-Za-z0-9_-]{43}$/.test(nonce)) return 'invalid';
  const raw = Buffer.from(nonce, 'base64url');
  if (raw.length !== 32) return 'invalid';
  const body = raw.subarray(0, 16);
  const mac = createHmac('sha256', secret).update(body).digest().subarray(0, 16);
  if (!timingSafeEqual(mac, raw.subarray(16))) return 'invalid';
  const issued = Number(body.readBigUInt64BE(0));
  if (issued > now + 5_000) return 'invalid';
  return now - issued > maxAgeMs ? 'stale' : 'ok';
}

// ---------------------------------------------------------------- one-call server helper

/** Returns the user's password (or null for unknown users). */
export type PasswordLookup = (username: string) => string | null | undefined | Promise<string | null | undefined>;

export interface AuthenticateOptions {
  mode: 'basic' | 'digest';
  realm: string;
  method: string;
  requestUri?: string;
  lookup: PasswordLookup;
  /** HMAC key for nonces (digest mode). */
  nonceSecret?: string | Uint8Array;
  nonceMaxAgeMs?: number;
  now?: number;
  /** Digest: refuse digests without qop=auth (see VerifyDigestOptions.requireQop). */
  requireQop?: boolean;
}

export type AuthenticateResult =
  /** Digest: nonce and nc of the accepted request (for replay tracking, nonce-tracker.ts). */
  | { ok: true; username: string; nonce?: string; nc?: number }
  | {
      ok: false;
      reason: 'missing' | 'malformed' | 'wrong-scheme' | 'unknown-user' | 'bad-credentials' | 'stale-nonce' | 'bad-nonce';
      /** WWW-Authenticate value to send with the 401. */
      challenge: string;
      /** The username claimed, if any (for logs; never the password). */
      username?: string;
    };

/**
 * Authenticates one request's Authorization header against a password lookup; on failure
 * returns the challenge to send. Unknown users and wrong passwords look alike to the peer.
 */
export async function authenticate(header: string | undefined | null, o: AuthenticateOptions): Promise<AuthenticateResult> {
  const now = o.now ?? Date.now();
  const secret = o.nonceSecret ?? '';
  if (o.mode === 'digest' && !o.nonceSecret) throw new Error('digest mode needs a nonceSecret');
  const challenge = (stale = false): string =>
    o.mode === 'basic' ? basicChallenge(o.realm) : digestChallenge({ realm: o.realm, nonce: makeNonce(secret, now), stale });
  if (!header) return { ok: false, reason: 'missing', challenge: challenge() };
  const parsed = parseAuthorization(header);
  if (!parsed) return { ok: false, reason: 'malformed', challenge: challenge() };
  if ((o.mode === 'basic') !== (parsed.scheme === 'Basic')) {
    return { ok: false, reason: 'wrong-scheme', challenge: challenge(), username: parsed.username };
  }
  const password = await o.lookup(parsed.username);
  if (parsed.scheme === 'Basic') {
    // Compare against a dummy when the user is unknown so timing does not tell users apart.
    const good = verifyBasic(parsed, parsed.username, password ?? '\u0000unknown');
    if (password == null) return { ok: false, reason: 'unknown-user', challenge: challenge(), username: parsed.username };
    return good ? { ok: true, username: parsed.username } : { ok: false, reason: 'bad-credentials', challenge: challenge(), username: parsed.username };
  }
  const nonceState = checkNonce(secret, parsed.nonce, now, o.nonceMaxAgeMs);
  if (nonceState === 'invalid') return { ok: false, reason: 'bad-nonce', challenge: challenge(), username: parsed.username };
  if (password == null) return { ok: false, reason: 'unknown-user', challenge: challenge(), username: parsed.username };
  const good = verifyDigest(parsed, { method: o.method, password, realm: o.realm, requestUri: o.requestUri, requireQop: o.requireQop });
  if (!good) return { ok: false, reason: 'bad-credentials', challenge: challenge(), username: parsed.username };
  // RFC 7616 3.3: a correct digest on an expired nonce gets stale=true, not a password prompt.
  if (nonceState === 'stale') return { ok: false, reason: 'stale-nonce', challenge: challenge(true), username: parsed.username };
  return { ok: true, username: parsed.username, nonce: parsed.nonce, nc: parsed.nc !== undefined ? Number.parseInt(parsed.nc, 16) : 0 };
}

// ---------------------------------------------------------------- client side

/** `Authorization` value for Basic. Throws when the username contains ':' (RFC 7617). */
export function basicAuthorization(username: string, password: string): string {
  if (username.includes(':')) throw new Error('Basic user-id must not contain ":"');
  return 'Basic ' + Buffer.from(`${username}:${password}`, 'utf8').toString('base64');
}

export interface DigestAuthorizationOptions {
  /** The Digest challenge (from parseChallenge). */
  challenge: Challenge;
  method: string;
  /** request-target, e.g. "/cr?x=1". */
  uri: string;
  username: string;
  password: string;
  /** Nonce count (1 for the first use of a nonce). */
  nc?: number;
  /** Client nonce; random when omitted. */
  cnonce?: string;
  /** Entity body for qop=auth-int (only used when the server offers nothing but auth-int). */
  body?: string | Uint8Array;
}

/** Random bytes drawn 4 KiB at a time: a cnonce per connection request needs 12 (RFC 7616 3.4). */
const cnoncePool = { bytes: Buffer.alloc(0), at: 0 };
function randomCnonce(): string {
  if (cnoncePool.at + 12 > cnoncePool.bytes.length) {
    cnoncePool.bytes = randomBytes(4096);
    cnoncePool.at = 0;
  }
  const hex = cnoncePool.bytes.toString('hex', cnoncePool.at, cnoncePool.at + 12);
  cnoncePool.at += 12;
  return hex;
}

/**
 * `Authorization` value answering a Digest challenge. Prefers qop=auth, falls back to
 * auth-int, and to the RFC 2069 form when the challenge has no qop. Throws (without any
 * secret in the message) for an unsupported algorithm or qop.
 */
export function digestAuthorization(o: DigestAuthorizationOptions): string {
  const c = o.challenge;
  if (!isScheme(c, 'Digest')) throw new Error('not a Digest challenge');
  const realm = c.params.realm ?? '';
  const nonce = c.params.nonce;
  if (nonce === undefined) throw new Error('Digest challenge without nonce');
  const algorithm = c.params.algorithm;
  const alg = hashOf(algorithm);
  if (!alg) throw new Error(`unsupported Digest algorithm ${JSON.stringify(algorithm)}`);
  let qop: string | undefined;
  if (c.params.qop !== undefined) {
    const offered = c.params.qop.split(',').map((q) => q.trim().toLowerCase());
    if (offered.includes('auth')) qop = 'auth';
    else if (offered.includes('auth-int')) qop = 'auth-int';
    else throw new Error('Digest challenge offers no supported qop');
  }
  const needCnonce = qop !== undefined || alg.sess;
  const cnonce = needCnonce ? (o.cnonce ?? randomCnonce()) : undefined;
  const nc = qop !== undefined ? (o.nc ?? 1).toString(16).padStart(8, '0') : undefined;
  const userhash = c.params.userhash?.toLowerCase() === 'true';
  const username = userhash ? hashHex(alg.hash, `${o.username}:${realm}`) : o.username;
  const response = digestResponse({
    algorithm,
    username: o.username,
    realm,
    password: o.password,
    method: o.method,
    uri: o.uri,
    nonce,
    qop,
    nc,
    cnonce,
    body: o.body,
  });
  const parts = [`username=${quote(username)}`, `realm=${quote(realm)}`, `nonce=${quote(nonce)}`, `uri=${quote(o.uri)}`];
  if (algorithm !== undefined) parts.push(`algorithm=${algorithm}`);
  parts.push(`response="${response}"`);
  if (qop !== undefined) parts.push(`qop=${qop}`, `nc=${nc}`);
  if (cnonce !== undefined) parts.push(`cnonce=${quote(cnonce)}`);
  if (c.params.opaque !== undefined) parts.push(`opaque=${quote(c.params.opaque)}`);
  if (userhash) parts.push('userhash=true');
  return 'Digest ' + parts.join(', ');
}

/**
 * Picks the challenge to answer from a parsed WWW-Authenticate list: a usable Digest
 * (supported algorithm, SHA-256 before MD5, qop auth/auth-int or none) before Basic.
 */
export function pickChallenge(challenges: readonly Challenge[]): Challenge | null {
  const digests = challenges.filter((c) => {
    if (!isScheme(c, 'Digest') || c.params.nonce === undefined || !hashOf(c.params.algorithm)) return false;
    if (c.params.qop === undefined) return true;
    return c.params.qop.split(',').some((q) => ['auth', 'auth-int'].includes(q.trim().toLowerCase()));
  });
  const rank = (c: Challenge): number => (hashOf(c.params.algorithm)!.hash === 'sha256' ? 0 : 1);
  digests.sort((a, b) => rank(a) - rank(b));
  if (digests[0]) return digests[0];
  return challenges.find((c) => isScheme(c, 'Basic')) ?? null;
}
