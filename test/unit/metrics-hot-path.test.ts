/**
 * The metrics of the USP hot path (issue 22 item 7): usp_records_total counted per Record and
 * copied at scrape time, and histograms from 0.1 ms for translation, the MTP send and CWMP RPCs;
 * the request outcome of the audit line and trace counts err_codes once, not parameter values.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { ProxyMetrics } from '../../src/ops/metrics.js';
import { requestLogFields, visitErrCodes } from '../../src/usp/agent/request-log.js';
import { errCodesOf } from '../../src/ops/trace.js';
import type { Msg } from '../../src/usp/codec/record.js';

function sources() {
  const endpoint = new EventEmitter();
  const engine = Object.assign(new EventEmitter(), { activeSessions: 0 });
  const acs = new EventEmitter();
  return {
    endpoint,
    engine,
    acs,
    src: {
      engine,
      endpoint,
      connectionRequests: new EventEmitter(),
      acs,
      mtps: () => [],
      controllers: [],
      listDevices: async () => [],
    },
  };
}

/** The value of one sample line of the exposition text. */
function sample(text: string, name: string, labels: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  assert.ok(line, `${name}{${labels}} is exposed`);
  return Number(line.split(' ').pop());
}

test('usp_records_total counts every Record by MTP, direction and type across scrapes', async () => {
  const m = new ProxyMetrics({ defaultMetrics: false });
  const { endpoint, src } = sources();
  m.attach(src as never);
  for (let i = 0; i < 3; i++) endpoint.emit('record', { mtp: 'mqtt', direction: 'in', msgType: 'GET', ms: 0.3 });
  endpoint.emit('record', { mtp: 'mqtt', direction: 'out', msgType: 'GET_RESP', ms: 0.2 });
  let text = await m.registry.metrics();
  assert.equal(sample(text, 'usp_records_total', 'mtp="mqtt",direction="in",type="GET"'), 3);
  assert.equal(sample(text, 'usp_records_total', 'mtp="mqtt",direction="out",type="GET_RESP"'), 1);
  endpoint.emit('record', { mtp: 'mqtt', direction: 'in', msgType: 'GET', ms: 0.3 });
  text = await m.registry.metrics();
  assert.equal(sample(text, 'usp_records_total', 'mtp="mqtt",direction="in",type="GET"'), 4, 'a second scrape does not count twice');
});

test('translation, MTP send, CWMP RPC and ACS request histograms have buckets from 0.1 ms', async () => {
  const m = new ProxyMetrics({ defaultMetrics: false });
  const { endpoint, engine, acs, src } = sources();
  m.attach(src as never);
  endpoint.emit('record', { mtp: 'mqtt', direction: 'in', msgType: 'GET', ms: 0.08 });
  endpoint.emit('record', { mtp: 'mqtt', direction: 'out', msgType: 'GET_RESP', ms: 0.2 });
  engine.emit('rpcSettled', { deviceKey: 'd', method: 'GetParameterValues', outcome: { kind: 'response' }, ms: 0.4 });
  acs.emit('handled', { status: 200, ms: 0.09 });
  acs.emit('handled', { status: 204, ms: 0.7 });
  const text = await m.registry.metrics();
  assert.equal(sample(text, 'cwmp_acs_request_duration_seconds_bucket', 'le="0.0001",status="200"'), 1);
  assert.equal(sample(text, 'cwmp_acs_request_duration_seconds_bucket', 'le="0.0005",status="204"'), 0);
  assert.equal(sample(text, 'cwmp_acs_request_duration_seconds_bucket', 'le="0.001",status="204"'), 1);
  assert.equal(sample(text, 'usp_translation_duration_seconds_bucket', 'le="0.0001",msg_type="GET"'), 1);
  assert.equal(sample(text, 'usp_mtp_send_duration_seconds_bucket', 'le="0.0001",mtp="mqtt"'), 0);
  assert.equal(sample(text, 'usp_mtp_send_duration_seconds_bucket', 'le="0.00025",mtp="mqtt"'), 1);
  assert.equal(sample(text, 'cwmp_rpc_duration_seconds_bucket', 'le="0.00025",method="GetParameterValues"'), 0);
  assert.equal(sample(text, 'cwmp_rpc_duration_seconds_bucket', 'le="0.0005",method="GetParameterValues"'), 1);
});

const partial: Msg = {
  header: { msgId: 'm1', msgType: 'GET_RESP' },
  body: {
    msgBody: 'response',
    response: {
      respType: 'getResp',
      getResp: {
        reqPathResults: [
          // A parameter named errCode is a value, not an error.
          { requestedPath: 'Device.X.', errCode: 0, resolvedPathResults: [{ resolvedPath: 'Device.X.', resultParams: { errCode: '7004' } }] },
          { requestedPath: 'Device.Y.', errCode: 7026, errMsg: 'invalid path', resolvedPathResults: [] },
          { requestedPath: 'Device.Z.', errCode: 7006, errMsg: 'denied', resolvedPathResults: [] },
        ],
      },
    },
  },
};

test('err_codes of a response are found once each, parameter values are not read as codes', () => {
  const codes: number[] = [];
  visitErrCodes(partial.body.response, (c) => codes.push(c));
  assert.deepEqual(codes, [7026, 7006]);
  assert.deepEqual(errCodesOf(partial), [7026, 7006]);
  const get: Msg = {
    header: { msgId: 'm1', msgType: 'GET' },
    body: { msgBody: 'request', request: { reqType: 'get', get: { paramPaths: ['Device.X.', 'Device.Y.', 'Device.Z.'], maxDepth: 0 } } },
  };
  assert.equal(requestLogFields('proto::c', 'os::a', get, partial, 1.4).outcome, 'partial (2 errors)');
});
