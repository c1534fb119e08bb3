/**
 * The ACS URL: HTTP transport for CWMP sessions. Thin on purpose: it reads the body within
 * the size limit, decodes it (large bodies on workers), authenticates the CPE (None, Basic,
 * Digest; per-device credentials from the store, else the shared pair) and hands the envelope
 * to the session engine. Plain node:http, not express: the ACS endpoint is the hot path and
 * express costs far more than the 20% budget per request (bench/inform-storm prints both).
 *
 * What CPE HTTP stacks send is taken as the standards allow: HTTP/1.0 with or without
 * keep-alive, a client that closes its sending side after the request, a close-delimited
 * HTTP/1.0 body, bare-LF heads (cpe-connections.ts); an empty POST with Content-Length 0, without
 * any length or chunked; any Content-Type (the body decides) and its charset (body-text.ts);
 * quoted cookie values.
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import type { Logger } from '../app/log.js';
import type { Store } from '../store/types.js';
import { authenticate } from './http-auth.js';
import { SoapError, encodeSoap } from './soap.js';
import { CwmpFault } from './types.js';
import type { DecodePool } from './decode-pool.js';
import { bodyText } from './body-text.js';
import { CpeConnections } from './cpe-connections.js';
import type { CwmpReply, SessionEngine } from './session.js';
import { deviceKeyOf } from './device-id.js';
import { watchConnectionDrop } from './connection-drop.js';
import type { AuthMode } from '../app/config.js';
import { loadServerTls, TlsConfigError } from '../util/tls.js';
import { storeUnavailable } from '../store/errors.js';
import { PeerLimits, type PeerLimitOptions } from './peer-limits.js';

export interface AcsServerOptions {
  host: string;
  port: number;
  maxBodyBytes: number;
  auth: { mode: AuthMode; realm: string; username: string; password: string };
  /**
   * HTTPS (config acs.tls): PEM file paths, read once here; cert '' (or no tls) = plain HTTP.
   * requestClientCert: CPEs must present a certificate signed by `ca` (refused otherwise).
   */
  tls?: { cert: string; key: string; ca: string; requestClientCert: boolean };
  /** Whole request (headers and body) deadline; default 60 s. A stuck peer gets 408 and is closed. */
  requestTimeoutMs?: number;
  /** Request headers deadline (slow-header clients); default 30 s. */
  headersTimeoutMs?: number;
  /**
   * Several instances: this instance's id, sent as the `cup_route` cookie with each new session
   * so that a balancer with cookie stickiness (nginx map, HAProxy `cookie`) keeps a session's
   * POSTs here. Optional: any instance can serve any POST; stickiness saves a Redis lookup.
   */
  route?: string;
  /**
   * Several instances behind a balancer: the Digest nonce secret they share (read at listen()),
   * so that a challenge issued by one instance is accepted by another. Default: one per process.
   */
  sharedNonceSecret?: () => Promise<Buffer>;
  /**
   * An HTTP/1.0 POST without Content-Length and without body bytes yet: how long to wait for its
   * body or the client's close before reading it as an empty POST; default 1 s.
   */
  closeDelimitedGraceMs?: number;
  /**
   * What one peer may cost (config acs.limits, docs/security.md "Limits per peer"): decode
   * warnings logged per request, connections and new sessions per source address. Default: 20
   * lines, no per-address limits. The parse budget is the DecodePool's.
   */
  limits?: { maxLogLinesPerRequest: number; perAddress: PeerLimitOptions };
}

const NO_PEER_LIMITS: PeerLimitOptions = { maxConnections: 0, newSessionsPerMinute: 0, exemptLoopback: true };

const COOKIE_NAME = 'session';
/** Names the instance that opened the session, for balancers with cookie stickiness (README "Scaling out"). */
export const ROUTE_COOKIE = 'cup_route';

export class AcsServer {
  readonly server: http.Server | https.Server;
  /** 'https' when acs.tls.cert is set. */
  readonly scheme: 'http' | 'https';
  /** Signs the stateless Digest nonces (AcsServerOptions.sharedNonceSecret). */
  private nonceSecret: Buffer = randomBytes(32);
  /** Sessions whose CPE has authenticated (by session id). */
  private readonly authenticated = new Set<string>();
  private readonly connections: CpeConnections;
  /** Connections and new sessions per source address (peer-limits.ts). */
  readonly peerLimits: PeerLimits;
  /** Bodies refused for their parse budget (acs.limits.parse). */
  parseBudgetRefusals = 0;
  private lastRefusalLogMs = 0;

  constructor(
    private readonly engine: SessionEngine,
    private readonly decoder: DecodePool,
    private readonly store: Store,
    private readonly opts: AcsServerOptions,
    private readonly log: Logger,
  ) {
    const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
      this.onRequest(req, res).catch((e: unknown) => {
        if (storeUnavailable(e)) {
          // Redis unreachable, or the store cannot write (disk full, read-only): the CPE retries later (TR-069 3.2.1.1).
          this.log.warn({ err: (e as Error).message }, 'ACS: store unavailable, answered 503');
          if (!res.headersSent)
            return send(res, {
              status: 503,
              body: 'the store is unavailable; retry later\n',
              contentType: 'text/plain',
              headers: { 'Retry-After': '30' },
            });
        } else this.log.error({ err: e }, 'ACS request failed');
        if (!res.headersSent) send(res, { status: 500, body: 'internal error\n', contentType: 'text/plain' });
        else res.destroy();
      });
    };
    const requestTimeout = opts.requestTimeoutMs ?? 60_000;
    const headersTimeout = Math.min(opts.headersTimeoutMs ?? 30_000, requestTimeout);
    // node checks both deadlines only every connectionsCheckingInterval (default 30 s, which
    // would let a slow-header client hold its socket up to twice the deadline).
    const connectionsCheckingInterval = Math.max(50, Math.min(5_000, Math.floor(headersTimeout / 4)));
    const tls = opts.tls ? loadServerTls('acs.tls', opts.tls) : null;
    if (tls) {
      if (opts.tls?.requestClientCert && !tls.ca) {
        throw new TlsConfigError('acs.tls.requestClientCert needs acs.tls.ca: the CA that signs the CPE certificates');
      }
      const requireCert = opts.tls?.requestClientCert === true;
      this.scheme = 'https';
      this.server = https.createServer(
        {
          keepAlive: true,
          keepAliveTimeout: 30_000,
          connectionsCheckingInterval,
          cert: tls.cert,
          key: tls.key,
          ...(tls.ca ? { ca: tls.ca } : {}),
          // A CPE without a certificate signed by ca fails the handshake (no HTTP at all).
          ...(requireCert ? { requestCert: true, rejectUnauthorized: true } : {}),
        },
        handler,
      );
      this.server.on('tlsClientError', (err, sock) => {
        this.log.warn({ remote: sock.remoteAddress, error: err.message }, 'ACS: TLS handshake failed');
      });
    } else {
      this.scheme = 'http';
      this.server = http.createServer({ keepAlive: true, keepAliveTimeout: 30_000, connectionsCheckingInterval }, handler);
    }
    // CPE requests can be slow on bad links, but a stuck peer must not hold a socket forever.
    this.server.requestTimeout = requestTimeout;
    this.server.headersTimeout = headersTimeout;
    this.connections = new CpeConnections(this.server, tls ? 'secureConnection' : 'connection', {
      maxBodyBytes: opts.maxBodyBytes,
      firstByteTimeoutMs: headersTimeout,
      requestTimeoutMs: requestTimeout,
      bodyGraceMs: opts.closeDelimitedGraceMs ?? 1000,
    });
    this.engine.on('sessionEnd', ({ sessionId }) => this.authenticated.delete(sessionId));
    this.peerLimits = new PeerLimits(opts.limits?.perAddress ?? NO_PEER_LIMITS);
    this.peerLimits.attach(this.server, (remote) => this.logRefusal(remote, 'connections'));
  }

  /** One line per 10 s at most: a flood of refusals must not become a flood of log lines. */
  private logRefusal(remote: string, what: 'connections' | 'new sessions'): void {
    const t = Date.now();
    if (t - this.lastRefusalLogMs < 10_000) return;
    this.lastRefusalLogMs = t;
    this.log.warn({ remote, ...this.peerLimits.counts }, `ACS: ${what} over the per-address limit refused (acs.limits.perAddress)`);
  }

  async listen(): Promise<number> {
    if (this.opts.sharedNonceSecret) this.nonceSecret = await this.opts.sharedNonceSecret();
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.opts.port, this.opts.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    return (this.server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.connections.destroyAll();
      this.server.closeIdleConnections();
      setTimeout(() => this.server.closeAllConnections(), 2000).unref();
    });
  }

  private async onRequest(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    // A CPE closing its connection with an RPC in flight is told to the engine (acs.droppedConnectionGraceMs).
    watchConnectionDrop(req, res, (socket) => this.engine.connectionClosed(socket));
    if (req.method !== 'POST') {
      req.resume();
      this.log.info({ method: req.method, url: req.url }, 'ACS: wrong HTTP method');
      return send(res, {
        status: 405,
        body: `method ${req.method} not allowed: CWMP uses HTTP POST (TR-069 3.4)\n`,
        contentType: 'text/plain',
        headers: { Allow: 'POST' },
      });
    }
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > this.opts.maxBodyBytes) {
      req.resume();
      this.log.warn({ bytes: declared }, 'ACS: body over the limit');
      return send(res, {
        status: 413,
        body: `body of ${declared} bytes exceeds the limit of ${this.opts.maxBodyBytes} bytes\n`,
        contentType: 'text/plain',
        headers: { Connection: 'close' },
      });
    }
    const cookieId = readCookie(req.headers.cookie);
    const socket = req.socket as Socket;
    const sessionId = await this.engine.findSession(cookieId, socket);
    // A session this instance authenticated, or (several instances) one that exists in Redis:
    // either was opened by an authenticated Inform.
    let needAuth = this.opts.auth.mode !== 'none' && !(sessionId && (this.engine.sharedSessions || this.authenticated.has(sessionId)));
    if (needAuth && !req.headers.authorization) {
      req.resume();
      const r = await authenticate(
        null,
        this.authOptions(req, () => null),
      );
      return send(res, { status: 401, body: 'authentication required\n', contentType: 'text/plain', headers: { 'WWW-Authenticate': r.ok ? '' : r.challenge } });
    }

    // A request without a session would open one: at most newSessionsPerMinute per address.
    if (!sessionId && !this.peerLimits.allowNewSession(socket.remoteAddress)) {
      req.resume();
      this.logRefusal(socket.remoteAddress ?? '', 'new sessions');
      const retry = String(this.peerLimits.retryAfterS(socket.remoteAddress));
      return send(res, {
        status: 503,
        body: 'too many new sessions from this address; retry later\n',
        contentType: 'text/plain',
        headers: { 'Retry-After': retry },
      });
    }

    const raw = await readBody(req, this.opts.maxBodyBytes);
    if (raw === null) {
      this.log.warn('ACS: body over the limit');
      return send(res, {
        status: 413,
        body: `body exceeds the limit of ${this.opts.maxBodyBytes} bytes\n`,
        contentType: 'text/plain',
        headers: { Connection: 'close' },
      });
    }
    const { text, unknownLabel } = bodyText(raw, req.headers['content-type']);
    if (unknownLabel !== undefined) this.log.debug({ charset: unknownLabel }, 'ACS: unknown charset, body read as UTF-8');

    let decoded: Awaited<ReturnType<DecodePool['decode']>>;
    if (text.trim() === '') decoded = { envelope: null, warnings: [] };
    else {
      try {
        decoded = await this.decoder.decode(text, raw.length);
      } catch (e) {
        if (!(e instanceof SoapError)) throw e;
        if (e.code === 'over-budget') {
          this.parseBudgetRefusals++;
          this.log.warn({ remote: socket.remoteAddress, bytes: raw.length }, `ACS: body refused: ${e.message}`);
          return send(res, { status: 413, body: `body refused: ${e.message}\n`, contentType: 'text/plain', headers: { Connection: 'close' } });
        }
        if (e.code === 'unsupported-method' && sessionId && !needAuth) {
          return send(res, await this.engine.unsupportedInSession(sessionId, e.id ?? null, e.message));
        }
        this.log.warn({ code: e.code, remote: socket.remoteAddress }, `ACS: bad CPE message: ${e.message}`);
        if (e.cwmpVersion && (e.code === 'invalid-message' || e.code === 'unsupported-method')) {
          // The envelope was readable: answer in CWMP terms (TR-069 A.5: 8003 invalid arguments, 8000 method not supported).
          const code = e.code === 'invalid-message' ? CwmpFault.AcsInvalidArguments : CwmpFault.AcsMethodNotSupported;
          const body = encodeSoap({
            cwmpVersion: e.cwmpVersion,
            id: e.id ?? null,
            body: { method: 'Fault', soapFaultCode: 'Client', faultCode: code, faultString: e.message, setParameterValuesFault: [] },
          });
          return send(res, { status: 400, body, contentType: 'text/xml; charset="utf-8"' });
        }
        return send(res, { status: 400, body: `bad CWMP message (${e.code}): ${e.message}\n`, contentType: 'text/plain' });
      }
    }
    this.logWarnings(decoded);

    const env = decoded.envelope;
    // Every Inform authenticates, even on a connection whose previous session is still open.
    if (this.opts.auth.mode !== 'none' && env?.body.method === 'Inform') needAuth = true;
    if (needAuth) {
      const inform = env?.body.method === 'Inform' ? env.body : null;
      const device = inform ? await this.store.getDevice(deviceKeyOf(inform.deviceId)) : null;
      const { username, password } = this.opts.auth;
      const lookup = (user: string): string | null => {
        if (device?.cpeUsername) return user === device.cpeUsername ? (device.cpePassword ?? '') : null;
        return username && user === username ? password : null;
      };
      const r = await authenticate(req.headers.authorization, this.authOptions(req, lookup));
      if (!r.ok) {
        this.log.warn({ reason: r.reason, username: r.username, remote: socket.remoteAddress }, 'ACS: CPE authentication failed');
        return send(res, { status: 401, body: 'authentication failed\n', contentType: 'text/plain', headers: { 'WWW-Authenticate': r.challenge } });
      }
    }

    const reply = await this.engine.handle({ envelope: env, sessionId: cookieId, connection: socket });
    if (reply.cookie && this.opts.auth.mode !== 'none') this.authenticated.add(reply.cookie);
    send(res, reply, reply.cookie ? (this.opts.route ?? null) : null);
  }

  /** At most maxLogLinesPerRequest lines, then one line with the count of the others. */
  private logWarnings(d: { warnings: string[]; warningsDropped?: number }): void {
    const max = this.opts.limits?.maxLogLinesPerRequest ?? 20;
    const n = Math.min(max, d.warnings.length);
    for (let i = 0; i < n; i++) this.log.debug({ warning: d.warnings[i] }, 'ACS: decode warning');
    const more = d.warnings.length - n + (d.warningsDropped ?? 0);
    if (more > 0) this.log.debug({ more }, `ACS: ${more} more decode warnings not logged (acs.limits.maxLogLinesPerRequest)`);
  }

  private authOptions(req: http.IncomingMessage, lookup: (u: string) => string | null) {
    return {
      mode: this.opts.auth.mode === 'digest' ? ('digest' as const) : ('basic' as const),
      realm: this.opts.auth.realm,
      method: req.method ?? 'POST',
      requestUri: req.url,
      lookup,
      nonceSecret: this.nonceSecret,
    };
  }
}

function send(res: http.ServerResponse, r: CwmpReply, route: string | null = null): void {
  const headers: Record<string, string | number | string[]> = { ...(r.headers ?? {}) };
  const body = Buffer.from(r.body, 'utf8'); // Content-Length in bytes, not characters
  if (r.contentType && body.length > 0) headers['Content-Type'] = r.contentType;
  headers['Content-Length'] = body.length;
  if (r.cookie) {
    const cookies = [`${COOKIE_NAME}=${r.cookie}; Path=/; HttpOnly`];
    if (route) cookies.push(`${ROUTE_COOKIE}=${encodeURIComponent(route)}; Path=/; HttpOnly`);
    headers['Set-Cookie'] = cookies.length === 1 ? cookies[0]! : cookies;
  }
  if (headers['WWW-Authenticate'] === '') delete headers['WWW-Authenticate'];
  res.writeHead(r.status, headers);
  res.end(body);
}

/**
 * Our session cookie from a Cookie header. CPEs echo it in several forms: plain, quoted
 * (RFC 6265 4.1.1 allows a quoted cookie-value), with the attributes of Set-Cookie repeated
 * ("session=x; Path=/; HttpOnly") or RFC 2965 "$Version" pairs around it.
 */
export function readCookie(header: string | undefined): string | null {
  if (!header) return null;
  for (const part of header.split(/[;,]/)) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === COOKIE_NAME) {
      let v = part.slice(i + 1).trim();
      if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
      return v || null;
    }
  }
  return null;
}

/** Reads the body; null when it grows past the limit (chunked bodies have no Content-Length). */
function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      if (over) return;
      size += c.length;
      if (size > limit) {
        over = true;
        chunks.length = 0;
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(over ? null : chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
