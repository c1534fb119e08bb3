/**
 * What connection requests carry over from one to the next (issue 22 item 5): kept-alive
 * sockets (connreq-http.ts), and per protection space (the CPE's origin and realm, RFC 7235 2.2) the Digest challenge
 * that last let a request through. RFC 7616 3.4 lets a client send the next request to the same
 * space with that nonce and a higher nonce count; a CPE that wants a fresh nonce answers 401 and
 * its new challenge is answered as usual, so reuse saves the challenge round trip where the CPE
 * accepts it and costs nothing where it does not. The credentials are never kept here: only the
 * server's challenge and the count.
 */
import { LRUCache } from 'lru-cache';
import type { Challenge } from './http-auth.js';
import { ConnReqSocketPool } from './connreq-http.js';

export interface ConnReqReuseOptions {
  /** Idle kept-alive sockets are closed after this (default 2,000 ms; a shorter Keep-Alive hint of the CPE wins). */
  idleSocketMs?: number;
  /** Protection spaces remembered (default 10,000; the least recently used is forgotten). */
  maxSpaces?: number;
}

interface DigestSpace {
  challenge: Challenge;
  nc: number;
}

export class ConnReqReuse {
  readonly pool: ConnReqSocketPool;
  private readonly spaces: LRUCache<string, DigestSpace>;

  constructor(o: ConnReqReuseOptions = {}) {
    this.pool = new ConnReqSocketPool(o.idleSocketMs ?? 2000);
    this.spaces = new LRUCache({ max: o.maxSpaces ?? 10_000 });
  }

  /** The challenge to answer before any 401 (and its nonce count), or null. */
  next(space: string): { challenge: Challenge; nc: number } | null {
    const s = this.spaces.get(space);
    if (!s) return null;
    // 8 hex digits (RFC 7616 3.4): past that a fresh challenge is due anyway.
    if (s.nc >= 0xffffffff) {
      this.spaces.delete(space);
      return null;
    }
    s.nc++;
    return { challenge: s.challenge, nc: s.nc };
  }

  /** This challenge (answered with count nc) let a request through. */
  accepted(space: string, challenge: Challenge, nc: number): void {
    const s = this.spaces.get(space);
    if (s?.challenge === challenge) s.nc = Math.max(s.nc, nc);
    else this.spaces.set(space, { challenge, nc });
  }

  /** The space refused the reused challenge (a new nonce follows, or the credentials changed). */
  refused(space: string): void {
    this.spaces.delete(space);
  }

  close(): void {
    this.pool.close();
    this.spaces.clear();
  }
}
