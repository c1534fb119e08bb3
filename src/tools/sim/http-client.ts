/**
 * The CPE side of one CWMP session's HTTP: POSTs over one keep-alive socket, session
 * cookies, Basic/Digest toward the ACS, and redirects (TR-069 3.4.5). Quirks of other CPE
 * agents on request: HTTP/1.0, no cookies, a pause before every request.
 */
import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { basicAuthorization, digestAuthorization, isScheme, parseChallenge, pickChallenge, type Challenge } from '../../cwmp/http-auth.js';
import { Http10Connection } from './http10.js';

export interface CpeAuth {
  mode: 'none' | 'basic' | 'digest';
  username: string;
  password: string;
  /** Send Basic credentials on the first request, unasked (as many CPEs do). */
  preemptiveBasic?: boolean;
}

/** Digest state kept between sessions so a device can answer without a new 401 round trip. */
export interface DigestState {
  challenge: Challenge;
  nc: number;
}

export interface PostResult {
  status: number;
  body: string;
}

export interface CpeHttpOptions {
  /** Send cookies back (default true; false = ignore Set-Cookie). */
  cookies?: boolean;
  /** HTTP/1.0 requests with Connection: Keep-Alive instead of HTTP/1.1. */
  http10?: boolean;
  /** Wait this long after an answer before sending the next request (a slow CPE). */
  delayMs?: number;
  /** Bytes on the wire (requests and responses, headers included), as they move. */
  onBytes?: (sent: number, received: number) => void;
}

interface RawResult {
  status: number;
  body: string;
  wwwAuthenticate: string[];
  location?: string;
}

const MAX_REDIRECTS = 5;

export class CpeHttpClient {
  private url: URL;
  private readonly agent: http.Agent;
  private readonly cookies = new Map<string, string>();
  private basicOk = false;
  private redirects = 0;
  private closed = false;
  private current: http.ClientRequest | null = null;
  private readonly http10: Http10Connection | null;
  private lastAnswerAt = 0;
  private pause: { timer: NodeJS.Timeout; reject: (e: Error) => void } | null = null;
  /** Socket byte counts already added to the wire counter. */
  private readonly metered = new WeakMap<Socket, { r: number; w: number }>();

  constructor(
    acsUrl: string,
    private readonly auth: CpeAuth,
    /** Shared with the device across sessions (mutated). */
    private readonly digest: { state: DigestState | null },
    private readonly timeoutMs: number,
    private readonly opts: CpeHttpOptions = {},
  ) {
    this.url = new URL(acsUrl);
    const Agent = this.url.protocol === 'https:' ? https.Agent : http.Agent;
    // One socket per session (TR-069 3.4.1: the session keeps its TCP connection).
    this.agent = new Agent({ keepAlive: true, maxSockets: 1 });
    this.http10 = opts.http10 ? new Http10Connection({ timeoutMs, onBytes: opts.onBytes }) : null;
    this.basicOk = auth.mode === 'basic' && !!auth.preemptiveBasic;
  }

  /** POSTs a body ('' = empty POST); follows 401 challenges and redirects. */
  async post(body: string): Promise<PostResult> {
    let authRetries = 0;
    for (;;) {
      await this.slowDown();
      const res = await this.send(body, this.authorization());
      this.lastAnswerAt = Date.now();
      if (res.status === 401 && this.auth.mode !== 'none' && authRetries < 2) {
        const challenges = parseChallenge(res.wwwAuthenticate);
        const c = pickChallenge(challenges);
        if (!c) throw new Error('ACS answered 401 without a usable challenge');
        const stale = c.params.stale?.toLowerCase() === 'true';
        if (authRetries > 0 && !stale) throw new Error('ACS rejected the credentials (401)');
        authRetries++;
        if (isScheme(c, 'Digest')) {
          if (this.auth.mode === 'basic') throw new Error('ACS wants Digest but the device is configured for Basic');
          this.digest.state = { challenge: c, nc: 0 };
        } else {
          this.basicOk = true;
        }
        continue;
      }
      if (res.status === 401) throw new Error('ACS rejected the credentials (401)');
      if ((res.status === 301 || res.status === 302 || res.status === 307 || res.status === 308) && res.location) {
        if (++this.redirects > MAX_REDIRECTS) throw new Error('too many redirects');
        this.url = new URL(res.location, this.url);
        continue;
      }
      return { status: res.status, body: res.body };
    }
  }

  private authorization(): string | undefined {
    const a = this.auth;
    if (a.mode === 'none') return undefined;
    const d = this.digest.state;
    if (d && a.mode !== 'basic') {
      d.nc++;
      return digestAuthorization({
        challenge: d.challenge,
        method: 'POST',
        uri: this.url.pathname + this.url.search,
        username: a.username,
        password: a.password,
        nc: d.nc,
        cnonce: randomBytes(8).toString('hex'),
      });
    }
    if (this.basicOk) return basicAuthorization(a.username, a.password);
    return undefined;
  }

  /** A slow CPE: the next request goes out delayMs after the previous answer. */
  private async slowDown(): Promise<void> {
    const d = this.opts.delayMs ?? 0;
    if (d <= 0 || this.lastAnswerAt === 0) return;
    const wait = this.lastAnswerAt + d - Date.now();
    if (wait <= 0) return;
    await new Promise<void>((resolve, reject) => {
      this.pause = {
        timer: setTimeout(() => {
          this.pause = null;
          resolve();
        }, wait),
        reject,
      };
    });
  }

  private send(body: string, authorization: string | undefined): Promise<RawResult> {
    if (this.closed) return Promise.reject(new Error('session closed'));
    const buf = Buffer.from(body, 'utf8');
    if (this.http10) return this.send10(buf, authorization);
    const headers: Record<string, string | number> = {
      // Byte length, not string length (a bug genieacs-sim had with non-ASCII values).
      'Content-Length': buf.length,
      Connection: 'keep-alive',
    };
    if (buf.length > 0) {
      headers['Content-Type'] = 'text/xml; charset="utf-8"';
      headers['SOAPAction'] = '';
    }
    if (authorization) headers['Authorization'] = authorization;
    if (this.cookies.size > 0) headers['Cookie'] = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    const mod = this.url.protocol === 'https:' ? https : http;
    let sock: Socket | undefined;
    return new Promise((resolve, reject) => {
      const req = mod.request(this.url, { method: 'POST', agent: this.agent, headers, timeout: this.timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          this.current = null;
          this.meter(sock);
          this.takeCookies(res.headers['set-cookie']);
          const www: string[] = [];
          for (let i = 0; i < res.rawHeaders.length; i += 2) {
            if (res.rawHeaders[i].toLowerCase() === 'www-authenticate') www.push(res.rawHeaders[i + 1]);
          }
          resolve({
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks).toString('utf8'),
            wwwAuthenticate: www,
            location: res.headers.location,
          });
        });
      });
      this.current = req;
      req.on('socket', (s: Socket) => {
        sock = s;
        if (this.opts.onBytes && !this.metered.has(s)) {
          this.metered.set(s, { r: s.bytesRead, w: s.bytesWritten });
          s.once('close', () => this.meter(s));
        }
      });
      req.on('timeout', () => req.destroy(new Error(`ACS did not answer within ${this.timeoutMs} ms`)));
      req.on('error', (e) => {
        this.current = null;
        reject(e);
      });
      req.end(buf);
    });
  }

  /** HTTP/1.0 with Connection: Keep-Alive over our own connection (node:http only speaks 1.1). */
  private async send10(buf: Buffer, authorization: string | undefined): Promise<RawResult> {
    const headers: Array<[string, string | number]> = [
      ['Connection', 'Keep-Alive'],
      ['Content-Length', buf.length],
    ];
    if (buf.length > 0) headers.push(['Content-Type', 'text/xml; charset="utf-8"'], ['SOAPAction', '']);
    if (authorization) headers.push(['Authorization', authorization]);
    if (this.cookies.size > 0) headers.push(['Cookie', [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ')]);
    const res = await this.http10!.request(this.url, 'POST', headers, buf);
    const all = (name: string): string[] => res.headers.filter(([k]) => k.toLowerCase() === name).map(([, v]) => v);
    this.takeCookies(all('set-cookie'));
    return { status: res.status, body: res.body.toString('utf8'), wwwAuthenticate: all('www-authenticate'), location: all('location')[0] };
  }

  /** Reports what a socket moved since the last look. */
  private meter(sock: Socket | null | undefined): void {
    const seen = sock ? this.metered.get(sock) : undefined;
    if (!this.opts.onBytes || !sock || !seen) return;
    this.opts.onBytes(sock.bytesWritten - seen.w, sock.bytesRead - seen.r);
    seen.w = sock.bytesWritten;
    seen.r = sock.bytesRead;
  }

  private takeCookies(setCookie: string[] | undefined): void {
    if (this.opts.cookies === false) return;
    for (const line of setCookie ?? []) {
      const first = line.split(';', 1)[0];
      const eq = first.indexOf('=');
      if (eq <= 0) continue;
      const name = first.slice(0, eq).trim();
      const value = first.slice(eq + 1).trim();
      const expired = /;\s*max-age\s*=\s*0\b/i.test(line) || /;\s*expires\s*=\s*thu, 01 jan 1970/i.test(line);
      if (expired) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  /** Ends the session: aborts anything in flight and closes the socket. */
  close(): void {
    this.closed = true;
    this.current?.destroy();
    this.agent.destroy();
    this.http10?.close();
    if (this.pause) {
      clearTimeout(this.pause.timer);
      this.pause.reject(new Error('session closed'));
      this.pause = null;
    }
  }
}
