/**
 * Digest nonce use (RFC 7616 3.3, 3.4: "nc" counts the requests a client made with one nonce),
 * so that a captured Authorization header cannot be replayed: every authenticated request must
 * carry an nc above every nc seen with its nonce, and a nonce, once it opened a device's session,
 * serves that device only. The nonce itself (stateless, HMAC-signed and dated) is checked in
 * http-auth.ts; this keeps only what was seen. One instance keeps it in memory; several instances
 * share it in Redis (src/cluster/redis-nonce-tracker.ts). Both pass one contract suite.
 */
export interface NonceTracker {
  /**
   * Records request number nc of a nonce; 'replay' when nc is not above every nc recorded for it
   * (nothing is recorded then). ttlMs: how long to remember the nonce (at least its remaining life).
   */
  use(nonce: string, nc: number, ttlMs: number): Promise<'ok' | 'replay'>;
  /** Binds a nonce to the device whose Inform it authenticated; false when bound to another device. */
  bind(nonce: string, deviceKey: string, ttlMs: number): Promise<boolean>;
}

interface Seen {
  nc: number;
  deviceKey: string | null;
  /** Date.now() after which the nonce is forgotten. */
  expires: number;
}

/**
 * The single-instance tracker: a bounded map, the oldest nonce first (every entry expires with its
 * nonce). Entries are made only for digests that verified, i.e. by a peer knowing a password;
 * should that peer push a nonce out, the nonce is still bounded by its expiry
 * (acs.auth.nonceMaxAgeMs). A Map costs only the nonces alive (lru-cache with a TTL preallocated
 * 8.8 MiB for 200,000 slots whatever the fleet).
 */
export class MemoryNonceTracker implements NonceTracker {
  private readonly seen = new Map<string, Seen>();

  constructor(private readonly max = 200_000) {}

  private get(nonce: string): Seen | undefined {
    const s = this.seen.get(nonce);
    if (s && s.expires <= Date.now()) {
      this.seen.delete(nonce);
      return undefined;
    }
    return s;
  }

  private add(nonce: string, s: Seen): void {
    this.seen.set(nonce, s);
    // Oldest first: the expired ones at the head go now, and the oldest when over the bound.
    const now = Date.now();
    for (const [k, v] of this.seen) {
      if (v.expires > now && this.seen.size <= this.max) break;
      this.seen.delete(k);
    }
  }

  async use(nonce: string, nc: number, ttlMs: number): Promise<'ok' | 'replay'> {
    const s = this.get(nonce);
    if (s && nc <= s.nc) return 'replay';
    if (s) s.nc = nc;
    else this.add(nonce, { nc, deviceKey: null, expires: Date.now() + Math.max(1, ttlMs) });
    return 'ok';
  }

  async bind(nonce: string, deviceKey: string, ttlMs: number): Promise<boolean> {
    const s = this.get(nonce);
    if (s?.deviceKey != null) return s.deviceKey === deviceKey;
    if (s) s.deviceKey = deviceKey;
    else this.add(nonce, { nc: 0, deviceKey, expires: Date.now() + Math.max(1, ttlMs) });
    return true;
  }
}
