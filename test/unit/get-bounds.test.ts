/**
 * Bounded work per Get on a CWMP-backed agent (issue 15 item 4): duplicate and overlapping paths
 * are read once; the GetResp carries at most usp.maxGetParams parameters and stays below
 * usp.maxRecordBytes; a requested path that would cross a bound answers 7005 naming it (TR-369
 * "Resources exceeded"); a Record full of paths that cannot even be refused in one response gets
 * one Error 7005.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encodeMsg, encodeRecord, noSessionRecord } from '../../src/usp/codec/record.js';
import { OPERATOR, request, TrustWorld } from '../helpers/trust-world.js';

const get = (paramPaths: string[]) => request('get', { paramPaths });

describe('Get bounds', () => {
  it('1,500 copies of "Device.": each name read once, answered up to usp.maxGetParams, the rest 7005', async () => {
    const w = await new TrustWorld('Device').start();
    // The model learned first, so that the count below is this Get's own reads.
    await w.ask(OPERATOR, request('getSupportedDm', { objPaths: ['Device.'], returnParams: true }));
    const one = (await w.ask(OPERATOR, get(['Device.']))).body.response!.getResp!.reqPathResults[0]!;
    const perCopy = one.resolvedPathResults.reduce((n, r) => n + Object.keys(r.resultParams).length, 0);
    assert.ok(perCopy > 100, `the simulated CPE has ${perCopy} parameters`);

    const from = w.port.sent.length;
    const r = await w.ask(OPERATOR, get(Array.from({ length: 1500 }, () => 'Device.')));
    const asked = w.port.sent.slice(from).flatMap(({ rpc }) => (rpc.method === 'GetParameterValues' ? rpc.parameterNames : []));
    assert.equal(new Set(asked).size, asked.length, 'no name asked twice');
    assert.ok(asked.length <= perCopy + 10, `${asked.length} names read for ${perCopy} parameters`);

    const results = r.body.response!.getResp!.reqPathResults;
    assert.equal(results.length, 1500);
    const answered = results.filter((x) => !x.errCode);
    assert.equal(answered.length, Math.floor(20_000 / perCopy));
    assert.deepEqual(answered[0], one);
    const refused = results.slice(answered.length);
    assert.ok(refused.every((x) => x.errCode === 7005 && x.resolvedPathResults.length === 0));
    assert.match(refused[0]!.errMsg!, /over 20000 parameters \(usp\.maxGetParams\)/);
    // The Record fits the MTP.
    assert.ok(encodeRecord(noSessionRecord(w.device.endpointId, OPERATOR, r)).length < w.config.usp.maxRecordBytes);
    w.close();
  });

  it('usp.maxGetParams: a requested path answers only while the response stays within it', async () => {
    const w = await new TrustWorld('Device', { usp: { maxGetParams: 3 } }).start();
    const names = ['Manufacturer', 'SerialNumber', 'SoftwareVersion', 'HardwareVersion'].map((n) => `Device.DeviceInfo.${n}`);
    const r = (await w.ask(OPERATOR, get([...names, 'Device.DeviceInfo.', names[0]!]))).body.response!.getResp!.reqPathResults;
    assert.deepEqual(
      r.map((x) => x.errCode ?? 0),
      [0, 0, 0, 7005, 7005, 7005],
    );
    assert.match(r[3]!.errMsg!, /over 3 parameters \(usp\.maxGetParams\)/);
    w.close();
  });

  it('the bytes of a response stay below usp.maxRecordBytes: 7005 naming it, one Error when even the refusals do not fit', async () => {
    const w = await new TrustWorld('Device', { usp: { maxRecordBytes: 24 * 1024 } }).start();
    const r = await w.ask(OPERATOR, get(['Device.DeviceInfo.SerialNumber', 'Device.']));
    const [small, big] = r.body.response!.getResp!.reqPathResults;
    assert.equal(small!.errCode ?? 0, 0);
    assert.equal(big!.errCode, 7005);
    assert.match(big!.errMsg!, /bytes \(the largest response a Record of usp\.maxRecordBytes carries\)/);
    assert.ok(encodeMsg(r).length < 24 * 1024);
    // Thousands of paths the response cannot even list as refused.
    const flood = await w.ask(OPERATOR, get(Array.from({ length: 4000 }, (_, i) => `Device.DeviceInfo.X${i}`)));
    assert.equal(flood.header.msgType, 'ERROR');
    assert.equal(flood.body.error!.errCode, 7005);
    w.close();
  });
});
