/**
 * XMPP connection requests (TR-069 Annex K): the proxy logs in to the operator's XMPP server as
 * a client and sends the CPE's JID (ManagementServer.ConnReqJabberID, which the CPE reports
 * with a VALUE CHANGE) an IQ get <connectionRequest xmlns="urn:broadband-forum-org:cwmp:xmppConnReq-1-0">
 * with the connection-request username and password. The CPE answers an IQ result and opens
 * a session, or an error: not-authorized (bad credentials), service-unavailable (cannot now).
 *
 * The XMPP server being down or refusing the login never blocks anything else: a warning, then
 * new attempts with backoff; meanwhile requests over XMPP fail at once as 'xmpp-offline'.
 *
 * @xmpp/client (ESM only) is imported by the first login attempt: a proxy without XMPP
 * connection requests never holds its code.
 */
import type { XmppClient } from '@xmpp/client';
import type { Logger } from '../app/log.js';
import { backoffDelayMs } from '../util/backoff.js';

export const XMPP_CONNREQ_NS = 'urn:broadband-forum-org:cwmp:xmppConnReq-1-0';

export interface XmppConnReqOptions {
  /** xmpp://host:port (plain or STARTTLS) or xmpps://host:port. */
  service: string;
  domain: string;
  username: string;
  password: string;
  resource: string;
  /** Wait for the CPE's IQ answer (ms). */
  timeoutMs: number;
  /** Reconnect backoff (ms). */
  retryBaseMs?: number;
  retryMaxMs?: number;
}

export type XmppConnReqResult =
  | { ok: true; status: number }
  | { ok: false; reason: 'timeout' | 'refused' | 'auth-failed' | 'no-jid' | 'no-credentials' | 'xmpp-offline' | 'cancelled'; detail: string };

/** Each device's JID, bounded (least recently set forgotten first). */
class Jids {
  private readonly map = new Map<string, string>();
  constructor(private readonly max = 1_000_000) {}
  get(k: string): string | undefined {
    return this.map.get(k);
  }
  set(k: string, v: string): void {
    this.map.delete(k);
    if (this.map.size >= this.max) this.map.delete(this.map.keys().next().value!);
    this.map.set(k, v);
  }
}

type XmppLib = typeof import('@xmpp/client');

export class XmppConnectionRequester {
  readonly jids = new Jids();
  /** @xmpp/client once imported (by connect()); requests need it only once logged in. */
  private lib: XmppLib | null = null;
  private loading: Promise<XmppLib> | null = null;
  private xmpp: XmppClient | null = null;
  private online = false;
  private failures = 0;
  private retry: NodeJS.Timeout | null = null;
  private closed = false;
  private readonly cancels = new Map<string, (r: XmppConnReqResult) => void>();

  constructor(
    private readonly opts: XmppConnReqOptions,
    private readonly log: Logger,
  ) {}

  /** Logged in now. */
  get connected(): boolean {
    return this.online;
  }

  /** Starts logging in (in the background: the proxy starts whatever the XMPP server does). */
  start(): void {
    this.connect();
  }

  async stop(): Promise<void> {
    this.closed = true;
    if (this.retry) clearTimeout(this.retry);
    this.close();
    const x = this.xmpp;
    this.xmpp = null;
    this.online = false;
    await x?.stop().catch(() => undefined);
  }

  reachable(deviceKey: string): boolean {
    return this.jids.get(deviceKey) !== undefined;
  }

  /** The device's ConnReqJabberID (from its Inform). */
  learn(deviceKey: string, jid: string): void {
    if (jid && jid.length <= 3071 && this.jids.get(deviceKey) !== jid) this.jids.set(deviceKey, jid);
  }

  private connect(): void {
    if (this.closed) return;
    if (!this.lib) {
      this.loading ??= import('@xmpp/client');
      this.loading.then(
        (lib) => {
          this.lib = lib;
          this.connect();
        },
        (e: Error) => this.log.error({ err: e.message }, 'XMPP connection requests unavailable: cannot load @xmpp/client'),
      );
      return;
    }
    const o = this.opts;
    const x = this.lib.client({ service: o.service, domain: o.domain, username: o.username, password: o.password, resource: o.resource });
    // Reconnection is ours (backoff, a fresh client each time).
    x.reconnect.stop();
    this.xmpp = x;
    x.on('error', (e: Error) => {
      if (this.xmpp === x) this.log.warn({ service: o.service, err: e.message }, 'XMPP connection error');
    });
    x.on('offline', () => this.lost(x, 'offline'));
    x.on('disconnect', () => this.lost(x, 'disconnected'));
    x.start().then(
      () => {
        if (this.xmpp !== x) return;
        this.online = true;
        this.failures = 0;
        this.log.info({ service: o.service, jid: x.jid?.toString() }, 'XMPP connected (connection requests, TR-069 Annex K)');
      },
      (e: Error) => this.lost(x, `login failed: ${e.message}`),
    );
  }

  private lost(x: XmppClient, why: string): void {
    if (this.xmpp !== x || this.closed) return;
    this.xmpp = null;
    this.online = false;
    void x.stop().catch(() => undefined);
    const delay = backoffDelayMs(this.failures++, { baseMs: this.opts.retryBaseMs ?? 1000, maxMs: this.opts.retryMaxMs ?? 60_000 }, Math.random);
    this.log.warn(
      { service: this.opts.service, why, retryInMs: Math.round(delay) },
      'XMPP server unavailable; connection requests over XMPP fail until it is back',
    );
    this.retry = setTimeout(() => this.connect(), delay);
  }

  /** One connection request over XMPP. Never rejects. */
  request(deviceKey: string, creds: { username: string; password: string } | null): Promise<XmppConnReqResult> {
    const jid = this.jids.get(deviceKey);
    if (!jid) return Promise.resolve({ ok: false, reason: 'no-jid', detail: 'no ConnReqJabberID known' });
    if (!creds) return Promise.resolve({ ok: false, reason: 'no-credentials', detail: 'no connection request credentials known' });
    const x = this.xmpp;
    const lib = this.lib;
    if (!x || !this.online || !lib) return Promise.resolve({ ok: false, reason: 'xmpp-offline', detail: 'not logged in to the XMPP server' });
    const { xml } = lib;
    const iq = xml(
      'iq',
      { type: 'get', to: jid },
      xml('connectionRequest', { xmlns: XMPP_CONNREQ_NS }, xml('username', null, creds.username), xml('password', null, creds.password)),
    );
    return new Promise<XmppConnReqResult>((resolve) => {
      let done = false;
      const finish = (r: XmppConnReqResult): void => {
        if (done) return;
        done = true;
        this.cancels.delete(deviceKey);
        resolve(r);
      };
      this.cancels.get(deviceKey)?.({ ok: false, reason: 'cancelled', detail: 'superseded' });
      this.cancels.set(deviceKey, finish);
      x.iqCaller.request(iq, this.opts.timeoutMs).then(
        () => finish({ ok: true, status: 200 }),
        (e: Error & { condition?: string }) => {
          // Annex K.2.3: not-authorized = wrong credentials; service-unavailable = the CPE cannot take it now.
          if (e.name === 'TimeoutError') return finish({ ok: false, reason: 'timeout', detail: `no answer within ${this.opts.timeoutMs} ms` });
          if (e.condition === 'not-authorized') return finish({ ok: false, reason: 'auth-failed', detail: 'CPE rejected the credentials' });
          finish({ ok: false, reason: 'refused', detail: e.condition ? `XMPP error ${e.condition}` : e.message });
        },
      );
    });
  }

  cancel(deviceKey: string): boolean {
    const c = this.cancels.get(deviceKey);
    c?.({ ok: false, reason: 'cancelled', detail: 'cancelled' });
    return !!c;
  }

  /** The device's session opened before its IQ answer came back: the request worked. */
  sessionOpened(deviceKey: string): boolean {
    const c = this.cancels.get(deviceKey);
    c?.({ ok: true, status: 200 });
    return !!c;
  }

  close(): void {
    for (const c of [...this.cancels.values()]) c({ ok: false, reason: 'cancelled', detail: 'cancelled' });
  }
}
