/**
 * Digest nonce use (RFC 7616 3.3, 3.4: "nc" counts the requests a client made with one nonce),
 * so that a captured Authorization header cannot be replayed: every authenticated request must
 * carry an nc above every nc seen with its nonce, and a nonce, once it opened a device's session,
 * serves that device only. The nonce itself (stateless, HMAC-signed and dated) is checked in
 * http-auth.ts; this keeps only what was seen. One instance keeps it in memory; several instances
 * share it in Redis (src/cluster/redis-nonce-tracker.ts). Both pass one contract suite.
 */
import { LRUCache } from 'lru-cache';

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
}

/**
 * The single-instance tracker: a bounded LRU (every entry expires with its nonce). Entries are
 * made only for digests that verified, i.e. by a peer knowing a password; should that peer push
 * a nonce out of the LRU, the nonce is still bounded by its expiry (acs.auth.nonceMaxAgeMs).
 */
export class MemoryNonceTracker implements NonceTracker {
  private readonly seen: LRUCache<string, Seen>;

  constructor(max = 200_000) {
    this.seen = new LRUCache<string, Seen>({ max, ttlAutopurge: false, ttl: 1 });
  }

  async use(nonce: string, nc: number, ttlMs: number): Promise<'ok' | 'replay'> {
    const s = this.seen.get(nonce);
    if (s && nc <= s.nc) return 'replay';
    if (s) s.nc = nc;
    else this.seen.set(nonce, { nc, deviceKey: null }, { ttl: Math.max(1, ttlMs) });
    return 'ok';
  }

  async bind(nonce: string, deviceKey: string, ttlMs: number): Promise<boolean> {
    const s = this.seen.get(nonce);
    if (s?.deviceKey != null) return s.deviceKey === deviceKey;
    if (s) s.deviceKey = deviceKey;
    else this.seen.set(nonce, { nc: 0, deviceKey }, { ttl: Math.max(1, ttlMs) });
    return true;
  }
}
