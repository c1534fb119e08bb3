/**
 * The common USP round trip without protobufjs's reflection: a NoSessionContext Record, a Get
 * request Msg, and a GetResp answer encoded with its Record into one buffer. Pure.
 *
 * Each decoder reads the wire once, straight into the object record.ts would build (same shape,
 * same proto3 implicit presence), and returns null for anything it does not take on: another
 * field, a field twice, a string that is not plain ASCII, a Record type other than
 * no_session_context. The caller then decodes with protobufjs, which gives every error its
 * message (R-ENC.2, R-ENC.3/4). So these only ever answer what protobufjs would answer.
 * The encoder writes the bytes protobufjs writes (fields by number, defaults left off, map
 * entries without an empty key or value as proto-load.ts does), measured in one pass and
 * written in a second, so the Msg is never copied into its Record.
 */

/** What a NoSessionContext Record carries (record.ts makes its UspRecord of it). */
export interface NoSessionParts {
  version: string;
  toId: string;
  fromId: string;
  payload: Uint8Array;
}

/** What a Get request carries (record.ts makes its Msg of it). */
export interface GetParts {
  msgId: string;
  paramPaths: string[];
  /** 0 when absent (proto3 default). */
  maxDepth: number;
}

/** A GetResp's requested path results, as record.ts's GetRequestedPathResult. */
export interface GetRespResult {
  requestedPath?: string;
  errCode?: number;
  errMsg?: string;
  resolvedPathResults: readonly { resolvedPath?: string; resultParams: { [name: string]: string } }[];
}

/** A cursor over one message's bytes. */
interface Cur {
  buf: Uint8Array;
  pos: number;
  end: number;
}

declare global {
  // Node's own fast paths behind toString('latin1') and write(s, 'utf8') (on Buffer.prototype since
  // Node 0.x, not in @types/node): declared here rather than cast.
  interface Buffer {
    latin1Slice(this: Uint8Array, start: number, end: number): string;
    utf8Write(this: Buffer, s: string, offset: number, length: number): number;
  }
}
/** Buffer's latin1 reader (C++), on a Uint8Array: the bytes were checked to be ASCII first. */
const latin1Slice = Buffer.prototype.latin1Slice;
/** Buffer's UTF-8 writer without the argument checks of write() (offset and length are ours). */
const utf8Write = Buffer.prototype.utf8Write;

/** A varint of at most 32 bits (tags, lengths, enums); -1 when longer or cut. */
function varint(c: Cur): number {
  let v = 0;
  for (let shift = 0; shift < 35; shift += 7) {
    if (c.pos >= c.end) return -1;
    const b = c.buf[c.pos++]!;
    v += (b & 0x7f) * 2 ** shift;
    if (b < 0x80) return v > 0xffffffff ? -1 : v;
  }
  return -1;
}

/** The end of a length-delimited field's bytes; -1 when cut. */
function lengthEnd(c: Cur): number {
  const n = varint(c);
  if (n < 0 || c.pos + n > c.end) return -1;
  return c.pos + n;
}

/** An ASCII string (the Endpoint IDs, paths and message ids in practice); null otherwise (protobufjs checks UTF-8). */
function ascii(buf: Uint8Array, start: number, end: number): string | null {
  for (let i = start; i < end; i++) if (buf[i]! >= 0x80) return null;
  return start === end ? '' : latin1Slice.call(buf, start, end);
}

/** The string of a length-delimited field at the cursor, or null. */
function str(c: Cur): string | null {
  const e = lengthEnd(c);
  if (e < 0) return null;
  const s = ascii(c.buf, c.pos, e);
  c.pos = e;
  return s;
}

/** A plain Uint8Array over part of `buf` (not a Buffer, as record.ts hands out; no copy). */
function view(buf: Uint8Array, start: number, end: number): Uint8Array {
  return new Uint8Array(buf.buffer, buf.byteOffset + start, end - start);
}

/** TR-369 versions accepted (record.ts ACCEPTED_VERSION). */
const ACCEPTED_VERSION = /^1\.[0-4]$/;

/**
 * A Record with version 1.0..1.4, to_id, from_id and a NoSessionContext payload, nothing else;
 * null for any other Record (decodeRecord then decodes it in full).
 */
export function decodeNoSessionRecord(bytes: Uint8Array): NoSessionParts | null {
  const c: Cur = { buf: bytes, pos: 0, end: bytes.length };
  let version: string | null = null;
  let toId: string | null = null;
  let fromId: string | null = null;
  let payload: Uint8Array | null = null;
  while (c.pos < c.end) {
    const tag = varint(c);
    if (tag === 0x20) {
      // payload_security PLAINTEXT written out (as protobufjs 7 and some controllers do): the default, as if absent.
      if (varint(c) !== 0) return null;
      continue;
    }
    if (tag < 0 || (tag & 7) !== 2) return null;
    const no = tag >>> 3;
    if (no === 7) {
      if (payload !== null) return null;
      const e = lengthEnd(c);
      if (e < 0) return null;
      const inner: Cur = { buf: bytes, pos: c.pos, end: e };
      payload = view(bytes, e, e);
      let seen = false;
      while (inner.pos < inner.end) {
        if (varint(inner) !== 0x12 || seen) return null; // field 2, bytes: the only field, once
        const pe = lengthEnd(inner);
        if (pe < 0) return null;
        payload = view(bytes, inner.pos, pe);
        inner.pos = pe;
        seen = true;
      }
      c.pos = e;
      continue;
    }
    const s = str(c);
    if (s === null) return null;
    if (no === 1 && version === null) version = s;
    else if (no === 2 && toId === null) toId = s;
    else if (no === 3 && fromId === null) fromId = s;
    else return null;
  }
  if (payload === null || version === null || !ACCEPTED_VERSION.test(version)) return null;
  return { version, toId: toId ?? '', fromId: fromId ?? '', payload };
}

/** A Get request Msg (header with msg_id and msg_type GET, param_paths, max_depth); null for any other Msg. */
export function decodeGetMsg(bytes: Uint8Array): GetParts | null {
  const c: Cur = { buf: bytes, pos: 0, end: bytes.length };
  let msgId: string | null = null;
  let msgType = -1;
  let paths: string[] | null = null;
  let maxDepth = 0;
  let header = false;
  while (c.pos < c.end) {
    const tag = varint(c);
    const e = tag === 0x0a || tag === 0x12 ? lengthEnd(c) : -1;
    if (e < 0) return null;
    if (tag === 0x0a) {
      if (header) return null;
      header = true;
      const h: Cur = { buf: bytes, pos: c.pos, end: e };
      while (h.pos < h.end) {
        const t = varint(h);
        if (t === 0x0a && msgId === null) msgId = str(h);
        else if (t === 0x10 && msgType < 0) msgType = varint(h);
        else return null;
        if (msgId === null && t === 0x0a) return null;
      }
    } else {
      if (paths !== null) return null;
      // body { request (1) { get (1) { ... } } }: each level exactly one field.
      const b: Cur = { buf: bytes, pos: c.pos, end: e };
      if (varint(b) !== 0x0a) return null;
      const re = lengthEnd(b);
      if (re !== b.end) return null;
      if (varint(b) !== 0x0a) return null;
      const ge = lengthEnd(b);
      if (ge !== b.end) return null;
      paths = [];
      let depthSeen = false;
      while (b.pos < ge) {
        const t = varint(b);
        if (t === 0x0a) {
          const p = str(b);
          if (p === null) return null;
          paths.push(p);
        } else if (t === 0x15 && !depthSeen && b.pos + 4 <= ge) {
          depthSeen = true;
          maxDepth = (bytes[b.pos]! | (bytes[b.pos + 1]! << 8) | (bytes[b.pos + 2]! << 16)) + bytes[b.pos + 3]! * 0x1000000;
          b.pos += 4;
        } else return null;
      }
    }
    c.pos = e;
  }
  if (!header || msgType !== 1 || paths === null) return null;
  return { msgId: msgId ?? '', paramPaths: paths, maxDepth };
}

// ------------------------------------------------------------------------------------------------
// GetResp Record encoding

/** Bytes of a varint. */
function varintSize(n: number): number {
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5;
}

/** Bytes of a length-delimited field (tag of one byte) holding n bytes. */
function fieldSize(n: number): number {
  return 1 + varintSize(n) + n;
}

/**
 * Sizes of the nested messages in the order they are written (measure pushes, write shifts):
 * the Record's payload, its Msg parts, each requested path result, each resolved path result and
 * map entry. Strings are measured once and kept with them.
 */
interface Plan {
  sizes: number[];
  strings: { s: string; n: number }[];
}

function strField(plan: Plan, s: string | undefined): number {
  if (s === undefined || s === '') return 0;
  const n = Buffer.byteLength(s, 'utf8');
  plan.strings.push({ s, n });
  return fieldSize(n);
}

/** The NoSessionContext Record of a GetResp Msg with these results. */
export function encodeGetRespRecord(version: string, fromId: string, toId: string, msgId: string, results: readonly GetRespResult[]): Uint8Array {
  const plan: Plan = { sizes: [], strings: [] };
  // Measure, in write order; a size is pushed before its content's sizes and strings.
  const sizeAt = (): number => plan.sizes.push(0) - 1;
  const recVersion = strField(plan, version);
  const recTo = strField(plan, toId);
  const recFrom = strField(plan, fromId);
  const nscAt = sizeAt();
  const payloadAt = sizeAt();
  const headerAt = sizeAt();
  let header = strField(plan, msgId);
  header += 2; // msg_type GET_RESP: tag 0x10, value 2
  plan.sizes[headerAt] = header;
  const bodyAt = sizeAt();
  const respAt = sizeAt();
  const getRespAt = sizeAt();
  let getResp = 0;
  for (const r of results) {
    const at = sizeAt();
    let n = strField(plan, r.requestedPath);
    if (r.errCode) n += 5;
    n += strField(plan, r.errMsg);
    for (const rp of r.resolvedPathResults) {
      const rat = sizeAt();
      let m = strField(plan, rp.resolvedPath);
      const params = rp.resultParams;
      for (const k in params) {
        const eat = sizeAt();
        const e = strField(plan, k) + strField(plan, params[k]!);
        plan.sizes[eat] = e;
        m += fieldSize(e);
      }
      plan.sizes[rat] = m;
      n += fieldSize(m);
    }
    plan.sizes[at] = n;
    getResp += fieldSize(n);
  }
  plan.sizes[getRespAt] = getResp;
  plan.sizes[respAt] = fieldSize(getResp);
  plan.sizes[bodyAt] = fieldSize(plan.sizes[respAt]!);
  const payload = fieldSize(header) + fieldSize(plan.sizes[bodyAt]!);
  plan.sizes[payloadAt] = payload;
  plan.sizes[nscAt] = fieldSize(payload);
  const total = recVersion + recTo + recFrom + fieldSize(plan.sizes[nscAt]!);

  // Write.
  const out = Buffer.allocUnsafe(total);
  let pos = 0;
  let si = 0;
  let ti = 0;
  const uv = (n: number): void => {
    while (n >= 0x80) {
      out[pos++] = (n & 0x7f) | 0x80;
      n = Math.floor(n / 128);
    }
    out[pos++] = n;
  };
  const s = (tag: number, v: string | undefined): void => {
    if (v === undefined || v === '') return;
    const { s: text, n } = plan.strings[ti++]!;
    out[pos++] = tag;
    uv(n);
    if (n === text.length && n <= 64) {
      // ASCII (as many bytes as characters) and short: byte by byte beats the native call.
      for (let i = 0; i < n; i++) out[pos + i] = text.charCodeAt(i);
      pos += n;
    } else pos += utf8Write.call(out, text, pos, n);
  };
  const msgField = (tag: number): void => {
    out[pos++] = tag;
    uv(plan.sizes[si++]!);
  };
  s(0x0a, version);
  s(0x12, toId);
  s(0x1a, fromId);
  msgField(0x3a); // no_session_context (7)
  msgField(0x12); // payload (2)
  msgField(0x0a); // Msg.header (1)
  s(0x0a, msgId);
  out[pos++] = 0x10;
  out[pos++] = 2;
  msgField(0x12); // Msg.body (2)
  msgField(0x12); // Body.response (2)
  msgField(0x0a); // Response.get_resp (1)
  for (const r of results) {
    msgField(0x0a); // req_path_results (1)
    s(0x0a, r.requestedPath);
    if (r.errCode) {
      out[pos++] = 0x15;
      out.writeUInt32LE(r.errCode >>> 0, pos);
      pos += 4;
    }
    s(0x1a, r.errMsg);
    for (const rp of r.resolvedPathResults) {
      msgField(0x22); // resolved_path_results (4)
      s(0x0a, rp.resolvedPath);
      const params = rp.resultParams;
      for (const k in params) {
        msgField(0x12); // result_params entry (2)
        s(0x0a, k);
        s(0x12, params[k]);
      }
    }
  }
  if (pos !== total) throw new Error(`GetResp Record encoding wrote ${pos} of ${total} bytes`);
  return new Uint8Array(out.buffer, out.byteOffset, total);
}
