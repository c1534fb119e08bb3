// The Get round trip read and written without protobufjs's reflection (src/usp/codec/wire-fast.ts):
// on the obuspa captures (../shared/reference/usp-samples) the readers give what protobufjs gives or
// step aside, the GetResp writer gives protobufjs's bytes (and obuspa's), and anything unusual
// (a repeated field, an unknown one, a Session Context, TLS12, non-ASCII or bad UTF-8) is left to
// protobufjs, so its errors are unchanged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type protobuf from 'protobufjs';
import { REFERENCE, hasReference } from '../helpers/paths.js';
import { decodeMsg, decodeRecord, encodeNoSessionRecord, encodeRecord, type Msg, noSessionRecord, UspRecordError } from '../../src/usp/codec/record.js';
import { decodeGetMsg, decodeNoSessionRecord, encodeGetRespRecord } from '../../src/usp/codec/wire-fast.js';
import { uspRoot } from '../../src/usp/codec/proto-load.js';

const SAMPLES = path.join(REFERENCE, 'usp-samples');
const skipSamples = hasReference('usp-samples') ? false : 'obuspa captures not found in ../shared/reference/usp-samples';
const TO_OBJECT: protobuf.IConversionOptions = { enums: String, arrays: true, objects: true, oneofs: true, defaults: false };
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** protobufjs's own reading of a Msg, as decodeMsg gave it before wire-fast. */
function slowMsg(bytes: Uint8Array): Record<string, unknown> {
  const T = uspRoot().lookupType('usp.Msg');
  return T.toObject(T.decode(bytes), TO_OBJECT);
}

test('obuspa captures: the wire-fast readers give what protobufjs gives, or step aside', { skip: skipSamples }, () => {
  const files = readdirSync(SAMPLES).filter((f) => f.endsWith('.bin'));
  const T = uspRoot().lookupType('usp_record.Record');
  let records = 0;
  let gets = 0;
  for (const file of files) {
    const bin = new Uint8Array(readFileSync(path.join(SAMPLES, file)));
    const slow = T.toObject(T.decode(bin), { ...TO_OBJECT, bytes: Array }) as Record<string, unknown>;
    const fast = decodeNoSessionRecord(bin);
    if (!slow.noSessionContext) {
      assert.equal(fast, null, `${file}: not a NoSessionContext Record, left to protobufjs`);
      continue;
    }
    assert.ok(fast, `${file}: a plain NoSessionContext Record is read by wire-fast`);
    records++;
    assert.equal(fast.version, slow.version);
    assert.equal(fast.toId, slow.toId);
    assert.equal(fast.fromId, slow.fromId);
    assert.deepEqual([...fast.payload], (slow.noSessionContext as { payload?: number[] }).payload ?? []);
    assert.equal(Object.getPrototypeOf(fast.payload), Uint8Array.prototype, 'a plain Uint8Array, as record.ts hands out');
    const msg = slowMsg(fast.payload) as { header: { msgId?: string; msgType?: string }; body: unknown };
    const get = decodeGetMsg(fast.payload);
    if (msg.header.msgType !== 'GET') {
      assert.equal(get, null, `${file}: only a Get is read by wire-fast`);
      continue;
    }
    gets++;
    assert.ok(get, `${file}: a Get is read by wire-fast`);
    assert.deepEqual(decodeMsg(fast.payload), { header: { msgId: msg.header.msgId ?? '', msgType: 'GET' }, body: msg.body });
  }
  assert.ok(records >= 40 && gets >= 5, `${records} Records and ${gets} Gets of the captures went through wire-fast`);
});

test('obuspa captures: each GetResp obuspa wrote is written back byte for byte', { skip: skipSamples }, () => {
  let n = 0;
  for (const file of readdirSync(SAMPLES).filter((f) => f.endsWith('.response.bin'))) {
    const bin = new Uint8Array(readFileSync(path.join(SAMPLES, file)));
    const rec = decodeRecord(bin);
    if (rec.recordType.kind !== 'noSessionContext') continue;
    const msg = decodeMsg(rec.recordType.payload);
    const results = msg.body.response?.getResp?.reqPathResults;
    if (msg.header.msgType !== 'GET_RESP' || !results) continue;
    assert.equal(hex(encodeGetRespRecord(rec.version, rec.fromId, rec.toId, msg.header.msgId, results)), hex(bin), file);
    n++;
  }
  assert.ok(n >= 3, `${n} GetResp captures`);
});

function getResp(msgId: string, results: NonNullable<Msg['body']['response']>['getResp']): Msg {
  return { header: { msgId, msgType: 'GET_RESP' }, body: { msgBody: 'response', response: { respType: 'getResp', getResp: results } } };
}

test('a GetResp Record is written as protobufjs writes it: errors, empty keys and values, non-ASCII, long strings', () => {
  const long = 'x'.repeat(200);
  const huge = 'v'.repeat(20_000);
  const cases: Msg[] = [
    getResp('', { reqPathResults: [] }),
    getResp('g-1', {
      reqPathResults: [
        {
          requestedPath: 'Device.LocalAgent.EndpointID',
          resolvedPathResults: [{ resolvedPath: 'Device.LocalAgent.', resultParams: { EndpointID: 'os::00D09E-SN1' } }],
        },
      ],
    }),
    getResp('g-2', {
      reqPathResults: [
        { requestedPath: 'Device.Nope.', errCode: 7026, errMsg: 'invalid path', resolvedPathResults: [] },
        {
          requestedPath: 'Device.WiFi.SSID.*.',
          resolvedPathResults: [{ resolvedPath: 'Device.WiFi.SSID.1.', resultParams: { SSID: 'Café ☕', Enable: 'true', Empty: '', '': 'no key' } }],
        },
        { requestedPath: long, errCode: 0, resolvedPathResults: [{ resolvedPath: long, resultParams: { [long]: huge } }] },
      ],
    }),
  ];
  for (const msg of cases) {
    assert.equal(
      hex(encodeNoSessionRecord('os::00D09E-SN1', 'proto::ctrl', msg)),
      hex(encodeRecord(noSessionRecord('os::00D09E-SN1', 'proto::ctrl', msg))),
      msg.header.msgId,
    );
    const back = decodeRecord(encodeNoSessionRecord('os::00D09E-SN1', 'proto::ctrl', msg));
    assert.equal(back.recordType.kind, 'noSessionContext');
    if (back.recordType.kind === 'noSessionContext')
      assert.deepEqual(decodeMsg(back.recordType.payload).body.response?.getResp, msg.body.response?.getResp && normalised(msg));
  }
});

/** What a decode gives back: err_code 0 and empty strings absent (proto3 defaults). */
function normalised(msg: Msg): unknown {
  return {
    reqPathResults: msg.body.response!.getResp!.reqPathResults.map((r) => ({
      ...(r.requestedPath ? { requestedPath: r.requestedPath } : {}),
      ...(r.errCode ? { errCode: r.errCode } : {}),
      ...(r.errMsg ? { errMsg: r.errMsg } : {}),
      resolvedPathResults: r.resolvedPathResults.map((p) => ({ ...(p.resolvedPath ? { resolvedPath: p.resolvedPath } : {}), resultParams: p.resultParams })),
    })),
  };
}

/** Bytes of one protobuf field: tag, then a length and the bytes, or a varint. */
const field = (no: number, v: Uint8Array | string | number): number[] => {
  if (typeof v === 'number') return [no << 3, v];
  const b = typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
  return [(no << 3) | 2, b.length, ...b];
};
const bytes = (...parts: number[][]): Uint8Array => new Uint8Array(parts.flat());

test('anything but the plain case is left to protobufjs, whose errors stay as they were', () => {
  const getMsg = bytes(field(1, bytes(field(1, 'g1'), field(2, 1))), field(2, bytes(field(1, bytes(field(1, bytes(field(1, 'Device.')))))))); // Get Device.
  const rec = (...extra: number[][]): Uint8Array => bytes(field(1, '1.4'), field(2, 'os::A'), field(3, 'proto::c'), ...extra);
  assert.ok(decodeNoSessionRecord(rec(field(7, bytes(field(2, getMsg))))), 'the plain case');
  assert.ok(decodeGetMsg(getMsg));
  // Record: TLS12, a Session Context, a repeated to_id, an unknown field, non-ASCII, a bad version.
  for (const [what, r] of [
    ['payload_security TLS12', rec(field(4, 1), field(7, bytes(field(2, getMsg))))],
    ['session context', rec(field(8, bytes(field(1, 1))))],
    ['to_id twice', rec(field(2, 'os::B'), field(7, bytes(field(2, getMsg))))],
    ['unknown field', rec(field(15, 'x'), field(7, bytes(field(2, getMsg))))],
    ['non-ASCII from_id', bytes(field(1, '1.4'), field(2, 'os::A'), field(3, 'proto::é'), field(7, bytes(field(2, getMsg))))],
    ['version 2.0', bytes(field(1, '2.0'), field(2, 'os::A'), field(3, 'proto::c'), field(7, bytes(field(2, getMsg))))],
  ] as const)
    assert.equal(decodeNoSessionRecord(r), null, what);
  assert.throws(
    () => decodeRecord(bytes(field(1, '2.0'), field(2, 'os::A'), field(7, bytes()))),
    (e: unknown) => e instanceof UspRecordError && e.kind === 'unsupported-version',
  );
  assert.equal(decodeRecord(rec(field(3, 'proto::é'), field(7, bytes(field(2, getMsg))))).recordType.kind, 'noSessionContext');
  assert.throws(
    () => decodeRecord(rec(field(4, 1), field(7, bytes(field(2, getMsg))))),
    (e: unknown) => e instanceof UspRecordError && e.kind === 'bad-payload-security',
  );
  assert.throws(
    () => decodeRecord(rec(field(7, bytes()), field(9, bytes()))),
    (e: unknown) => e instanceof UspRecordError && /2 record_types/.test(e.message),
  );
  // Msg: another type, a repeated header, an unknown field, invalid UTF-8 in a path.
  const header = field(1, bytes(field(1, 'g1'), field(2, 1)));
  const body = (get: Uint8Array): number[] => field(2, bytes(field(1, bytes(field(1, get)))));
  assert.equal(
    decodeGetMsg(bytes(field(1, bytes(field(1, 'g1'), field(2, 17))), field(2, bytes(field(1, bytes(field(17, bytes()))))))),
    null,
    'GetSupportedProtocol',
  );
  assert.equal(decodeGetMsg(bytes(header, header, body(bytes(field(1, 'Device.'))))), null, 'header twice');
  assert.equal(decodeGetMsg(bytes(header, body(bytes(field(1, 'Device.'), field(3, 1))))), null, 'unknown Get field');
  const badUtf8 = bytes(header, body(new Uint8Array([10, 2, 0xc3, 0x28])));
  assert.equal(decodeGetMsg(badUtf8), null);
  assert.throws(
    () => decodeMsg(badUtf8),
    (e: unknown) => e instanceof UspRecordError && e.kind === 'malformed-msg',
  );
  // A Get with max_depth: read by wire-fast, as protobufjs reads it.
  const deep = bytes(header, body(bytes(field(1, 'Device.'), [0x15, 3, 0, 0, 0])));
  assert.deepEqual(decodeMsg(deep), { header: { msgId: 'g1', msgType: 'GET' }, body: slowMsg(deep).body });
  assert.equal(decodeGetMsg(deep)?.maxDepth, 3);
});

// Hostile bytes: on any Get Record protobufjs writes, and on the same bytes cut, flipped or grown,
// the fast readers never throw and either step aside or give exactly what protobufjs reads.
test('property: random and corrupted Get Records: wire-fast steps aside or agrees with protobufjs', () => {
  const RecordT = uspRoot().lookupType('usp_record.Record');
  const MsgT = uspRoot().lookupType('usp.Msg');
  const text = fc.oneof(fc.string({ maxLength: 40 }), fc.stringMatching(/^[A-Za-z0-9.:*_-]{0,40}$/));
  const getRecord = fc
    .record({ msgId: text, paths: fc.array(text, { maxLength: 5 }), maxDepth: fc.nat(4), toId: text, fromId: text })
    .map(({ msgId, paths, maxDepth, toId, fromId }) => {
      const msg = MsgT.encode(MsgT.fromObject({ header: { msgId, msgType: 'GET' }, body: { request: { get: { paramPaths: paths, maxDepth } } } })).finish();
      return RecordT.encode(RecordT.fromObject({ version: '1.3', toId, fromId, noSessionContext: { payload: msg } })).finish();
    });
  const corrupt = fc.tuple(getRecord, fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom('cut', 'flip', 'grow')).map(([b, at, byte, how]) => {
    const i = b.length === 0 ? 0 : at % b.length;
    if (how === 'cut') return b.slice(0, i);
    const c = new Uint8Array(how === 'grow' ? b.length + 1 : b.length);
    c.set(b);
    c[how === 'grow' ? b.length : i] = byte;
    return c;
  });
  fc.assert(
    fc.property(fc.oneof(getRecord, corrupt), (bin) => {
      const fast = decodeNoSessionRecord(bin);
      if (fast === null) return;
      let slow: Record<string, unknown>;
      try {
        slow = RecordT.toObject(RecordT.decode(bin), { ...TO_OBJECT, bytes: Array }) as Record<string, unknown>;
      } catch {
        assert.fail(`wire-fast read a Record protobufjs refuses: ${hex(bin)}`);
      }
      assert.equal(fast.toId, slow.toId ?? '');
      assert.equal(fast.fromId, slow.fromId ?? '');
      assert.deepEqual([...fast.payload], (slow.noSessionContext as { payload?: number[] } | undefined)?.payload ?? []);
      const get = decodeGetMsg(fast.payload);
      if (get === null) return;
      let msg: { header?: { msgId?: string; msgType?: string }; body?: { request?: { get?: { paramPaths?: string[]; maxDepth?: number } } } };
      try {
        msg = slowMsg(fast.payload) as typeof msg;
      } catch {
        assert.fail(`wire-fast read a Get protobufjs refuses: ${hex(fast.payload)}`);
      }
      assert.equal(msg.header?.msgType, 'GET');
      assert.equal(get.msgId, msg.header?.msgId ?? '');
      assert.deepEqual(get.paramPaths, msg.body?.request?.get?.paramPaths ?? []);
      assert.equal(get.maxDepth, msg.body?.request?.get?.maxDepth ?? 0);
    }),
    { numRuns: 2000 },
  );
});
