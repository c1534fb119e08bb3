/**
 * The WebSocket MTP (TR-369 section "WebSocket Binding"), both roles at once:
 *  - server: controllers connect to the proxy, on `<path>/<agent EID>` (one agent) or on
 *    `<path>` itself (shared: the Record's to_id picks the agent, above this module);
 *  - client: every proxied agent dials one connection to every configured controller URL.
 * Records travel as binary frames; this module never decodes them (the endpoint does).
 */
import { safeLog } from './util.js';
import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { WebSocket, WebSocketServer, type ClientOptions, type RawData, type ServerOptions } from 'ws';
import { backoffDelayMs } from '../../util/backoff.js';
import {
  MtpSendError,
  type InboundRecord,
  type Mtp,
  type MtpDestination,
  type MtpEvents,
  type MtpStatus,
  type WsHandshakeFacts,
  type WsPeerDecision,
} from './types.js';

/** The only subprotocol USP defines for protobuf Records (R-WS.9). */
export const USP_SUBPROTOCOL = 'v1.usp';
/** The deprecated extension (R-WS.10a / R-WS.11a) some peers still send. */
export const BBF_EXTENSION = 'bbf-usp-protocol';
/** `send()` address prefix naming a controller instead of a connection; see WebSocketMtp.send. */
export const CONTROLLER_ADDRESS_PREFIX = 'controller:';

export interface WebSocketServerOptions {
  host: string;
  /** 0 picks an ephemeral port (see WebSocketMtp.serverAddress()). */
  port: number;
  /** Base path, e.g. '/usp'; agents live at `<path>/<EID>`, the shared channel at `<path>`. */
  path: string;
  maxRecordBytes: number;
  pingIntervalMs: number;
  /**
   * wss:// (config usp.websocket.tls): PEM contents (util/tls.ts loads them). With `ca`,
   * controllers must present a certificate signed by it (mutual TLS); without, any client.
   */
  tls?: { cert: string | Buffer; key: string | Buffer; ca?: string | Buffer | Array<string | Buffer> } | null;
  /**
   * Who the peer is, from its handshake (TR-369 R-SEC.0a); refused peers get the HTTP status it
   * names. Default: every peer accepted as the Endpoint ID it states, unproved.
   */
  authenticate?: (facts: WsHandshakeFacts) => WsPeerDecision;
  /** TCP (and TLS) connection to completed WebSocket handshake, at most this long (ms); default 10 s. */
  handshakeTimeoutMs?: number;
  /** Connections of untrusted peers (WsPeerDecision.untrusted) open at once; default unlimited. */
  maxUntrustedConnections?: number;
  /** The same per remote address; default unlimited. */
  maxUntrustedConnectionsPerAddress?: number;
  /**
   * An untrusted peer's connection that sends no Record for this long is closed with 1008 (ms;
   * default 0 = never). Only untrusted ones: no Notify ever reaches them, so an idle one holds a
   * socket for nothing, while a configured controller may wait for Notifies without sending.
   */
  untrustedIdleTimeoutMs?: number;
}

export interface WebSocketClientOptions {
  controllers: { endpointId: string; url: string }[];
  pingIntervalMs: number;
  /**
   * Reconnect backoff (util/backoff.ts, equal jitter). With baseMs = m*k/1000 and
   * maxMs = m*(k/1000)^10 (factor 2 = k/1000) this is exactly the R-WS.19 table:
   * the defaults m=5 s, k=2000 give baseMs 10000, maxMs 5120000.
   */
  backoff: { baseMs: number; maxMs: number; factor?: number };
  maxRecordBytes: number;
  /**
   * For wss:// controller URLs (config usp.websocket.clientCa): the CAs to trust. Node replaces
   * its defaults when `ca` is given, so pass the system roots too (util/tls withSystemRoots).
   */
  tls?: { ca?: string | Buffer | Array<string | Buffer> } | null;
}

export interface WebSocketMtpOptions {
  server?: WebSocketServerOptions | null;
  client?: WebSocketClientOptions | null;
  /** Is this EID one of our agents? A server path `<path>/<EID>` must name one, else 404. */
  isAgent: (eid: string) => boolean;
  log?: (level: 'debug' | 'info' | 'warn', msg: string, extra?: object) => void;
  /** Tests only: random source for the reconnect jitter. */
  random?: () => number;
}

/** Default deadline of a server-side handshake (TLS, then WebSocket upgrade). */
const DEFAULT_HANDSHAKE_DEADLINE_MS = 10_000;
/** At most this many client handshakes in flight: 10,000 agents must not SYN-flood one controller. */
const MAX_CONCURRENT_DIALS = 256;
/** A client handshake that takes longer than this is abandoned (and retried with backoff). */
const HANDSHAKE_TIMEOUT_MS = 15_000;
/** How long a closing handshake may take before the socket is destroyed (ws default 30 s). */
const CLOSE_TIMEOUT_MS = 3_000;

type Side = 'server' | 'client';

interface Conn {
  readonly id: string;
  readonly side: Side;
  readonly ws: WebSocket;
  /** Path agent (server) or dialing agent (client); null on the shared path. */
  readonly agentEid: string | null;
  /** The controller's EID as the handshake stated or proved it (server) or as configured (client). */
  readonly peerEid: string | null;
  /** peerEid is proved: a certificate, a secret, or our own connection to the configured URL. */
  readonly authenticated: boolean;
  /** Credentials presented and failed (accepted under usp.allowUntrusted): nothing from it is trusted. */
  readonly authFailed: boolean;
  /** Counted against the untrusted connection limits, under this remote address. */
  readonly untrustedFrom: string | null;
  /** Set by a pong or any inbound frame; cleared by each ping sweep. */
  alive: boolean;
  /** Why we are closing it ourselves (so the close is not reported as a peer-side drop). */
  closingBecause: string | null;
  /** Last error ws reported on this connection, for the close warning. */
  lastError: string | null;
  readonly slot: ClientSlot | null;
}

/** One agent -> controller client link: at most one connection, reconnected with backoff. */
interface ClientSlot {
  readonly agentEid: string;
  readonly controllerEid: string;
  readonly url: string;
  conn: Conn | null;
  attempt: number;
  timer: NodeJS.Timeout | null;
  queued: boolean;
  removed: boolean;
}

/**
 * WebSocket MTP, server and client roles.
 *
 * Destinations (MtpDestination.address, mtp 'websocket'):
 *  - a connection id from InboundRecord.replyTo / MtpChannelOpen.dest;
 *  - `controller:<controllerEid>`: for agent-initiated Records (Notify) with no request to
 *    answer. Resolves to the agent `from`'s own client connection to that controller, else a
 *    server connection that controller opened to agent `from`'s path, else one it opened on
 *    the shared path. R-WS.4 wants one session between two endpoints; the client link is
 *    preferred because it is the one the agent keeps up itself.
 */
export class WebSocketMtp extends EventEmitter<MtpEvents> implements Mtp {
  readonly kind = 'websocket' as const;

  private readonly opts: WebSocketMtpOptions;
  private readonly basePath: string;
  private readonly conns = new Map<string, Conn>();
  /** `${agentEid ?? ''}\n${controllerEid}` -> the current server connection (R-WS.4). */
  private readonly serverPairs = new Map<string, Conn>();
  /** agent EID -> its client slots, one per controller with a URL. */
  private readonly slots = new Map<string, ClientSlot[]>();
  private readonly dialQueue: ClientSlot[] = [];
  private dialQueueHead = 0;
  private dialing = 0;
  private seq = 0;
  private running = false;
  private httpServer: Server | HttpsServer | null = null;
  private wss: WebSocketServer | null = null;
  private listening: AddressInfo | null = null;
  private readonly echoExtension = new WeakMap<IncomingMessage, string>();
  private serverPingTimer: NodeJS.Timeout | null = null;
  private clientPingTimer: NodeJS.Timeout | null = null;
  private clientOpen = 0;
  private serverOpen = 0;
  /** Untrusted connections open, in all and per remote address. */
  private untrustedOpen = 0;
  private readonly untrustedByAddress = new Map<string, number>();
  /** Accepted sockets whose WebSocket handshake is not complete yet: their deadline timer. */
  private readonly handshakeDeadlines = new WeakMap<object, NodeJS.Timeout>();
  /** Connections closed for missing the handshake deadline (status, tests). */
  handshakeTimeouts = 0;
  /** Untrusted connections closed for sending no Record (untrustedIdleTimeoutMs). */
  untrustedIdleCloses = 0;
  /** Idle timers of untrusted connections, refreshed by each Record. */
  private readonly untrustedIdle = new Map<Conn, NodeJS.Timeout>();

  constructor(opts: WebSocketMtpOptions) {
    super();
    this.opts = opts;
    this.basePath = normalizeBasePath(opts.server?.path ?? '/usp');
    for (const c of opts.client?.controllers ?? []) {
      if (!c.url) continue;
      const u = new URL(c.url); // throws TypeError on a malformed configured URL
      if (u.protocol !== 'ws:' && u.protocol !== 'wss:') {
        throw new TypeError(`controller ${c.endpointId}: WebSocket URL must be ws:// or wss://, got ${c.url}`);
      }
    }
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    const s = this.opts.server;
    if (s) {
      try {
        await this.startServer(s);
      } catch (err) {
        this.running = false; // e.g. EADDRINUSE: start() may be retried
        throw err;
      }
      this.serverPingTimer = setInterval(() => this.pingSweep('server'), s.pingIntervalMs);
    }
    const c = this.opts.client;
    if (c?.controllers.some((x) => x.url)) {
      this.clientPingTimer = setInterval(() => this.pingSweep('client'), c.pingIntervalMs);
      for (const eid of this.slots.keys()) this.enqueueAgentDials(eid);
    }
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    if (this.serverPingTimer) clearInterval(this.serverPingTimer);
    if (this.clientPingTimer) clearInterval(this.clientPingTimer);
    this.serverPingTimer = this.clientPingTimer = null;
    for (const slotList of this.slots.values()) {
      for (const slot of slotList) {
        if (slot.timer) clearTimeout(slot.timer);
        slot.timer = null;
        slot.queued = false;
      }
    }
    this.dialQueue.length = 0;
    this.dialQueueHead = 0;

    // Close every connection with 1001 (going away); ws flushes queued Records before the Close frame.
    const closed: Promise<void>[] = [];
    for (const slotList of this.slots.values()) {
      for (const slot of slotList) {
        if (slot.conn) closed.push(this.closeConn(slot.conn, 1001, 'agent going away'));
      }
    }
    for (const conn of [...this.conns.values()]) {
      if (!conn.slot) closed.push(this.closeConn(conn, 1001, 'server going away'));
    }
    await Promise.all(closed);

    if (this.wss) this.wss.close();
    const srv = this.httpServer;
    this.wss = null;
    this.httpServer = null;
    this.listening = null;
    if (srv) {
      await new Promise<void>((resolve) => {
        srv.close(() => resolve());
        srv.closeAllConnections();
      });
    }
  }

  /**
   * Sends one Record as one binary frame (R-WS.14, unfragmented per R-WS.14a). Resolves once
   * ws has handed it to the socket; rejects with MtpSendError when the connection is unknown,
   * not open, or the controller has no reachable connection (see the class comment).
   */
  async send(from: string, dest: MtpDestination, bytes: Uint8Array): Promise<void> {
    if (dest.mtp !== 'websocket') throw new MtpSendError('websocket', `not a websocket destination: ${dest.mtp}`);
    const conn = dest.address.startsWith(CONTROLLER_ADDRESS_PREFIX)
      ? this.connForController(from, dest.address.slice(CONTROLLER_ADDRESS_PREFIX.length))
      : this.conns.get(dest.address);
    if (!conn) throw new MtpSendError('websocket', `no open WebSocket connection for ${dest.address} (from ${from})`);
    if (conn.ws.readyState !== WebSocket.OPEN || conn.closingBecause) {
      throw new MtpSendError('websocket', `WebSocket connection ${conn.id} is closing`);
    }
    const limit = this.maxBuffered(conn.side);
    if (conn.ws.bufferedAmount + bytes.byteLength > limit) {
      throw new MtpSendError('websocket', `WebSocket connection ${conn.id}: send buffer full (${conn.ws.bufferedAmount} bytes queued)`);
    }
    await new Promise<void>((resolve, reject) => {
      conn.ws.send(bytes, { binary: true }, (err) => {
        if (err) reject(new MtpSendError('websocket', `WebSocket connection ${conn.id}: ${err.message}`));
        else resolve();
      });
    });
  }

  status(): MtpStatus {
    const parts: string[] = [];
    if (this.listening) {
      const tls = this.opts.server?.tls ? ', wss' : '';
      parts.push(`listening on ${fmtHost(this.listening.address)}:${this.listening.port}${this.basePath} (${this.serverOpen} controller connections${tls})`);
    } else if (this.opts.server) {
      parts.push('server not listening');
    }
    let slots = 0;
    for (const l of this.slots.values()) slots += l.length;
    if (this.opts.client && slots > 0) parts.push(`${this.clientOpen}/${slots} client connections up`);
    return {
      mtp: 'websocket',
      connected: this.running && (this.listening !== null || this.clientOpen > 0),
      detail: parts.join('; ') || (this.running ? 'running, nothing configured' : 'stopped'),
      channels: this.serverOpen + this.clientOpen,
    };
  }

  addAgent(eid: string): void {
    if (this.slots.has(eid)) return;
    const list: ClientSlot[] = [];
    for (const c of this.opts.client?.controllers ?? []) {
      if (!c.url) continue;
      list.push({
        agentEid: eid,
        controllerEid: c.endpointId,
        url: withEidQuery(c.url, eid),
        conn: null,
        attempt: 0,
        timer: null,
        queued: false,
        removed: false,
      });
    }
    // No controller to dial (the usual case): nothing kept per agent (10,000 agents: 0.7 MiB less).
    if (list.length === 0) return;
    this.slots.set(eid, list);
    if (this.running) this.enqueueAgentDials(eid);
  }

  removeAgent(eid: string): void {
    const list = this.slots.get(eid);
    this.slots.delete(eid);
    for (const slot of list ?? []) {
      slot.removed = true;
      if (slot.timer) clearTimeout(slot.timer);
      slot.timer = null;
      if (slot.conn) void this.closeConn(slot.conn, 1001, 'agent removed');
    }
    for (const conn of [...this.conns.values()]) {
      if (conn.side === 'server' && conn.agentEid === eid) void this.closeConn(conn, 1001, 'agent removed');
    }
  }

  /** The server's bound address once started (tests use port 0), else null. */
  serverAddress(): { host: string; port: number } | null {
    return this.listening ? { host: this.listening.address, port: this.listening.port } : null;
  }

  // ---------------------------------------------------------------- server role

  private async startServer(s: WebSocketServerOptions): Promise<void> {
    const wssOpts: ServerOptions & { closeTimeout: number } = {
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      maxPayload: s.maxRecordBytes, // larger messages: ws closes with 1009
      handleProtocols: () => USP_SUBPROTOCOL, // only reached once onUpgrade checked it was offered
      // Text frames are refused with 1003 whatever they hold (R-WS.16), so let invalid UTF-8
      // reach that check instead of ws closing with 1007.
      skipUTF8Validation: true,
      closeTimeout: CLOSE_TIMEOUT_MS,
    };
    const wss = new WebSocketServer(wssOpts);
    // R-WS.11a: answer the deprecated extension only when the client offered it.
    wss.on('headers', (headers, req) => {
      const eid = this.echoExtension.get(req);
      if (eid !== undefined) headers.push(`Sec-WebSocket-Extensions: ${BBF_EXTENSION}; eid="${eid}"`);
    });
    wss.on('wsClientError', (err, socket, req) => {
      this.warn('WebSocket handshake rejected', { url: req.url, remote: req.socket.remoteAddress, error: err.message });
      rejectHandshake(socket, 400, err.message);
    });
    wss.on('error', (err) => this.warn('WebSocket server error', { error: err.message }));

    const onPlainRequest = (_req: IncomingMessage, res: ServerResponse): void => {
      // Plain HTTP on the WS port: tell the peer what is spoken here.
      res.writeHead(426, { Upgrade: 'websocket', 'Content-Type': 'text/plain', Connection: 'close' });
      res.end(`WebSocket upgrade with subprotocol ${USP_SUBPROTOCOL} required\n`);
    };
    const tls = s.tls;
    let srv: Server | HttpsServer;
    if (tls) {
      srv = createHttpsServer(
        {
          cert: tls.cert,
          key: tls.key,
          // With a CA: mutual TLS, a controller without a certificate signed by it is refused in the TLS
          // handshake. Without: a certificate is asked for but optional, so that a pinned (e.g.
          // self-signed) controller certificate can prove its Endpoint ID (controllers[].tls.fingerprint).
          requestCert: true,
          ...(tls.ca ? { ca: tls.ca, rejectUnauthorized: true } : { rejectUnauthorized: false }),
          handshakeTimeout: s.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_DEADLINE_MS,
        },
        onPlainRequest,
      );
      srv.on('tlsClientError', (err, sock) => {
        this.warn('TLS handshake failed on the WebSocket port', { remote: sock.remoteAddress, error: err.message });
      });
    } else {
      srv = createServer(onPlainRequest);
    }
    // The WebSocket handshake has a deadline from the moment the socket is ours (after TLS, whose own
    // handshake has the same bound): idle or slow peers cannot hold connections open.
    srv.on(tls ? 'secureConnection' : 'connection', (sock: Socket) => this.armHandshakeDeadline(sock, s.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_DEADLINE_MS));
    srv.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(req, socket, head));
    srv.on('clientError', (err, socket) => {
      this.warn('malformed HTTP request on the WebSocket port', { error: err.message });
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
      else socket.destroy();
    });
    await new Promise<void>((resolve, reject) => {
      const onErr = (err: Error): void => reject(err);
      srv.once('error', onErr);
      srv.listen(s.port, s.host, () => {
        srv.off('error', onErr);
        resolve();
      });
    });
    srv.on('error', (err) => this.warn('WebSocket HTTP server error', { error: err.message }));
    this.httpServer = srv;
    this.wss = wss;
    this.listening = srv.address() as AddressInfo;
    this.log('info', 'WebSocket MTP listening', { host: this.listening.address, port: this.listening.port, path: this.basePath, tls: !!tls });
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy()); // a reset during the handshake is no crash
    const reject = (status: number, why: string, headers: Record<string, string> = {}): void => {
      this.warn('WebSocket handshake rejected', { url: req.url, remote: req.socket.remoteAddress, status, reason: why });
      rejectHandshake(socket, status, why, headers);
    };
    try {
      const wss = this.wss;
      if (!wss || !this.running) return reject(503, 'server stopping');
      const target = req.url ?? '/';
      const qi = target.indexOf('?');
      const pathname = qi === -1 ? target : target.slice(0, qi);
      const query = qi === -1 ? '' : target.slice(qi + 1);

      // R-WS.2: the path names the endpoint; <path> alone is the shared channel.
      let agentEid: string | null = null;
      if (pathname !== this.basePath) {
        if (!pathname.startsWith(this.basePath + '/') || pathname.length === this.basePath.length + 1) {
          return reject(404, `no USP endpoint at ${pathname}`);
        }
        const decoded = safeDecode(pathname.slice(this.basePath.length + 1));
        if (decoded === null) return reject(400, 'malformed percent-encoding in the agent Endpoint ID');
        if (!this.opts.isAgent(decoded)) return reject(404, `no USP agent ${decoded} here`);
        agentEid = decoded;
      }

      // R-WS.12a: no v1.usp offered, no session.
      if (!offersSubprotocol(req.headers['sec-websocket-protocol'], USP_SUBPROTOCOL)) {
        return reject(400, `Sec-WebSocket-Protocol must offer ${USP_SUBPROTOCOL} (TR-369 R-WS.12a)`);
      }

      // R-WS.10b: the client's EID in ?eid=; the deprecated extension (R-WS.10a) as a fallback.
      const q = eidFromQuery(query);
      if (q === undefined) return reject(400, 'malformed percent-encoding in ?eid=');
      const ext = parseBbfExtension(req.headers['sec-websocket-extensions']);
      if (q !== null && ext.eid !== null && q !== ext.eid) {
        this.warn('controller EID differs between ?eid= and the bbf-usp-protocol extension; using ?eid=', { query: q, extension: ext.eid });
      }
      const claimedEid = q ?? ext.eid;

      // Who is it (TR-369 R-SEC.0a): certificate, pinned fingerprint or secret, decided above the MTP.
      const decision = (this.opts.server?.authenticate ?? statedIdentity)(handshakeFacts(req, claimedEid, !!this.opts.server?.tls));
      if (!decision.accept) {
        return reject(decision.status, decision.reason, decision.status === 401 ? { 'WWW-Authenticate': 'Bearer realm="usp"' } : {});
      }
      const peerEid = decision.peerEid;
      // R-WS.4 allows one session per pair, but an unproved peer never replaces a proved one.
      if (peerEid !== null && !decision.untrusted && !decision.authenticated && this.serverPairs.get(pairKey(agentEid, peerEid))?.authenticated) {
        return reject(409, `an authenticated session of ${peerEid} is open; an unauthenticated one cannot replace it`);
      }
      const remote = req.socket.remoteAddress ?? '';
      if (decision.untrusted && !this.untrustedRoom(remote)) return reject(503, 'too many connections of untrusted controllers');
      // R-WS.11a/R-WS.11c: echo only when offered; on the shared path there is no single server EID to state.
      if (ext.offered && agentEid !== null && isHeaderSafe(agentEid)) this.echoExtension.set(req, agentEid);
      if (decision.authenticated) this.log('info', 'controller authenticated', { peerEid, method: decision.method, remote });

      wss.handleUpgrade(req, socket, head, (ws) => this.onServerConnection(ws, req, agentEid, decision));
    } catch (err) {
      reject(500, 'internal error');
      this.warn('WebSocket upgrade failed', { error: errMsg(err) });
    }
  }

  private onServerConnection(ws: WebSocket, req: IncomingMessage, agentEid: string | null, decision: Extract<WsPeerDecision, { accept: true }>): void {
    this.clearHandshakeDeadline(req.socket);
    const peerEid = decision.peerEid;
    const remote = req.socket.remoteAddress ?? '';
    const conn: Conn = {
      id: `srv-${++this.seq}`,
      side: 'server',
      ws,
      agentEid,
      peerEid,
      authenticated: decision.authenticated,
      authFailed: decision.authFailed,
      untrustedFrom: decision.untrusted ? remote : null,
      alive: true,
      closingBecause: null,
      lastError: null,
      slot: null,
    };
    if (!this.running) {
      ws.terminate();
      return;
    }
    this.conns.set(conn.id, conn);
    this.serverOpen++;
    if (conn.untrustedFrom !== null) {
      this.untrustedOpen++;
      this.untrustedByAddress.set(remote, (this.untrustedByAddress.get(remote) ?? 0) + 1);
    }
    this.wireConn(conn);
    if (conn.untrustedFrom !== null) this.armUntrustedIdle(conn);
    this.log('debug', 'controller connected', { id: conn.id, agentEid, peerEid, authenticated: conn.authenticated, remote });

    // R-WS.4: one session per controller and agent: a new connection replaces the older one, unless
    // the older one proved its identity and the new one did not. Untrusted peers are never the
    // session of a controller (no Notify reaches them).
    if (peerEid !== null && !decision.untrusted) {
      const key = pairKey(agentEid, peerEid);
      const older = this.serverPairs.get(key);
      if (older?.authenticated && !conn.authenticated) {
        void this.closeConn(conn, 1008, 'an authenticated session of this controller is open');
        return;
      }
      this.serverPairs.set(key, conn);
      if (older) {
        this.warn('controller reconnected: closing its older WebSocket session (R-WS.4)', {
          old: older.id,
          new: conn.id,
          agentEid,
          peerEid,
        });
        void this.closeConn(older, 1000, 'replaced by a newer session from the same controller (R-WS.4)');
      }
    }
    this.emit('channelOpen', { mtp: 'websocket', agentEid, dest: { mtp: 'websocket', address: conn.id }, peerEid });
  }

  // ---------------------------------------------------------------- client role

  private enqueueAgentDials(eid: string): void {
    for (const slot of this.slots.get(eid) ?? []) this.enqueueDial(slot);
  }

  private enqueueDial(slot: ClientSlot): void {
    if (slot.removed || slot.queued || slot.conn || slot.timer || !this.running) return;
    slot.queued = true;
    this.dialQueue.push(slot);
    this.pumpDials();
  }

  private pumpDials(): void {
    while (this.dialing < MAX_CONCURRENT_DIALS && this.dialQueueHead < this.dialQueue.length) {
      const slot = this.dialQueue[this.dialQueueHead++]!;
      if (this.dialQueueHead > 1024 && this.dialQueueHead * 2 > this.dialQueue.length) {
        this.dialQueue.splice(0, this.dialQueueHead);
        this.dialQueueHead = 0;
      }
      if (!slot.queued) continue;
      slot.queued = false;
      if (slot.removed || slot.conn || !this.running) continue;
      this.dial(slot);
    }
  }

  private dial(slot: ClientSlot): void {
    const c = this.opts.client!;
    const wsOpts: ClientOptions & { closeTimeout: number } = {
      perMessageDeflate: false,
      maxPayload: c.maxRecordBytes,
      handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
      followRedirects: false,
      skipUTF8Validation: true, // see the server options: text frames get 1003 (R-WS.16)
      closeTimeout: CLOSE_TIMEOUT_MS,
    };
    // wss://: the configured CAs (ws ignores TLS options on ws:// URLs). Verification stays on.
    if (c.tls?.ca && slot.url.startsWith('wss:')) wsOpts.ca = c.tls.ca;
    let ws: WebSocket;
    try {
      // R-WS.10: v1.usp offered; ws itself refuses a 101 without it (R-WS.12).
      ws = new WebSocket(slot.url, USP_SUBPROTOCOL, wsOpts);
    } catch (err) {
      this.warn('cannot dial controller', { agentEid: slot.agentEid, controllerEid: slot.controllerEid, url: slot.url, error: errMsg(err) });
      this.scheduleReconnect(slot);
      return;
    }
    const conn: Conn = {
      id: `cli-${++this.seq}`,
      side: 'client',
      ws,
      agentEid: slot.agentEid,
      peerEid: slot.controllerEid,
      // We dialed the controller's configured URL (wss://: its certificate verified).
      authenticated: true,
      authFailed: false,
      untrustedFrom: null,
      alive: true,
      closingBecause: null,
      lastError: null,
      slot,
    };
    slot.conn = conn;
    this.wireConn(conn); // first, so channelClose is emitted before the reconnect is scheduled
    this.dialing++;
    let handshaking = true;
    const handshakeDone = (): void => {
      if (!handshaking) return;
      handshaking = false;
      this.dialing--;
      this.pumpDials();
    };

    // Tolerate `bbf-usp-protocol` in the 101 even unasked (R-WS.11a servers such as obuspa
    // send it anyway): ws emits 'upgrade' before it validates the extensions, so drop ours
    // from the header there and let ws judge whatever else is left.
    ws.on('upgrade', (res) => {
      const raw = res.headers['sec-websocket-extensions'];
      if (raw === undefined) return;
      const ext = parseBbfExtension(raw);
      if (!ext.offered) return;
      if (ext.eid !== null && ext.eid !== slot.controllerEid) {
        this.warn('controller states a different EID in its bbf-usp-protocol extension', {
          agentEid: slot.agentEid,
          configured: slot.controllerEid,
          stated: ext.eid,
        });
      }
      const rest = stripBbfExtension(raw);
      if (rest === undefined) delete res.headers['sec-websocket-extensions'];
      else res.headers['sec-websocket-extensions'] = rest;
    });
    ws.on('open', () => {
      handshakeDone();
      if (slot.removed || !this.running) {
        void this.closeConn(conn, 1001, slot.removed ? 'agent removed' : 'agent going away');
        return;
      }
      slot.attempt = 0; // R-WS.20
      this.conns.set(conn.id, conn);
      this.clientOpen++;
      this.log('debug', 'connected to controller', { id: conn.id, agentEid: slot.agentEid, controllerEid: slot.controllerEid });
      this.emit('channelOpen', {
        mtp: 'websocket',
        agentEid: slot.agentEid,
        dest: { mtp: 'websocket', address: conn.id },
        peerEid: slot.controllerEid,
      });
    });
    ws.on('close', () => {
      handshakeDone();
      if (slot.conn === conn) slot.conn = null;
      if (!slot.removed && this.running) this.scheduleReconnect(slot);
    });
  }

  private scheduleReconnect(slot: ClientSlot): void {
    if (slot.timer || slot.removed || !this.running) return;
    const c = this.opts.client!;
    const delay = backoffDelayMs(slot.attempt++, { baseMs: c.backoff.baseMs, maxMs: c.backoff.maxMs, factor: c.backoff.factor }, this.opts.random);
    this.log('debug', 'reconnecting to controller later', {
      agentEid: slot.agentEid,
      controllerEid: slot.controllerEid,
      delayMs: delay,
      attempt: slot.attempt,
    });
    slot.timer = setTimeout(() => {
      slot.timer = null;
      this.enqueueDial(slot);
    }, delay);
  }

  // ---------------------------------------------------------------- both roles

  private wireConn(conn: Conn): void {
    const { ws } = conn;
    ws.on('message', (data: RawData, isBinary: boolean) => {
      conn.alive = true;
      this.untrustedIdle.get(conn)?.refresh();
      if (ws.readyState !== WebSocket.OPEN || conn.closingBecause) return;
      if (!isBinary) {
        // R-WS.14 / R-WS.16: a Record that cannot be extracted closes the connection with 1003.
        this.warn('text frame received: closing with 1003 (R-WS.16)', this.connDetail(conn));
        void this.closeConn(conn, 1003, 'USP Records must be sent in binary frames');
        return;
      }
      const rec: InboundRecord = {
        mtp: 'websocket',
        bytes: toBytes(data),
        replyTo: { mtp: 'websocket', address: conn.id },
        agentEid: conn.agentEid,
        peerEid: conn.peerEid,
        authenticated: conn.authenticated,
        ...(conn.authFailed ? { authFailed: true } : {}),
      };
      try {
        this.emit('record', rec);
      } catch (err) {
        // A bug above must not take the socket (or the process) down with it.
        this.warn('record listener threw', { ...this.connDetail(conn), error: errMsg(err) });
      }
    });
    ws.on('pong', () => {
      conn.alive = true;
    });
    ws.on('error', (err: Error & { code?: string }) => {
      // The first error is the cause; later ones are echoes. ws codes name protocol errors,
      // e.g. WS_ERR_UNSUPPORTED_MESSAGE_LENGTH after ws closed with 1009 (maxPayload).
      conn.lastError ??= err.code ? `${err.message} [${err.code}]` : err.message;
    });
    ws.on('close', (code: number, reasonBuf: Buffer) => {
      const reason = reasonBuf.toString('utf8');
      const wasOpen = this.conns.get(conn.id) === conn;
      clearTimeout(this.untrustedIdle.get(conn));
      this.untrustedIdle.delete(conn);
      if (wasOpen) {
        this.conns.delete(conn.id);
        if (conn.side === 'server') this.serverOpen--;
        else this.clientOpen--;
        if (conn.side === 'server' && conn.peerEid !== null) {
          const key = pairKey(conn.agentEid, conn.peerEid);
          if (this.serverPairs.get(key) === conn) this.serverPairs.delete(key);
        }
        if (conn.untrustedFrom !== null) {
          this.untrustedOpen--;
          const n = (this.untrustedByAddress.get(conn.untrustedFrom) ?? 1) - 1;
          if (n <= 0) this.untrustedByAddress.delete(conn.untrustedFrom);
          else this.untrustedByAddress.set(conn.untrustedFrom, n);
        }
      }
      const detail = { ...this.connDetail(conn), code, reason, error: conn.lastError, wasOpen };
      const summary = `code ${code}${reason ? ` (${reason})` : ''}${conn.lastError ? `: ${conn.lastError}` : ''}`;
      // RFC 6455 7.4.1: 1000/1001 is a peer that meant to close (a controller done or going away): info, not a warning.
      if (conn.closingBecause === null && wasOpen && (code === 1000 || code === 1001)) this.log('info', 'WebSocket connection closed by the peer', detail);
      else if (conn.closingBecause === null) {
        this.warn(wasOpen ? 'WebSocket connection lost' : 'WebSocket connection attempt failed', detail);
      } else {
        this.log('debug', 'WebSocket connection closed', { ...detail, because: conn.closingBecause });
      }
      if (wasOpen) {
        this.emit('channelClose', {
          mtp: 'websocket',
          agentEid: conn.agentEid,
          dest: { mtp: 'websocket', address: conn.id },
          reason: conn.closingBecause ?? summary,
        });
      }
    });
  }

  /** Starts a closing handshake (or aborts a handshake in progress); resolves when the connection is gone. */
  private closeConn(conn: Conn, code: number, reason: string): Promise<void> {
    const ws = conn.ws;
    if (ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    conn.closingBecause ??= `${reason} (${code})`;
    const done = new Promise<void>((resolve) => ws.once('close', () => resolve()));
    try {
      if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
      else if (ws.readyState === WebSocket.OPEN) ws.close(code, reason);
    } catch (err) {
      this.log('debug', 'close failed, terminating', { id: conn.id, error: errMsg(err) });
      ws.terminate();
    }
    return done;
  }

  /** One shared timer per role walks the connections (no timer per connection). R-WS.17. */
  private pingSweep(side: Side): void {
    for (const conn of this.conns.values()) {
      if (conn.side !== side || conn.ws.readyState !== WebSocket.OPEN) continue;
      if (!conn.alive) {
        this.warn('peer missed a pong: terminating the WebSocket connection (R-WS.17)', this.connDetail(conn));
        conn.lastError = 'keep-alive timeout (no pong)';
        conn.ws.terminate();
        continue;
      }
      conn.alive = false;
      try {
        conn.ws.ping();
      } catch (err) {
        conn.lastError = errMsg(err);
        conn.ws.terminate();
      }
    }
  }

  /** Closes a socket that has not completed its WebSocket handshake in time (slowloris, idle peers). */
  private armHandshakeDeadline(sock: Socket, ms: number): void {
    const t = setTimeout(() => {
      this.handshakeDeadlines.delete(sock);
      if (sock.destroyed) return;
      this.handshakeTimeouts++;
      this.log('debug', 'WebSocket handshake deadline passed: closing the connection', { remote: sock.remoteAddress, ms });
      sock.destroy();
    }, ms);
    t.unref();
    this.handshakeDeadlines.set(sock, t);
    sock.once('close', () => this.clearHandshakeDeadline(sock));
  }

  /** Closes an untrusted connection once it has sent no Record for untrustedIdleTimeoutMs. */
  private armUntrustedIdle(conn: Conn): void {
    const ms = this.opts.server?.untrustedIdleTimeoutMs ?? 0;
    if (ms <= 0) return;
    const t = setTimeout(() => {
      this.untrustedIdle.delete(conn);
      this.untrustedIdleCloses++;
      this.log('debug', 'untrusted controller sent no Record in time: closing', { ...this.connDetail(conn), ms });
      void this.closeConn(conn, 1008, `no USP Record within ${ms} ms`);
    }, ms);
    t.unref();
    this.untrustedIdle.set(conn, t);
  }

  private clearHandshakeDeadline(sock: object): void {
    const t = this.handshakeDeadlines.get(sock);
    if (t) clearTimeout(t);
    this.handshakeDeadlines.delete(sock);
  }

  private untrustedRoom(remote: string): boolean {
    const s = this.opts.server;
    if (s?.maxUntrustedConnections !== undefined && this.untrustedOpen >= s.maxUntrustedConnections) return false;
    const perAddress = s?.maxUntrustedConnectionsPerAddress;
    return perAddress === undefined || (this.untrustedByAddress.get(remote) ?? 0) < perAddress;
  }

  private connForController(from: string, controllerEid: string): Conn | undefined {
    for (const slot of this.slots.get(from) ?? []) {
      if (slot.controllerEid === controllerEid && slot.conn && this.conns.get(slot.conn.id) === slot.conn) return slot.conn;
    }
    return this.serverPairs.get(pairKey(from, controllerEid)) ?? this.serverPairs.get(pairKey(null, controllerEid));
  }

  private maxBuffered(side: Side): number {
    const max = side === 'server' ? this.opts.server?.maxRecordBytes : this.opts.client?.maxRecordBytes;
    return Math.max(16 * 1024 * 1024, 8 * (max ?? 0));
  }

  private connDetail(conn: Conn): Record<string, unknown> {
    return { id: conn.id, side: conn.side, agentEid: conn.agentEid, peerEid: conn.peerEid };
  }

  private warn(message: string, detail?: Record<string, unknown>): void {
    this.log('warn', message, detail);
    try {
      this.emit('warning', { mtp: 'websocket', message, detail });
    } catch {
      // a throwing warning listener is not our problem to propagate
    }
  }

  private log(level: 'debug' | 'info' | 'warn', msg: string, extra?: object): void {
    safeLog(this.opts.log, level, msg, extra);
  }
}

// -------------------------------------------------------------------- helpers (exported for tests)

/** Without an authenticate option: the peer is who it says it is, unproved (labs, tests of the MTP alone). */
function statedIdentity(f: WsHandshakeFacts): WsPeerDecision {
  return { accept: true, peerEid: f.claimedEid, authenticated: false, authFailed: false, untrusted: false };
}

/** The token of an `Authorization: Bearer <token>` header (RFC 6750 section 2.1); null when absent or another scheme. */
export function bearerToken(header: string | undefined): string | null {
  if (!header) return null;
  const m = /^\s*Bearer\s+(\S+)\s*$/i.exec(header);
  return m ? m[1]! : null;
}

/** Endpoint IDs in `URI:urn:bbf:usp:id:<eid>` entries of node's subjectaltname string (TR-369 R-SEC.0a). */
export function endpointIdsOfSubjectAltName(san: string | undefined): string[] {
  if (!san) return [];
  const out: string[] = [];
  for (const part of san.split(/,\s*/)) {
    const m = /^URI:urn:bbf:usp:id:(.+)$/i.exec(part.trim());
    if (m) out.push(m[1]!);
  }
  return out;
}

/** What the handshake request says about the peer: stated EID, bearer token, TLS client certificate. */
function handshakeFacts(req: IncomingMessage, claimedEid: string | null, tls: boolean): WsHandshakeFacts {
  let certificate: WsHandshakeFacts['certificate'] = null;
  if (tls) {
    const sock = req.socket as TLSSocket;
    const pc = typeof sock.getPeerCertificate === 'function' ? sock.getPeerCertificate(false) : null;
    if (pc?.fingerprint256) {
      certificate = { authorized: sock.authorized === true, fingerprint256: pc.fingerprint256, endpointIds: endpointIdsOfSubjectAltName(pc.subjectaltname) };
    }
  }
  return { claimedEid, bearer: bearerToken(req.headers.authorization), certificate };
}

/** Appends `eid=<EID>` to a URL's query, keeping what is there (R-WS.10b, R-WS.10c: `%` -> `%25`). */
export function withEidQuery(url: string, eid: string): string {
  const u = new URL(url);
  u.hash = '';
  const pair = `eid=${encodeURIComponent(eid)}`;
  u.search = u.search.length > 1 ? `${u.search}&${pair}` : `?${pair}`;
  return u.toString();
}

/**
 * The `eid` value of a raw query string, percent-decoded once (R-WS.10c); null when absent,
 * undefined when malformed. `+` is kept literally (this is a URI query, not a form).
 */
export function eidFromQuery(query: string): string | null | undefined {
  for (const pair of query.split('&')) {
    const eq = pair.indexOf('=');
    const key = eq === -1 ? pair : pair.slice(0, eq);
    if (key !== 'eid') continue;
    const value = eq === -1 ? '' : pair.slice(eq + 1);
    if (value === '') return null;
    const d = safeDecode(value);
    return d === null ? undefined : d;
  }
  return null;
}

/** Is `wanted` among the comma-separated tokens of a Sec-WebSocket-Protocol header? */
export function offersSubprotocol(header: string | string[] | undefined, wanted: string): boolean {
  if (header === undefined) return false;
  const all = Array.isArray(header) ? header.join(',') : header;
  return all.split(',').some((t) => t.trim() === wanted);
}

/** Finds `bbf-usp-protocol` (and its `eid` parameter) in a Sec-WebSocket-Extensions header. */
export function parseBbfExtension(header: string | string[] | undefined): { offered: boolean; eid: string | null } {
  if (header === undefined) return { offered: false, eid: null };
  for (const ext of splitExtensions(header)) {
    const parts = ext.split(';').map((p) => p.trim());
    if (parts[0]?.toLowerCase() !== BBF_EXTENSION) continue;
    let eid: string | null = null;
    for (const p of parts.slice(1)) {
      const eq = p.indexOf('=');
      if (eq === -1 || p.slice(0, eq).trim().toLowerCase() !== 'eid') continue;
      let v = p.slice(eq + 1).trim();
      if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1).replace(/\\(.)/g, '$1');
      eid = v || null;
    }
    return { offered: true, eid };
  }
  return { offered: false, eid: null };
}

/** The header without any `bbf-usp-protocol` entry; undefined when nothing else remains. */
export function stripBbfExtension(header: string | string[]): string | undefined {
  const rest = splitExtensions(header).filter((e) => e.split(';')[0]!.trim().toLowerCase() !== BBF_EXTENSION);
  return rest.length ? rest.join(', ') : undefined;
}

function splitExtensions(header: string | string[]): string[] {
  // EIDs hold no commas or quotes (R-ARC.5 unreserved + %), so a plain split is exact here.
  const all = Array.isArray(header) ? header.join(',') : header;
  return all
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e.length > 0);
}

function normalizeBasePath(p: string): string {
  let s = p.startsWith('/') ? p : `/${p}`;
  while (s.length > 1 && s.endsWith('/')) s = s.slice(0, -1);
  return s;
}

function safeDecode(s: string): string | null {
  try {
    return decodeURIComponent(s);
  } catch {
    return null;
  }
}

/** Printable ASCII without quote or backslash: safe inside a quoted header parameter. */
function isHeaderSafe(s: string): boolean {
  return /^[\x21\x23-\x5b\x5d-\x7e]+$/.test(s);
}

function pairKey(agentEid: string | null, controllerEid: string): string {
  return `${agentEid ?? ''}\n${controllerEid}`;
}

function toBytes(data: RawData): Uint8Array {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return new Uint8Array(data);
}

function fmtHost(h: string): string {
  return h.includes(':') ? `[${h}]` : h;
}

function errMsg(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  409: 'Conflict',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/** Answers a refused upgrade with a plain HTTP error naming the problem, then closes. */
function rejectHandshake(socket: Duplex, status: number, message: string, headers: Record<string, string> = {}): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = `${message}\n`;
  socket.once('finish', () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\n` +
      'Connection: close\r\n' +
      'Content-Type: text/plain; charset=utf-8\r\n' +
      Object.entries(headers)
        .map(([k, v]) => `${k}: ${v}\r\n`)
        .join('') +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      '\r\n' +
      body,
  );
}
