/**
 * A raw HTTP/1.x client over one TCP connection: sends exactly the bytes given (any version,
 * line ends, framing, half-close) and reads the responses as they come, one at a time.
 */
import net from 'node:net';

export interface RawResponse {
  /** Status line as received, e.g. "HTTP/1.1 200 OK". */
  statusLine: string;
  status: number;
  /** Header names lower-cased; repeated headers joined with ", ". */
  headers: Record<string, string>;
  /** Raw header block as received (for byte-level checks). */
  head: string;
  body: Buffer;
}

export class RawConnection {
  private buf = Buffer.alloc(0);
  private ended = false;
  private wake: (() => void) | null = null;

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (c: Buffer) => {
      this.buf = Buffer.concat([this.buf, c]);
      this.notify();
    });
    socket.on('end', () => {
      this.ended = true;
      this.notify();
    });
    socket.on('close', () => {
      this.ended = true;
      this.notify();
    });
    socket.on('error', () => undefined);
  }

  static open(port: number, host = '127.0.0.1'): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host, allowHalfOpen: true }, () => resolve(new RawConnection(s)));
      s.once('error', reject);
    });
  }

  get closedByServer(): boolean {
    return this.ended;
  }

  send(bytes: string | Buffer): void {
    this.socket.write(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes);
  }

  /** Closes the sending side only (TCP half-close); responses can still be read. */
  halfClose(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  private notify(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  private more(): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve;
    });
  }

  /** The next complete response (Content-Length, chunked, or body until the server closes). */
  async response(): Promise<RawResponse> {
    for (;;) {
      const end = this.buf.indexOf('\r\n\r\n');
      if (end !== -1) {
        const head = this.buf.subarray(0, end).toString('latin1');
        const lines = head.split('\r\n');
        const statusLine = lines[0]!;
        const headers: Record<string, string> = {};
        for (const l of lines.slice(1)) {
          const i = l.indexOf(':');
          const k = l.slice(0, i).trim().toLowerCase();
          const v = l.slice(i + 1).trim();
          headers[k] = headers[k] === undefined ? v : `${headers[k]}, ${v}`;
        }
        const status = Number(statusLine.split(' ')[1]);
        const start = end + 4;
        const noBody = status === 204 || status === 304 || (status >= 100 && status < 200);
        const length = noBody ? 0 : headers['content-length'] !== undefined ? Number(headers['content-length']) : undefined;
        if (length !== undefined && this.buf.length - start >= length) {
          const body = this.buf.subarray(start, start + length);
          this.buf = this.buf.subarray(start + length);
          return { statusLine, status, headers, head, body };
        }
        if (length === undefined && this.ended) {
          const body = this.buf.subarray(start);
          this.buf = Buffer.alloc(0);
          return { statusLine, status, headers, head, body };
        }
      }
      if (this.ended) throw new Error(`connection closed; incomplete response: ${JSON.stringify(this.buf.toString('latin1').slice(0, 200))}`);
      await this.more();
    }
  }

  /** Resolves when the server has closed the connection. */
  async closed(): Promise<void> {
    while (!this.ended) await this.more();
  }
}

/**
 * A POST as bytes: request line, header lines, blank line, body; `eol` between lines. HTTP/1.1
 * requests get a Host field first unless one is given (RFC 9112 3.2 makes it mandatory).
 */
export function rawRequest(o: {
  version?: '1.0' | '1.1';
  headers?: Record<string, string | number>;
  body?: string | Buffer;
  eol?: string;
  target?: string;
}): Buffer {
  const eol = o.eol ?? '\r\n';
  const version = o.version ?? '1.1';
  const headers = o.headers ?? {};
  let head = `POST ${o.target ?? '/'} HTTP/${version}${eol}`;
  if (version === '1.1' && !Object.keys(headers).some((k) => k.toLowerCase() === 'host')) head += `Host: acs${eol}`;
  for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}${eol}`;
  head += eol;
  const body = o.body === undefined ? Buffer.alloc(0) : typeof o.body === 'string' ? Buffer.from(o.body, 'utf8') : o.body;
  return Buffer.concat([Buffer.from(head, 'latin1'), body]);
}
