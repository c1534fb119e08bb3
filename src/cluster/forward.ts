/**
 * Several instances behind a balancer without stickiness: a POST of a CWMP session that lands on
 * an instance other than the one serving the session is relayed over HTTP to that instance
 * (cookie `cup_route`, set with each new session, names it) instead of moving the session here.
 * Moving a session costs Redis three commands and two pub/sub hops (redis-session-state.ts); on
 * a round-robin balancer every other POST moves it (docs/scaling.md). A relay costs Redis nothing:
 * the instances' ACS URLs ride on their liveness keys (cluster.ts), read by the heartbeat anyway.
 *
 * The relayed POST is an ordinary CPE request to the serving instance: no trust is added (its
 * Digest, cookie and limits apply there as for the CPE), and it carries `Via` and
 * `X-Forwarded-For`, so that the relaying connection, which carries the POSTs of many CPEs, is
 * never taken for a CPE's (src/cwmp/connection-drop.ts). A POST relayed once is never relayed
 * again (`Via` names this proxy), so a session that moved meanwhile is moved as before.
 * The cookie only picks among live instances' URLs from Redis: a CPE cannot aim it elsewhere.
 */
import http from 'node:http';
import type { Logger } from '../app/log.js';

/** `Via` pseudonym of a relay (RFC 9110 7.6.3): a POST carrying it is not relayed again. */
export const VIA = 'cwmp-usp-proxy';
const SESSION_COOKIE = 'session';
const ROUTE_COOKIE = 'cup_route';
/** Hop-by-hop headers (RFC 9110 7.6.1), not copied across the relay. */
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'host']);

export interface ForwardDeps {
  instanceId: string;
  /** This instance serves the session. */
  holds(sessionId: string): boolean;
  /** A live instance's ACS URL ('' or undefined: none known, the session moves here instead). */
  acsUrlOf(instanceId: string): string | undefined;
  log: Logger;
}

/** The session and route cookies of a Cookie header (quoted values and repeated attributes allowed). */
export function routeOf(header: string | undefined): { session: string; route: string } | null {
  if (!header || header.length > 8192) return null;
  let session = '';
  let route = '';
  for (const part of header.split(/[;,]/)) {
    const i = part.indexOf('=');
    if (i <= 0) continue;
    const name = part.slice(0, i).trim();
    if (name !== SESSION_COOKIE && name !== ROUTE_COOKIE) continue;
    let v = part.slice(i + 1).trim();
    if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
    if (name === SESSION_COOKIE) session ||= v;
    else {
      try {
        route ||= decodeURIComponent(v);
      } catch {
        return null;
      }
    }
  }
  return session && route ? { session, route } : null;
}

export class SessionForwarder {
  /**
   * Idle relay connections are closed after 10 s, well before the ACS's own keep-alive timeout
   * (30 s, acs-server.ts): a request never goes out on a connection the other end is closing.
   * At most 128 to one instance (more wait their turn): under the ACS's default limit of 256
   * connections per address (acs.limits.perAddress.maxConnections).
   */
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 128, maxFreeSockets: 64, timeout: 10_000 });
  /** POSTs relayed, and relays that failed (no answer from the serving instance). */
  readonly counts = { relayed: 0, failed: 0 };
  /**
   * Instances a relay just failed to reach, until when (ms): not relayed to meanwhile (a dead
   * instance stays listed until its liveness key expires; a CPE that keeps its cookies across
   * sessions would otherwise have its next Inform refused until then).
   */
  private readonly down = new Map<string, number>();
  /** Instances relayed to at least once (logged once each). */
  private readonly seen = new Set<string>();

  constructor(
    private readonly deps: ForwardDeps,
    private readonly downMs = 5000,
  ) {}

  /**
   * Relays the request when its session is served by another live instance with a known ACS URL;
   * false: not relayed (served here, moved here if need be).
   */
  forward(req: http.IncomingMessage, res: http.ServerResponse): boolean {
    const via = req.headers.via;
    if (via?.includes(VIA)) return false;
    const r = routeOf(req.headers.cookie);
    if (!r || r.route === this.deps.instanceId || this.deps.holds(r.session)) return false;
    const base = this.deps.acsUrlOf(r.route);
    if (!base) return false;
    const until = this.down.get(r.route);
    if (until !== undefined) {
      if (until > Date.now()) return false;
      this.down.delete(r.route);
    }
    // Only the path goes along: an absolute-form or protocol-relative request target of the CPE's
    // must not pick the host (a relay to anywhere else than the instance's own ACS).
    const path = req.url ?? '/';
    if (!path.startsWith('/') || path.startsWith('//')) return false;
    let target: URL;
    try {
      target = new URL(base);
    } catch {
      return false;
    }
    if (target.protocol !== 'http:') return false;
    this.relay(req, res, target, path, r.route);
    return true;
  }

  close(): void {
    this.agent.destroy();
  }

  private relay(req: http.IncomingMessage, res: http.ServerResponse, target: URL, path: string, to: string): void {
    const headers: http.OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !HOP.has(k)) headers[k] = v;
    const peer = req.socket.remoteAddress ?? '';
    const xff = req.headers['x-forwarded-for'];
    headers['x-forwarded-for'] = xff ? `${Array.isArray(xff) ? xff.join(', ') : xff}, ${peer}` : peer;
    headers.via = `${via(req.headers.via)}1.1 ${VIA}`;
    let up: http.ClientRequest;
    try {
      up = http.request({ hostname: target.hostname.replace(/^\[|\]$/g, ''), port: target.port || 80, path, method: req.method, headers, agent: this.agent });
    } catch (e) {
      // A path node refuses to send (control characters): the CPE's request is bad.
      req.resume();
      res.writeHead(400, { 'Content-Type': 'text/plain', Connection: 'close' });
      res.end(`bad request target: ${(e as Error).message}\n`);
      return;
    }
    let answered = false;
    up.on('response', (ur) => {
      answered = true;
      const out: http.OutgoingHttpHeaders = {};
      for (const [k, v] of Object.entries(ur.headers)) if (v !== undefined && !HOP.has(k)) out[k] = v;
      res.writeHead(ur.statusCode ?? 502, out);
      ur.pipe(res);
    });
    up.on('error', (e) => {
      this.counts.failed++;
      // Not reached (refused, unreachable): not tried again for a while. A pooled connection
      // reset says nothing of the instance.
      if (!answered && !up.reusedSocket) this.down.set(to, Date.now() + this.downMs);
      this.deps.log.warn({ instance: to, err: e.message }, 'ACS: relaying a POST to the instance serving its session failed');
      if (answered || res.headersSent) return void res.destroy();
      // The instance serving the session is gone: so is the session (TR-069 3.7.1.5: the CPE
      // starts a new one), as when a move finds no instance holding it.
      res.writeHead(503, { 'Content-Type': 'text/plain', 'Retry-After': '1', Connection: 'close' });
      res.end('the proxy instance serving this CWMP session is unreachable; start a new session\n');
    });
    // The CPE went away before the answer: the serving instance sees its request end too.
    res.once('close', () => {
      if (!res.writableFinished) up.destroy();
    });
    this.counts.relayed++;
    if (!this.seen.has(to)) {
      this.seen.add(to);
      this.deps.log.info({ instance: to, url: target.origin }, 'ACS: relaying POSTs of sessions that instance serves');
    }
    req.pipe(up);
  }
}

function via(v: string | undefined): string {
  return v ? `${v}, ` : '';
}

/**
 * This instance's ACS URL for relays (config cluster.acsUrl; '' = the ACS's own address when it
 * listens on one address over plain HTTP), or '' for none.
 */
/** The settings acsUrlFor reads (config acs.host, acs.tls.cert, cluster.acsUrl). */
export interface RelaySettings {
  acs: { host: string; tls?: { cert: string } };
  cluster: { acsUrl: string };
}

export function acsUrlFor(config: RelaySettings, port: number): string {
  const set = config.cluster.acsUrl.trim();
  if (set === 'none') return '';
  if (set) return set;
  const host = config.acs.host.trim();
  if (config.acs.tls?.cert || host === '' || host === '0.0.0.0' || host === '::' || host === '[::]') return '';
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** Advertises this instance's ACS URL to the others and relays POSTs of sessions they serve. */
export function startForwarding(
  config: RelaySettings,
  port: number,
  cluster: { instanceId: string; advertiseAcsUrl(url: string): void; acsUrlOf(id: string): string | undefined },
  engine: { sessions: { holds(sessionId: string): boolean } },
  log: Logger,
): SessionForwarder {
  const url = acsUrlFor(config, port);
  cluster.advertiseAcsUrl(url);
  log.info(
    { acsUrl: url || 'none' },
    url
      ? 'cluster: POSTs of sessions served here are relayed to this URL by the other instances'
      : 'cluster: no ACS URL for relays (cluster.acsUrl): POSTs of sessions served here that land elsewhere move the session',
  );
  return new SessionForwarder({
    instanceId: cluster.instanceId,
    holds: (sid) => engine.sessions.holds(sid),
    acsUrlOf: (id) => cluster.acsUrlOf(id),
    log,
  });
}
