/**
 * Limits per source address on the ACS listener (issue 14 item 5): open connections, and the
 * rate of requests that would open a new CWMP session. One address holding thousands of idle
 * connections (the file-descriptor limit) or opening sessions in a loop must not deny service to
 * the CPEs at other addresses. Counted at the TCP level ('connection', before TLS), so a peer
 * that never finishes its TLS handshake counts too.
 *
 * Memory is bounded whatever the number of addresses: an address's entry lives while it has
 * connections or a bucket below full, and at most maxTrackedAddresses buckets are kept (the
 * oldest is forgotten first, which only ever gives an address a fresh bucket).
 */
import type { Server, Socket } from 'node:net';

export interface PeerLimitOptions {
  /** Open connections per address; 0 = no limit. */
  maxConnections: number;
  /** New sessions per address and minute (token bucket, burst = the same number); 0 = no limit. */
  newSessionsPerMinute: number;
  /** 127.0.0.0/8 and ::1 are not limited (labs, a reverse proxy on the same host). */
  exemptLoopback: boolean;
  /** Buckets kept at most (default 100,000). */
  maxTrackedAddresses?: number;
}

/** What the limits refused since start (also for the metrics). */
export interface PeerLimitCounts {
  connectionsRefused: number;
  sessionsRefused: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

const DEFAULT_MAX_TRACKED = 100_000;

export function isLoopback(address: string): boolean {
  return address.startsWith('127.') || address === '::1' || address.startsWith('::ffff:127.');
}

export class PeerLimits {
  readonly counts: PeerLimitCounts = { connectionsRefused: 0, sessionsRefused: 0 };
  private readonly open = new Map<string, number>();
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly o: PeerLimitOptions,
    private readonly now: () => number = performance.now.bind(performance),
  ) {}

  private exempt(address: string | undefined): boolean {
    return address === undefined || (this.o.exemptLoopback && isLoopback(address));
  }

  /**
   * Counts the server's connections per address and closes those beyond maxConnections at once.
   * Takes over the 'connection' event (like cpe-connections.ts): a refused socket never reaches
   * the TLS handshake or the HTTP parser.
   */
  attach(server: Server, onRefused: (address: string) => void): void {
    if (this.o.maxConnections <= 0) return;
    const inner = server.listeners('connection') as ((s: Socket) => void)[];
    server.removeAllListeners('connection');
    server.on('connection', (socket: Socket) => {
      if (this.admit(socket)) for (const l of inner) l.call(server, socket);
      else {
        this.counts.connectionsRefused++;
        onRefused(socket.remoteAddress ?? '');
        // No HTTP answer: the client gets a reset, and no work is spent on it.
        socket.resetAndDestroy();
      }
    });
  }

  private admit(socket: Socket): boolean {
    const address = socket.remoteAddress;
    if (this.exempt(address)) return true;
    const a = address as string;
    const n = this.open.get(a) ?? 0;
    if (n >= this.o.maxConnections) return false;
    this.open.set(a, n + 1);
    socket.once('close', () => {
      const m = (this.open.get(a) ?? 1) - 1;
      if (m <= 0) this.open.delete(a);
      else this.open.set(a, m);
    });
    return true;
  }

  /** Connections open now from one address (exempt addresses are not counted). */
  connectionsFrom(address: string): number {
    return this.open.get(address) ?? 0;
  }

  /**
   * Takes one new-session token for this address; false when it has none left (the caller
   * answers 503 with Retry-After, TR-069 3.4.3 lets the CPE retry later).
   */
  allowNewSession(address: string | undefined): boolean {
    const rate = this.o.newSessionsPerMinute;
    if (rate <= 0 || address === undefined || this.exempt(address)) return true;
    const t = this.now();
    let b = this.buckets.get(address);
    if (b === undefined) {
      b = { tokens: rate, at: t };
      if (this.buckets.size >= (this.o.maxTrackedAddresses ?? DEFAULT_MAX_TRACKED)) this.prune(t);
    } else {
      this.buckets.delete(address); // re-inserted below: Map order is least recently used first
      b.tokens = Math.min(rate, b.tokens + ((t - b.at) * rate) / 60_000);
      b.at = t;
    }
    this.buckets.set(address, b);
    if (b.tokens < 1) {
      this.counts.sessionsRefused++;
      return false;
    }
    b.tokens -= 1;
    return true;
  }

  /** Seconds until this address has a token again (for Retry-After). */
  retryAfterS(address: string | undefined): number {
    const b = address === undefined ? undefined : this.buckets.get(address);
    const rate = this.o.newSessionsPerMinute;
    if (!b || rate <= 0) return 1;
    return Math.max(1, Math.ceil(((1 - b.tokens) * 60) / rate));
  }

  /** Drops full buckets (they mean nothing), then the least recently used ones down to 90%. */
  private prune(t: number): void {
    const rate = this.o.newSessionsPerMinute;
    for (const [a, b] of this.buckets) if (b.tokens + ((t - b.at) * rate) / 60_000 >= rate) this.buckets.delete(a);
    const keep = Math.floor((this.o.maxTrackedAddresses ?? DEFAULT_MAX_TRACKED) * 0.9);
    for (const a of this.buckets.keys()) {
      if (this.buckets.size <= keep) break;
      this.buckets.delete(a);
    }
  }
}
