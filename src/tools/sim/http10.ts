/**
 * A minimal HTTP/1.0 client connection for simulated CPE that speak HTTP/1.0 (node:http always
 * writes HTTP/1.1 request lines). One socket, reused while the server keeps it open
 * (RFC 1945 with the Connection: Keep-Alive extension; an HTTP/1.1 answer keeps it unless it
 * says Connection: close), reopened otherwise. Responses are framed by Content-Length, chunked
 * transfer coding, or the end of the connection, and bounded in size.
 */
import net from 'node:net';
import tls from 'node:tls';

export interface RawResponse {
  status: number;
  /** Header lines as received (names in their original case). */
  headers: Array<[string, string]>;
  body: Buffer;
}

export interface Http10Options {
  timeoutMs: number;
  /** Largest response (head + body) accepted. Default 64 MiB. */
  maxResponseBytes?: number;
  /** Bytes written and read on the wire, as they happen. */
  onBytes?: (sent: number, received: number) => void;
}

const MAX_HEAD = 64 * 1024;

/** The connection ended before any byte of the answer came back. */
class StaleSocketError extends Error {}

export class Http10Connection {
  private socket: net.Socket | null = null;
  private origin = '';
  private closed = false;
  private readonly maxBytes: number;

  constructor(private readonly opts: Http10Options) {
    this.maxBytes = opts.maxResponseBytes ?? 64 * 1024 * 1024;
  }

  /** Sends one request and resolves with the whole response. `headers` must not contain Host. */
  async request(url: URL, method: string, headers: ReadonlyArray<[string, string | number]>, body: Buffer): Promise<RawResponse> {
    if (this.closed) throw new Error('session closed');
    const origin = `${url.protocol}//${url.host}`;
    if (this.socket && (this.origin !== origin || this.socket.destroyed)) this.drop();
    this.origin = origin;
    let head = `${method} ${url.pathname}${url.search} HTTP/1.0\r\nHost: ${url.host}\r\n`;
    for (const [k, v] of headers) head += `${k}: ${v}\r\n`;
    const out = Buffer.concat([Buffer.from(head + '\r\n', 'latin1'), body]);
    const reused = this.socket !== null;
    let res: { response: RawResponse; keepAlive: boolean };
    try {
      res = await this.exchange(this.socket ?? (await this.connect(url)), out, method === 'HEAD');
    } catch (e) {
      // A kept-alive socket the server closed while idle: once more on a new connection.
      if (!reused || this.closed || !(e instanceof StaleSocketError)) throw e;
      res = await this.exchange(await this.connect(url), out, method === 'HEAD');
    }
    if (!res.keepAlive) this.drop();
    return res.response;
  }

  /** Closes the socket now; later requests fail. */
  close(): void {
    this.closed = true;
    this.drop();
  }

  private drop(): void {
    this.socket?.destroy();
    this.socket = null;
  }

  private connect(url: URL): Promise<net.Socket> {
    const port = Number(url.port) || (url.protocol === 'https:' ? 443 : 80);
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    return new Promise((resolve, reject) => {
      const s =
        url.protocol === 'https:'
          ? tls.connect({ host, port, servername: net.isIP(host) ? undefined : host }, () => done(null))
          : net.connect({ host, port }, () => done(null));
      const timer = setTimeout(() => done(new Error(`connect to ${url.host} timed out after ${this.opts.timeoutMs} ms`)), this.opts.timeoutMs);
      const done = (err: Error | null): void => {
        clearTimeout(timer);
        s.off('error', done);
        if (err) {
          s.destroy();
          reject(err);
          return;
        }
        if (this.closed) {
          s.destroy();
          reject(new Error('session closed'));
          return;
        }
        s.setNoDelay(true);
        // An idle keep-alive socket the server closes must not raise an unhandled 'error'.
        s.on('error', () => undefined);
        this.socket = s;
        resolve(s);
      };
      s.once('error', done);
    });
  }

  private exchange(socket: net.Socket, out: Buffer, headOnly: boolean): Promise<{ response: RawResponse; keepAlive: boolean }> {
    return new Promise((resolve, reject) => {
      let buf: Buffer = Buffer.alloc(0);
      let settled = false;
      const writtenBefore = socket.bytesWritten;
      const finish = (err: Error | null, r?: { response: RawResponse; keepAlive: boolean }): void => {
        if (settled) return;
        settled = true;
        socket.off('data', onData);
        socket.off('close', onClose);
        socket.off('error', onError);
        socket.off('timeout', onTimeout);
        socket.setTimeout(0);
        this.opts.onBytes?.(socket.bytesWritten - writtenBefore, 0);
        if (err) {
          this.drop();
          reject(err);
        } else resolve(r!);
      };
      const tryParse = (eof: boolean): void => {
        let r: ParsedResponse | null;
        try {
          r = parseResponse(buf, eof, headOnly);
        } catch (e) {
          finish(e as Error);
          return;
        }
        if (r) finish(null, { response: r.response, keepAlive: r.keepAlive && !eof });
        else if (eof && buf.length === 0) finish(new StaleSocketError('the server closed the connection without answering'));
        else if (eof) finish(new Error('the server closed the connection before a complete response'));
      };
      const onData = (chunk: Buffer): void => {
        this.opts.onBytes?.(0, chunk.length);
        buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
        if (buf.length > this.maxBytes) {
          finish(new Error(`response larger than ${this.maxBytes} bytes`));
          return;
        }
        tryParse(false);
      };
      const onClose = (): void => tryParse(true);
      const onError = (e: Error): void =>
        finish(buf.length === 0 && /EPIPE|ECONNRESET/.test((e as NodeJS.ErrnoException).code ?? '') ? new StaleSocketError(e.message) : e);
      const onTimeout = (): void => finish(new Error(`ACS did not answer within ${this.opts.timeoutMs} ms`));
      socket.on('data', onData);
      socket.once('close', onClose);
      socket.once('error', onError);
      socket.once('timeout', onTimeout);
      socket.setTimeout(this.opts.timeoutMs);
      socket.write(out);
    });
  }
}

interface ParsedResponse {
  response: RawResponse;
  keepAlive: boolean;
}

/**
 * One complete response at the start of `buf`, or null when more bytes are needed. `eof`: the
 * connection has ended, so a body without length ends here. Interim 1xx responses are skipped.
 * Throws on a malformed response.
 */
export function parseResponse(buf: Buffer, eof: boolean, headOnly = false): ParsedResponse | null {
  let start = 0;
  for (;;) {
    const end = buf.indexOf('\r\n\r\n', start);
    if (end < 0) {
      if (buf.length - start > MAX_HEAD) throw new Error('response head too large');
      return null;
    }
    const lines = buf.subarray(start, end).toString('latin1').split('\r\n');
    const m = /^HTTP\/(\d)\.(\d) (\d{3})(?: .*)?$/.exec(lines[0] ?? '');
    if (!m) throw new Error(`malformed status line: ${JSON.stringify((lines[0] ?? '').slice(0, 80))}`);
    const status = Number(m[3]);
    const http11 = m[1] === '1' && m[2] !== '0';
    const headers: Array<[string, string]> = [];
    for (const line of lines.slice(1)) {
      const c = line.indexOf(':');
      if (c <= 0) throw new Error(`malformed header line: ${JSON.stringify(line.slice(0, 80))}`);
      headers.push([line.slice(0, c).trim(), line.slice(c + 1).trim()]);
    }
    const bodyStart = end + 4;
    if (status >= 100 && status < 200) {
      start = bodyStart;
      continue;
    }
    const header = (name: string): string | undefined => headers.find(([k]) => k.toLowerCase() === name)?.[1];
    const conn = (header('connection') ?? '').toLowerCase();
    let keepAlive = http11 ? !/\bclose\b/.test(conn) : /\bkeep-alive\b/.test(conn);
    let body: Buffer;
    if (headOnly || status === 204 || status === 304) {
      body = Buffer.alloc(0);
    } else if (/\bchunked\b/i.test(header('transfer-encoding') ?? '')) {
      const r = dechunk(buf, bodyStart);
      if (!r) {
        if (eof) throw new Error('the server closed the connection inside a chunked body');
        return null;
      }
      body = r;
    } else if (header('content-length') !== undefined) {
      const v = header('content-length')!;
      if (!/^\d+$/.test(v)) throw new Error(`bad Content-Length: ${JSON.stringify(v)}`);
      const n = Number(v);
      if (buf.length - bodyStart < n) return null;
      body = Buffer.from(buf.subarray(bodyStart, bodyStart + n));
    } else {
      // Delimited by the end of the connection (RFC 1945 7.2.2).
      if (!eof) return null;
      body = Buffer.from(buf.subarray(bodyStart));
      keepAlive = false;
    }
    return { response: { status, headers, body }, keepAlive };
  }
}

/** The decoded body of a chunked message starting at `from`, or null if incomplete. */
function dechunk(buf: Buffer, from: number): Buffer | null {
  const parts: Buffer[] = [];
  let i = from;
  for (;;) {
    const eol = buf.indexOf('\r\n', i);
    if (eol < 0) return null;
    const sizeText = buf.subarray(i, eol).toString('latin1').split(';')[0]!.trim();
    if (!/^[0-9a-fA-F]{1,8}$/.test(sizeText)) throw new Error(`bad chunk size: ${JSON.stringify(sizeText.slice(0, 20))}`);
    const size = Number.parseInt(sizeText, 16);
    i = eol + 2;
    if (size === 0) {
      // Trailers (ignored) up to the empty line.
      for (;;) {
        const t = buf.indexOf('\r\n', i);
        if (t < 0) return null;
        if (t === i) return Buffer.concat(parts);
        i = t + 2;
      }
    }
    if (buf.length < i + size + 2) return null;
    parts.push(buf.subarray(i, i + size));
    i += size + 2;
  }
}
