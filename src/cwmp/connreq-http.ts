/**
 * The HTTP of a connection request (TR-069 3.2.2): one GET on a plain TCP socket and the CPE's
 * answer read by hand, with kept-alive sockets pooled per target. Not node's http.ClientRequest:
 * a connection request is a bodiless GET whose answer only matters for its status and
 * WWW-Authenticate, and the ClientRequest, IncomingMessage, parser and agent bookkeeping per
 * request cost the ACS more than the exchange itself (issue 22 item 5: every idle-device Get
 * sends one). The answer is hostile input: its head is bounded (MAX_HEAD_BYTES), its body is
 * drained only when its length is known and never kept; anything unexpected closes the socket.
 */
import net from 'node:net';

/** Largest answer head read (node's default maxHeaderSize). */
export const MAX_HEAD_BYTES = 16 * 1024;

/** What the connection request needs of the CPE's answer. */
export interface ConnReqAnswer {
  status: number;
  /** Every WWW-Authenticate field, in order (RFC 7235 4.1: one or several). */
  wwwAuthenticate: string[];
}

export class ConnReqHttpError extends Error {
  constructor(
    /** Like node's errno codes in the detail ('ECONNRESET', 'HPE_INVALID_CONSTANT'...). */
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface ExchangeCallbacks {
  /** The answer's head (1xx interim answers skipped). */
  head(answer: ConnReqAnswer): void;
  /** The body ended: `reusable` when the socket may carry the next request (idleMs: the CPE's Keep-Alive hint, if shorter). */
  end(reusable: boolean, idleMs: number | undefined): void;
  /** The socket failed or closed before the answer ended; `answered`: after the head. */
  fail(err: Error, answered: boolean): void;
}

/**
 * One request on `socket`: writes `request` and reads the answer. Returns a function that
 * detaches the exchange from the socket (the caller then owns it again: pool or destroy).
 */
export function exchange(socket: net.Socket, request: string, cb: ExchangeCallbacks): () => void {
  let head: Buffer | null = null;
  /** Body bytes still to drain (-1: until close; never reusable). */
  let remaining = 0;
  let keepAlive = false;
  let idleMs: number | undefined;
  let chunks: ChunkedBody | null = null;
  let answered = false;
  let done = false;

  const detach = (): void => {
    done = true;
    socket.off('data', onData);
    socket.off('error', onError);
    socket.off('close', onClose);
    socket.off('end', onEnd);
  };
  const fail = (err: Error): void => {
    if (done) return;
    detach();
    cb.fail(err, answered);
  };
  const finishBody = (): void => {
    detach();
    cb.end(keepAlive, idleMs);
  };
  const onData = (chunk: Buffer): void => {
    if (done) return;
    if (answered) return body(chunk);

    let buf = head ? Buffer.concat([head, chunk]) : chunk;
    for (;;) {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) {
        if (buf.length > MAX_HEAD_BYTES) return fail(new ConnReqHttpError('HPE_HEADER_OVERFLOW', 'answer head too large'));
        head = buf;
        return;
      }
      if (end > MAX_HEAD_BYTES) return fail(new ConnReqHttpError('HPE_HEADER_OVERFLOW', 'answer head too large'));
      const parsed = parseHead(buf.toString('latin1', 0, end));
      if (!parsed) return fail(new ConnReqHttpError('HPE_INVALID_CONSTANT', 'not an HTTP answer'));
      buf = buf.subarray(end + 4);
      // 1xx interim answers (100 Continue...) precede the real one (RFC 9110 15.2).
      if (parsed.status >= 100 && parsed.status < 200 && parsed.status !== 101) {
        head = null;
        continue;
      }
      head = null;
      answered = true;
      keepAlive = parsed.keepAlive;
      idleMs = parsed.keepAliveMs;
      // RFC 9112 6.3: 1xx/204/304 carry no body; otherwise Content-Length, else chunked or close-delimited (never kept).
      if (parsed.status === 204 || parsed.status === 304) remaining = 0;
      else if (parsed.chunked) chunks = new ChunkedBody();
      else if (parsed.contentLength === null) {
        remaining = -1;
        keepAlive = false;
      } else remaining = parsed.contentLength;
      if (parsed.status === 101) keepAlive = false;
      cb.head({ status: parsed.status, wwwAuthenticate: parsed.wwwAuthenticate });
      if (done) return;
      if (remaining === 0 && !chunks) return finishBody();
      if (buf.length > 0) body(buf);
      return;
    }
  };
  /** Body bytes: counted off a Content-Length, or read through the chunked framing, and dropped. */
  const body = (chunk: Buffer): void => {
    if (chunks) {
      const r = chunks.push(chunk);
      if (r === 'bad') {
        keepAlive = false;
        return finishBody();
      }
      if (r !== 'more') {
        if (r === 'extra') keepAlive = false;
        finishBody();
      }
      return;
    }
    if (remaining < 0) return; // close-delimited: read and dropped until the caller lets go
    remaining -= chunk.length;
    if (remaining < 0) keepAlive = false; // more than it announced: the next answer would be misread
    if (remaining <= 0) finishBody();
  };
  const onError = (err: NodeJS.ErrnoException): void => fail(new ConnReqHttpError(err.code ?? 'ECONNRESET', err.message));
  const onEnd = (): void => {
    // A close-delimited body ends here; anything else ended early.
    if (answered && remaining < 0) {
      detach();
      cb.end(false, undefined);
    } else fail(new ConnReqHttpError('ECONNRESET', 'socket hang up'));
  };
  const onClose = (): void => fail(new ConnReqHttpError('ECONNRESET', 'socket hang up'));
  socket.on('data', onData);
  socket.on('error', onError);
  socket.on('end', onEnd);
  socket.on('close', onClose);
  socket.write(request, 'latin1');
  return detach;
}

/** Longest chunk-size or trailer line read (a chunk extension is allowed, not kept). */
const MAX_CHUNK_LINE = 1024;

/**
 * Reads a chunked body through to its end (RFC 9112 7.1) without keeping it: 'more' until the
 * last chunk and the trailer section are in; 'extra' when bytes follow it; 'bad' on a framing
 * error (the socket is then closed, not reused).
 */
export class ChunkedBody {
  /** Data bytes of the current chunk still to skip, then its CRLF (2). */
  private skip = 0;
  private line = '';
  private state: 'size' | 'data' | 'trailer' | 'done' = 'size';
  /** A chunk's data was skipped: its CRLF comes next, read as an empty line. */
  private afterData = false;

  push(b: Buffer): 'more' | 'done' | 'extra' | 'bad' {
    let i = 0;
    while (i < b.length) {
      if (this.state === 'done') return 'extra';
      if (this.state === 'data') {
        const n = Math.min(this.skip, b.length - i);
        this.skip -= n;
        i += n;
        if (this.skip === 0) this.state = 'size';
        continue;
      }
      const nl = b.indexOf(10, i);
      const end = nl < 0 ? b.length : nl;
      this.line += b.toString('latin1', i, end);
      if (this.line.length > MAX_CHUNK_LINE) return 'bad';
      if (nl < 0) return 'more';
      i = nl + 1;
      const line = this.line.endsWith('\r') ? this.line.slice(0, -1) : this.line;
      this.line = '';
      if (this.state === 'trailer') {
        if (line === '') this.state = 'done';
        continue;
      }
      // The CRLF after a chunk's data arrives as an empty line before the next size.
      if (line === '' && this.afterData) {
        this.afterData = false;
        continue;
      }
      const m = /^([0-9a-fA-F]{1,12})(?:[ \t]*;.*)?$/.exec(line);
      if (!m) return 'bad';
      const size = Number.parseInt(m[1]!, 16);
      if (size === 0) this.state = 'trailer';
      else {
        this.skip = size;
        this.state = 'data';
        this.afterData = true;
      }
    }
    return this.state === 'done' ? 'done' : 'more';
  }
}

/** Control characters other than HTAB (CR and LF included), in a line of the head split at its CRLFs. */
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/;

/** A header value node's http client would send (RFC 9110 5.5: HTAB, SP, VCHAR, obs-text). */
export function validFieldValue(v: string): boolean {
  return /^[\t\x20-\x7e\x80-\xff]*$/.test(v);
}

interface Head {
  status: number;
  keepAlive: boolean;
  keepAliveMs: number | undefined;
  contentLength: number | null;
  chunked: boolean;
  wwwAuthenticate: string[];
}

/** Status line and the fields that matter; null when it is not an HTTP/1.x answer. */
export function parseHead(text: string): Head | null {
  // A bare LF or another control character inside a line is refused, as node's parser does: a
  // challenge value carrying one would otherwise travel into our Authorization header.
  const lines = text.split('\r\n');
  if (lines.some((l) => CONTROL.test(l))) return null;
  const m = /^HTTP\/1\.([01]) (\d{3})(?: |$)/.exec(lines[0]!);
  if (!m) return null;
  let connection = '';
  let keepAliveMs: number | undefined;
  let contentLength: number | null = null;
  let transferCodings = '';
  const wwwAuthenticate: string[] = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(':');
    if (colon <= 0) return null;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === 'www-authenticate') wwwAuthenticate.push(value);
    else if (name === 'connection') connection += `,${value.toLowerCase()}`;
    else if (name === 'transfer-encoding') transferCodings += `,${value.toLowerCase()}`;
    else if (name === 'content-length') {
      // Two different lengths, or not a number: the framing cannot be trusted (RFC 9112 6.3).
      if (!/^\d{1,15}$/.test(value) || (contentLength !== null && contentLength !== Number(value))) return null;
      contentLength = Number(value);
    } else if (name === 'keep-alive') {
      const t = /(?:^|,)\s*timeout=(\d+)/i.exec(value);
      // As node's agent reads the hint: a second short of it, and none left means no reuse.
      if (t) keepAliveMs = Number(t[1]) * 1000 - 1000;
    }
  }
  const tokens = connection.split(',').map((s) => s.trim());
  let keepAlive = m[1] === '1' ? !tokens.includes('close') : tokens.includes('keep-alive');
  // RFC 9112 6.3: a Transfer-Encoding ending in chunked is read as chunks (Content-Length then
  // ignored, and the connection not reused); any other coding runs to the close.
  const codings = transferCodings
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const chunked = codings.at(-1) === 'chunked';
  if (codings.length > 0) {
    if (!chunked || contentLength !== null) keepAlive = false;
    contentLength = null;
  }
  return { status: Number(m[2]), keepAlive: keepAlive && (keepAliveMs === undefined || keepAliveMs > 0), keepAliveMs, contentLength, chunked, wwwAuthenticate };
}

interface Idle {
  socket: net.Socket;
  timer: NodeJS.Timeout;
  drop: () => void;
}

/**
 * Kept-alive sockets per target, the most recently used first (the others time out sooner).
 * An idle socket that closes, errs or sends anything is dropped.
 */
export class ConnReqSocketPool {
  private readonly idle = new Map<string, Idle[]>();
  private closed = false;

  constructor(private readonly idleMs: number) {}

  /** Sockets waiting for a request now. */
  get idleCount(): number {
    let n = 0;
    for (const list of this.idle.values()) n += list.length;
    return n;
  }

  /** A kept-alive socket to host:port, or a new connection. */
  take(host: string, port: number): { socket: net.Socket; reused: boolean } {
    const key = `${host}|${port}`;
    const list = this.idle.get(key);
    const kept = list?.pop();
    if (kept) {
      if (list!.length === 0) this.idle.delete(key);
      clearTimeout(kept.timer);
      kept.socket.off('data', kept.drop);
      kept.socket.off('error', kept.drop);
      kept.socket.off('close', kept.drop);
      kept.socket.off('end', kept.drop);
      kept.socket.ref();
      return { socket: kept.socket, reused: true };
    }
    const socket = net.connect({ host, port });
    socket.setNoDelay(true);
    return { socket, reused: false };
  }

  /** The socket carried a whole exchange and may carry another one. */
  release(host: string, port: number, socket: net.Socket, hintMs?: number): void {
    const ms = Math.min(this.idleMs, hintMs ?? this.idleMs);
    if (this.closed || socket.destroyed || !socket.writable || ms <= 0) {
      socket.destroy();
      return;
    }
    const key = `${host}|${port}`;
    const list = this.idle.get(key) ?? [];
    const entry: Idle = {
      socket,
      timer: setTimeout(() => entry.drop(), ms),
      drop: () => {
        clearTimeout(entry.timer);
        socket.destroy();
        const l = this.idle.get(key);
        const i = l?.indexOf(entry) ?? -1;
        if (i >= 0) l!.splice(i, 1);
        if (l?.length === 0) this.idle.delete(key);
      },
    };
    entry.timer.unref();
    // An idle kept-alive socket does not keep the process alive (as node's agent does).
    socket.unref();
    socket.on('data', entry.drop);
    socket.on('error', entry.drop);
    socket.on('close', entry.drop);
    socket.on('end', entry.drop);
    list.push(entry);
    this.idle.set(key, list);
  }

  close(): void {
    this.closed = true;
    for (const list of [...this.idle.values()]) for (const e of [...list]) e.drop();
    this.idle.clear();
  }
}
