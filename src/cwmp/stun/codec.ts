/**
 * STUN Binding messages (RFC 5389, and the classic RFC 3489 form TR-111 CPEs still send), with
 * the TR-111 attributes a CPE adds to its Binding Requests (TR-111 Part 2, 2.2.1):
 * CONNECTION-REQUEST-BINDING (the request keeps the NAT binding for UDP connection requests open)
 * and BINDING-CHANGE (the binding changed since the last one). Pure: bytes in, values out.
 *
 * Decoding never throws on a peer's bytes: it returns a reason instead.
 */

import { createHmac, timingSafeEqual } from 'node:crypto';

export const MAGIC_COOKIE = 0x2112a442;
export const HEADER_BYTES = 20;

/** Message types (RFC 5389 6: method Binding 0x001 with class request / success / error). */
export const BINDING_REQUEST = 0x0001;
export const BINDING_SUCCESS = 0x0101;
export const BINDING_ERROR = 0x0111;

/** Attribute types (RFC 5389 18.2; TR-111 Part 2, 2.2.1 for the 0xC00x ones). */
export const ATTR = {
  MAPPED_ADDRESS: 0x0001,
  RESPONSE_ADDRESS: 0x0002,
  CHANGE_REQUEST: 0x0003,
  USERNAME: 0x0006,
  MESSAGE_INTEGRITY: 0x0008,
  ERROR_CODE: 0x0009,
  XOR_MAPPED_ADDRESS: 0x0020,
  /** ICE (RFC 8445), understood as "ignored": a Binding Request from an ICE agent stays well-formed. */
  PRIORITY: 0x0024,
  USE_CANDIDATE: 0x0025,
  SOFTWARE: 0x8022,
  FINGERPRINT: 0x8028,
  CONNECTION_REQUEST_BINDING: 0xc001,
  BINDING_CHANGE: 0xc002,
} as const;

/** TR-111 Part 2, 2.2.1: the value of CONNECTION-REQUEST-BINDING, 20 bytes (the trailing space included). */
export const CONNECTION_REQUEST_BINDING_VALUE = 'dslforum.org/TR-111 ';

/** Comprehension-required attributes (< 0x8000) this codec understands; any other one makes a request malformed. */
const KNOWN_REQUIRED: ReadonlySet<number> = new Set([
  ATTR.MAPPED_ADDRESS,
  ATTR.RESPONSE_ADDRESS,
  ATTR.CHANGE_REQUEST,
  ATTR.USERNAME,
  ATTR.MESSAGE_INTEGRITY,
  ATTR.ERROR_CODE,
  ATTR.XOR_MAPPED_ADDRESS,
  ATTR.PRIORITY,
  ATTR.USE_CANDIDATE,
]);

/** Bound on the attributes of one message (a STUN message carries a handful). */
const MAX_ATTRIBUTES = 32;
/** RFC 5389 15.3: USERNAME is less than 513 bytes. */
const MAX_USERNAME_BYTES = 512;

export interface TransportAddress {
  family: 'IPv4' | 'IPv6';
  address: string;
  port: number;
}

export interface StunMessage {
  type: number;
  /** RFC 5389 message (magic cookie present); false: classic RFC 3489. */
  rfc5389: boolean;
  /** Bytes 4..20 of the header: cookie + 96-bit id (RFC 5389) or the 128-bit id (RFC 3489). */
  transactionId: Buffer;
  username?: string;
  connectionRequestBinding: boolean;
  bindingChange: boolean;
  messageIntegrity: boolean;
  /** Byte offset of the MESSAGE-INTEGRITY attribute in the datagram (for verifyMessageIntegrity). */
  integrityOffset?: number;
  /** XOR-MAPPED-ADDRESS, else MAPPED-ADDRESS (responses). */
  mappedAddress?: TransportAddress;
}

export type DecodeResult = { ok: true; message: StunMessage } | { ok: false; reason: string };

function pad4(n: number): number {
  return (n + 3) & ~3;
}

/** Decodes one STUN message (the whole datagram). */
export function decodeStun(buf: Buffer): DecodeResult {
  if (buf.length < HEADER_BYTES) return { ok: false, reason: 'shorter than a STUN header' };
  const type = buf.readUInt16BE(0);
  // RFC 5389 6: the two most significant bits are zero (tells STUN from other protocols on the port).
  if (type & 0xc000) return { ok: false, reason: 'not a STUN message' };
  const length = buf.readUInt16BE(2);
  if (length % 4 !== 0) return { ok: false, reason: 'length not a multiple of 4' };
  if (length !== buf.length - HEADER_BYTES) return { ok: false, reason: 'length does not match the datagram' };
  const rfc5389 = buf.readUInt32BE(4) === MAGIC_COOKIE;
  const transactionId = Buffer.from(buf.subarray(4, HEADER_BYTES));
  const message: StunMessage = { type, rfc5389, transactionId, connectionRequestBinding: false, bindingChange: false, messageIntegrity: false };
  let off = HEADER_BYTES;
  let count = 0;
  while (off < buf.length) {
    if (++count > MAX_ATTRIBUTES) return { ok: false, reason: 'too many attributes' };
    if (off + 4 > buf.length) return { ok: false, reason: 'truncated attribute header' };
    const at = buf.readUInt16BE(off);
    const len = buf.readUInt16BE(off + 2);
    const start = off + 4;
    if (start + len > buf.length) return { ok: false, reason: 'attribute runs past the end' };
    const value = buf.subarray(start, start + len);
    switch (at) {
      case ATTR.USERNAME:
        if (len > MAX_USERNAME_BYTES) return { ok: false, reason: 'USERNAME too long' };
        // RFC 3489 pads USERNAME with its own bytes; trailing NULs are padding either way.
        message.username = value.toString('utf8').replace(/\0+$/, '');
        break;
      case ATTR.CONNECTION_REQUEST_BINDING:
        message.connectionRequestBinding = true;
        break;
      case ATTR.BINDING_CHANGE:
        message.bindingChange = true;
        break;
      case ATTR.MESSAGE_INTEGRITY:
        if (len !== 20) return { ok: false, reason: 'MESSAGE-INTEGRITY is not 20 bytes' };
        if (message.messageIntegrity) return { ok: false, reason: 'two MESSAGE-INTEGRITY attributes' };
        message.messageIntegrity = true;
        message.integrityOffset = off;
        break;
      case ATTR.XOR_MAPPED_ADDRESS: {
        const a = decodeAddress(value, true, transactionId);
        if (!a) return { ok: false, reason: 'bad XOR-MAPPED-ADDRESS' };
        message.mappedAddress = a;
        break;
      }
      case ATTR.MAPPED_ADDRESS: {
        const a = decodeAddress(value, false, transactionId);
        if (!a) return { ok: false, reason: 'bad MAPPED-ADDRESS' };
        message.mappedAddress ??= a;
        break;
      }
      default:
        if (at < 0x8000 && !KNOWN_REQUIRED.has(at))
          return { ok: false, reason: `unknown comprehension-required attribute 0x${at.toString(16).padStart(4, '0')}` };
    }
    // RFC 5389 15: attributes are padded to a multiple of 4 bytes.
    off = start + pad4(len);
  }
  if (off !== buf.length) return { ok: false, reason: 'attribute padding runs past the end' };
  return { ok: true, message };
}

function decodeAddress(v: Buffer, xor: boolean, tid: Buffer): TransportAddress | undefined {
  if (v.length < 4) return undefined;
  const family = v[1];
  let port = v.readUInt16BE(2);
  if (xor) port ^= MAGIC_COOKIE >>> 16;
  if (family === 0x01 && v.length === 8) {
    const b = Buffer.from(v.subarray(4, 8));
    if (xor) for (let i = 0; i < 4; i++) b[i]! ^= tid[i]!;
    return { family: 'IPv4', address: [...b].join('.'), port };
  }
  if (family === 0x02 && v.length === 20) {
    const b = Buffer.from(v.subarray(4, 20));
    if (xor) for (let i = 0; i < 16; i++) b[i]! ^= tid[i]!;
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
    return { family: 'IPv6', address: groups.join(':'), port };
  }
  return undefined;
}

function ipv4Bytes(a: string): Buffer | undefined {
  const parts = a.split('.');
  if (parts.length !== 4) return undefined;
  const b = Buffer.alloc(4);
  for (let i = 0; i < 4; i++) {
    const n = Number(parts[i]);
    if (!/^\d{1,3}$/.test(parts[i]!) || n > 255) return undefined;
    b[i] = n;
  }
  return b;
}

function ipv6Bytes(a: string): Buffer | undefined {
  const clean = a.replace(/%.*$/, '');
  const [head, tail] = clean.split('::') as [string, string | undefined];
  if (clean.split('::').length > 2) return undefined;
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const missing = 8 - h.length - t.length;
  if (tail === undefined ? missing !== 0 : missing < 1) return undefined;
  const groups = [...h, ...Array<string>(tail === undefined ? 0 : missing).fill('0'), ...t];
  const b = Buffer.alloc(16);
  for (let i = 0; i < 8; i++) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(groups[i]!)) return undefined;
    b.writeUInt16BE(Number.parseInt(groups[i]!, 16), i * 2);
  }
  return b;
}

function addressValue(addr: TransportAddress, xor: boolean, tid: Buffer): Buffer {
  // An IPv4-mapped IPv6 source (dual-stack socket) is an IPv4 client.
  const v4 = addr.address.startsWith('::ffff:') && addr.address.includes('.') ? addr.address.slice(7) : addr.address;
  const raw = ipv4Bytes(v4) ?? ipv6Bytes(addr.address);
  if (!raw) throw new Error(`not an IP address: ${JSON.stringify(addr.address)}`);
  const v = Buffer.alloc(4 + raw.length);
  v[1] = raw.length === 4 ? 0x01 : 0x02;
  v.writeUInt16BE(xor ? addr.port ^ (MAGIC_COOKIE >>> 16) : addr.port, 2);
  for (let i = 0; i < raw.length; i++) v[4 + i] = xor ? raw[i]! ^ tid[i]! : raw[i]!;
  return v;
}

function attribute(type: number, value: Buffer): Buffer {
  const out = Buffer.alloc(4 + pad4(value.length));
  out.writeUInt16BE(type, 0);
  out.writeUInt16BE(value.length, 2);
  value.copy(out, 4);
  return out;
}

function message(type: number, tid: Buffer, attrs: Buffer[]): Buffer {
  const body = Buffer.concat(attrs);
  const head = Buffer.alloc(HEADER_BYTES);
  head.writeUInt16BE(type, 0);
  head.writeUInt16BE(body.length, 2);
  tid.copy(head, 4, 0, 16);
  return Buffer.concat([head, body]);
}

/**
 * The Binding success response to `request`: XOR-MAPPED-ADDRESS for an RFC 5389 client,
 * MAPPED-ADDRESS for a classic RFC 3489 one (which does not know the XOR form). Nothing else,
 * so the response stays small: 32 bytes for IPv4, 44 for IPv6.
 */
export function encodeBindingResponse(request: StunMessage, source: TransportAddress): Buffer {
  const xor = request.rfc5389;
  return message(BINDING_SUCCESS, request.transactionId, [
    attribute(xor ? ATTR.XOR_MAPPED_ADDRESS : ATTR.MAPPED_ADDRESS, addressValue(source, xor, request.transactionId)),
  ]);
}

export interface BindingRequestFields {
  /** 16 bytes: cookie + 96-bit id for RFC 5389 (see newTransactionId). */
  transactionId: Buffer;
  username?: string;
  connectionRequestBinding?: boolean;
  bindingChange?: boolean;
  /** STUNPassword: adds MESSAGE-INTEGRITY (TR-111 Part 2, 2.2.1). */
  password?: string;
}

/** A Binding Request as a TR-111 CPE sends it (the simulator's side, and tests). */
export function encodeBindingRequest(f: BindingRequestFields): Buffer {
  const attrs: Buffer[] = [];
  if (f.username !== undefined) attrs.push(attribute(ATTR.USERNAME, Buffer.from(f.username, 'utf8')));
  if (f.connectionRequestBinding) attrs.push(attribute(ATTR.CONNECTION_REQUEST_BINDING, Buffer.from(CONNECTION_REQUEST_BINDING_VALUE, 'ascii')));
  if (f.bindingChange) attrs.push(attribute(ATTR.BINDING_CHANGE, Buffer.alloc(0)));
  const unsigned = message(BINDING_REQUEST, f.transactionId, attrs);
  if (!f.password) return unsigned;
  const rfc5389 = f.transactionId.readUInt32BE(0) === MAGIC_COOKIE;
  const mi = integrityOf(unsigned, unsigned.length, f.password, rfc5389);
  const signed = Buffer.concat([unsigned, attribute(ATTR.MESSAGE_INTEGRITY, mi)]);
  signed.writeUInt16BE(signed.length - HEADER_BYTES, 2);
  // RFC 3489 signs the message as sent (length included): sign again with the final length.
  if (!rfc5389) integrityOf(signed, unsigned.length, f.password, false).copy(signed, unsigned.length + 4);
  return signed;
}

/**
 * MESSAGE-INTEGRITY over buf[0, offset) (RFC 5389 15.4: HMAC-SHA1 keyed with the short-term
 * password, over the message up to the attribute, the header length counting up to its end;
 * RFC 3489 11.2.8: over the message as sent up to the attribute, zero-padded to 64 bytes).
 */
function integrityOf(buf: Buffer, offset: number, password: string, rfc5389: boolean): Buffer {
  const text = Buffer.from(buf.subarray(0, offset));
  if (rfc5389) text.writeUInt16BE(offset + 24 - HEADER_BYTES, 2);
  const padded = rfc5389 ? text : Buffer.concat([text, Buffer.alloc((64 - (text.length % 64)) % 64)]);
  return createHmac('sha1', password).update(padded).digest();
}

/** Whether the decoded message's MESSAGE-INTEGRITY is right for this password (false when it has none). */
export function verifyMessageIntegrity(buf: Buffer, m: StunMessage, password: string): boolean {
  if (m.integrityOffset === undefined) return false;
  const got = buf.subarray(m.integrityOffset + 4, m.integrityOffset + 24);
  return timingSafeEqual(got, integrityOf(buf, m.integrityOffset, password, m.rfc5389));
}

/** A fresh RFC 5389 transaction id (the cookie followed by 96 random bits). */
export function newTransactionId(random: (n: number) => Buffer): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt32BE(MAGIC_COOKIE, 0);
  random(12).copy(b, 4);
  return b;
}
