/**
 * HTTP(S) delivery of Bulk Data reports (TR-369 "HTTP Bulk Data Collection" extension): POST or
 * PUT of the encoded body with Content-Type and charset (R-BULK.7), BBF-Report-Format (R-BULK.8),
 * Date, gzip, Basic or Digest credentials (answering the collector's challenge), the device's
 * identity as URI parameters (R-BULK.1: oui, pc, sn; eid when the device's are not known) and then
 * the RequestURIParameter ones. The
 * collector URL is a controller's choice: it goes through the same target guard as connection
 * requests (allow list, link-local and the proxy's own ports refused), and the connection is made
 * to the address the guard resolved, so that a second DNS answer cannot move it.
 */
import http from 'node:http';
import https from 'node:https';
import { gzipSync } from 'node:zlib';
import { normalizeIp, type TargetDecision } from '../cwmp/connreq-target.js';
import { basicAuthorization, digestAuthorization, isScheme, parseChallenge, pickChallenge } from '../cwmp/http-auth.js';

export interface HttpReport {
  url: string;
  method: 'POST' | 'PUT';
  username: string;
  password: string;
  gzip: boolean;
  useDateHeader: boolean;
  /** "application/json" or "text/csv". */
  mediaType: string;
  reportFormat: string;
  body: string;
  agentEid: string;
  /**
   * The CWMP device's Manufacturer OUI, Product Class and Serial Number, sent as oui, pc and sn
   * (R-BULK.1); absent: the agent's Endpoint ID as eid (the extension allows either).
   */
  deviceId?: { oui: string; productClass: string; serialNumber: string };
  /** RequestURIParameter name/value pairs, appended after the identity ones. */
  query?: readonly (readonly [string, string])[];
}

export type DeliveryOutcome = { ok: true; status: number } | { ok: false; detail: string; status?: number; refused?: boolean };

export interface HttpDeliveryOptions {
  /** The connection-request target guard (or any check with its contract). */
  check(host: string, port: number): Promise<TargetDecision>;
  timeoutMs: number;
  /** Bytes of a collector's answer read at most (the rest is dropped). */
  maxResponseBytes?: number;
}

/**
 * Why a collector URL is refused at Set time (Profile.{i}.HTTP.URL, 7012), or null: not an
 * http(s) URL, or an IP literal the connection-request target guard refuses (link-local,
 * multicast, outside the allow list, the proxy's own port). A host name is checked when a report
 * is sent (its address may change).
 */
export function collectorUrlProblem(raw: string, checkAddress: (address: string, port: number) => TargetDecision): string | null {
  if (raw === '') return null;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'HTTP.URL is not a URL';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `HTTP.URL scheme ${url.protocol} is not http or https`;
  const address = normalizeIp(url.hostname.replace(/^\[(.*)\]$/, '$1'));
  if (!address) return null;
  const d = checkAddress(address, Number(url.port || (url.protocol === 'https:' ? 443 : 80)));
  return d.ok ? null : `HTTP.URL refused: ${d.detail}`;
}

export class HttpDelivery {
  constructor(private readonly opts: HttpDeliveryOptions) {}

  async send(r: HttpReport): Promise<DeliveryOutcome> {
    let url: URL;
    try {
      url = new URL(r.url);
    } catch {
      // Not echoed: a URL may carry credentials.
      return { ok: false, detail: 'HTTP.URL is not a URL', refused: true };
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      return { ok: false, detail: `HTTP.URL scheme ${url.protocol} is not http or https`, refused: true };
    const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
    const target = await this.opts.check(url.hostname, port);
    if (!target.ok) return { ok: false, detail: `HTTP.URL refused: ${target.detail}`, refused: true };
    if (r.deviceId) {
      url.searchParams.append('oui', r.deviceId.oui);
      url.searchParams.append('pc', r.deviceId.productClass);
      url.searchParams.append('sn', r.deviceId.serialNumber);
    } else url.searchParams.append('eid', r.agentEid);
    for (const [k, v] of r.query ?? []) url.searchParams.append(k, v);
    const body = r.gzip ? gzipSync(r.body) : Buffer.from(r.body);
    const headers: Record<string, string> = {
      // R-BULK.11: a CSV body always has its header line, and the media type says so.
      'Content-Type': `${r.mediaType}; charset=UTF-8${r.mediaType === 'text/csv' ? '; header=present' : ''}`,
      // R-BULK.8; the token quoted as the extension's example writes it.
      'BBF-Report-Format': `"${r.reportFormat}"`,
      'Content-Length': String(body.length),
      Host: url.host,
    };
    if (r.gzip) headers['Content-Encoding'] = 'gzip';
    if (r.useDateHeader) headers.Date = new Date().toUTCString();
    const credentials = r.username || r.password;
    const origin = `${url.protocol}//${url.host}`;
    // Basic goes first only to a collector that asked for it before: a Digest collector never sees the password.
    if (credentials && this.basicOrigins.has(origin) && !r.username.includes(':')) headers.Authorization = basicAuthorization(r.username, r.password);
    const path = url.pathname + url.search;
    const first = await this.request(url, target.address, port, r.method, path, headers, body);
    if ('error' in first || first.status !== 401 || !credentials) return outcomeOf(first);
    // The collector's challenge (the extension: "HTTP basic or digest authentication"), answered once.
    const challenge = pickChallenge(parseChallenge(first.challenge));
    if (!challenge) return { ok: false, status: 401, detail: 'collector answered 401 with no Basic or Digest challenge this proxy can answer' };
    const basic = isScheme(challenge, 'Basic');
    if (basic) this.rememberBasic(origin);
    let authorization: string;
    try {
      authorization = basic
        ? basicAuthorization(r.username, r.password)
        : digestAuthorization({ challenge, method: r.method, uri: path, username: r.username, password: r.password, body });
    } catch (e) {
      return { ok: false, status: 401, detail: `collector's challenge cannot be answered: ${(e as Error).message}` };
    }
    return outcomeOf(await this.request(url, target.address, port, r.method, path, { ...headers, Authorization: authorization }, body));
  }

  /** Collector origins that answered with a Basic challenge (bounded, least recently used dropped). */
  private readonly basicOrigins = new Set<string>();

  private rememberBasic(origin: string): void {
    this.basicOrigins.delete(origin);
    this.basicOrigins.add(origin);
    for (const o of this.basicOrigins) {
      if (this.basicOrigins.size <= 1000) break;
      this.basicOrigins.delete(o);
    }
  }

  private request(
    url: URL,
    address: string,
    port: number,
    method: string,
    path: string,
    headers: Record<string, string>,
    body: Buffer,
  ): Promise<{ status: number; challenge?: string | string[] } | { error: string }> {
    const lib = url.protocol === 'https:' ? https : http;
    return new Promise((resolve) => {
      const req = lib.request(
        {
          host: address,
          port,
          path,
          method,
          headers,
          servername: url.protocol === 'https:' && !/^[\d.:[\]]+$/.test(url.hostname) ? url.hostname : undefined,
          timeout: this.opts.timeoutMs,
        },
        (res) => {
          let read = 0;
          res.on('data', (c: Buffer) => {
            read += c.length;
            if (read > (this.opts.maxResponseBytes ?? 65536)) res.destroy();
          });
          res.on('close', () => resolve({ status: res.statusCode ?? 0, challenge: res.headers['www-authenticate'] }));
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.opts.timeoutMs} ms`)));
      req.on('error', (e) => resolve({ error: e.message }));
      req.end(body);
    });
  }
}

/** 200 OK, 202 Accepted, 204 No Content: delivered (extension "Use of HTTP Status Codes"). */
function outcomeOf(a: { status: number } | { error: string }): DeliveryOutcome {
  if ('error' in a) return { ok: false, detail: a.error };
  return a.status >= 200 && a.status < 300 ? { ok: true, status: a.status } : { ok: false, status: a.status, detail: `collector answered ${a.status}` };
}

/** TR-369 Notify-retry wait for retry n (1-based): a random point in [m*(k/1000)^(n-1), m*(k/1000)^n], capped at the 10th (R-BULK.3). */
export function retryWaitMs(n: number, minWaitS: number, multiplier: number, random = Math.random): number {
  const k = multiplier / 1000;
  const i = Math.min(n, 10);
  const lo = minWaitS * k ** (i - 1);
  const hi = minWaitS * k ** i;
  return Math.round((lo + (hi - lo) * random()) * 1000);
}
