/**
 * STOMP MTP (TR-369 section "STOMP Binding"): one STOMP 1.2 connection over TCP to a broker,
 * shared by every proxied agent, with ONE subscription; Records are routed by to_id above us.
 *
 * Why not @stomp/stompjs: its handshake always sends CONNECT (R-STOMP.2 wants the STOMP
 * command), it never escapes CONNECT headers (R-STOMP.4 wants `:` in endpoint-id as `\c`) and it
 * needs a WebSocket shim over TCP. STOMP 1.2 is small, so this file holds a pure frame codec
 * (encodeStompFrame / StompParser, no I/O) and a connection state machine on
 * node:net. The codec is exported for the test's scripted server.
 */
import { safeLog, delay, type MtpLog } from './util.js';
import { EventEmitter } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import { backoffDelayMs } from '../../util/backoff.js';
import { MtpSendError, type InboundRecord, type Mtp, type MtpDestination, type MtpEvents, type MtpKind, type MtpStatus } from './types.js';

// ---------------------------------------------------------------------------------------------
// Codec
// ---------------------------------------------------------------------------------------------

/** R-STOMP.20: the registered USP Record MIME type. */
export const USP_STOMP_CONTENT_TYPE = 'application/vnd.bbf.usp.msg';

export interface StompFrame {
  command: string;
  /** In wire order; repeated names are kept (STOMP 1.2: the first one wins). */
  headers: Array<[string, string]>;
  body: Uint8Array;
}

/** The first value of a header, as STOMP 1.2 says for repeated headers. */
export function stompHeader(frame: Pick<StompFrame, 'headers'>, name: string): string | undefined {
  for (const [k, v] of frame.headers) if (k === name) return v;
  return undefined;
}

/** STOMP 1.2 "Value Encoding": \\ \n \r and : escaped. */
export function escapeStompHeader(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\r/g, '\\r').replace(/\n/g, '\\n').replace(/:/g, '\\c');
}

/** Inverse of escapeStompHeader. Undefined escapes are kept literally (lenient: never throws). */
export function unescapeStompHeader(s: string): string {
  if (!s.includes('\\')) return s;
  return s.replace(/\\(.)/g, (m, c: string) => (c === 'c' ? ':' : c === 'n' ? '\n' : c === 'r' ? '\r' : c === '\\' ? '\\' : m));
}

export interface EncodeStompOptions {
  /**
   * Escape header names and values (STOMP 1.2 frames other than CONNECT/STOMP/CONNECTED).
   * Default: true except for CONNECT, STOMP and CONNECTED, which the STOMP spec leaves unescaped.
   */
  escape?: boolean;
  /** Header names escaped even when `escape` is false (R-STOMP.4: endpoint-id in the STOMP frame). */
  alwaysEscape?: readonly string[];
}

/** Encodes a frame: command, headers, blank line, body, NUL. The caller adds content-length when wanted. */
export function encodeStompFrame(frame: StompFrame, opts: EncodeStompOptions = {}): Buffer {
  const escapeAll = opts.escape ?? !['CONNECT', 'STOMP', 'CONNECTED'].includes(frame.command);
  let head = frame.command + '\n';
  for (const [k, v] of frame.headers) {
    if (escapeAll || opts.alwaysEscape?.includes(k)) {
      head += `${escapeStompHeader(k)}:${escapeStompHeader(v)}\n`;
    } else {
      if (/[\r\n]/.test(k + v) || k.includes(':')) throw new Error(`STOMP header ${JSON.stringify(k)} cannot be sent unescaped`);
      head += `${k}:${v}\n`;
    }
  }
  head += '\n';
  const h = Buffer.from(head, 'utf8');
  const out = Buffer.allocUnsafe(h.length + frame.body.length + 1);
  h.copy(out, 0);
  out.set(frame.body, h.length);
  out[out.length - 1] = 0;
  return out;
}

export type StompParseEvent =
  | { type: 'frame'; frame: StompFrame }
  /** An EOL between frames: the STOMP heart-beat. */
  | { type: 'heartbeat' }
  /** A frame whose content-length is over maxBodyBytes: its body is skipped, never buffered. */
  | { type: 'oversize'; command: string; headers: Array<[string, string]>; length: number }
  /** The stream cannot be parsed any further; the caller drops the connection. */
  | { type: 'error'; message: string };

export interface StompParserOptions {
  /** Largest body kept (default 16 MiB). */
  maxBodyBytes?: number;
  /** Largest command + header block (default 64 KiB). */
  maxHeaderBytes?: number;
  /** Unescape header values (STOMP 1.2). Default true; CONNECT/STOMP frames are never unescaped except their endpoint-id. */
  unescape?: boolean;
}

/**
 * Incremental STOMP 1.2 parser: push() bytes as they arrive, get frames back. Binary bodies
 * with content-length are exact (NUL and LF bytes inside are data); without content-length
 * the body ends at the first NUL.
 */
export class StompParser {
  private buf: Buffer = Buffer.alloc(0);
  private skip = 0;
  private failed = false;
  private readonly maxBody: number;
  private readonly maxHeader: number;
  private readonly unescape: boolean;

  constructor(opts: StompParserOptions = {}) {
    this.maxBody = opts.maxBodyBytes ?? 16 * 1024 * 1024;
    this.maxHeader = opts.maxHeaderBytes ?? 64 * 1024;
    this.unescape = opts.unescape ?? true;
  }

  push(chunk: Uint8Array): StompParseEvent[] {
    const events: StompParseEvent[] = [];
    if (this.failed) return events;
    let data = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (this.skip > 0) {
      const n = Math.min(this.skip, data.length);
      this.skip -= n;
      data = data.subarray(n);
      if (this.skip > 0) return events;
    }
    this.buf = this.buf.length ? Buffer.concat([this.buf, data]) : data;
    for (;;) {
      // Heart-beats / EOLs between frames.
      let i = 0;
      while (i < this.buf.length) {
        if (this.buf[i] === 0x0a) {
          events.push({ type: 'heartbeat' });
          i++;
        } else if (this.buf[i] === 0x0d && i + 1 < this.buf.length && this.buf[i + 1] === 0x0a) {
          events.push({ type: 'heartbeat' });
          i += 2;
        } else break;
      }
      if (i > 0) this.buf = this.buf.subarray(i);
      if (this.buf.length === 0) break;
      if (this.buf.length === 1 && this.buf[0] === 0x0d) break;
      const headEnd = findHeaderEnd(this.buf);
      if (headEnd === null) {
        if (this.buf.length > this.maxHeader) return this.fail(events, 'STOMP header block too large');
        break;
      }
      if (headEnd.start > this.maxHeader) return this.fail(events, 'STOMP header block too large');
      const lines = this.buf.subarray(0, headEnd.start).toString('utf8').split('\n');
      const command = stripCr(lines[0] ?? '');
      if (!/^[A-Z]+$/.test(command)) return this.fail(events, `bad STOMP command ${JSON.stringify(command.slice(0, 40))}`);
      const raw = command === 'CONNECT' || command === 'STOMP' || !this.unescape;
      const headers: Array<[string, string]> = [];
      for (const line0 of lines.slice(1)) {
        const line = stripCr(line0);
        const c = line.indexOf(':');
        if (c <= 0) return this.fail(events, `bad STOMP header line ${JSON.stringify(line.slice(0, 80))}`);
        const k = line.slice(0, c);
        const v = line.slice(c + 1);
        headers.push(raw && k !== 'endpoint-id' ? [k, v] : [unescapeStompHeader(k), unescapeStompHeader(v)]);
      }
      const bodyStart = headEnd.end;
      const cl = stompHeader({ headers }, 'content-length');
      if (cl !== undefined) {
        if (!/^\d{1,15}$/.test(cl.trim())) return this.fail(events, `bad content-length ${JSON.stringify(cl)}`);
        const len = Number(cl.trim());
        if (len > this.maxBody) {
          events.push({ type: 'oversize', command, headers, length: len });
          const have = this.buf.length - bodyStart;
          const need = len + 1;
          if (have >= need) {
            this.buf = this.buf.subarray(bodyStart + need);
            continue;
          }
          this.skip = need - have;
          this.buf = Buffer.alloc(0);
          break;
        }
        if (this.buf.length < bodyStart + len + 1) break;
        if (this.buf[bodyStart + len] !== 0) return this.fail(events, 'STOMP frame body not followed by NUL');
        const body = Uint8Array.prototype.slice.call(this.buf, bodyStart, bodyStart + len);
        this.buf = this.buf.subarray(bodyStart + len + 1);
        events.push({ type: 'frame', frame: { command, headers, body } });
      } else {
        const nul = this.buf.indexOf(0, bodyStart);
        if (nul < 0) {
          if (this.buf.length - bodyStart > this.maxBody) return this.fail(events, 'STOMP body without content-length too large');
          break;
        }
        const body = Uint8Array.prototype.slice.call(this.buf, bodyStart, nul);
        this.buf = this.buf.subarray(nul + 1);
        events.push({ type: 'frame', frame: { command, headers, body } });
      }
    }
    // Detach from the caller's chunk so a retained remainder never pins a big buffer.
    if (this.buf.length) this.buf = Buffer.from(this.buf);
    return events;
  }

  private fail(events: StompParseEvent[], message: string): StompParseEvent[] {
    this.failed = true;
    this.buf = Buffer.alloc(0);
    events.push({ type: 'error', message });
    return events;
  }
}

function stripCr(s: string): string {
  return s.endsWith('\r') ? s.slice(0, -1) : s;
}

/** Finds the blank line ending the header block: start = end of the last header line, end = first body byte. */
function findHeaderEnd(buf: Buffer): { start: number; end: number } | null {
  let from = 0;
  for (;;) {
    const nl = buf.indexOf(0x0a, from);
    if (nl < 0) return null;
    const next = nl + 1;
    if (next < buf.length && buf[next] === 0x0a) return { start: nl, end: next + 1 };
    if (next + 1 < buf.length && buf[next] === 0x0d && buf[next + 1] === 0x0a) return { start: nl, end: next + 2 };
    if (next >= buf.length || (buf[next] === 0x0d && next + 1 >= buf.length)) return null;
    from = next;
  }
}

/**
 * STOMP 1.2 heart-beat negotiation. Client sends `cx,cy`, server answers `sx,sy`.
 * Outgoing every max(cx, sy) unless either is 0; incoming expected every max(cy, sx) unless either is 0.
 */
export function negotiateHeartbeat(
  client: { outgoing: number; incoming: number },
  serverHeader: string | undefined,
): { outgoingMs: number; incomingMs: number } {
  const [sx, sy] = (serverHeader ?? '0,0').split(',').map((p) => {
    const n = Number(p.trim());
    return Number.isFinite(n) && n > 0 ? Math.floor(n) : 0;
  });
  const cx = Math.max(0, Math.floor(client.outgoing));
  const cy = Math.max(0, Math.floor(client.incoming));
  return {
    outgoingMs: cx === 0 || !sy ? 0 : Math.max(cx, sy),
    incomingMs: cy === 0 || !sx ? 0 : Math.max(cy, sx),
  };
}

// ---------------------------------------------------------------------------------------------
// MTP
// ---------------------------------------------------------------------------------------------

export type { MtpLog } from './util.js';

export interface StompMtpOptions {
  host: string;
  port: number;
  /** R-STOMP.5: the `host` header (virtual host); omitted when empty. */
  vhost?: string;
  /** R-STOMP.3: login / passcode headers. */
  login?: string;
  passcode?: string;
  /** R-STOMP.4: the `endpoint-id` header of the STOMP frame (sent with `:` escaped as `\c`). */
  endpointId: string;
  /** R-STOMP.15: the agent destination, used when CONNECTED has no subscribe-dest. */
  destination: string;
  /** R-STOMP.8..11: ms; 0,0 disables heart-beating (R-STOMP.9). */
  heartbeatMs: { outgoing: number; incoming: number };
  /** Inbound and outbound Records above this size are dropped with a warning. */
  maxRecordBytes: number;
  /** R-STOMP.7: reconnect backoff (util/backoff.ts). */
  backoff: { baseMs: number; maxMs: number };
  log?: MtpLog;
  /** CONNECTED / subscribe RECEIPT / DISCONNECT RECEIPT deadline. Default 10 s. */
  connectTimeoutMs?: number;
  /**
   * STOMP over TLS (config usp.stomp.tls, when enabled): PEM contents (util/tls.ts loads them).
   * `ca` replaces node's default roots, so pass the system roots with it (util/tls
   * withSystemRoots); cert/key is the client certificate; insecure skips verification (labs only).
   * null / absent = plain TCP.
   */
  tls?: { ca?: string | Buffer | Array<string | Buffer>; cert?: string | Buffer; key?: string | Buffer; insecure?: boolean } | null;
}

type State = 'idle' | 'connecting' | 'open' | 'stopping' | 'stopped';

/**
 * The STOMP MTP. start() resolves after the first connection attempt, connected or not: a
 * broker that is down at start-up is retried in the background (R-STOMP.7) and reported as a
 * warning. send() never queues: it rejects with MtpSendError while not connected.
 */
export class StompMtp extends EventEmitter<MtpEvents> implements Mtp {
  readonly kind: MtpKind = 'stomp';
  private readonly opts: StompMtpOptions;
  private state: State = 'idle';
  private sock: net.Socket | null = null;
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private hbOut: NodeJS.Timeout | null = null;
  private hbIn: NodeJS.Timeout | null = null;
  private lastRead = 0;
  private lastWrite = 0;
  private subCounter = 0;
  private receiptCounter = 0;
  private subId: string | null = null;
  private subscribed: string | null = null;
  private serverDest: string | null = null;
  private configuredDest: string;
  private negotiated = { outgoingMs: 0, incomingMs: 0 };
  private readonly receipts = new Map<string, (ok: boolean) => void>();
  private readonly agents = new Set<string>();
  private firstAttempt: { resolve: () => void } | null = null;
  private sessionInfo = '';

  constructor(opts: StompMtpOptions) {
    super();
    this.opts = opts;
    this.configuredDest = opts.destination;
  }

  /** The destination we are subscribed to: what agents put in stomp_connect.subscribed_destination and reply-to-dest. */
  get subscribedDestination(): string | null {
    return this.subscribed;
  }

  /** Heart-beat intervals in force on the current connection (ms, 0 = off). */
  get heartbeat(): { outgoingMs: number; incomingMs: number } {
    return { ...this.negotiated };
  }

  async start(): Promise<void> {
    if (this.state !== 'idle') return;
    this.state = 'connecting';
    await new Promise<void>((resolve) => {
      this.firstAttempt = { resolve };
      this.connect();
    });
  }

  async stop(): Promise<void> {
    if (this.state === 'stopped' || this.state === 'stopping') return;
    const wasOpen = this.state === 'open';
    this.state = 'stopping';
    this.clearRetry();
    const sock = this.sock;
    if (sock && wasOpen && !sock.destroyed) {
      // R-STOMP.28: DISCONNECT with a receipt; anything written before it is flushed first.
      const receipt = `disconnect-${++this.receiptCounter}`;
      const got = new Promise<void>((resolve) => this.receipts.set(receipt, () => resolve()));
      this.write(encodeStompFrame({ command: 'DISCONNECT', headers: [['receipt', receipt]], body: new Uint8Array(0) }));
      const closed = new Promise<void>((r) => sock.once('close', () => r()));
      await Promise.race([got, closed, delay(this.opts.connectTimeoutMs ?? 10_000)]);
      sock.end();
      await Promise.race([closed, delay(1000)]);
    }
    this.teardown('stopped');
    this.state = 'stopped';
    if (wasOpen) this.emit('channelClose', { mtp: 'stomp', agentEid: null, dest: null, reason: 'stopped' });
    this.resolveFirst();
  }

  async send(from: string, dest: MtpDestination, bytes: Uint8Array): Promise<void> {
    if (dest.mtp !== 'stomp') throw new MtpSendError('stomp', `destination is for ${dest.mtp}, not stomp`);
    if (bytes.length > this.opts.maxRecordBytes) {
      this.warn('outbound Record over maxRecordBytes dropped', { from, dest: dest.address, size: bytes.length });
      throw new MtpSendError('stomp', `Record of ${bytes.length} bytes exceeds maxRecordBytes ${this.opts.maxRecordBytes}`);
    }
    const sock = this.sock;
    if (this.state !== 'open' || !sock || !this.subscribed) throw new MtpSendError('stomp', 'STOMP broker not connected');
    // R-STOMP.18..22, in obuspa's header order. Never BEGIN/COMMIT/ABORT/ACK/NACK (R-STOMP.26/27).
    const frame = encodeStompFrame({
      command: 'SEND',
      headers: [
        ['content-length', String(bytes.length)],
        ['content-type', USP_STOMP_CONTENT_TYPE],
        ['reply-to-dest', this.subscribed],
        ['destination', dest.address],
      ],
      body: bytes,
    });
    await new Promise<void>((resolve, reject) => {
      this.lastWrite = Date.now();
      sock.write(frame, (err) => (err ? reject(new MtpSendError('stomp', `STOMP write failed: ${err.message}`)) : resolve()));
    });
  }

  status(): MtpStatus {
    const connected = this.state === 'open';
    return {
      mtp: 'stomp',
      connected,
      detail: connected
        ? `connected to stomp://${this.opts.host}:${this.opts.port} as ${this.opts.endpointId}, subscribed to ${this.subscribed}${this.sessionInfo}`
        : `${this.state === 'stopped' ? 'stopped' : 'not connected'} (stomp://${this.opts.host}:${this.opts.port})`,
      channels: connected ? 1 : 0,
    };
  }

  addAgent(eid: string): void {
    this.agents.add(eid);
  }

  removeAgent(eid: string): void {
    this.agents.delete(eid);
  }

  /**
   * R-STOMP.29: the configured destination changed. When the server gave no subscribe-dest and
   * we are connected: UNSUBSCRIBE, SUBSCRIBE to the new one, and emit channelOpen so every
   * agent re-announces itself with the new subscribed_destination.
   */
  async setDestination(destination: string): Promise<void> {
    this.configuredDest = destination;
    if (this.state !== 'open' || this.serverDest || destination === this.subscribed) return;
    if (this.subId) this.write(encodeStompFrame({ command: 'UNSUBSCRIBE', headers: [['id', this.subId]], body: new Uint8Array(0) }));
    this.subscribed = null;
    await this.subscribe(destination);
    this.emitOpen();
  }

  // --- connection ------------------------------------------------------------------------------

  private connect(): void {
    if (this.state === 'stopping' || this.state === 'stopped') return;
    this.state = 'connecting';
    const t = this.opts.tls;
    const sock: net.Socket = t
      ? tls.connect({
          host: this.opts.host,
          port: this.opts.port,
          // SNI only for names (RFC 6066 forbids IP literals); the certificate is checked against host either way.
          ...(net.isIP(this.opts.host) ? {} : { servername: this.opts.host }),
          ...(t.ca ? { ca: t.ca } : {}),
          ...(t.cert ? { cert: t.cert } : {}),
          ...(t.key ? { key: t.key } : {}),
          rejectUnauthorized: !t.insecure,
        })
      : net.connect({ host: this.opts.host, port: this.opts.port });
    sock.setNoDelay(true);
    this.sock = sock;
    const parser = new StompParser({ maxBodyBytes: this.opts.maxRecordBytes });
    let connectedTimer: NodeJS.Timeout | null = setTimeout(() => {
      this.warn('no CONNECTED frame in time', {});
      sock.destroy();
    }, this.opts.connectTimeoutMs ?? 10_000);
    let closedOnce = false;

    // Over TLS the STOMP frame waits for the handshake (and certificate check) to finish.
    sock.on(t ? 'secureConnect' : 'connect', () => {
      this.lastRead = this.lastWrite = Date.now();
      const headers: Array<[string, string]> = [['accept-version', '1.2']];
      if (this.opts.vhost) headers.push(['host', this.opts.vhost]);
      const hb = this.opts.heartbeatMs;
      if (hb.outgoing > 0 || hb.incoming > 0) headers.push(['heart-beat', `${Math.max(0, Math.floor(hb.outgoing))},${Math.max(0, Math.floor(hb.incoming))}`]);
      headers.push(['endpoint-id', this.opts.endpointId]);
      if (this.opts.login !== undefined) headers.push(['login', this.opts.login]);
      if (this.opts.passcode !== undefined) headers.push(['passcode', this.opts.passcode]);
      try {
        // R-STOMP.2: the STOMP command; R-STOMP.4: endpoint-id escaped even in this frame.
        this.write(encodeStompFrame({ command: 'STOMP', headers, body: new Uint8Array(0) }, { escape: false, alwaysEscape: ['endpoint-id'] }));
      } catch (err) {
        this.warn(`cannot build STOMP frame: ${(err as Error).message}`, {});
        sock.destroy();
      }
    });

    sock.on('data', (chunk: Buffer) => {
      this.lastRead = Date.now();
      let events: StompParseEvent[];
      try {
        events = parser.push(chunk);
      } catch (err) {
        events = [{ type: 'error', message: (err as Error).message }];
      }
      for (const ev of events) {
        if (sock !== this.sock) return;
        switch (ev.type) {
          case 'heartbeat':
            break;
          case 'error':
            this.warn(`bad STOMP data from broker, reconnecting: ${ev.message}`, {});
            sock.destroy();
            return;
          case 'oversize':
            this.warn('inbound Record over maxRecordBytes dropped', { command: ev.command, size: ev.length, destination: stompHeader(ev, 'destination') });
            break;
          case 'frame':
            if (ev.frame.command === 'CONNECTED' && connectedTimer) {
              clearTimeout(connectedTimer);
              connectedTimer = null;
            }
            this.onFrame(sock, ev.frame);
            break;
        }
      }
    });

    sock.on('error', (err) => {
      this.log('debug', `STOMP socket error: ${err.message}`);
      this.lastError = err.message;
    });

    sock.on('close', () => {
      if (closedOnce) return;
      closedOnce = true;
      if (connectedTimer) clearTimeout(connectedTimer);
      if (sock !== this.sock) return;
      const wasOpen = this.state === 'open';
      this.teardown(this.state === 'stopping' ? 'stopping' : 'connecting');
      if (wasOpen) this.emit('channelClose', { mtp: 'stomp', agentEid: null, dest: null, reason: this.lastError ?? 'connection closed' });
      if (this.state === 'stopping' || this.state === 'stopped') return;
      const wait = backoffDelayMs(this.attempt++, this.opts.backoff);
      this.warn(`STOMP connection ${wasOpen ? 'lost' : 'failed'}; retrying in ${wait} ms`, { error: this.lastError, attempt: this.attempt });
      this.lastError = undefined;
      this.resolveFirst();
      this.retryTimer = setTimeout(() => {
        this.retryTimer = null;
        this.connect();
      }, wait);
    });
  }

  private lastError: string | undefined;

  private onFrame(sock: net.Socket, frame: StompFrame): void {
    switch (frame.command) {
      case 'CONNECTED':
        void this.onConnected(sock, frame);
        return;
      case 'MESSAGE':
        this.onMessage(frame);
        return;
      case 'RECEIPT': {
        // R-STOMP.30
        const id = stompHeader(frame, 'receipt-id');
        const r = id !== undefined ? this.receipts.get(id) : undefined;
        if (id !== undefined && r) {
          this.receipts.delete(id);
          r(true);
        }
        return;
      }
      case 'ERROR': {
        // R-STOMP.25: the server closes the connection; retry.
        const message = stompHeader(frame, 'message') ?? '';
        this.lastError = `ERROR frame: ${message}`;
        this.warn(`STOMP ERROR frame: ${message}`, { body: Buffer.from(frame.body).toString('utf8').slice(0, 500) });
        sock.destroy();
        return;
      }
      default:
        this.warn(`unexpected STOMP frame ${frame.command} ignored`, {});
    }
  }

  private async onConnected(sock: net.Socket, frame: StompFrame): Promise<void> {
    const version = stompHeader(frame, 'version');
    if (version !== undefined && version !== '1.2') {
      this.warn(`broker negotiated STOMP ${version}, not 1.2`, {});
    }
    this.negotiated = negotiateHeartbeat(this.opts.heartbeatMs, stompHeader(frame, 'heart-beat'));
    this.startHeartbeats(sock);
    const server = stompHeader(frame, 'server');
    this.sessionInfo = server ? ` (${server})` : '';
    // R-STOMP.6 / R-STOMP.14 / R-STOMP.15
    const fromServer = stompHeader(frame, 'subscribe-dest');
    this.serverDest = fromServer ? fromServer : null;
    const dest = this.serverDest ?? this.configuredDest;
    if (!dest) {
      // R-STOMP.16: no destination at all: DISCONNECT and retry.
      this.lastError = 'no subscribe-dest from the server and no configured destination';
      this.warn(this.lastError, {});
      this.write(encodeStompFrame({ command: 'DISCONNECT', headers: [], body: new Uint8Array(0) }));
      sock.end();
      return;
    }
    const ok = await this.subscribe(dest);
    if (!ok || sock !== this.sock || sock.destroyed) return;
    this.state = 'open';
    this.attempt = 0;
    this.resolveFirst();
    this.log('info', `STOMP connected, subscribed to ${dest}`, { heartbeat: this.negotiated });
    this.emitOpen();
  }

  /** SUBSCRIBE with ack:auto (R-STOMP.17) and a receipt, so channelOpen comes after the broker took it. */
  private async subscribe(dest: string): Promise<boolean> {
    const sock = this.sock;
    if (!sock) return false;
    const id = `usp-${++this.subCounter}`;
    const receipt = `sub-${++this.receiptCounter}`;
    const got = new Promise<boolean>((resolve) => {
      const t = setTimeout(() => {
        this.receipts.delete(receipt);
        resolve(false);
      }, this.opts.connectTimeoutMs ?? 10_000);
      this.receipts.set(receipt, (ok) => {
        clearTimeout(t);
        resolve(ok);
      });
      sock.once('close', () => {
        clearTimeout(t);
        resolve(false);
      });
    });
    this.subId = id;
    this.write(
      encodeStompFrame({
        command: 'SUBSCRIBE',
        headers: [
          ['id', id],
          ['destination', dest],
          ['ack', 'auto'],
          ['receipt', receipt],
        ],
        body: new Uint8Array(0),
      }),
    );
    const ok = (await got) && sock === this.sock && !sock.destroyed;
    if (!ok) {
      if (sock === this.sock && !sock.destroyed) {
        this.lastError = `no RECEIPT for SUBSCRIBE to ${dest}`;
        this.warn(this.lastError, {});
        sock.destroy();
      }
      return false;
    }
    this.subscribed = dest;
    return true;
  }

  private onMessage(frame: StompFrame): void {
    const sub = stompHeader(frame, 'subscription');
    if (sub !== undefined && sub !== this.subId) {
      this.log('debug', `MESSAGE for stale subscription ${sub} ignored`);
      return;
    }
    const contentType = stompHeader(frame, 'content-type');
    if (contentType !== undefined && contentType.split(';')[0]!.trim() !== USP_STOMP_CONTENT_TYPE) {
      this.warn(`MESSAGE with content-type ${contentType} dropped (not a USP Record)`, { destination: stompHeader(frame, 'destination') });
      return;
    }
    if (frame.body.length > this.opts.maxRecordBytes) {
      this.warn('inbound Record over maxRecordBytes dropped', { size: frame.body.length });
      return;
    }
    const replyTo = stompHeader(frame, 'reply-to-dest');
    const rec: InboundRecord = {
      mtp: 'stomp',
      bytes: frame.body,
      // R-STOMP.23
      replyTo: replyTo ? { mtp: 'stomp', address: replyTo } : null,
      agentEid: null,
      peerEid: null,
      ...(contentType !== undefined ? { contentType } : {}),
    };
    try {
      this.emit('record', rec);
    } catch (err) {
      this.warn(`record listener threw: ${(err as Error).message}`, {});
    }
  }

  private startHeartbeats(sock: net.Socket): void {
    this.stopHeartbeats();
    const { outgoingMs, incomingMs } = this.negotiated;
    if (outgoingMs > 0) {
      // Ticks at half the period, so no gap in our sending exceeds the period.
      const half = Math.max(1, Math.floor(outgoingMs / 2));
      this.hbOut = setInterval(() => {
        if (Date.now() - this.lastWrite >= half && !sock.destroyed) this.write(Buffer.from('\n'));
      }, half);
      this.hbOut.unref();
    }
    if (incomingMs > 0) {
      // R-STOMP.11, with the STOMP spec's margin for timing inaccuracy (2x, as stompjs does).
      this.hbIn = setInterval(
        () => {
          if (Date.now() - this.lastRead > incomingMs * 2 && !sock.destroyed) {
            this.lastError = `no data from broker for ${Date.now() - this.lastRead} ms (heart-beat ${incomingMs} ms)`;
            this.warn('STOMP heart-beat timeout', { incomingMs });
            sock.destroy();
          }
        },
        Math.max(1, Math.floor(incomingMs / 2)),
      );
      this.hbIn.unref();
    }
  }

  private stopHeartbeats(): void {
    if (this.hbOut) clearInterval(this.hbOut);
    if (this.hbIn) clearInterval(this.hbIn);
    this.hbOut = this.hbIn = null;
  }

  private teardown(next: State): void {
    this.stopHeartbeats();
    for (const r of this.receipts.values()) r(false);
    this.receipts.clear();
    if (this.sock && !this.sock.destroyed) this.sock.destroy();
    this.sock = null;
    this.subId = null;
    this.subscribed = null;
    this.negotiated = { outgoingMs: 0, incomingMs: 0 };
    if (this.state !== 'stopped') this.state = next;
  }

  private clearRetry(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  private write(buf: Buffer): void {
    if (!this.sock || this.sock.destroyed) return;
    this.lastWrite = Date.now();
    this.sock.write(buf);
  }

  private emitOpen(): void {
    this.emit('channelOpen', { mtp: 'stomp', agentEid: null, dest: null, peerEid: null });
  }

  private resolveFirst(): void {
    const f = this.firstAttempt;
    this.firstAttempt = null;
    f?.resolve();
  }

  private warn(message: string, detail: Record<string, unknown>): void {
    this.log('warn', message, detail);
    this.emit('warning', { mtp: 'stomp', message, detail });
  }

  private log(level: 'debug' | 'info' | 'warn', msg: string, extra?: object): void {
    safeLog(this.opts.log, level, msg, extra);
  }
}
