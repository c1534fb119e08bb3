import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import protobuf from 'protobufjs';
import { REFERENCE, hasReference } from '../helpers/paths.js';
import {
  MsgType,
  UspRecordError,
  connectRecord,
  decodeMsg,
  decodeRecord,
  disconnectRecord,
  encodeMsg,
  encodeRecord,
  errorMsg,
  isErrorWithoutBody,
  isValidEndpointIdSyntax,
  noSessionRecord,
  recordErrorDecision,
  type Msg,
  type RecordErrorContext,
  type UspRecord,
} from '../../src/usp/codec/record.js';
import { UspError, UspErrorCode, errorCodeName } from '../../src/usp/errors.js';
import { uspRoot } from '../../src/usp/codec/proto-load.js';

const AGENT = 'os::00D09E-SN0001';
const CTRL = 'proto::controller';
const SAMPLES = path.join(REFERENCE, 'usp-samples');
const skipSamples = hasReference('usp-samples') ? false : 'obuspa captures not found in ../shared/reference/usp-samples';
const sample = (f: string): Uint8Array => new Uint8Array(readFileSync(path.join(SAMPLES, f)));

const getMsg: Msg = {
  header: { msgId: 'g-1', msgType: 'GET' },
  body: { msgBody: 'request', request: { reqType: 'get', get: { paramPaths: ['Device.DeviceInfo.SerialNumber'] } } },
};

/** Raw Msg/Record bytes with exactly the fields given (protobufjs object form, numbers for enums). */
function rawMsg(obj: object): Uint8Array {
  const T = uspRoot().lookupType('usp.Msg');
  return T.encode(T.fromObject(obj)).finish();
}
function rawRecord(obj: object): Uint8Array {
  const T = uspRoot().lookupType('usp_record.Record');
  return T.encode(T.fromObject(obj)).finish();
}

function expectRecordError(fn: () => unknown, kind: UspRecordError['kind'], code?: number): UspRecordError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof UspRecordError, `expected UspRecordError, got ${String(e)}`);
    assert.equal(e.kind, kind, e.message);
    if (code !== undefined) assert.equal(e.code, code);
    return e;
  }
  assert.fail(`expected UspRecordError ${kind}`);
}

test('Msg and Record round trip', () => {
  assert.deepEqual(decodeMsg(encodeMsg(getMsg)), getMsg);
  const rec = noSessionRecord(AGENT, CTRL, getMsg);
  assert.equal(rec.version, '1.4');
  assert.equal(rec.payloadSecurity, undefined, 'PLAINTEXT is the default: not on the wire');
  const back = decodeRecord(encodeRecord(rec));
  assert.deepEqual(back, rec);
  assert.ok(back.recordType.kind === 'noSessionContext');
  assert.deepEqual(decodeMsg(back.recordType.payload), getMsg);
  assert.equal(MsgType.GET_SUPPORTED_DM_RESP, 'GET_SUPPORTED_DM_RESP');
});

test('version: 1.0 .. 1.4 accepted, anything else is unsupported-version', () => {
  for (const version of ['1.0', '1.1', '1.2', '1.3', '1.4']) {
    assert.equal(decodeRecord(encodeRecord({ ...connectRecord('websocket', AGENT, CTRL), version })).version, version);
  }
  for (const version of ['2.0', '1.5', '1.10', '0.9', '1', '1.4.0', 'garbage', '', ' 1.4']) {
    expectRecordError(() => decodeRecord(encodeRecord({ ...connectRecord('websocket', AGENT, CTRL), version })), 'unsupported-version', 7104);
  }
});

test('obuspa writes version 1.3: accepted', { skip: skipSamples }, () => {
  assert.equal(decodeRecord(sample('02-mqtt-get-endpointid.response.bin')).version, '1.3');
});

test('a Msg without msg_type decodes as ERROR; isErrorWithoutBody tells a malformed one apart', { skip: skipSamples }, () => {
  const m = decodeMsg(rawMsg({ header: { msgId: 'x' }, body: { request: { get: { paramPaths: ['Device.'] } } } }));
  assert.equal(m.header.msgType, 'ERROR');
  assert.equal(isErrorWithoutBody(m), true);
  const noBody = decodeMsg(rawMsg({ header: { msgId: 'y' } }));
  assert.deepEqual(noBody, { header: { msgId: 'y', msgType: 'ERROR' }, body: {} });
  assert.equal(isErrorWithoutBody(noBody), true);
  const rec = decodeRecord(sample('07-mqtt-add-subscription-error.response.bin'));
  assert.ok(rec.recordType.kind === 'noSessionContext');
  const err = decodeMsg(rec.recordType.payload);
  assert.equal(err.header.msgType, 'ERROR');
  assert.equal(err.body.msgBody, 'error');
  assert.equal(isErrorWithoutBody(err), false);
  assert.equal(isErrorWithoutBody(getMsg), false);
});

test("errorMsg builds obuspa's Error Msg byte for byte (no msg_type on the wire)", { skip: skipSamples }, () => {
  const rec = decodeRecord(sample('07-mqtt-add-subscription-error.response.bin'));
  assert.ok(rec.recordType.kind === 'noSessionContext');
  const e = decodeMsg(rec.recordType.payload).body.error!;
  const built = errorMsg('07-mqtt-add-subscription-error', 7004, e.errMsg, e.paramErrs);
  assert.deepEqual(encodeMsg(built), rec.recordType.payload);
  assert.equal(errorMsg('m', 7026).body.error!.errMsg, 'Invalid path');
});

test("connect builders give obuspa's Connect Records byte for byte", { skip: skipSamples }, () => {
  const obuspa = 'proto::obuspa-agent';
  const ctrl = 'proto::sample-controller';
  const v13 = (r: UspRecord): UspRecord => ({ ...r, version: '1.3' });
  assert.deepEqual(encodeRecord(v13(connectRecord('mqtt', obuspa, ctrl, { subscribedTopic: '/usp/agent' }))), sample('01-mqtt-connect.record.bin'));
  assert.deepEqual(
    encodeRecord(v13(connectRecord('stomp', obuspa, ctrl, { subscribedDestination: '/queue/usp.agent' }))),
    sample('21-stomp-connect.record.bin'),
  );
  assert.deepEqual(encodeRecord(v13(connectRecord('websocket', obuspa, ctrl))), sample('25-ws-client-websocket-connect.record.bin'));
  const d = decodeRecord(encodeRecord(disconnectRecord(AGENT, CTRL, 'shutting down', 7105)));
  assert.deepEqual(d.recordType, { kind: 'disconnect', reason: 'shutting down', reasonCode: 7105 });
});

test('malformed Records and Msgs throw UspRecordError with the right kind', () => {
  const good = encodeRecord(noSessionRecord(AGENT, CTRL, getMsg));
  for (let n = 1; n < good.length; n++) {
    expectRecordError(() => decodeRecord(good.subarray(0, n)), 'malformed-record');
  }
  // R-ENC.3: exactly one record_type
  expectRecordError(() => decodeRecord(rawRecord({ version: '1.4', toId: AGENT, fromId: CTRL })), 'malformed-record', 7100);
  expectRecordError(() => decodeRecord(rawRecord({ version: '1.4', toId: AGENT, fromId: CTRL, websocketConnect: {}, udsConnect: {} })), 'malformed-record');
  // payload_security: unknown value (R-ENC.2), TLS12 without Session Context (R-E2E.41)
  expectRecordError(
    () => decodeRecord(rawRecord({ version: '1.4', toId: AGENT, fromId: CTRL, payloadSecurity: 7, noSessionContext: { payload: encodeMsg(getMsg) } })),
    'bad-payload-security',
    7104,
  );
  expectRecordError(
    () => decodeRecord(rawRecord({ version: '1.4', toId: AGENT, fromId: CTRL, payloadSecurity: 1, noSessionContext: { payload: encodeMsg(getMsg) } })),
    'bad-payload-security',
    7102,
  );
  expectRecordError(() => decodeRecord(rawRecord({ version: '1.4', toId: AGENT, fromId: CTRL, mqttConnect: { version: 9 } })), 'malformed-record', 7104);
  // Msg
  const msgBytes = encodeMsg(getMsg);
  for (let n = 1; n < msgBytes.length; n++) {
    // a cut at a field boundary is a valid (shorter) Msg; anywhere else it is malformed
    try {
      assert.notDeepEqual(decodeMsg(msgBytes.subarray(0, n)), getMsg);
    } catch (e) {
      assert.ok(e instanceof UspRecordError && e.kind === 'malformed-msg', String(e));
    }
  }
  expectRecordError(() => decodeMsg(new Uint8Array(0)), 'malformed-msg'); // no header
  expectRecordError(() => decodeMsg(rawMsg({ header: { msgId: 'x', msgType: 99 } })), 'malformed-msg', 7004);
  expectRecordError(
    () =>
      decodeMsg(
        rawMsg({ header: { msgId: 'x', msgType: 13 }, body: { response: { getSupportedDmResp: { reqObjResults: [{ supportedObjs: [{ access: 42 }] }] } } } }),
      ),
    'malformed-msg',
    7004,
  );
});

test('property: decodeRecord and decodeMsg throw nothing but UspRecordError on arbitrary bytes', () => {
  const good = encodeRecord(noSessionRecord(AGENT, CTRL, getMsg));
  const check = (bytes: Uint8Array): void => {
    for (const fn of [decodeRecord, decodeMsg]) {
      try {
        fn(bytes);
      } catch (e) {
        if (!(e instanceof UspRecordError)) throw e;
      }
    }
  };
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (b) => check(b)),
    { numRuns: 2000 },
  );
  // mutations of a valid Record reach deeper into the decoder than random bytes
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.nat(good.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), fc.nat(good.length), (edits, cut) => {
      const b = good.slice(0, Math.max(cut, 1));
      for (const [i, v] of edits) if (i < b.length) b[i] = v;
      check(b);
    }),
    { numRuns: 2000 },
  );
});

// ---------------------------------------------------------------------------------------------
// R-MTP.5

const ctx: RecordErrorContext = { isOwnEndpointId: (id) => id === AGENT, returnPathKnown: true };

function decideFor(bytes: Uint8Array, c: RecordErrorContext = ctx): ReturnType<typeof recordErrorDecision> {
  try {
    const r = decodeRecord(bytes);
    if (r.recordType.kind === 'noSessionContext') decodeMsg(r.recordType.payload);
    if (r.recordType.kind === 'sessionContext') throw new UspError(7106);
  } catch (e) {
    return recordErrorDecision(bytes, e, c);
  }
  assert.fail('expected the Record to be rejected');
}

const badVersion = (msg: Msg | Uint8Array, over: Partial<UspRecord> = {}): Uint8Array =>
  encodeRecord({
    version: '9.9',
    toId: AGENT,
    fromId: CTRL,
    ...over,
    recordType: { kind: 'noSessionContext', payload: msg instanceof Uint8Array ? msg : encodeMsg(msg) },
  });

test('R-MTP.5: a Request with a readable header, from a valid EID, to us, with a return path, gets an Error', () => {
  assert.deepEqual(decideFor(badVersion(getMsg)), {
    action: 'reply-error',
    fromId: AGENT,
    toId: CTRL,
    msgId: 'g-1',
    code: 7104,
    message: 'unsupported USP Record version "9.9" (accepted: 1.0 .. 1.4)',
  });
  // Msg whose header is fine but whose body is cut off: the msg_id can still be extracted
  const msgBytes = encodeMsg(getMsg);
  const cut = encodeRecord({
    version: '1.4',
    toId: AGENT,
    fromId: CTRL,
    recordType: { kind: 'noSessionContext', payload: msgBytes.subarray(0, msgBytes.length - 3) },
  });
  const d = decideFor(cut);
  assert.equal(d.action, 'reply-error');
  assert.ok(d.action === 'reply-error' && d.msgId === 'g-1' && d.code === 7100);
  // Notify is a Request too
  const notify: Msg = {
    header: { msgId: 'n-1', msgType: 'NOTIFY' },
    body: { msgBody: 'request', request: { reqType: 'notify', notify: { subscriptionId: 's' } } },
  };
  assert.equal(decideFor(badVersion(notify)).action, 'reply-error');
});

test('R-MTP.5: otherwise the Record is ignored', () => {
  const drop = (d: ReturnType<typeof recordErrorDecision>, re: RegExp): void => {
    assert.equal(d.action, 'drop');
    assert.match((d as { reason: string }).reason, re);
  };
  drop(decideFor(badVersion(getMsg, { fromId: 'not an endpoint id' })), /source Endpoint ID/);
  drop(decideFor(badVersion(getMsg, { fromId: '' })), /source Endpoint ID/);
  drop(decideFor(badVersion(getMsg, { toId: 'os::someone-else' })), /destination/);
  drop(decideFor(badVersion(getMsg), { ...ctx, returnPathKnown: false }), /return path/);
  drop(
    decideFor(
      badVersion({
        header: { msgId: 'r-1', msgType: 'GET_RESP' },
        body: { msgBody: 'response', response: { respType: 'getResp', getResp: { reqPathResults: [] } } },
      }),
    ),
    /not a Request/,
  );
  drop(decideFor(badVersion(errorMsg('e-1', 7000))), /not a Request/);
  drop(decideFor(badVersion({ header: { msgId: '', msgType: 'GET' }, body: getMsg.body })), /Message ID/);
  drop(decideFor(badVersion(new Uint8Array([0xff, 0xff, 0xff]))), /Message ID/);
  drop(decideFor(badVersion(rawMsg({ body: { request: { get: {} } } }))), /Message ID/);
  // Record cut before from_id: cannot tell the source
  const full = badVersion(getMsg);
  drop(decideFor(full.subarray(0, 8)), /source Endpoint ID/);
  // Connect Records carry no Message
  drop(decideFor(encodeRecord({ ...connectRecord('websocket', CTRL, AGENT), version: '7' })), /no USP Message/);
  // R-ENC.4: no / two record_types -> discarded
  drop(decideFor(rawRecord({ version: '1.4', toId: AGENT, fromId: CTRL })), /R-ENC.4/);
  drop(decideFor(rawRecord({ version: '1.4', toId: AGENT, fromId: CTRL, noSessionContext: { payload: encodeMsg(getMsg) }, udsConnect: {} })), /R-ENC.4/);
});

test('R-E2E.6a: a Session Context Record gets a Disconnect with 7106', () => {
  const rec = rawRecord({
    version: '1.4',
    toId: AGENT,
    fromId: CTRL,
    sessionContext: { sessionId: 5, sequenceId: 1, expectedId: 1, payload: [encodeMsg(getMsg)] },
  });
  assert.deepEqual(decideFor(rec), { action: 'disconnect', fromId: AGENT, toId: CTRL, reasonCode: 7106, reason: 'Session Context not allowed' });
  assert.equal(decideFor(rec, { ...ctx, isOwnEndpointId: () => false }).action, 'drop');
});

test('Endpoint ID syntax (TR-369 authority-scheme ":" [authority-id] ":" instance-id)', () => {
  for (const id of ['os::00D09E-SN1', 'proto::controller', 'oui:00256D:my-unique-bbf-id-42', 'self::x', 'uuid::f81d4fae-7dec-11d0-a765-00a0c91e6bf6']) {
    assert.ok(isValidEndpointIdSyntax(id), id);
  }
  for (const id of ['', 'controller', 'foo::x', 'os::', 'os:x', 'os::a b']) assert.ok(!isValidEndpointIdSyntax(id), id);
});

test('error table and UspError', () => {
  for (let c = 7000; c <= 7027; c++) assert.ok(Object.values(UspErrorCode).includes(c as never), `code ${c}`);
  for (let c = 7100; c <= 7106; c++) assert.ok(Object.values(UspErrorCode).includes(c as never), `code ${c}`);
  assert.equal(errorCodeName(7004), 'Invalid arguments');
  assert.equal(errorCodeName(7100), 'Record could not be parsed');
  assert.equal(errorCodeName(7850), 'Vendor defined error');
  const e = new UspError(UspErrorCode.OBJECT_DOES_NOT_EXIST);
  assert.ok(e instanceof Error);
  assert.equal(e.code, 7016);
  assert.equal(e.message, 'Object does not exist');
  assert.equal(new UspError(7022, 'boom').message, 'boom');
  // the reference protobufjs is the same library we run on
  assert.equal(typeof protobuf.Reader, 'function');
});
