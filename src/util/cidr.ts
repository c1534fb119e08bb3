/**
 * CIDR blocks (RFC 4632, RFC 4291 2.3) and membership, IPv4 and IPv6. An IPv4-mapped IPv6
 * address (::ffff:a.b.c.d, RFC 4291 2.5.5.2, what a dual-stack socket reports for IPv4 peers)
 * is matched as the IPv4 address it carries. Pure; no DNS.
 */
import { isIPv4, isIPv6 } from 'node:net';

export interface Cidr {
  /** 4 or 6: the family the block belongs to. */
  family: 4 | 6;
  /** The network address as a 32- or 128-bit integer. */
  network: bigint;
  prefix: number;
  /** The block as written, for messages. */
  text: string;
}

/** Parses "a.b.c.d/n", "x::y/n", or a bare address (a /32 or /128). Throws a RangeError naming the input. */
export function parseCidr(s: string): Cidr {
  const text = s.trim();
  const slash = text.indexOf('/');
  const addr = slash === -1 ? text : text.slice(0, slash);
  const parsed = parseIp(addr);
  if (!parsed) throw new RangeError(`"${s}" is not an IPv4 or IPv6 address or CIDR block`);
  let { family, value } = parsed;
  const bits = family === 4 ? 32 : 128;
  let prefix = bits;
  if (slash !== -1) {
    const p = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p) || Number(p) > bits) throw new RangeError(`"${s}": prefix length must be 0..${bits}`);
    prefix = Number(p);
  }
  // A block written as ::ffff:a.b.c.d/n (n >= 96) is the IPv4 block it maps.
  if (family === 6 && prefix >= 96 && value >> 32n === 0xffffn) {
    family = 4;
    value &= 0xffffffffn;
    prefix -= 96;
  }
  return { family, network: value & mask(family, prefix), prefix, text };
}

/** True when ip (any textual form node reports) lies in the block; false for anything unparsable. */
export function cidrContains(cidr: Cidr, ip: string): boolean {
  const a = parseIp(ip);
  if (!a) return false;
  const { family, value } = unmap(a);
  return family === cidr.family && (value & mask(family, cidr.prefix)) === cidr.network;
}

/** A list of blocks, as configured (e.g. acs.trustedProxies). */
export class CidrList {
  readonly blocks: readonly Cidr[];

  constructor(list: readonly string[]) {
    this.blocks = list.filter((s) => s.trim() !== '').map(parseCidr);
  }

  get size(): number {
    return this.blocks.length;
  }

  has(ip: string | undefined | null): boolean {
    if (!ip || this.blocks.length === 0) return false;
    return this.blocks.some((b) => cidrContains(b, ip));
  }
}

function mask(family: 4 | 6, prefix: number): bigint {
  const bits = family === 4 ? 32n : 128n;
  if (prefix === 0) return 0n;
  return ((1n << bits) - 1n) ^ ((1n << (bits - BigInt(prefix))) - 1n);
}

function unmap(a: { family: 4 | 6; value: bigint }): { family: 4 | 6; value: bigint } {
  if (a.family === 6 && a.value >> 32n === 0xffffn) return { family: 4, value: a.value & 0xffffffffn };
  return a;
}

function parseIp(s: string): { family: 4 | 6; value: bigint } | null {
  // A zone index (fe80::1%eth0) names an interface, not part of the address.
  const ip = s.includes('%') ? s.slice(0, s.indexOf('%')) : s;
  if (isIPv4(ip)) return { family: 4, value: v4(ip) };
  if (!isIPv6(ip)) return null;
  let text = ip;
  const lastColon = text.lastIndexOf(':');
  const dotted = text.slice(lastColon + 1);
  if (dotted.includes('.')) {
    // The embedded IPv4 form (RFC 4291 2.2, form 3) is the last two 16-bit groups.
    if (!isIPv4(dotted)) return null;
    const n = v4(dotted);
    text = `${text.slice(0, lastColon + 1)}${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head, rest] = text.includes('::') ? text.split('::') : [text, undefined];
  const groups = (x: string | undefined): bigint[] =>
    x
      ? x
          .split(':')
          .filter((g) => g !== '')
          .map((g) => BigInt(`0x${g}`))
      : [];
  const h = groups(head);
  const r = groups(rest);
  const all = rest === undefined ? h : [...h, ...new Array<bigint>(Math.max(0, 8 - h.length - r.length)).fill(0n), ...r];
  if (all.length !== 8) return null;
  let value = 0n;
  for (const g of all) value = (value << 16n) | g;
  return { family: 6, value };
}

function v4(ip: string): bigint {
  return ip.split('.').reduce((acc, o) => (acc << 8n) | BigInt(Number(o)), 0n);
}
