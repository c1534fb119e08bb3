/**
 * The `usp` CLI's compact lines and exit codes (src/tools/controller/output.ts), one response type
 * at a time: results on stdout as `path => value`, each failure named with its USP error code.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Msg, Response } from '../../src/usp/codec/record.js';
import { EXIT, notifyLine, summarize } from '../../src/tools/controller/output.js';
import { set } from '../../src/tools/controller/client.js';

const resp = (response: Response): Msg => ({ header: { msgId: '1', msgType: 'GET_RESP' }, body: { msgBody: 'response', response } });

test('Error Msg: exit 1, the code, the message and each param_err', () => {
  const s = summarize({
    header: { msgId: '1', msgType: 'ERROR' },
    body: {
      msgBody: 'error',
      error: { errCode: 7004, errMsg: 'Invalid arguments', paramErrs: [{ paramPath: 'Device.X.Y', errCode: 7011, errMsg: 'bad type' }] },
    },
  });
  assert.equal(s.code, EXIT.uspError);
  assert.deepEqual(s.lines, []);
  assert.deepEqual(s.failures, ['USP Error 7004: Invalid arguments', 'Device.X.Y: error 7011: bad type']);
});

test('GetResp: path => value per parameter; an err_code on a requested path exits 4', () => {
  const ok = summarize(
    resp({
      respType: 'getResp',
      getResp: {
        reqPathResults: [
          { requestedPath: 'Device.DeviceInfo.', resolvedPathResults: [{ resolvedPath: 'Device.DeviceInfo.', resultParams: { A: '1', B: 'x y' } }] },
        ],
      },
    }),
  );
  assert.deepEqual(ok, { lines: ['Device.DeviceInfo.A => 1', 'Device.DeviceInfo.B => x y'], failures: [], code: 0 });
  const bad = summarize(
    resp({
      respType: 'getResp',
      getResp: { reqPathResults: [{ requestedPath: 'Device.Nope.', errCode: 7026, errMsg: 'Invalid path', resolvedPathResults: [] }] },
    }),
  );
  assert.deepEqual(bad, { lines: [], failures: ['Device.Nope.: error 7026: Invalid path'], code: EXIT.partialFailure });
});

test('SetResp: oper_failure, param_errs, and a requested parameter missing from updated_params all exit 4', () => {
  const request = set([{ objPath: 'Device.X.', params: { A: '1', B: '2' } }], true);
  const failure = summarize(
    resp({
      respType: 'setResp',
      setResp: {
        updatedObjResults: [
          {
            requestedPath: 'Device.X.',
            operStatus: {
              operStatus: 'operFailure',
              operFailure: {
                errCode: 7002,
                errMsg: 'Internal error',
                updatedInstFailures: [{ affectedPath: 'Device.X.', paramErrs: [{ param: 'A', errCode: 7013, errMsg: 'ro' }] }],
              },
            },
          },
        ],
      },
    }),
    request,
  );
  assert.equal(failure.code, 4);
  assert.deepEqual(failure.failures, ['Device.X.: error 7002: Internal error', 'Device.X.A: error 7013: ro']);
  // operSuccess that updated A and says nothing of B: the Set did not do what was asked.
  const silent = summarize(
    resp({
      respType: 'setResp',
      setResp: {
        updatedObjResults: [
          {
            requestedPath: 'Device.X.',
            operStatus: {
              operStatus: 'operSuccess',
              operSuccess: { updatedInstResults: [{ affectedPath: 'Device.X.', updatedParams: { A: '1' }, paramErrs: [] }] },
            },
          },
        ],
      },
    }),
    request,
  );
  assert.deepEqual(silent, { lines: ['Device.X.A => 1'], failures: ['Device.X.B: not reported as updated'], code: 4 });
});

test('AddResp, DeleteResp, OperateResp, GetInstancesResp, GetSupportedDMResp, GetSupportedProtocolResp', () => {
  const add = summarize(
    resp({
      respType: 'addResp',
      addResp: {
        createdObjResults: [
          {
            requestedPath: 'Device.T.',
            operStatus: { operStatus: 'operSuccess', operSuccess: { instantiatedPath: 'Device.T.3.', uniqueKeys: { Alias: 'cpe-3' }, paramErrs: [] } },
          },
          { requestedPath: 'Device.U.', operStatus: { operStatus: 'operFailure', operFailure: { errCode: 7005, errMsg: 'full' } } },
        ],
      },
    }),
  );
  assert.deepEqual(add, { lines: ['Device.T.3.', 'Device.T.3.Alias => cpe-3'], failures: ['Device.U.: error 7005: full'], code: 4 });
  const del = summarize(
    resp({
      respType: 'deleteResp',
      deleteResp: {
        deletedObjResults: [
          {
            requestedPath: 'Device.T.*.',
            operStatus: {
              operStatus: 'operSuccess',
              operSuccess: { affectedPaths: ['Device.T.3.'], unaffectedPathErrs: [{ unaffectedPath: 'Device.T.4.', errCode: 7016, errMsg: 'locked' }] },
            },
          },
        ],
      },
    }),
  );
  assert.deepEqual(del, { lines: ['Device.T.3.'], failures: ['Device.T.4.: error 7016: locked'], code: 4 });
  const op = summarize(
    resp({
      respType: 'operateResp',
      operateResp: {
        operationResults: [
          { executedCommand: 'Device.Reboot()', operationResp: 'reqOutputArgs', reqOutputArgs: { outputArgs: {} } },
          { executedCommand: 'Device.X.Ping()', operationResp: 'reqObjPath', reqObjPath: 'Device.LocalAgent.Request.1.' },
          { executedCommand: 'Device.Y()', operationResp: 'cmdFailure', cmdFailure: { errCode: 7022, errMsg: 'failed' } },
        ],
      },
    }),
  );
  assert.deepEqual(op, {
    lines: ['Device.Reboot()', 'Device.X.Ping() => Device.LocalAgent.Request.1.'],
    failures: ['Device.Y(): error 7022: failed'],
    code: 4,
  });
  const inst = summarize(
    resp({
      respType: 'getInstancesResp',
      getInstancesResp: { reqPathResults: [{ requestedPath: 'Device.T.', currInsts: [{ instantiatedObjPath: 'Device.T.1.', uniqueKeys: {} }] }] },
    }),
  );
  assert.deepEqual(inst, { lines: ['Device.T.1.'], failures: [], code: 0 });
  const dm = summarize(
    resp({
      respType: 'getSupportedDmResp',
      getSupportedDmResp: {
        reqObjResults: [
          {
            reqObjPath: 'Device.T.',
            supportedObjs: [
              {
                supportedObjPath: 'Device.T.{i}.',
                access: 'OBJ_ADD_DELETE',
                isMultiInstance: true,
                supportedParams: [{ paramName: 'Alias', access: 'PARAM_READ_WRITE', valueType: 'PARAM_STRING' }],
                supportedCommands: [],
                supportedEvents: [],
                divergentPaths: [],
                uniqueKeySets: [],
              },
            ],
          },
        ],
      },
    }),
  );
  assert.deepEqual(dm.lines, ['Device.T.{i}. multi-instance add-delete', 'Device.T.{i}.Alias string read-write']);
  const proto = summarize(resp({ respType: 'getSupportedProtocolResp', getSupportedProtocolResp: { agentSupportedProtocolVersions: '1.3,1.4' } }));
  assert.deepEqual(proto.lines, ['1.3,1.4']);
});

test('notifyLine names the sending agent first', () => {
  const n: Msg = {
    header: { msgId: 'n', msgType: 'NOTIFY' },
    body: {
      msgBody: 'request',
      request: { reqType: 'notify', notify: { subscriptionId: 's1', notification: 'valueChange', valueChange: { paramPath: 'Device.A', paramValue: '2' } } },
    },
  };
  assert.equal(notifyLine('os::X-1', n), 'os::X-1 s1 ValueChange Device.A => 2');
});
