/**
 * The CPE side of one CWMP session's HTTP: POSTs over one keep-alive socket, session
 * cookies, Basic/Digest toward the ACS, and redirects (TR-069 3.4.5).
 */
import http from 'node:http';
import https from 'node:https';
import { randomBytes } from 'node:crypto';
import { basicAuthorization, digestAuthorization, isScheme, parseChallenge, pickChallenge, type Challenge } from '../../cwmp/http-auth.js';

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

const MAX_REDIRECTS = 5;

export class CpeHttpClient {
  private url: URL;
  private readonly agent: http.Agent;
  private readonly cookies = new Map<string, string>();
  private basicOk = false;
  private redirects = 0;
  private closed = false;
  private current: http.ClientRequest | null = null;

  constructor(
    acsUrl: string,
    private readonly auth: CpeAuth,
    /** Shared with the device across sessions (mutated). */
    private readonly digest: { state: DigestState | null },
    private readonly timeoutMs: number,
  ) {
    this.url = new URL(acsUrl);
    const Agent = this.url.protocol === 'https:' ? https.Agent : http.Agent;
    // One socket per session (TR-069 3.4.1: the session keeps its TCP connection).
    this.agent = new Agent({ keepAlive: true, maxSockets: 1 });
    this.basicOk = auth.mode === 'basic' && !!auth.preemptiveBasic;
  }

  /** POSTs a body ('' = empty POST); follows 401 challenges and redirects. */
  async post(body: string): Promise<PostResult> {
    let authRetries = 0;
    for (;;) {
      const res = await this.send(body, this.authorization());
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

  private send(body: string, authorization: string | undefined): Promise<{ status: number; body: string; wwwAuthenticate: string[]; location?: string }> {
    if (this.closed) return Promise.reject(new Error('session closed'));
    const buf = Buffer.from(body, 'utf8');
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
    return new Promise((resolve, reject) => {
      const req = mod.request(this.url, { method: 'POST', agent: this.agent, headers, timeout: this.timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          this.current = null;
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
      req.on('timeout', () => req.destroy(new Error(`ACS did not answer within ${this.timeoutMs} ms`)));
      req.on('error', (e) => {
        this.current = null;
        reject(e);
      });
      req.end(buf);
    });
  }

  private takeCookies(setCookie: string[] | undefined): void {
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
  }
}
