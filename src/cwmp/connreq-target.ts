/**
 * Where the proxy may send a connection request. The ConnectionRequestURL comes from the CPE
 * (TR-069 3.2.2), so without a check any peer that can send an Inform makes the proxy send HTTP
 * requests to a host and port of its choice (server-side request forgery). The guard resolves the
 * host once, checks the resolved address and port, and hands back the address to connect to (a DNS
 * name that answers differently on a second lookup cannot move the request); a rate limit per
 * target address bounds how many requests many fake devices can aim at one host.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import net from 'node:net';
import os from 'node:os';
import { CidrList } from '../util/cidr.js';

/** An IP address in canonical form; IPv4-mapped IPv6 (::ffff:a.b.c.d) as IPv4; null if not an address. */
export function normalizeIp(s: string): string | null {
  const t = s.startsWith('[') && s.endsWith(']') ? s.slice(1, -1) : s;
  if (net.isIPv4(t)) return t;
  if (!net.isIPv6(t)) return null;
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(t);
  if (m && net.isIPv4(m[1]!)) return m[1]!;
  const n = toBigInt(t);
  if (n >> 32n === 0xffffn) return [24n, 16n, 8n, 0n].map((sh) => String((n >> sh) & 0xffn)).join('.');
  return t.toLowerCase();
}

function toBigInt(ip: string): bigint {
  if (net.isIPv4(ip)) return ip.split('.').reduce((acc, p) => (acc << 8n) | BigInt(Number(p)), 0n);
  // Expand "::" and a trailing dotted quad into eight 16-bit groups.
  let s = ip;
  const quad = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (quad) {
    const v = toBigInt(quad[1]!);
    s = s.slice(0, -quad[1]!.length) + `${((v >> 16n) & 0xffffn).toString(16)}:${(v & 0xffffn).toString(16)}`;
  }
  const [head, tail] = s.includes('::') ? s.split('::') : [s, null];
  const h = head ? head.split(':') : [];
  const t = tail === null ? [] : tail ? tail.split(':') : [];
  const groups = tail === null ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g || '0', 16)), 0n);
}

/**
 * Never a connection request target, whatever the allow list says: link-local (169.254.0.0/16 holds
 * the cloud metadata services; fe80::/10), multicast, broadcast and unspecified addresses.
 */
const NEVER = new CidrList(['169.254.0.0/16', 'fe80::/10', '224.0.0.0/4', 'ff00::/8', '255.255.255.255/32', '0.0.0.0/8', '::/128']);
/** Addresses of this machine for the own-port check, besides the interface addresses. */
const LOCAL = new CidrList(['127.0.0.0/8', '::1/128']);

export interface ConnReqTargetOptions {
  /** CIDR blocks a target address must be in (acs.connectionRequest.allow; default: every address). */
  allow: string[];
  /** Ports a target may use (acs.connectionRequest.ports; empty: any). */
  ports: number[];
  /** The proxy's own listening ports now (read at each check: ports chosen at listen time count). */
  ownPorts: () => number[];
  /** Requests per second to one target address (acs.connectionRequest.perAddressPerSecond). */
  perAddressPerSecond: number;
  /** DNS resolution (tests substitute one); resolves one address. */
  lookup?: (host: string) => Promise<string>;
  /** This machine's addresses (tests substitute them). */
  localAddresses?: () => string[];
  now?: () => number;
}

export type TargetDecision = { ok: true; address: string } | { ok: false; detail: string };

/** Addresses remembered for the rate limit (least recently used dropped beyond it). */
const MAX_TRACKED = 100_000;
/**
 * Addresses whose block verdicts are remembered (the oldest forgotten first): the CIDR tests
 * parse the address once per block (BigInt), about 10 us per connection request (issue 22 item 5),
 * and their answer for an address never changes.
 */
const MAX_VERDICTS = 4096;

/** What the fixed block lists say of an address. */
interface AddressVerdict {
  /** Why it is refused whatever the port (NEVER, the allow list), or null. */
  refused: string | null;
  /** In 127.0.0.0/8 or ::1 (this machine, for the own-port check). */
  loopback: boolean;
}

export class ConnReqTargetGuard {
  private readonly allow: CidrList;
  private readonly ports: ReadonlySet<number>;
  private readonly lookup: (host: string) => Promise<string>;
  private readonly localAddresses: () => string[];
  private readonly now: () => number;
  private readonly interval: number;
  /** Per address: the earliest time the next request may leave (a leaky bucket, one slot per interval). */
  private readonly next = new Map<string, number>();
  private readonly verdicts = new Map<string, AddressVerdict>();

  constructor(private readonly opts: ConnReqTargetOptions) {
    this.allow = new CidrList(opts.allow.length ? opts.allow : ['0.0.0.0/0', '::/0']);
    for (const p of opts.ports) if (!Number.isInteger(p) || p < 1 || p > 65535) throw new Error(`not a port: ${p}`);
    this.ports = new Set(opts.ports);
    this.lookup = opts.lookup ?? (async (host) => (await dnsLookup(host, { verbatim: true })).address);
    this.localAddresses = opts.localAddresses ?? (() => Object.values(os.networkInterfaces()).flatMap((l) => (l ?? []).map((i) => i.address)));
    this.now = opts.now ?? Date.now;
    this.interval = 1000 / Math.max(1, opts.perAddressPerSecond);
  }

  /** The address to connect to for host:port, or why not. The host is resolved once, here. */
  async check(host: string, port: number): Promise<TargetDecision> {
    let address = normalizeIp(host);
    if (!address) {
      try {
        address = normalizeIp(await this.lookup(host));
      } catch (e) {
        return { ok: false, detail: `cannot resolve ${JSON.stringify(host)}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` };
      }
      if (!address) return { ok: false, detail: `cannot resolve ${JSON.stringify(host)}` };
    }
    return this.checkAddress(address, port);
  }

  /** The same decision for an address already known (an IP literal, normalizeIp'd): no DNS, no rate slot. */
  checkAddress(address: string, port: number): TargetDecision {
    const v = this.verdictOf(address);
    if (v.refused !== null) return { ok: false, detail: v.refused };
    if (this.ports.size > 0 && !this.ports.has(port)) return { ok: false, detail: `port ${port} is not in acs.connectionRequest.ports` };
    if (this.opts.ownPorts().includes(port) && (v.loopback || this.isInterfaceAddress(address)))
      return { ok: false, detail: `${address}:${port} is the proxy's own listening port` };
    return { ok: true, address };
  }

  private verdictOf(address: string): AddressVerdict {
    const known = this.verdicts.get(address);
    if (known) return known;
    const refused = NEVER.has(address)
      ? `address ${address} is link-local, multicast or unspecified`
      : !this.allow.has(address)
        ? `address ${address} is not in acs.connectionRequest.allow`
        : null;
    const v: AddressVerdict = { refused, loopback: LOCAL.has(address) };
    if (this.verdicts.size >= MAX_VERDICTS) this.verdicts.delete(this.verdicts.keys().next().value!);
    this.verdicts.set(address, v);
    return v;
  }

  /** Milliseconds to wait before a request to this address may leave (and takes its slot). */
  reserve(address: string): number {
    const now = this.now();
    const at = Math.max(now, this.next.get(address) ?? 0);
    this.next.delete(address); // re-insert: Map order is the LRU order
    this.next.set(address, at + this.interval);
    for (const k of this.next.keys()) {
      if (this.next.size <= MAX_TRACKED) break;
      this.next.delete(k);
    }
    return at - now;
  }

  /** One of this machine's interface addresses now (they may change: asked each time). */
  private isInterfaceAddress(address: string): boolean {
    return this.localAddresses().some((a) => normalizeIp(a) === address);
  }
}
