/**
 * Request framing of CPE HTTP stacks that node's strict parser refuses or misreads. Pure: bytes
 * in, bytes out, no I/O (cpe-connections.ts feeds it from the socket).
 *
 *  - Bare LF line ends. RFC 9112 2.2 lets a recipient take a single LF as a line terminator; node
 *    answers 400. Request lines, header fields, chunk-size lines and trailers are rewritten with
 *    CRLF; body bytes are passed through untouched.
 *  - HTTP/1.0 request bodies without Content-Length. HTTP/1.0 delimits a message without a length
 *    by the close of the sender's side (RFC 1945 7.2.2, 10.4); node reads such a request as
 *    bodiless and the body as a broken second request. The body is collected until the client
 *    closes its sending side (end()), then the request is passed on with a Content-Length.
 *
 * Everything else (header syntax, conflicting lengths, chunk extensions) is left for node's
 * parser to judge: the framer only changes line ends and adds a Content-Length.
 */

/** node's default limit on the request line and header fields (http.maxHeaderSize). */
export const MAX_HEAD_BYTES = 16 * 1024;
/** A chunk-size line is a hexadecimal number and optional extensions. */
const MAX_LINE_BYTES = 4096;

export class FramingError extends Error {
  constructor(
    readonly status: 400 | 413 | 431,
    message: string,
  ) {
    super(message);
  }
}

interface Head {
  method: string;
  http10: boolean;
  contentLength: string | undefined;
  chunked: boolean;
  keepAlive: boolean;
  close: boolean;
}

/** Request line and the fields that decide framing; undefined when the text is not a request head. */
function parseHead(lines: readonly string[]): Head | undefined {
  const m = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) \S+ HTTP\/1\.([01])$/.exec(lines[0] ?? '');
  if (m === null) return undefined;
  const head: Head = { method: m[1]!, http10: m[2] === '0', contentLength: undefined, chunked: false, keepAlive: false, close: false };
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line
      .slice(colon + 1)
      .trim()
      .toLowerCase();
    if (name === 'content-length') head.contentLength ??= value;
    else if (name === 'transfer-encoding') head.chunked = head.chunked || value.split(',').some((t) => t.trim() === 'chunked');
    else if (name === 'connection') {
      for (const t of value.split(',')) {
        if (t.trim() === 'keep-alive') head.keepAlive = true;
        else if (t.trim() === 'close') head.close = true;
      }
    }
  }
  return head;
}

/**
 * Index just past the blank line ending a head (CRLF or LF line ends, mixed), or -1. A text that
 * starts with a line end is an empty section (a chunked body without trailer fields).
 */
function headEnd(s: string, from = 0): number {
  if (from === 0) {
    if (s.charCodeAt(0) === 10) return 1;
    if (s.charCodeAt(0) === 13 && s.charCodeAt(1) === 10) return 2;
  }
  let nl = s.indexOf('\n', from);
  while (nl !== -1) {
    if (s.charCodeAt(nl + 1) === 10) return nl + 2;
    if (s.charCodeAt(nl + 1) === 13 && s.charCodeAt(nl + 2) === 10) return nl + 3;
    nl = s.indexOf('\n', nl + 1);
  }
  return -1;
}

/**
 * How a connection's first bytes should be read. 'node': as they are, by node (CRLF lines, a
 * persistent connection, or too little to tell). 'frame': through RequestFramer, because the
 * head uses bare LF, or the connection carries one request only (HTTP/1.0 without keep-alive,
 * Connection: close), where the client may close its sending side right after the request.
 */
export function connectionFraming(first: Uint8Array): 'node' | 'frame' {
  const s = Buffer.from(first.buffer, first.byteOffset, Math.min(first.byteLength, MAX_HEAD_BYTES)).toString('latin1');
  const eol = s.indexOf('\n');
  if (eol === -1) return 'node';
  if (s.charCodeAt(eol - 1) !== 13) return 'frame';
  const end = headEnd(s);
  if (end === -1) return 'node';
  for (let nl = s.indexOf('\n'); nl !== -1 && nl < end; nl = s.indexOf('\n', nl + 1)) {
    if (s.charCodeAt(nl - 1) !== 13) return 'frame';
  }
  const head = parseHead(s.slice(0, end - 4).split('\r\n'));
  if (head === undefined) return 'node';
  return (head.http10 && !head.keepAlive) || head.close ? 'frame' : 'node';
}

type State =
  | { kind: 'head' }
  | { kind: 'body'; left: number }
  | { kind: 'chunk-size' }
  | { kind: 'chunk-data'; left: number }
  | { kind: 'chunk-end' }
  | { kind: 'trailer' }
  | { kind: 'until-close'; head: string; size: number }
  | { kind: 'raw' }
  | { kind: 'done' };

const CRLF = Buffer.from('\r\n', 'latin1');

/**
 * Reframes the requests of one connection. push() takes what the client sent and returns what
 * node's parser should get; end() is called when the client has closed its sending side (or,
 * for a bodiless HTTP/1.0 request, when it waited long enough without sending a body) and
 * returns the held request, if any. Throws FramingError (with the HTTP status to answer) for a
 * head or body over the limits.
 */
export class RequestFramer {
  private state: State = { kind: 'head' };
  /** Bytes of an unfinished head or line (latin1, so one character per byte). */
  private pending = '';
  private body: Buffer[] = [];

  constructor(private readonly maxBodyBytes: number) {}

  /** True while an HTTP/1.0 body is being read until the client's close (and nothing arrived yet). */
  get awaitingCloseDelimitedBody(): boolean {
    return this.state.kind === 'until-close';
  }

  /** Bytes of the close-delimited body read so far. */
  get closeDelimitedBytes(): number {
    return this.state.kind === 'until-close' ? this.state.size : 0;
  }

  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let at = 0;
    while (at < chunk.length) {
      const st = this.state;
      switch (st.kind) {
        case 'body':
        case 'chunk-data': {
          const n = Math.min(st.left, chunk.length - at);
          out.push(chunk.subarray(at, at + n));
          at += n;
          st.left -= n;
          if (st.left === 0) this.state = st.kind === 'body' ? { kind: 'head' } : { kind: 'chunk-end' };
          break;
        }
        case 'raw':
          out.push(chunk.subarray(at));
          at = chunk.length;
          break;
        case 'done':
          // A request after a close-delimited body cannot be: the client closed its side.
          at = chunk.length;
          break;
        case 'until-close': {
          const n = chunk.length - at;
          if (st.size + n > this.maxBodyBytes) throw new FramingError(413, `close-delimited body over ${this.maxBodyBytes} bytes`);
          this.body.push(chunk.subarray(at));
          st.size += n;
          at = chunk.length;
          break;
        }
        case 'head':
        case 'trailer':
          at = this.readHead(chunk, at, out);
          break;
        case 'chunk-size':
        case 'chunk-end':
          at = this.readLine(chunk, at, out);
          break;
      }
    }
    return out;
  }

  /** The client closed its sending side: a close-delimited body is complete. */
  end(): Buffer[] {
    const st = this.state;
    if (st.kind !== 'until-close') return [];
    this.state = { kind: 'done' };
    const head = `${st.head}\r\nContent-Length: ${st.size}\r\n\r\n`;
    const out = [Buffer.from(head, 'latin1'), ...this.body];
    this.body = [];
    return out;
  }

  /** Accumulates a head (or trailer section) up to its blank line; returns the new offset. */
  private readHead(chunk: Buffer, at: number, out: Buffer[]): number {
    if (this.state.kind === 'head' && this.pending === '') {
      // RFC 9112 2.2: empty lines before a request line are ignored.
      while (at < chunk.length && (chunk[at] === 10 || (chunk[at] === 13 && chunk[at + 1] === 10))) at += chunk[at] === 13 ? 2 : 1;
      if (at >= chunk.length) return at;
    }
    const prev = this.pending;
    const room = MAX_HEAD_BYTES - prev.length;
    const piece = chunk.toString('latin1', at, Math.min(chunk.length, at + room + 1));
    const text = this.pending + piece;
    const end = headEnd(text, Math.max(0, prev.length - 2));
    if (end === -1) {
      if (text.length > MAX_HEAD_BYTES) throw new FramingError(431, `request head over ${MAX_HEAD_BYTES} bytes`);
      this.pending = text;
      return at + piece.length;
    }
    const used = end - prev.length;
    this.pending = '';
    const lines = text.slice(0, end).split(/\r?\n/);
    lines.length -= 2; // the blank line and the empty string after it
    if (this.state.kind === 'trailer') {
      out.push(Buffer.from(lines.map((l) => l + '\r\n').join('') + '\r\n', 'latin1'));
      this.state = { kind: 'head' };
      return at + used;
    }
    const head = parseHead(lines);
    const rewritten = lines.join('\r\n');
    if (head === undefined) {
      // Not a request node would accept either: hand it over as it is and let node answer 400.
      out.push(Buffer.from(prev, 'latin1'), chunk.subarray(at));
      this.state = { kind: 'raw' };
      return chunk.length;
    }
    if (head.chunked) this.state = { kind: 'chunk-size' };
    else if (head.contentLength !== undefined) {
      const n = /^\d{1,15}$/.test(head.contentLength) ? Number(head.contentLength) : NaN;
      // An invalid length is node's to refuse; nothing after it can be framed.
      this.state = Number.isNaN(n) ? { kind: 'raw' } : n === 0 ? { kind: 'head' } : { kind: 'body', left: n };
    } else if (head.http10 && !head.keepAlive && head.method === 'POST') {
      this.state = { kind: 'until-close', head: rewritten, size: 0 };
      return at + used;
    }
    out.push(Buffer.from(rewritten + '\r\n\r\n', 'latin1'));
    return at + used;
  }

  /** A chunk-size line, or the line end after chunk data; returns the new offset. */
  private readLine(chunk: Buffer, at: number, out: Buffer[]): number {
    const nl = chunk.indexOf(10, at);
    const stop = nl === -1 ? chunk.length : nl + 1;
    const text = this.pending + chunk.toString('latin1', at, stop);
    if (nl === -1) {
      if (text.length > MAX_LINE_BYTES) throw new FramingError(400, 'chunk-size line too long');
      this.pending = text;
      return stop;
    }
    this.pending = '';
    const line = text.endsWith('\r\n') ? text.slice(0, -2) : text.slice(0, -1);
    if (this.state.kind === 'chunk-end') {
      // Anything but an empty line is node's to refuse.
      if (line !== '') {
        out.push(Buffer.from(text, 'latin1'));
        this.state = { kind: 'raw' };
        return stop;
      }
      out.push(CRLF);
      this.state = { kind: 'chunk-size' };
      return stop;
    }
    out.push(Buffer.from(line + '\r\n', 'latin1'));
    const size = /^[0-9A-Fa-f]{1,12}/.exec(line);
    if (size === null) this.state = { kind: 'raw' };
    else {
      const n = parseInt(size[0], 16);
      this.state = n === 0 ? { kind: 'trailer' } : { kind: 'chunk-data', left: n };
    }
    return stop;
  }
}
