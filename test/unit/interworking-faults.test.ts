/**
 * The one CWMP fault -> USP error table (interworking/faults.ts) and the
 * translation of "the RPC could not be carried out" (RpcError) into USP errors: device
 * unreachable, session timeout and a CPE fault each give a distinct, clear error.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CWMP_TO_USP, describeFault, uspCodeOfCwmpFault } from '../../src/interworking/faults.js';
import { uspErrorOfRpc } from '../../src/interworking/faults.js';
import { RpcError, type RpcErrorReason } from '../../src/cwmp/session.js';
import { CwmpFault } from '../../src/cwmp/types.js';
import { UspError, UspErrorCode } from '../../src/usp/errors.js';
import { faultString } from '../../src/tools/sim/rpc.js';

/** TR-069 Amendment 6 A.5.1 (CPE fault codes) -> TR-369 error codes. */
const EXPECTED: [number, number, string][] = [
  [9000, 7001, 'Method not supported -> Message not supported'],
  [9001, 7002, 'Request denied -> Request denied'],
  [9002, 7003, 'Internal error -> Internal error'],
  [9003, 7004, 'Invalid arguments -> Invalid arguments'],
  [9004, 7005, 'Resources exceeded -> Resources exceeded'],
  [9005, 7026, 'Invalid parameter name -> Invalid path'],
  [9006, 7011, 'Invalid parameter type -> Invalid type'],
  [9007, 7012, 'Invalid parameter value -> Invalid value'],
  [9008, 7013, 'Attempt to set a non-writable parameter -> Parameter not writable'],
  [9009, 7009, 'Notification request rejected -> Parameter action failed'],
  [9010, 7022, 'Download failure -> Command failure'],
  [9011, 7022, 'Upload failure -> Command failure'],
  [9012, 7022, 'File transfer server authentication failure -> Command failure'],
  [9013, 7022, 'Unsupported protocol for file transfer -> Command failure'],
  [9014, 7022, 'Download failure: unable to join multicast group -> Command failure'],
  [9015, 7022, 'Download failure: unable to contact file server -> Command failure'],
  [9016, 7022, 'Download failure: unable to access file -> Command failure'],
  [9017, 7022, 'Download failure: unable to complete download -> Command failure'],
  [9018, 7022, 'Download failure: file corrupted -> Command failure'],
  [9019, 7022, 'Download failure: file authentication failure -> Command failure'],
];

describe('CWMP fault -> USP error table', () => {
  for (const [cwmp, usp, why] of EXPECTED) {
    it(`${cwmp} -> ${usp} (${why})`, () => {
      assert.equal(uspCodeOfCwmpFault(cwmp), usp);
      assert.equal(CWMP_TO_USP[cwmp], usp);
    });
  }

  it('the table is exactly 9000..9019, every target a TR-369 message code 7000..7027', () => {
    assert.deepEqual(
      Object.keys(CWMP_TO_USP)
        .map(Number)
        .sort((a, b) => a - b),
      EXPECTED.map(([c]) => c),
    );
    const known = new Set<number>(Object.values(UspErrorCode));
    for (const usp of Object.values(CWMP_TO_USP)) {
      assert.ok(usp >= 7000 && usp <= 7027, String(usp));
      assert.ok(known.has(usp), `${usp} is a defined USP error code`);
    }
  });

  it('agrees with the CwmpFault names of src/cwmp/types.ts', () => {
    assert.equal(uspCodeOfCwmpFault(CwmpFault.MethodNotSupported), UspErrorCode.MESSAGE_NOT_SUPPORTED);
    assert.equal(uspCodeOfCwmpFault(CwmpFault.RequestDenied), UspErrorCode.REQUEST_DENIED);
    assert.equal(uspCodeOfCwmpFault(CwmpFault.InternalError), UspErrorCode.INTERNAL_ERROR);
    assert.equal(uspCodeOfCwmpFault(CwmpFault.InvalidArguments), UspErrorCode.INVALID_ARGUMENTS);
    assert.equal(uspCodeOfCwmpFault(CwmpFault.ResourcesExceeded), UspErrorCode.RESOURCES_EXCEEDED);
    assert.equal(uspCodeOfCwmpFault(CwmpFault.InvalidParameterName), UspErrorCode.INVALID_PATH);
    assert.equal(uspCodeOfCwmpFault(CwmpFault.InvalidParameterType), UspErrorCode.INVALID_TYPE);
    assert.equal(uspCodeOfCwmpFault(CwmpFault.InvalidParameterValue), UspErrorCode.INVALID_VALUE);
    assert.equal(uspCodeOfCwmpFault(CwmpFault.NonWritableParameter), UspErrorCode.PARAM_NOT_WRITABLE);
    assert.equal(uspCodeOfCwmpFault(CwmpFault.NotificationRequestRejected), UspErrorCode.PARAMETER_ACTION_FAILED);
    assert.equal(uspCodeOfCwmpFault(CwmpFault.DownloadFailure), UspErrorCode.COMMAND_FAILURE);
    assert.equal(uspCodeOfCwmpFault(CwmpFault.UploadFailure), UspErrorCode.COMMAND_FAILURE);
    assert.equal(uspCodeOfCwmpFault(CwmpFault.FileTransferAuthFailure), UspErrorCode.COMMAND_FAILURE);
    assert.equal(uspCodeOfCwmpFault(CwmpFault.UnsupportedTransferProtocol), UspErrorCode.COMMAND_FAILURE);
  });

  it('vendor faults 9800..9899 are an internal error of the device (7003)', () => {
    for (const c of [9800, 9801, 9850, 9899]) assert.equal(uspCodeOfCwmpFault(c), 7003, String(c));
  });

  it('anything else is a generic message failure (7000)', () => {
    for (const c of [0, 8000, 8005, 8999, 9020, 9799, 9900, 9999, -1]) assert.equal(uspCodeOfCwmpFault(c), 7000, String(c));
  });

  it('describeFault keeps the CWMP code and text for err_msg', () => {
    assert.equal(describeFault({ faultCode: 9005, faultString: 'Invalid parameter name' }), 'CWMP fault 9005 (Invalid parameter name)');
    assert.equal(describeFault({ faultCode: 9801, faultString: '' }), 'CWMP fault 9801');
    // The simulator's standard fault strings read well through it.
    assert.equal(describeFault({ faultCode: 9008, faultString: faultString(9008) }), 'CWMP fault 9008 (Attempt to set a non-writable parameter)');
  });
});

describe('RPC failures -> USP errors', () => {
  it('device unreachable: 7002, says so', () => {
    for (const reason of ['unreachable', 'unknown-device'] as const) {
      const e = uspErrorOfRpc(new RpcError(reason, 'connection request refused'));
      assert.equal(e.errCode, 7002, reason);
      assert.match(e.errMsg, /^device unreachable: connection request refused$/);
    }
  });

  it('session timeout / session ended: 7003, "did not answer"', () => {
    for (const reason of ['session-timeout', 'session-ended'] as const) {
      const e = uspErrorOfRpc(new RpcError(reason, 'no response within 30 s'));
      assert.equal(e.errCode, 7003, reason);
      assert.equal(e.errMsg, 'the device did not answer: no response within 30 s');
    }
  });

  it('cancelled / shutdown: 7003 with the reason text', () => {
    for (const reason of ['cancelled', 'shutdown'] as const) {
      const e = uspErrorOfRpc(new RpcError(reason, `rpc ${reason}`));
      assert.deepEqual(e, { errCode: 7003, errMsg: `rpc ${reason}` });
    }
  });

  it('every RpcError reason is handled and none reads like the others', () => {
    const reasons: RpcErrorReason[] = ['unreachable', 'session-timeout', 'session-ended', 'unknown-device', 'cancelled', 'shutdown'];
    const unreachable = uspErrorOfRpc(new RpcError('unreachable', 'x'));
    const timeout = uspErrorOfRpc(new RpcError('session-timeout', 'x'));
    const cpeFault = { errCode: uspCodeOfCwmpFault(9002), errMsg: describeFault({ faultCode: 9002, faultString: 'Internal error' }) };
    assert.notEqual(unreachable.errCode, timeout.errCode);
    assert.notEqual(timeout.errMsg, cpeFault.errMsg);
    assert.doesNotMatch(cpeFault.errMsg, /unreachable|did not answer/);
    for (const r of reasons) assert.ok(uspErrorOfRpc(new RpcError(r, 'x')).errCode >= 7002);
  });

  it('an already translated UspError passes through; anything else is an internal error', () => {
    assert.deepEqual(uspErrorOfRpc(new UspError(7005, 'GetParameterValues failed: CWMP fault 9004 (Resources exceeded)')), {
      errCode: 7005,
      errMsg: 'GetParameterValues failed: CWMP fault 9004 (Resources exceeded)',
    });
    assert.deepEqual(uspErrorOfRpc(new Error('boom')), { errCode: 7003, errMsg: 'internal error: boom' });
  });
});
