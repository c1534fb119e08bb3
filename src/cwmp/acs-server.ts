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
import { EventEmitter } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { Logger } from '../app/log.js';
import type { Store } from '../store/types.js';
import { authenticate, parseAuthorization, type AuthenticateResult, type PasswordLookup } from './http-auth.js';
import { MemoryNonceTracker, type NonceTracker } from './nonce-tracker.js';
import { promotePendingCpeCredentials } from './cpe-credentials.js';
import { clientAddress } from './client-address.js';
import { CidrList } from '../util/cidr.js';
import type { TLSSocket } from 'node:tls';
import type { DeviceRecord } from '../store/types.js';
import type { Inform } from './types.js';
import { SoapError, encodeSoap } from './soap.js';
import { CwmpFault } from './types.js';
import type { BodyDecode, DecodePool } from './decode-pool.js';
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
  auth: { mode: AuthMode; realm: string; username: string; password: string; perDevice?: boolean; nonceMaxAgeMs?: number };
  /** Largest body of a request not authenticated yet (acs.preAuthMaxBodyBytes); default 64 KiB. */
  preAuthMaxBodyBytes?: number;
  /** Digest nonce use (replay); default: in memory. Several instances pass the Redis one. */
  nonceTracker?: NonceTracker;
  /** acs.trustedProxies: CIDR blocks of reverse proxies whose X-Forwarded-For is believed. */
  trustedProxies?: readonly string[];
  /** acs.identityPolicy: a known device's certificate identity or ConnectionRequestURL host changed. */
  identityPolicy?: 'refuse' | 'log';
  /**
   * HTTPS (config acs.tls): PEM file paths, read once here; cert '' (or no tls) = plain HTTP.
   * requestClientCert (= clientCert require): CPEs must present a certificate signed by `ca`.
   * clientCert request: a certificate is asked for, optional; either way it is the device's
   * identity, bound at first use (docs/security.md "CPE authentication").
   */
  tls?: { cert: string; key: string; ca: string; requestClientCert: boolean; clientCert?: 'off' | 'request' | 'require' };
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
   * Several instances: relays a POST of a session another instance serves to it (src/cluster/
   * forward.ts); true when it took the request.
   */
  forward?: (req: http.IncomingMessage, res: http.ServerResponse) => boolean;
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
/** Who a request authenticated as, from its headers alone (the body is read only after). */
type Identity =
  | { kind: 'shared'; username: string; nonce?: string }
  | { kind: 'device'; username: string; deviceKey: string; pending: boolean; nonce?: string };

/** Names the instance that opened the session, for balancers with cookie stickiness (README "Scaling out"). */
export const ROUTE_COOKIE = 'cup_route';

export interface AcsServerEvents {
  /** A CPE's HTTP request answered: its status and the time from its arrival to the answer's last byte handed to the socket. */
  handled: [{ status: number; ms: number }];
}

export class AcsServer extends EventEmitter<AcsServerEvents> {
  readonly server: http.Server | https.Server;
  /** 'https' when acs.tls.cert is set. */
  readonly scheme: 'http' | 'https';
  /** Signs the stateless Digest nonces (AcsServerOptions.sharedNonceSecret). */
  private nonceSecret: Buffer = randomBytes(32);
  /** Sessions whose CPE has authenticated (by session id), and the username it authenticated with. */
  private readonly authenticated = new Map<string, string>();
  private readonly connections: CpeConnections;
  private readonly nonces: NonceTracker;
  private readonly trustedProxies: CidrList;
  private readonly clientCert: 'off' | 'request' | 'require';
  /**
   * Per-device username -> device key (a username names one device for good: cpe-credentials.ts),
   * so that authentication costs the store's cached getDevice, not a query. Bounded.
   */
  private readonly loginOwners = new LRUCache<string, string>({ max: 50_000 });
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
    super();
    const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
      if (this.listenerCount('handled') > 0) {
        // The ACS's own handling time (metrics: cwmp_acs_request_duration_seconds), body read included.
        const t0 = performance.now();
        res.once('finish', () => this.emit('handled', { status: res.statusCode, ms: performance.now() - t0 }));
      }
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
    this.nonces = opts.nonceTracker ?? new MemoryNonceTracker();
    this.trustedProxies = new CidrList(opts.trustedProxies ?? []);
    this.clientCert = opts.tls?.requestClientCert ? 'require' : (opts.tls?.clientCert ?? 'off');
    const tls = opts.tls ? loadServerTls('acs.tls', opts.tls) : null;
    if (tls) {
      if (this.clientCert !== 'off' && !tls.ca) {
        throw new TlsConfigError(
          `acs.tls.${opts.tls?.requestClientCert ? 'requestClientCert' : 'clientCert'} needs acs.tls.ca: the CA that signs the CPE certificates`,
        );
      }
      const requireCert = this.clientCert === 'require';
      this.scheme = 'https';
      this.server = https.createServer(
        {
          keepAlive: true,
          keepAliveTimeout: 30_000,
          connectionsCheckingInterval,
          cert: tls.cert,
          key: tls.key,
          ...(tls.ca ? { ca: tls.ca } : {}),
          // A CPE without a certificate signed by ca fails the handshake (no HTTP at all);
          // 'request': asked for, and checked per request (socket.authorized).
          ...(requireCert ? { requestCert: true, rejectUnauthorized: true } : {}),
          ...(this.clientCert === 'request' ? { requestCert: true, rejectUnauthorized: false } : {}),
        },
        handler,
      );
      this.server.on('tlsClientError', (err, sock) => {
        this.log.warn({ remote: sock.remoteAddress, error: err.message }, 'ACS: TLS handshake failed');
      });
    } else {
      if (this.clientCert !== 'off') throw new TlsConfigError('acs.tls.clientCert needs HTTPS: set acs.tls.cert and acs.tls.key');
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
    if (this.opts.forward?.(req, res)) return;
    const mode = this.opts.auth.mode;
    const cookieId = readCookie(req.headers.cookie);
    const socket = req.socket as Socket;
    const client = clientAddress(socket.remoteAddress, req.headers['x-forwarded-for'], this.trustedProxies);
    // Behind a trusted proxy that pools upstream connections the TCP connection says nothing
    // about the CPE: such a POST joins a session by its cookie only (a fresh object per request).
    const connection: object = client.proxied ? {} : socket;
    const session = await this.engine.findSessionOf(cookieId, connection);
    const sessionId = session?.id ?? null;
    // A session this instance authenticated, or (several instances) one that exists in Redis:
    // either was opened by an authenticated Inform.
    const inSession = sessionId !== null && (mode === 'none' || this.engine.sharedSessions || this.authenticated.has(sessionId));

    // Authentication from the headers, before a byte of the body is read (challenge first).
    let identity: Identity | null = null;
    if (mode !== 'none' && !inSession) {
      const r = await this.authenticateHeaders(req);
      if (!r.ok) {
        req.resume();
        if (req.headers.authorization) this.log.warn({ reason: r.reason, username: r.username, remote: client.address }, 'ACS: CPE authentication failed');
        return send(res, {
          status: 401,
          body: r.reason === 'missing' ? 'authentication required\n' : 'authentication failed\n',
          contentType: 'text/plain',
          headers: { 'WWW-Authenticate': r.challenge, ...closeIfBody(req, this.opts.preAuthMaxBodyBytes ?? 64 * 1024) },
        });
      }
      identity = r.identity;
    } else if (mode !== 'none' && session && req.headers.authorization) {
      // The cookie is bound to the device that authenticated the session: another device's
      // credentials with it are refused (a pooled or stolen cookie).
      const other = await this.credentialsDevice(req.headers.authorization, this.authenticated.get(session.id));
      if (other !== null && other !== session.deviceKey) {
        req.resume();
        this.log.warn({ remote: client.address }, 'ACS security event: session cookie presented with another device\u2019s credentials');
        return send(res, { status: 403, body: 'this session belongs to another device\n', contentType: 'text/plain', headers: { Connection: 'close' } });
      }
    }

    // Until the request is authenticated (auth none: outside a session) only a small body is read.
    const authenticated = identity !== null || (inSession && mode !== 'none') || (mode === 'none' && sessionId !== null);
    const limit = authenticated ? this.opts.maxBodyBytes : Math.min(this.opts.maxBodyBytes, this.opts.preAuthMaxBodyBytes ?? 64 * 1024);
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > limit) {
      req.resume();
      this.log.warn({ bytes: declared, limit, remote: client.address }, 'ACS: body over the limit');
      return send(res, {
        status: 413,
        body: `body of ${declared} bytes exceeds the limit of ${limit} bytes${authenticated ? '' : ' before authentication'}\n`,
        contentType: 'text/plain',
        headers: { Connection: 'close' },
      });
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

    const read = await readBody(req, limit);
    if (read === null) {
      this.log.warn({ limit, remote: client.address }, 'ACS: body over the limit');
      return send(res, {
        status: 413,
        body: `body exceeds the limit of ${limit} bytes\n`,
        contentType: 'text/plain',
        headers: { Connection: 'close' },
      });
    }

    let decoded: BodyDecode;
    try {
      decoded = await this.decoder.decodeBody(read.chunks, read.size, req.headers['content-type']);
    } catch (e) {
      if (!(e instanceof SoapError)) throw e;
      if (e.code === 'over-budget') {
        this.parseBudgetRefusals++;
        this.log.warn({ remote: socket.remoteAddress, bytes: read.size }, `ACS: body refused: ${e.message}`);
        return send(res, { status: 413, body: `body refused: ${e.message}\n`, contentType: 'text/plain', headers: { Connection: 'close' } });
      }
      if (e.code === 'unsupported-method' && sessionId && inSession) {
        return send(res, await this.engine.unsupportedInSession(sessionId, e.id ?? null, e.message));
      }
      this.log.warn({ code: e.code, remote: client.address }, `ACS: bad CPE message: ${e.message}`);
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
    if (decoded.unknownLabel !== undefined) this.log.debug({ charset: decoded.unknownLabel }, 'ACS: unknown charset, body read as UTF-8');
    this.logWarnings(decoded);

    const env = decoded.envelope;
    const inform = env?.body.method === 'Inform' ? env.body : null;
    let device: DeviceRecord | null = null;
    if (inform) {
      device = await this.store.getDevice(deviceKeyOf(inform.deviceId));
      if (mode !== 'none') {
        // Every Inform authenticates, even on a connection whose previous session is still open.
        if (!identity) {
          const r = await this.authenticateHeaders(req);
          if (!r.ok) {
            this.log.warn({ reason: r.reason, username: r.username, remote: client.address }, 'ACS: CPE authentication failed');
            return send(res, { status: 401, body: 'authentication failed\n', contentType: 'text/plain', headers: { 'WWW-Authenticate': r.challenge } });
          }
          identity = r.identity;
        }
        const refused = await this.checkDevice(identity, inform, device, client.address);
        if (refused) return send(res, { status: 403, body: `${refused}\n`, contentType: 'text/plain', headers: { Connection: 'close' } });
      }
      const refused = this.checkIdentityBinding(socket, inform, device, client.address);
      if (refused) return send(res, { status: 403, body: `${refused}\n`, contentType: 'text/plain', headers: { Connection: 'close' } });
    }

    const reply = await this.engine.handle({ envelope: env, sessionId: cookieId, connection });
    if (reply.cookie && mode !== 'none') this.authenticated.set(reply.cookie, identity?.username ?? '');
    if (inform && reply.cookie) await this.bindCertificate(socket, deviceKeyOf(inform.deviceId));
    send(res, reply, reply.cookie ? (this.opts.route ?? null) : null);
  }

  /**
   * Checks the Authorization header alone: the shared login, or a device's own (current or
   * pending) credentials found by their username; Digest needs qop=auth, an unexpired nonce and
   * an nc above every nc seen with that nonce (nonce-tracker.ts).
   */
  private async authenticateHeaders(req: http.IncomingMessage): Promise<{ ok: true; identity: Identity } | Extract<AuthenticateResult, { ok: false }>> {
    const { username: shared, password: sharedPassword } = this.opts.auth;
    let device: DeviceRecord | null = null;
    const lookup = async (user: string): Promise<string | null> => {
      if (shared && user === shared) return sharedPassword;
      device = user ? await this.deviceOfLogin(user) : null;
      if (!device) return null;
      if (device.cpeUsername === user) return device.cpePassword ?? '';
      if (device.cpePendingUsername === user) return device.cpePendingPassword ?? '';
      return null;
    };
    const r = await authenticate(req.headers.authorization, { ...this.authOptions(req, lookup), requireQop: true });
    if (!r.ok) return r;
    if (r.nonce !== undefined) {
      const ttl = (this.opts.auth.nonceMaxAgeMs ?? 300_000) + 10_000;
      if ((await this.nonces.use(r.nonce, r.nc ?? 0, ttl)) === 'replay') {
        const fresh = await authenticate(
          null,
          this.authOptions(req, () => null),
        );
        return { ok: false, reason: 'bad-nonce', challenge: fresh.ok ? '' : fresh.challenge, username: r.username };
      }
    }
    const d = device as DeviceRecord | null;
    const identity: Identity =
      d && r.username !== shared
        ? { kind: 'device', username: r.username, deviceKey: d.deviceKey, pending: d.cpePendingUsername === r.username, nonce: r.nonce }
        : { kind: 'shared', username: r.username, nonce: r.nonce };
    return { ok: true, identity };
  }

  /**
   * The device whose own credentials an Authorization header names (null: the shared login, the
   * login that opened the session, or nobody).
   */
  private async credentialsDevice(header: string, sessionLogin: string | undefined): Promise<string | null> {
    const parsed = parseAuthorization(header);
    if (!parsed || (this.opts.auth.username && parsed.username === this.opts.auth.username)) return null;
    // The login that opened this session (the common case: a CPE repeating its header): its own device.
    if (parsed.username === sessionLogin) return null;
    return (await this.deviceOfLogin(parsed.username))?.deviceKey ?? null;
  }

  /** The device whose current or pending per-device username this is. */
  private async deviceOfLogin(username: string): Promise<DeviceRecord | null> {
    const known = this.loginOwners.get(username);
    if (known !== undefined) {
      const d = await this.store.getDevice(known);
      if (d && (d.cpeUsername === username || d.cpePendingUsername === username)) return d;
      this.loginOwners.delete(username);
    }
    const d = await this.store.getDeviceByCpeUsername(username);
    if (d) this.loginOwners.set(username, d.deviceKey);
    return d;
  }

  /**
   * The authenticated identity may speak for the Inform's device: its own credentials for it,
   * the shared login only for a device without credentials of its own, and a Digest nonce for one
   * device only. Returns the refusal, or null.
   */
  private async checkDevice(identity: Identity, inform: Inform, device: DeviceRecord | null, remote: string): Promise<string | null> {
    const deviceKey = deviceKeyOf(inform.deviceId);
    const refuse = (why: string): string => {
      this.log.warn({ deviceKey, username: identity.username, remote }, `ACS security event: Inform refused: ${why}`);
      return `Inform refused: ${why}`;
    };
    if (identity.kind === 'device' && identity.deviceKey !== deviceKey) return refuse('these credentials belong to another device');
    if (identity.kind === 'shared' && device?.cpeUsername) return refuse('the device has credentials of its own; the shared login only bootstraps new devices');
    if (identity.nonce !== undefined && !(await this.nonces.bind(identity.nonce, deviceKey, (this.opts.auth.nonceMaxAgeMs ?? 300_000) + 10_000)))
      return refuse('the Digest nonce was issued to another device');
    if (identity.kind === 'device' && identity.pending) {
      // The device applied the pending pair: it is its pair now (cpe-credentials.ts).
      await promotePendingCpeCredentials(this.store, deviceKey, identity.username);
      this.log.info({ deviceKey }, 'per-device ACS credentials confirmed by the device');
    }
    return null;
  }

  /**
   * acs.identityPolicy: a known device whose certificate identity or ConnectionRequestURL host
   * changed. Returns the refusal (policy refuse), or null.
   */
  private checkIdentityBinding(socket: Socket, inform: Inform, device: DeviceRecord | null, remote: string): string | null {
    if (!device) return null;
    const changes: string[] = [];
    const cert = this.certificateIdentity(socket);
    if (device.cpeCertIdentity && cert !== device.cpeCertIdentity) changes.push('its TLS client certificate identity changed');
    const url = inform.parameterList.find((p) => p.name.endsWith('.ManagementServer.ConnectionRequestURL'))?.value;
    // The same URL as stored (every periodic and connection-request Inform) needs no parse.
    const known = device.connectionRequestUrl;
    if (url && known && url !== known && hostOf(url) !== hostOf(known)) changes.push('its ConnectionRequestURL host changed');
    if (changes.length === 0) return null;
    const refuse = this.opts.identityPolicy === 'refuse';
    this.log.warn({ deviceKey: device.deviceKey, remote, policy: refuse ? 'refuse' : 'log' }, `ACS security event: known device ${changes.join(' and ')}`);
    return refuse ? `Inform refused: ${changes.join(' and ')} (acs.identityPolicy refuse)` : null;
  }

  /** Subject of a CA-verified client certificate (acs.tls.clientCert), or null. */
  private certificateIdentity(socket: Socket): string | null {
    if (this.clientCert === 'off') return null;
    const tls = socket as Partial<TLSSocket>;
    if (!tls.authorized || typeof tls.getPeerCertificate !== 'function') return null;
    const c = tls.getPeerCertificate();
    if (!c?.subject) return null;
    const subject = Object.entries(c.subject)
      .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('+') : v}`)
      .join(',');
    return subject || (c.serialNumber ? `serial=${c.serialNumber}` : null);
  }

  /** First use: the device's certificate identity is bound to it. */
  private async bindCertificate(socket: Socket, deviceKey: string): Promise<void> {
    const cert = this.certificateIdentity(socket);
    if (!cert) return;
    const device = await this.store.getDevice(deviceKey);
    if (!device || device.cpeCertIdentity) return;
    device.cpeCertIdentity = cert;
    await this.store.upsertDevice(device);
    this.log.info({ deviceKey, certificate: cert }, 'TLS client certificate bound to the device');
  }

  /** At most maxLogLinesPerRequest lines, then one line with the count of the others. */
  private logWarnings(d: { warnings: string[]; warningsDropped?: number }): void {
    const max = this.opts.limits?.maxLogLinesPerRequest ?? 20;
    const n = Math.min(max, d.warnings.length);
    for (let i = 0; i < n; i++) this.log.debug({ warning: d.warnings[i] }, 'ACS: decode warning');
    const more = d.warnings.length - n + (d.warningsDropped ?? 0);
    if (more > 0) this.log.debug({ more }, `ACS: ${more} more decode warnings not logged (acs.limits.maxLogLinesPerRequest)`);
  }

  private authOptions(req: http.IncomingMessage, lookup: PasswordLookup) {
    return {
      mode: this.opts.auth.mode === 'digest' ? ('digest' as const) : ('basic' as const),
      realm: this.opts.auth.realm,
      method: req.method ?? 'POST',
      requestUri: req.url,
      lookup,
      nonceSecret: this.nonceSecret,
      nonceMaxAgeMs: this.opts.auth.nonceMaxAgeMs,
    };
  }
}

/**
 * A 401 answered before the body is read: the body is drained unparsed so that the CPE can send
 * its authenticated request on the same connection (Digest, TR-069 3.4.4), unless it is larger
 * than a CWMP message needs before authentication: then the connection is closed.
 */
function closeIfBody(req: http.IncomingMessage, preAuthLimit: number): Record<string, string> {
  const declared = Number(req.headers['content-length'] ?? 0);
  return declared > preAuthLimit || req.headers['transfer-encoding'] !== undefined ? { Connection: 'close' } : {};
}

function hostOf(url: string): string | null {
  try {
    return new URL(url).hostname.toLowerCase();
  } catch {
    return null;
  }
}

function send(res: http.ServerResponse, r: CwmpReply, route: string | null = null): void {
  const headers: Record<string, string | number | string[]> = { ...(r.headers ?? {}) };
  const length = Buffer.byteLength(r.body, 'utf8'); // Content-Length in bytes, not characters
  if (r.contentType && length > 0) headers['Content-Type'] = r.contentType;
  headers['Content-Length'] = length;
  if (r.cookie) {
    const cookies = [`${COOKIE_NAME}=${r.cookie}; Path=/; HttpOnly`];
    if (route) cookies.push(`${ROUTE_COOKIE}=${encodeURIComponent(route)}; Path=/; HttpOnly`);
    headers['Set-Cookie'] = cookies.length === 1 ? cookies[0]! : cookies;
  }
  if (headers['WWW-Authenticate'] === '') delete headers['WWW-Authenticate'];
  res.writeHead(r.status, headers);
  // A string body leaves with the head in one write(); a Buffer would take a corked writev of two.
  res.end(r.body, 'utf8');
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

/**
 * Reads the body as the socket gave it (chunks, joined only by whoever decodes it: decode-pool.ts);
 * null when it grows past the limit (chunked bodies have no Content-Length).
 */
function readBody(req: http.IncomingMessage, limit: number): Promise<{ chunks: Buffer[]; size: number } | null> {
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
    req.on('end', () => resolve(over ? null : { chunks, size }));
    req.on('error', reject);
  });
}
