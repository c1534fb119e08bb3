/**
 * The CPE's address as the ACS sees it. Behind a reverse proxy or balancer listed in
 * acs.trustedProxies, the TCP peer is the proxy: the client is the right-most X-Forwarded-For
 * entry that is not itself a trusted proxy (entries further left were written by the client and
 * prove nothing). Pure.
 */
import type { CidrList } from '../util/cidr.js';

export interface ClientAddress {
  /** The client's address (the TCP peer's when not behind a trusted proxy). */
  address: string;
  /** The request came through a trusted proxy: its TCP connection says nothing about the CPE. */
  proxied: boolean;
}

export function clientAddress(peer: string | undefined, forwardedFor: string | string[] | undefined, trusted: CidrList): ClientAddress {
  const remote = peer ?? '';
  if (!trusted.has(remote)) return { address: remote, proxied: false };
  const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : (forwardedFor ?? ''))
    .split(',')
    .map((h) => h.trim())
    .filter((h) => h !== '');
  for (let i = hops.length - 1; i >= 0; i--) {
    if (!trusted.has(hops[i]!)) return { address: hops[i]!, proxied: true };
  }
  return { address: hops[0] ?? remote, proxied: true };
}
