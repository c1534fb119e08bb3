/**
 * UDP connection requests (TR-069 Annex G) to CPEs behind NAT: the signed message of
 * connreq-udp-message.ts, sent from the STUN server's socket to the CPE's NAT binding (so the
 * NAT, which saw the CPE's Binding Requests go to that port, lets it in), repeated because UDP
 * may lose it. Copies share ts and id, so the CPE acts on the first only (Annex G.2.2).
 *
 * UDP brings no answer: a request succeeds when the CPE's session opens (the engine then calls
 * cancel()) and fails as 'timeout' when none opened within timeoutMs.
 */
import { randomBytes } from 'node:crypto';
import { encodeUdpConnReq } from './connreq-udp-message.js';

export interface UdpBinding {
  host: string;
  port: number;
  /** Where it was learned: a STUN Binding Request (TR-111) or the Inform's UDPConnectionRequestAddress. */
  source: 'stun' | 'inform';
  /** Epoch ms. */
  at: number;
}

/** Each device's latest NAT binding, bounded (least recently set forgotten first). */
export class UdpBindings {
  private readonly map = new Map<string, UdpBinding>();

  constructor(private readonly max = 1_000_000) {}

  get(deviceKey: string): UdpBinding | undefined {
    return this.map.get(deviceKey);
  }

  /** Returns whether the binding is new or changed. */
  set(deviceKey: string, b: UdpBinding): boolean {
    const before = this.map.get(deviceKey);
    this.map.delete(deviceKey);
    if (this.map.size >= this.max) this.map.delete(this.map.keys().next().value!);
    this.map.set(deviceKey, b);
    return !before || before.host !== b.host || before.port !== b.port;
  }

  get size(): number {
    return this.map.size;
  }
}

/**
 * Parses ManagementServer.UDPConnectionRequestAddress ("host:port", IPv6 as "[addr]:port";
 * TR-069 Annex G: the port defaults to 80 when absent). Null when unusable.
 */
export function parseUdpConnectionRequestAddress(v: string): { host: string; port: number } | null {
  const m = /^\[([0-9a-fA-F:.]+)\](?::(\d{1,5}))?$/.exec(v) ?? /^([^:[\]\s]+)(?::(\d{1,5}))?$/.exec(v);
  if (!m) return null;
  const port = m[2] === undefined ? 80 : Number(m[2]);
  if (port < 1 || port > 65535) return null;
  return { host: m[1]!, port };
}

export type UdpConnReqResult =
  | { ok: true; status: number; detail: string }
  | { ok: false; reason: 'timeout' | 'no-binding' | 'no-credentials' | 'send-failed' | 'cancelled'; detail: string };

export interface UdpConnReqPolicy {
  /** How long to wait for the session after the first copy (ms). */
  timeoutMs: number;
  /** Wait before the first repeat (ms); doubles after each. */
  retransmitMs: number;
  /** Copies sent after the first one. */
  retransmissions: number;
}

export interface UdpConnReqDeps {
  /** Sends from the STUN port (StunServer.send). */
  send: (data: string, port: number, host: string) => Promise<void>;
  bindings: UdpBindings;
  now?: () => number;
}

interface Pending {
  resolve: (r: UdpConnReqResult) => void;
  timers: NodeJS.Timeout[];
}

export class UdpConnectionRequester {
  private readonly pending = new Map<string, Pending>();
  private readonly now: () => number;

  constructor(
    private readonly policy: UdpConnReqPolicy,
    private readonly deps: UdpConnReqDeps,
  ) {
    this.now = deps.now ?? Date.now;
  }

  /** Whether a binding is known for the device. */
  reachable(deviceKey: string): boolean {
    return this.deps.bindings.get(deviceKey) !== undefined;
  }

  /** One UDP connection request (its copies included). Never rejects. */
  request(deviceKey: string, creds: { username: string; password: string } | null): Promise<UdpConnReqResult> {
    if (!this.deps.bindings.get(deviceKey)) return Promise.resolve({ ok: false, reason: 'no-binding', detail: 'no UDPConnectionRequestAddress known' });
    // Annex G.2.2: un and sig come from the connection-request credentials; without them the CPE ignores the message.
    if (!creds) return Promise.resolve({ ok: false, reason: 'no-credentials', detail: 'no connection request credentials known' });
    this.finish(deviceKey, { ok: false, reason: 'cancelled', detail: 'superseded' });
    const fields = { ts: Math.floor(this.now() / 1000), id: randomBytes(4).readUInt32BE(0), un: creds.username, cn: randomBytes(8).toString('hex') };
    return new Promise<UdpConnReqResult>((resolve) => {
      const p: Pending = { resolve, timers: [] };
      this.pending.set(deviceKey, p);
      const sendCopy = (): void => {
        // The binding is read again for each copy: a BINDING-CHANGE meanwhile is followed.
        const b = this.deps.bindings.get(deviceKey);
        if (!b || this.pending.get(deviceKey) !== p) return;
        const authority = b.host.includes(':') ? `[${b.host}]:${b.port}` : `${b.host}:${b.port}`;
        this.deps.send(encodeUdpConnReq(authority, fields, creds.password), b.port, b.host).catch((e: Error) => {
          if (this.pending.get(deviceKey) === p) this.finish(deviceKey, { ok: false, reason: 'send-failed', detail: `UDP send failed: ${e.message}` });
        });
      };
      sendCopy();
      let at = 0;
      for (let i = 0; i < this.policy.retransmissions; i++) {
        at += this.policy.retransmitMs * 2 ** i;
        if (at >= this.policy.timeoutMs) break;
        p.timers.push(setTimeout(sendCopy, at));
      }
      p.timers.push(
        setTimeout(
          () => this.finish(deviceKey, { ok: false, reason: 'timeout', detail: `no session within ${this.policy.timeoutMs} ms of the UDP connection request` }),
          this.policy.timeoutMs,
        ),
      );
    });
  }

  /** The device's session opened: the request succeeded. Returns whether one was pending. */
  sessionOpened(deviceKey: string): boolean {
    return this.finish(deviceKey, { ok: true, status: 0, detail: 'session opened' });
  }

  cancel(deviceKey: string): boolean {
    return this.finish(deviceKey, { ok: false, reason: 'cancelled', detail: 'cancelled' });
  }

  close(): void {
    for (const key of [...this.pending.keys()]) this.cancel(key);
  }

  private finish(deviceKey: string, r: UdpConnReqResult): boolean {
    const p = this.pending.get(deviceKey);
    if (!p) return false;
    this.pending.delete(deviceKey);
    for (const t of p.timers) clearTimeout(t);
    p.resolve(r);
    return true;
  }
}
