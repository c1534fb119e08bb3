/**
 * The UDP Connection Request message (TR-069 Annex G.2.2): an HTTP GET carried in one UDP
 * datagram, its Request-URI the CPE's UDPConnectionRequestAddress with the query
 * `ts` (seconds since the epoch), `id` (message id, the same in every copy of one request),
 * `un` (ConnectionRequestUsername), `cn` (a random cnonce) and `sig`: HMAC-SHA1 keyed with the
 * ConnectionRequestPassword over the concatenation of ts, id, un and cn, in hex. The CPE checks
 * sig, ignores stale ts and repeated id, then opens a session with "6 CONNECTION REQUEST".
 * Pure: no I/O.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export interface UdpConnReqFields {
  ts: number;
  id: number;
  un: string;
  cn: string;
}

/** Bound on a message the CPE side accepts (one datagram; a real one is ~200 bytes). */
export const MAX_UDP_CONNREQ_BYTES = 1024;

export function udpConnReqSignature(f: UdpConnReqFields, password: string): string {
  return createHmac('sha1', password).update(`${f.ts}${f.id}${f.un}${f.cn}`).digest('hex').toUpperCase();
}

/** `authority` is the UDPConnectionRequestAddress ("host:port"; IPv6 in brackets). */
export function encodeUdpConnReq(authority: string, f: UdpConnReqFields, password: string): string {
  const q = `ts=${f.ts}&id=${f.id}&un=${encodeURIComponent(f.un)}&cn=${encodeURIComponent(f.cn)}&sig=${udpConnReqSignature(f, password)}`;
  return `GET http://${authority}?${q} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`;
}

export type UdpConnReqParse = { ok: true; fields: UdpConnReqFields; sig: string } | { ok: false; reason: string };

/** Parses a received message (the CPE's side). Never throws. */
export function parseUdpConnReq(data: Buffer): UdpConnReqParse {
  if (data.length > MAX_UDP_CONNREQ_BYTES) return { ok: false, reason: 'too long' };
  const text = data.toString('latin1');
  const line = text.split('\r\n', 1)[0]!;
  const m = /^GET (\S+) HTTP\/1\.1$/.exec(line);
  if (!m) return { ok: false, reason: 'not an HTTP/1.1 GET request line' };
  const qi = m[1]!.indexOf('?');
  if (qi < 0) return { ok: false, reason: 'no query' };
  let q: URLSearchParams;
  try {
    q = new URLSearchParams(m[1]!.slice(qi + 1));
  } catch {
    return { ok: false, reason: 'bad query' };
  }
  const ts = q.get('ts');
  const id = q.get('id');
  const un = q.get('un');
  const cn = q.get('cn');
  const sig = q.get('sig');
  if (!ts || !/^\d{1,12}$/.test(ts)) return { ok: false, reason: 'bad ts' };
  if (!id || !/^\d{1,10}$/.test(id)) return { ok: false, reason: 'bad id' };
  if (un === null || cn === null || !sig || !/^[0-9a-fA-F]{40}$/.test(sig)) return { ok: false, reason: 'missing un, cn or sig' };
  return { ok: true, fields: { ts: Number(ts), id: Number(id), un, cn }, sig };
}

/** Constant-time check of sig (hex case does not matter). */
export function verifyUdpConnReq(fields: UdpConnReqFields, sig: string, password: string): boolean {
  const want = Buffer.from(udpConnReqSignature(fields, password), 'hex');
  const got = Buffer.from(sig, 'hex');
  return got.length === want.length && timingSafeEqual(got, want);
}
