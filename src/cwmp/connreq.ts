/**
 * Connection requests (TR-069 3.2.2): an HTTP GET to the CPE's ConnectionRequestURL,
 * authenticated with HTTP Digest (or Basic when that is all the CPE offers) using
 * ManagementServer.ConnectionRequestUsername/Password. The CPE answers 200 or 204 and
 * then opens a session to the ACS.
 *
 * sendConnectionRequest is one attempt; ConnectionRequester adds the retry policy,
 * per-device coalescing (one connection request per device, however many RPCs wait)
 * and a global bound on concurrent attempts.
 */
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { backoffDelayMs, type RandomSource } from '../util/backoff.js';
import { ConnReqHttpError, ConnReqSocketPool, exchange, validFieldValue, type ConnReqAnswer } from './connreq-http.js';
import { ConnReqReuse } from './connreq-reuse.js';
import type { ConnReqTargetGuard } from './connreq-target.js';
import { basicAuthorization, digestAuthorization, isScheme, parseChallenge, pickChallenge, type Challenge } from './http-auth.js';

/** 'forbidden': the target is not allowed (connreq-target.ts); nothing was sent. */
export type ConnReqFailureReason = 'timeout' | 'refused' | 'auth-failed' | 'http-error' | 'bad-url' | 'forbidden' | 'cancelled';

export type ConnReqResult = { ok: true; status: number } | { ok: false; reason: ConnReqFailureReason; status?: number; detail: string };

export interface ConnReqCredentials {
  username: string;
  password: string;
}

export interface ConnReqOptions {
  /** Overall limit for the attempt, including the authenticated retry. */
  timeoutMs: number;
  /** Aborts the attempt; it then resolves as 'cancelled'. */
  signal?: AbortSignal;
  /**
   * Checks the target and resolves its host once (SSRF guard); absent: any target, resolved by
   * node. The rate limit's wait comes before timeoutMs starts.
   */
  guard?: ConnReqTargetGuard;
  /** The address guard.check resolved the host to (ConnectionRequester checks before it takes a slot): connect there, no check. */
  address?: string;
  /**
   * Answer a Basic challenge (default false: the credentials would cross the network in clear,
   * to whoever set the URL; TR-069 3.2.2 has the CPE use Digest).
   */
  allowBasic?: boolean;
  /**
   * A keep-alive agent and the Digest challenges that worked (connreq-reuse.ts): the request
   * answers the CPE's last challenge before any 401 and leaves its socket for the next one.
   * Absent: a private agent, destroyed after the attempt.
   */
  reuse?: ConnReqReuse;
}

/** How long the body of an accepted answer may take to end before its kept-alive socket is closed. */
const BODY_DRAIN_MS = 1000;

/**
 * One connection request. Never rejects. On a 401 it answers the challenge once (Digest
 * preferred, Basic otherwise) on the same keep-alive connection when the CPE keeps it open.
 * Details never contain the credentials (nor URL userinfo).
 */
export async function sendConnectionRequest(url: string, creds: ConnReqCredentials | null, opts: ConnReqOptions): Promise<ConnReqResult> {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return Promise.resolve({ ok: false, reason: 'bad-url', detail: 'ConnectionRequestURL is not a valid URL' });
  }
  // TR-069 3.2.2: the connection request URL is plain HTTP.
  if (u.protocol !== 'http:') {
    return Promise.resolve({ ok: false, reason: 'bad-url', detail: `unsupported URL scheme ${JSON.stringify(u.protocol)}` });
  }
  if (!u.hostname) return Promise.resolve({ ok: false, reason: 'bad-url', detail: 'ConnectionRequestURL has no host' });
  if (opts.signal?.aborted) return Promise.resolve({ ok: false, reason: 'cancelled', detail: 'cancelled before sending' });

  let host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  const port = u.port ? Number(u.port) : 80;
  const path = (u.pathname || '/') + u.search;
  if (opts.address) host = opts.address;
  else if (opts.guard) {
    const decision = await opts.guard.check(host, port);
    if (!decision.ok) return { ok: false, reason: 'forbidden', detail: `ConnectionRequestURL refused: ${decision.detail}` };
    // Connect to the address that was checked, never to a second lookup's answer.
    host = decision.address;
    const wait = opts.guard.reserve(host);
    if (wait > 0 && !(await sleepUnlessAborted(wait, opts.signal))) return { ok: false, reason: 'cancelled', detail: 'cancelled before sending' };
  }
  const hostHeader = u.host;
  const reuse = opts.reuse;
  // Without reuse, a private pool: the authenticated retry reuses the connection the 401 came on
  // (if the CPE keeps it alive), and closing the pool frees everything.
  const pool = reuse?.pool ?? new ConnReqSocketPool(BODY_DRAIN_MS);
  const space = `${host}|${port}|${hostHeader}`;
  const digestFor = (challenge: Challenge, nc: number): string =>
    digestAuthorization({ challenge, method: 'GET', uri: path, username: creds!.username, password: creds!.password, nc });
  // The bytes node's http client sent for the same request (header names as they were).
  const requestHead = (authorization: string | undefined): string =>
    `GET ${path} HTTP/1.1\r\nhost: ${hostHeader}\r\n${authorization ? `authorization: ${authorization}\r\n` : ''}Connection: keep-alive\r\n\r\n`;

  return new Promise<ConnReqResult>((resolve) => {
    let settled = false;
    /** The socket of the request in flight, and how to take it back from its exchange. */
    let current: Socket | null = null;
    let detach: (() => void) | null = null;
    /** The answer of the request in flight ended (its body drained): its socket's fate. */
    let ended: { reusable: boolean; idleMs: number | undefined } | null = null;
    /** The Digest challenge the request in flight answered, and its nonce count. */
    let answered: { challenge: Challenge; nc: number; reused: boolean } | null = null;
    /** After settling: where the socket goes when the answer's body ends. */
    let onBodyEnd: ((reusable: boolean, idleMs: number | undefined) => void) | null = null;
    const drop = (): void => {
      detach?.();
      current?.destroy();
      current = null;
    };
    const finish = (r: ConnReqResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      if (r.ok && answered) reuse?.accepted(space, answered.challenge, answered.nc);
      if (!r.ok || !reuse) drop();
      else if (ended && current) {
        // A drained answer leaves its socket to the pool; anything else must not be reused.
        if (ended.reusable) pool.release(host, port, current, ended.idleMs);
        else current.destroy();
      } else if (current) {
        // A body that does not end soon (a hostile peer's endless one) does not keep the socket.
        const sock = current;
        const t = setTimeout(drop, BODY_DRAIN_MS);
        t.unref();
        onBodyEnd = (reusable, idleMs) => {
          clearTimeout(t);
          if (reusable) pool.release(host, port, sock, idleMs);
          else sock.destroy();
        };
      }
      if (!reuse) pool.close();
      resolve(r);
    };
    const onAbort = (): void => finish({ ok: false, reason: 'cancelled', detail: 'cancelled' });
    const timer = setTimeout(() => finish({ ok: false, reason: 'timeout', detail: `no answer within ${opts.timeoutMs} ms` }), opts.timeoutMs);
    opts.signal?.addEventListener('abort', onAbort, { once: true });

    const send = (authorization: string | undefined, authenticated: boolean, fresh = false): void => {
      // Credentials with a CR, LF or another control character would split the request (node's client threw here).
      if (authorization !== undefined && !validFieldValue(authorization))
        return finish({
          ok: false,
          reason: 'auth-failed',
          detail: 'connection failed: ERR_INVALID_CHAR (the credentials hold a character an HTTP header cannot carry)',
        });
      const { socket, reused } = pool.take(host, port);
      current = socket;
      ended = null;
      /** Set by a 401 to be answered: runs once the 401's body has ended (or its socket failed). */
      let retry: ((reusable: boolean, idleMs: number | undefined) => void) | null = null;
      detach = exchange(socket, requestHead(authorization), {
        head: (answer) => onAnswer(answer),
        end: (reusable, idleMs) => {
          ended = { reusable, idleMs };
          if (retry) retry(reusable, idleMs);
          else if (settled) {
            current = null;
            if (onBodyEnd) onBodyEnd(reusable, idleMs);
            else socket.destroy();
          }
        },
        fail: (err, afterHead) => {
          socket.destroy();
          if (current === socket) current = null;
          if (settled) return;
          // The 401's body broke off: its challenge is answered on a new connection.
          if (afterHead && retry) return retry(false, undefined);
          // A kept-alive socket the CPE closed meanwhile: once more on a new connection.
          if (reuse && reused && !afterHead && !fresh) return send(resend(authorization), authenticated, true);
          const code = err instanceof ConnReqHttpError ? err.code : err.message;
          finish({ ok: false, reason: 'refused', detail: `connection failed: ${code}` });
        },
      });
      const onAnswer = (answer: ConnReqAnswer): void => {
        const status = answer.status;
        if (status === 200 || status === 204) return finish({ ok: true, status });
        // A 3xx is not followed: its Location is as much the peer's choice as the URL was.
        if (status !== 401) return finish({ ok: false, reason: 'http-error', status, detail: `CPE answered HTTP ${status}` });
        const reusedRefused = answered?.reused === true;
        if (reusedRefused) {
          // Its nonce is spent (RFC 7616 3.3): the CPE's new challenge is answered once, as if none was sent.
          reuse!.refused(space);
          answered = null;
        } else if (authenticated) return finish({ ok: false, reason: 'auth-failed', status, detail: 'CPE rejected the credentials' });
        if (!creds) {
          return finish({ ok: false, reason: 'auth-failed', status, detail: 'CPE requires authentication and no credentials are known' });
        }
        const challenge = pickChallenge(parseChallenge(answer.wwwAuthenticate));
        if (!challenge) {
          return finish({ ok: false, reason: 'auth-failed', status, detail: 'no supported challenge in WWW-Authenticate' });
        }
        if (!isScheme(challenge, 'Digest') && !opts.allowBasic) {
          return finish({
            ok: false,
            reason: 'auth-failed',
            status,
            detail: 'CPE offers only Basic authentication; acs.connectionRequest.allowBasic is false (credentials not sent)',
          });
        }
        let authorizationNext: string;
        try {
          if (isScheme(challenge, 'Digest')) {
            authorizationNext = digestFor(challenge, 1);
            answered = { challenge, nc: 1, reused: false };
          } else authorizationNext = basicAuthorization(creds.username, creds.password);
        } catch (err) {
          // http-auth errors carry no secrets.
          return finish({ ok: false, reason: 'auth-failed', status, detail: (err as Error).message });
        }
        // The answer is sent once the 401's body has ended: on the same connection when the CPE keeps it.
        retry = (reusable, idleMs) => {
          retry = null;
          if (settled) return;
          if (current === socket) {
            current = null;
            if (reusable) pool.release(host, port, socket, idleMs);
            else socket.destroy();
          }
          send(authorizationNext, true, !reusable);
        };
        if (ended) retry(ended.reusable, ended.idleMs);
      };
    };
    /** The Authorization of a request sent again: a Digest answer takes the next nonce count. */
    const resend = (authorization: string | undefined): string | undefined => {
      if (!answered) return authorization;
      answered.nc++;
      return digestFor(answered.challenge, answered.nc);
    };
    // The challenge that let the last request to this CPE through, answered before it asks.
    const known = reuse && creds ? reuse.next(space) : null;
    let first: string | undefined;
    if (known) {
      try {
        first = digestFor(known.challenge, known.nc);
        answered = { ...known, reused: true };
      } catch {
        reuse!.refused(space);
      }
    }
    send(first, first !== undefined);
  });
}

/** host (brackets removed) and port of an http: URL; null when it is not one. */
function targetOf(url: string): { host: string; port: number } | null {
  try {
    const u = new URL(url);
    if (u.protocol !== 'http:' || !u.hostname) return null;
    return { host: u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname, port: u.port ? Number(u.port) : 80 };
  } catch {
    return null;
  }
}

function sleepUnlessAborted(ms: number, signal: AbortSignal | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    const onAbort = (): void => {
      clearTimeout(t);
      resolve(false);
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

// ---------------------------------------------------------------- retries, coalescing, concurrency

export interface ConnReqPolicy {
  /** Per attempt. */
  timeoutMs: number;
  /** Further attempts after the first one fails (timeout, refused or http-error). */
  retries: number;
  /** Backoff base (ceiling of the first retry wait). */
  retryDelayMs: number;
  /** Backoff cap. */
  maxDelayMs: number;
  /** Backoff growth per retry (default 2). */
  factor?: number;
  /** Attempts in flight at once, across all devices (default 200). */
  maxInFlight?: number;
  /** See ConnReqOptions.guard. */
  guard?: ConnReqTargetGuard;
  /** See ConnReqOptions.allowBasic. */
  allowBasic?: boolean;
  /** Keep sockets and Digest challenges between requests (connreq-reuse.ts; default true). */
  reuse?: boolean;
}

export interface ConnectionRequesterDeps {
  /** The single-attempt function (tests may substitute one). */
  send?: typeof sendConnectionRequest;
  rand?: RandomSource;
}

interface Chain {
  url: string;
  creds: ConnReqCredentials | null;
  promise: Promise<ConnReqResult>;
  resolve: (r: ConnReqResult) => void;
  cancelled: boolean;
  /** Cuts a backoff sleep or a wait for a slot short. */
  wake: (() => void) | null;
}

/** Failures worth another attempt; auth and URL problems are not going to fix themselves. */
const RETRYABLE: ReadonlySet<ConnReqFailureReason> = new Set(['timeout', 'refused', 'http-error']);

export interface ConnectionRequesterEvents {
  /** An attempt chain ended (its retries included, or cancelled): once per chain, however many callers joined it. */
  result: [{ deviceKey: string; result: ConnReqResult }];
}

/**
 * Connection requests with a retry policy. Concurrent request() calls for one device share
 * one attempt chain and its result; a later call after the chain ended starts a new one.
 */
export class ConnectionRequester extends EventEmitter<ConnectionRequesterEvents> {
  private readonly chains = new Map<string, Chain>();
  private readonly waiters: Array<{ chain: Chain; grant: (granted: boolean) => void }> = [];
  private active = 0;
  private readonly send: typeof sendConnectionRequest;
  private readonly rand: RandomSource;
  private readonly maxInFlight: number;
  private readonly reuse: ConnReqReuse | undefined;

  constructor(
    private readonly policy: ConnReqPolicy,
    deps: ConnectionRequesterDeps = {},
  ) {
    super();
    this.send = deps.send ?? sendConnectionRequest;
    this.rand = deps.rand ?? Math.random;
    this.maxInFlight = Math.max(1, policy.maxInFlight ?? 200);
    this.reuse = policy.reuse === false ? undefined : new ConnReqReuse();
  }

  /** Devices with an attempt chain running. */
  get pending(): number {
    return this.chains.size;
  }

  /** HTTP attempts in flight now (at most maxInFlight). */
  get inFlight(): number {
    return this.active;
  }

  /**
   * Wakes the device. Joins the chain already running for deviceKey if there is one (the
   * newest url/creds are used for its remaining attempts). Never rejects.
   */
  request(deviceKey: string, url: string, creds: ConnReqCredentials | null): Promise<ConnReqResult> {
    const existing = this.chains.get(deviceKey);
    if (existing) {
      existing.url = url;
      existing.creds = creds;
      return existing.promise;
    }
    let resolve!: (r: ConnReqResult) => void;
    const promise = new Promise<ConnReqResult>((r) => (resolve = r));
    const chain: Chain = { url, creds, promise, resolve, cancelled: false, wake: null };
    this.chains.set(deviceKey, chain);
    void this.run(deviceKey, chain);
    void promise.then((result) => this.emit('result', { deviceKey, result }));
    return promise;
  }

  /**
   * Stops the device's chain (its session has started): no further attempts, and the
   * pending promise resolves now as 'cancelled'. An attempt already on the wire is left to
   * finish (its result is dropped). Returns whether a chain was running.
   */
  cancel(deviceKey: string): boolean {
    const chain = this.chains.get(deviceKey);
    if (!chain) return false;
    this.chains.delete(deviceKey);
    chain.cancelled = true;
    chain.resolve({ ok: false, reason: 'cancelled', detail: 'connection request cancelled' });
    const i = this.waiters.findIndex((w) => w.chain === chain);
    if (i >= 0) this.waiters.splice(i, 1)[0]!.grant(false);
    chain.wake?.();
    return true;
  }

  /** Cancels every chain (shutdown) and closes the kept-alive sockets. */
  close(): void {
    for (const key of [...this.chains.keys()]) this.cancel(key);
    this.reuse?.close();
  }

  private async run(deviceKey: string, chain: Chain): Promise<void> {
    let last: ConnReqResult | null = null;
    try {
      for (let attempt = 0; attempt <= this.policy.retries && !chain.cancelled; attempt++) {
        if (attempt > 0) {
          const delay = backoffDelayMs(attempt - 1, { baseMs: this.policy.retryDelayMs, maxMs: this.policy.maxDelayMs, factor: this.policy.factor }, this.rand);
          await this.sleep(chain, delay);
          if (chain.cancelled) break;
        }
        const url = chain.url;
        let address: string | undefined;
        const guard = this.policy.guard;
        if (guard) {
          // Checked and rate-limited before taking a slot: requests waiting for their turn at one
          // address never hold up the other devices' connection requests.
          const target = targetOf(url);
          if (!target) {
            last = { ok: false, reason: 'bad-url', detail: 'ConnectionRequestURL is not a valid http URL with a host' };
            break;
          }
          const decision = await guard.check(target.host, target.port);
          if (!decision.ok) {
            last = { ok: false, reason: 'forbidden', detail: `ConnectionRequestURL refused: ${decision.detail}` };
            break;
          }
          address = decision.address;
          const wait = guard.reserve(address);
          if (wait > 0) await this.sleep(chain, wait);
          if (chain.cancelled) break;
        }
        if (!(await this.acquire(chain))) break;
        try {
          last = await this.send(url, chain.creds, { timeoutMs: this.policy.timeoutMs, address, allowBasic: this.policy.allowBasic, reuse: this.reuse });
        } finally {
          this.release();
        }
        if (last.ok || !RETRYABLE.has(last.reason)) break;
      }
    } catch (err) {
      last = { ok: false, reason: 'refused', detail: `connection request failed: ${(err as Error).message}` };
    }
    if (this.chains.get(deviceKey) === chain) this.chains.delete(deviceKey);
    if (!chain.cancelled) chain.resolve(last ?? { ok: false, reason: 'cancelled', detail: 'no attempt made' });
  }

  private sleep(chain: Chain, ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(t);
        chain.wake = null;
        resolve();
      };
      const t = setTimeout(done, ms);
      chain.wake = done;
    });
  }

  private acquire(chain: Chain): Promise<boolean> {
    if (chain.cancelled) return Promise.resolve(false);
    if (this.active < this.maxInFlight) {
      this.active++;
      return Promise.resolve(true);
    }
    return new Promise<boolean>((grant) => this.waiters.push({ chain, grant }));
  }

  private release(): void {
    const next = this.waiters.shift();
    if (next)
      next.grant(true); // the slot passes straight to the next waiter
    else this.active--;
  }
}
