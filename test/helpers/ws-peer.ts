/**
 * Small WebSocket peers for tests, built on `ws`:
 *  - connectPeer(): a controller (or any client) dialing a WebSocket server, e.g. the proxy's;
 *  - TestWsServer: a controller-side server that proxy agents dial (WS client role).
 * Both record what they receive and expose promises to await it. Everything binds 127.0.0.1
 * on ephemeral ports; call close() so the test process can exit.
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer, type RawData } from 'ws';

export interface PeerMessage {
  data: Buffer;
  isBinary: boolean;
}

export interface CloseInfo {
  code: number;
  reason: string;
}

/** One open WebSocket with its received messages queued for awaiting. */
export class PeerSocket {
  readonly messages: PeerMessage[] = [];
  /** Resolves when the socket closes, with the close code the peer saw. */
  readonly closed: Promise<CloseInfo>;
  private waiters: ((m: PeerMessage) => void)[] = [];
  private consumed = 0;

  constructor(
    readonly ws: WebSocket,
    /** Headers of the handshake: the 101 response (client side) or the request (server side). */
    readonly headers: Record<string, string | string[] | undefined>,
    /** Request target (server side), e.g. `/usp/controller?eid=...`. */
    readonly url: string = '',
  ) {
    ws.on('message', (data: RawData, isBinary: boolean) => {
      const m = { data: Buffer.isBuffer(data) ? data : Buffer.concat(data as Buffer[]), isBinary };
      const w = this.waiters.shift();
      if (w) {
        this.consumed++;
        this.messages.push(m);
        w(m);
      } else this.messages.push(m);
    });
    ws.on('error', () => {
      /* surfaced through `closed` */
    });
    this.closed = new Promise((resolve) => {
      ws.once('close', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString() }));
    });
  }

  /** The next message not yet returned by nextMessage(). */
  nextMessage(timeoutMs = 2_000): Promise<PeerMessage> {
    if (this.consumed < this.messages.length) return Promise.resolve(this.messages[this.consumed++]!);
    return withTimeout(new Promise<PeerMessage>((resolve) => this.waiters.push(resolve)), timeoutMs, 'no WebSocket message');
  }

  /** The `eid` query parameter of the request (server side). */
  get eid(): string | null {
    const q = this.url.indexOf('?');
    return q === -1 ? null : new URLSearchParams(this.url.slice(q + 1)).get('eid');
  }

  get path(): string {
    const q = this.url.indexOf('?');
    return q === -1 ? this.url : this.url.slice(0, q);
  }

  send(bytes: Uint8Array | string): void {
    this.ws.send(bytes, { binary: typeof bytes !== 'string' });
  }

  /** Sends one binary message split into WebSocket fragments (continuation frames). */
  sendFragmented(chunks: Uint8Array[]): void {
    for (let i = 0; i < chunks.length; i++) this.ws.send(chunks[i]!, { binary: true, fin: i === chunks.length - 1 });
  }

  async close(code = 1000): Promise<CloseInfo> {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(code);
    else if (this.ws.readyState === WebSocket.CONNECTING) this.ws.terminate();
    return withTimeout(this.closed, 5_000, 'WebSocket did not close').catch(() => {
      this.ws.terminate();
      return this.closed;
    });
  }
}

export interface ConnectPeerOptions {
  /** Subprotocols to offer; default ['v1.usp']; [] offers none. */
  protocols?: string[];
  /** Extra request headers, e.g. the deprecated `Sec-WebSocket-Extensions: bbf-usp-protocol; eid=...`. */
  headers?: Record<string, string>;
  /** false: never answer pings (a dead peer). */
  autoPong?: boolean;
  /** Accept a `bbf-usp-protocol` extension in the 101 (ws rejects unrequested extensions). */
  tolerateBbfExtension?: boolean;
  timeoutMs?: number;
  /** wss://: CA to trust, client certificate and key (PEM). */
  tls?: { ca?: string | Buffer; cert?: string | Buffer; key?: string | Buffer };
}

export class HandshakeRefused extends Error {
  constructor(
    readonly status: number | null,
    readonly body: string,
    message: string,
    /** Headers of the refusal (e.g. WWW-Authenticate). */
    readonly responseHeaders: Record<string, string | string[] | undefined> = {},
  ) {
    super(message);
  }
}

/** Dials `url`; resolves once open, rejects with HandshakeRefused (HTTP status and body) otherwise. */
export function connectPeer(url: string, opts: ConnectPeerOptions = {}): Promise<PeerSocket> {
  const ws = new WebSocket(url, opts.protocols ?? ['v1.usp'], {
    perMessageDeflate: false,
    headers: opts.headers,
    autoPong: opts.autoPong ?? true,
    handshakeTimeout: opts.timeoutMs ?? 5_000,
    ...opts.tls,
  });
  let upgradeHeaders: Record<string, string | string[] | undefined> = {};
  return new Promise<PeerSocket>((resolve, reject) => {
    ws.on('upgrade', (res) => {
      upgradeHeaders = { ...res.headers };
      if (opts.tolerateBbfExtension && /bbf-usp-protocol/i.test(String(res.headers['sec-websocket-extensions'] ?? ''))) {
        delete res.headers['sec-websocket-extensions'];
      }
    });
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        reject(new HandshakeRefused(res.statusCode ?? null, body, `HTTP ${res.statusCode}: ${body.trim()}`, { ...res.headers }));
        ws.terminate();
      });
      res.on('error', () => undefined);
    });
    ws.once('error', (err) => reject(new HandshakeRefused(null, '', err.message)));
    ws.once('open', () => resolve(new PeerSocket(ws, upgradeHeaders, url)));
  });
}

export interface TestWsServerOptions {
  /** Send `Sec-WebSocket-Extensions: bbf-usp-protocol; eid="<this>"` in every 101, offered or not (as obuspa does). */
  extensionUnasked?: string;
  /** Answer v1.usp when offered (default true); false: answer no subprotocol at all. */
  answerSubprotocol?: boolean;
  /** false: never answer the agents' pings (a dead controller). */
  autoPong?: boolean;
  /** Listen on this port (default: ephemeral), e.g. to bring a dropped server back. */
  port?: number;
}

/** A controller-side WebSocket server for the proxy's WS client role. */
export class TestWsServer {
  readonly connections: PeerSocket[] = [];
  private waiters: { n: number; resolve: () => void }[] = [];
  private constructor(
    private readonly http: Server,
    private readonly wss: WebSocketServer,
    readonly port: number,
  ) {}

  static async start(opts: TestWsServerOptions = {}): Promise<TestWsServer> {
    const http = createServer((_req, res) => {
      res.writeHead(426);
      res.end();
    });
    const wss = new WebSocketServer({
      server: http,
      perMessageDeflate: false,
      autoPong: opts.autoPong ?? true,
      handleProtocols: (protocols) => (opts.answerSubprotocol !== false && protocols.has('v1.usp') ? 'v1.usp' : false),
    });
    if (opts.extensionUnasked !== undefined) {
      wss.on('headers', (headers) => headers.push(`sec-websocket-extensions: bbf-usp-protocol; eid="${opts.extensionUnasked}"`));
    }
    http.listen(opts.port ?? 0, '127.0.0.1');
    await once(http, 'listening');
    const srv = new TestWsServer(http, wss, (http.address() as AddressInfo).port);
    wss.on('connection', (ws: WebSocket, req: IncomingMessage) => {
      srv.connections.push(new PeerSocket(ws, req.headers, req.url ?? ''));
      srv.waiters = srv.waiters.filter((w) => {
        if (srv.connections.length < w.n) return true;
        w.resolve();
        return false;
      });
    });
    return srv;
  }

  url(path = '/usp/controller'): string {
    return `ws://127.0.0.1:${this.port}${path}`;
  }

  /** Open connections (not yet closed). */
  get open(): PeerSocket[] {
    return this.connections.filter((c) => c.ws.readyState === WebSocket.OPEN);
  }

  /** Resolves once `n` connections in total have been accepted. */
  waitForConnections(n: number, timeoutMs = 5_000): Promise<void> {
    if (this.connections.length >= n) return Promise.resolve();
    return withTimeout(
      new Promise<void>((resolve) => this.waiters.push({ n, resolve })),
      timeoutMs,
      `fewer than ${n} connections (have ${this.connections.length})`,
    );
  }

  /** Drops every connection abruptly (no Close frame). */
  dropAll(): void {
    for (const c of this.connections) c.ws.terminate();
  }

  async close(): Promise<void> {
    for (const c of this.connections) c.ws.terminate();
    this.wss.close();
    this.http.closeAllConnections();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }
}

/** Rejects after `ms` (the timer is cleared either way so it never holds the process). */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<never>((_, reject) => {
      t = setTimeout(() => reject(new Error(`timeout after ${ms} ms: ${what}`)), ms);
    }),
  ]);
}

/** Resolves with the first `event` emission whose payload satisfies `pred`. */
export function nextEvent<T>(
  emitter: { on(e: string, l: (v: T) => void): unknown; off(e: string, l: (v: T) => void): unknown },
  event: string,
  pred: (v: T) => boolean = () => true,
  timeoutMs = 2_000,
): Promise<T> {
  let listener!: (v: T) => void;
  const p = new Promise<T>((resolve) => {
    listener = (v: T) => {
      if (pred(v)) resolve(v);
    };
    emitter.on(event, listener);
  });
  return withTimeout(p, timeoutMs, `event ${event}`).finally(() => emitter.off(event, listener));
}
