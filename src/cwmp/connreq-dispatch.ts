/**
 * The transport of each connection request (TR-069 3.2.2 HTTP, Annex G UDP through the CPE's
 * NAT binding, Annex K XMPP): the configured order, with the transports that cannot reach the
 * device skipped (UDP without a known binding, XMPP without a JID), and the next one tried when one fails. A device last reached
 * over a transport is tried over it first next time (a CPE behind NAT is not left to time out
 * over HTTP on every request). One chain per device, however many callers wait.
 */
import { EventEmitter } from 'node:events';
import type { ConnectionRequester, ConnReqCredentials } from './connreq.js';
import type { UdpConnectionRequester } from './connreq-udp.js';
import type { XmppConnectionRequester } from './connreq-xmpp.js';

export type ConnReqTransport = 'http' | 'udp' | 'xmpp';
export const CONNREQ_TRANSPORTS: readonly ConnReqTransport[] = ['http', 'udp', 'xmpp'];

export type DispatchResult =
  | { ok: true; status: number; transport: ConnReqTransport }
  | { ok: false; reason: string; detail: string; transport?: ConnReqTransport };

export interface ConnReqDispatcherEvents {
  /** One transport's attempt (its own retries included) ended. */
  attempt: [{ deviceKey: string; transport: ConnReqTransport; ok: boolean; outcome: string }];
  /** The request ended (over whichever transport, or all failed / cancelled). */
  result: [{ deviceKey: string; result: DispatchResult }];
}

interface Chain {
  promise: Promise<DispatchResult>;
  url: string;
  creds: ConnReqCredentials | null;
  current: ConnReqTransport | null;
  cancelled: boolean;
}

export interface ConnReqDispatcherDeps {
  http: ConnectionRequester;
  udp?: UdpConnectionRequester;
  xmpp?: XmppConnectionRequester;
  /** Devices whose last good transport is remembered (bounded). */
  maxRemembered?: number;
}

export class ConnReqDispatcher extends EventEmitter<ConnReqDispatcherEvents> {
  private readonly chains = new Map<string, Chain>();
  private readonly lastGood = new Map<string, ConnReqTransport>();

  constructor(
    private readonly order: readonly ConnReqTransport[],
    private readonly deps: ConnReqDispatcherDeps,
  ) {
    super();
  }

  /** Devices with a request running. */
  get pending(): number {
    return this.chains.size;
  }

  /** The transports to try for the device, in order. */
  plan(deviceKey: string, url: string | null): ConnReqTransport[] {
    const usable = this.order.filter((t) =>
      t === 'http' ? !!url : t === 'udp' ? !!this.deps.udp?.reachable(deviceKey) : !!this.deps.xmpp?.reachable(deviceKey),
    );
    const good = this.lastGood.get(deviceKey);
    return good && usable.includes(good) ? [good, ...usable.filter((t) => t !== good)] : usable;
  }

  /** Wakes the device. Never rejects. */
  request(deviceKey: string, url: string, creds: ConnReqCredentials | null): Promise<DispatchResult> {
    const existing = this.chains.get(deviceKey);
    if (existing) {
      existing.url = url;
      existing.creds = creds;
      return existing.promise;
    }
    const chain: Chain = { promise: Promise.resolve(null as never), url, creds, current: null, cancelled: false };
    chain.promise = this.run(deviceKey, chain);
    this.chains.set(deviceKey, chain);
    void chain.promise.then((result) => {
      if (this.chains.get(deviceKey) === chain) this.chains.delete(deviceKey);
      this.emit('result', { deviceKey, result });
    });
    return chain.promise;
  }

  /** The device's session opened (or the request is no longer wanted): ends its chain. */
  cancel(deviceKey: string): void {
    const chain = this.chains.get(deviceKey);
    if (!chain) return;
    this.chains.delete(deviceKey);
    chain.cancelled = true;
    // UDP brings no answer of its own: the session opening is its success.
    if (chain.current === 'udp') this.deps.udp?.sessionOpened(deviceKey);
    else if (chain.current === 'xmpp') this.deps.xmpp?.sessionOpened(deviceKey);
    else this.deps.http.cancel(deviceKey);
  }

  close(): void {
    for (const key of [...this.chains.keys()]) this.cancel(key);
    this.deps.http.close();
    this.deps.udp?.close();
    this.deps.xmpp?.close();
  }

  private async run(deviceKey: string, chain: Chain): Promise<DispatchResult> {
    // Let request() register the chain before the first transport starts (cancel() must find it).
    await Promise.resolve();
    const plan = this.plan(deviceKey, chain.url);
    if (plan.length === 0) return { ok: false, reason: 'no-transport', detail: 'no connection request transport can reach the device' };
    let last: DispatchResult = { ok: false, reason: 'cancelled', detail: 'cancelled' };
    for (const transport of plan) {
      if (chain.cancelled) break;
      chain.current = transport;
      const r =
        transport === 'http'
          ? await this.deps.http.request(deviceKey, chain.url, chain.creds)
          : transport === 'udp'
            ? await this.deps.udp!.request(deviceKey, chain.creds)
            : await this.deps.xmpp!.request(deviceKey, chain.creds);
      const outcome = r.ok ? 'ok' : r.reason;
      this.emit('attempt', { deviceKey, transport, ok: r.ok, outcome });
      if (r.ok) {
        this.remember(deviceKey, transport);
        return { ok: true, status: r.status, transport };
      }
      last = { ok: false, reason: r.reason, detail: `${transport}: ${r.detail}`, transport };
      if (r.reason === 'cancelled') break;
    }
    return last;
  }

  private remember(deviceKey: string, transport: ConnReqTransport): void {
    this.lastGood.delete(deviceKey);
    if (this.lastGood.size >= (this.deps.maxRemembered ?? 1_000_000)) this.lastGood.delete(this.lastGood.keys().next().value!);
    this.lastGood.set(deviceKey, transport);
  }
}
