/**
 * The ACS's connections before node's HTTP parser sees them. The first bytes of each connection
 * decide (http-framing.ts connectionFraming):
 *  - most connections (CRLF heads, persistent HTTP/1.1 or HTTP/1.0 keep-alive) go to node as
 *    they are: the first chunk is put back and the socket handed over;
 *  - connections whose head uses bare LF, and connections that carry one request only (HTTP/1.0
 *    without keep-alive, Connection: close), are relayed through a RequestFramer. Such a client
 *    may close its sending side as soon as the request is out (HTTP/1.0 even marks the end of a
 *    length-less body that way, RFC 1945 7.2.2); node would then drop the request unanswered,
 *    so the relay keeps the client's close to itself and node answers as usual.
 * Limits: the body size limit and the request deadline hold for a close-delimited body too, and
 * a connection that sends nothing is closed after the headers deadline.
 */
import { STATUS_CODES } from 'node:http';
import type { Server, Socket } from 'node:net';
import { Duplex } from 'node:stream';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import { connectionFraming, FramingError, RequestFramer } from './http-framing.js';

export interface CpeConnectionOptions {
  /** Largest request body (a close-delimited one is refused with 413 beyond it). */
  maxBodyBytes: number;
  /** A connection without a first byte within this is closed (the server's headers deadline). */
  firstByteTimeoutMs: number;
  /** A close-delimited body must be complete within this (the server's request deadline). */
  requestTimeoutMs: number;
  /**
   * After an HTTP/1.0 POST head without Content-Length and without body bytes, how long to wait
   * for a body byte or the client's close before reading the request as bodiless (a client that
   * sends an empty POST that way and then just waits for the answer).
   */
  bodyGraceMs: number;
}

type ConnectionListener = (socket: Duplex) => void;

/**
 * Takes over a server's connection event ('connection' for http, 'secureConnection' for https)
 * and passes each connection on to the listeners that were there (node's HTTP handling).
 */
export class CpeConnections {
  private readonly http: readonly ConnectionListener[];
  /** Sockets not yet handed to node, or relayed: destroyed by destroyAll(). */
  private readonly own = new Set<Socket>();

  constructor(
    private readonly server: Server,
    event: 'connection' | 'secureConnection',
    private readonly o: CpeConnectionOptions,
  ) {
    this.http = server.listeners(event) as ConnectionListener[];
    server.removeAllListeners(event);
    server.on(event, (socket: Socket) => this.accept(socket));
  }

  /** Closes the connections this front still holds (server shutdown). */
  destroyAll(): void {
    for (const s of this.own) s.destroy();
    this.own.clear();
  }

  private toHttp(socket: Duplex): void {
    for (const l of this.http) l.call(this.server, socket);
  }

  private accept(socket: Socket): void {
    this.own.add(socket);
    const timer = setTimeout(() => socket.destroy(), this.o.firstByteTimeoutMs);
    const drop = (): void => {
      socket.destroy();
    };
    const release = (): void => {
      clearTimeout(timer);
      this.own.delete(socket);
      socket.off('error', drop);
      socket.off('end', drop);
      socket.off('close', release);
    };
    socket.on('error', drop);
    socket.on('end', drop); // closed before sending anything
    socket.on('close', release);
    socket.once('data', (first: Buffer) => {
      release();
      socket.pause();
      if (connectionFraming(first) === 'node') {
        socket.unshift(first);
        this.toHttp(socket);
        socket.resume();
      } else this.relay(socket, first);
    });
  }

  private relay(socket: Socket, first: Buffer): void {
    this.own.add(socket);
    const framer = new RequestFramer(this.o.maxBodyBytes);
    const conn = new RelayedConnection(socket);
    let grace: NodeJS.Timeout | undefined;
    let deadline: NodeJS.Timeout | undefined;
    let refused = false;
    const clearTimers = (): void => {
      clearTimeout(grace);
      clearTimeout(deadline);
      grace = deadline = undefined;
    };
    // The relay is destroyed when the socket closes, after the refusal is written.
    const stop = (status: number, message: string): void => {
      refused = true;
      clearTimers();
      refuse(socket, status, message);
    };
    const step = (produce: () => Buffer[]): void => {
      if (refused) return;
      let out: Buffer[];
      try {
        out = produce();
      } catch (e) {
        // Bad input never takes the process down: anything unexpected is a 400 for this client.
        return e instanceof FramingError ? stop(e.status, e.message) : stop(400, 'request framing failed');
      }
      for (const b of out) if (b.length > 0 && !conn.push(b)) socket.pause();
      if (!framer.awaitingCloseDelimitedBody) return clearTimers();
      deadline ??= setTimeout(() => stop(408, 'the request body did not end within the request deadline'), this.o.requestTimeoutMs);
      if (framer.closeDelimitedBytes > 0) {
        clearTimeout(grace);
        grace = undefined;
      } else grace ??= setTimeout(() => step(() => framer.end()), this.o.bodyGraceMs);
    };
    socket.on('data', (c: Buffer) => step(() => framer.push(c)));
    // The client closed its sending side: that ends a close-delimited body; node is not told.
    socket.on('end', () => step(() => framer.end()));
    socket.on('error', () => conn.destroy());
    socket.on('close', () => {
      clearTimers();
      this.own.delete(socket);
      conn.destroy();
    });
    this.toHttp(conn);
    step(() => framer.push(first));
    socket.resume();
  }
}

/** Answers outside node's HTTP handling (the request never reached it) and closes. */
function refuse(socket: Socket, status: number, message: string): void {
  if (socket.destroyed || !socket.writable) return void socket.destroy();
  const body = `${message}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
  socket.once('finish', () => socket.destroy());
}

/**
 * The HTTP side of a relayed connection: reads what the framer produced, writes to the client's
 * socket. Its readable side never ends (the client's close is not passed on); it is destroyed
 * with the socket.
 */
class RelayedConnection extends Duplex {
  constructor(private readonly socket: Socket) {
    super({ allowHalfOpen: true });
    // node's keep-alive deadline is armed with setTimeout and fires 'timeout' on this object.
    socket.on('timeout', () => this.emit('timeout'));
  }

  get remoteAddress(): string | undefined {
    return this.socket.remoteAddress;
  }

  get remotePort(): number | undefined {
    return this.socket.remotePort;
  }

  get remoteFamily(): string | undefined {
    return this.socket.remoteFamily;
  }

  /** TLS: whether the client certificate verified against acs.tls.ca (the CPE's identity, acs-server.ts). */
  get authorized(): boolean {
    return (this.socket as Partial<TLSSocket>).authorized === true;
  }

  getPeerCertificate(): PeerCertificate | null {
    const tls = this.socket as Partial<TLSSocket>;
    return typeof tls.getPeerCertificate === 'function' ? tls.getPeerCertificate() : null;
  }

  setTimeout(ms: number): this {
    this.socket.setTimeout(ms);
    return this;
  }

  setNoDelay(noDelay?: boolean): this {
    this.socket.setNoDelay(noDelay);
    return this;
  }

  setKeepAlive(enable?: boolean, initialDelay?: number): this {
    this.socket.setKeepAlive(enable, initialDelay);
    return this;
  }

  override _read(): void {
    this.socket.resume();
  }

  override _write(chunk: Buffer, encoding: BufferEncoding, done: (e?: Error | null) => void): void {
    this.socket.write(chunk, encoding, done);
  }

  override _final(done: (e?: Error | null) => void): void {
    this.socket.end();
    done();
  }

  override _destroy(err: Error | null, done: (e?: Error | null) => void): void {
    if (!this.socket.destroyed) this.socket.destroy();
    done(err);
  }
}
