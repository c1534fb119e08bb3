/**
 * TP-469 sections 2-3: Records (CONFORMANCE.md 2.1, 2.2, 3.1), through a real UspEndpoint whose
 * only MTP is an in-process fake (an EventEmitter that records what is sent): no sockets.
 */
import { test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { AGENT, C1, harness, requestMsg, type Harness } from './harness.js';
import { AgentDirectory, UspEndpoint } from '../../src/usp/agent/endpoint.js';
import { SUPPORTED_USP_VERSIONS } from '../../src/usp/agent/local-agent.js';
import { silentLogger } from '../../src/app/log.js';
import { decodeMsg, encodeRecord, noSessionRecord } from '../../src/usp/codec/record.js';
import { FakeMtp } from '../helpers/fake-mtp.js';

let h: Harness;
let mtp: FakeMtp;
let ep: UspEndpoint;
const dropped: string[] = [];
beforeEach(async () => {
  h = await harness();
  mtp = new FakeMtp(false);
  const agents = new AgentDirectory();
  agents.add(AGENT);
  agents.add('os::012345-OTHER');
  ep = new UspEndpoint({
    agents,
    controllers: h.config.controllers,
    mtps: [mtp],
    context: { router: h.router, localAgent: h.localAgent, versions: SUPPORTED_USP_VERSIONS },
    log: silentLogger(),
  });
  dropped.length = 0;
  ep.on('dropped', (d) => dropped.push(d.reason));
});
afterEach(() => h.close());

const get = () => requestMsg('get', { paramPaths: ['Device.LocalAgent.EndpointID'] });

test("2.1 (baseline) a Record from a configured controller to the agent is answered at the controller's configured topic", async () => {
  await mtp.deliver(encodeRecord(noSessionRecord(C1, AGENT, get())));
  assert.equal(mtp.sent.length, 1);
  const { from, dest, rec } = mtp.sent[0]!;
  assert.equal(from, AGENT);
  // Not the Record's own Response Topic ('/reply'): a Record cannot divert a configured controller's answers.
  assert.deepEqual(dest, { mtp: 'mqtt', address: '/usp/controller-1' });
  assert.equal(rec.fromId, AGENT);
  assert.equal(rec.toId, C1);
  assert.equal(rec.recordType.kind, 'noSessionContext');
  const m = decodeMsg((rec.recordType as { payload: Uint8Array }).payload);
  assert.equal(m.header.msgType, 'GET_RESP');
});

test("2.1 A Record whose from_id is the agent's own Endpoint ID: dropped silently", async () => {
  await mtp.deliver(encodeRecord(noSessionRecord(AGENT, AGENT, get())));
  assert.equal(mtp.sent.length, 0);
  assert.equal(dropped.length, 1);
});

test('2.2 A Record addressed to another to_id (not one of our agents): dropped silently', async () => {
  await mtp.deliver(encodeRecord(noSessionRecord(C1, 'os::999999-NOBODY', get())));
  assert.equal(mtp.sent.length, 0);
  assert.equal(dropped.length, 1);
});

test('2.2 A Record from an unknown controller: not processed, answered with Error 7006 on its reply path (untrusted)', async () => {
  await mtp.deliver(encodeRecord(noSessionRecord('proto::stranger', AGENT, get())));
  assert.equal(mtp.sent.length, 1);
  const { dest, rec } = mtp.sent[0]!;
  assert.deepEqual(dest, { mtp: 'mqtt', address: '/reply' });
  assert.equal(rec.toId, 'proto::stranger');
  const m = decodeMsg((rec.recordType as { payload: Uint8Array }).payload);
  assert.equal(m.body.error?.errCode, 7006);
  assert.equal(dropped.length, 0);
});

test('3.1 A malformed Record (garbage bytes): ignored, or answered with a Record-level error, never a crash', async () => {
  await mtp.deliver(new Uint8Array([0xff, 0xff, 0xff, 0x01, 0x02, 0x03]));
  assert.ok(mtp.sent.length === 0 ? dropped.length === 1 : mtp.sent.every((o) => o.rec.toId !== AGENT));
  // The agent still answers afterwards.
  await mtp.deliver(encodeRecord(noSessionRecord(C1, AGENT, get())));
  assert.equal(mtp.sent.filter((o) => o.rec.toId === C1 && o.rec.recordType.kind === 'noSessionContext').length >= 1, true);
});

test('3.1 A Record whose payload is not a Msg: an Error (R-MTP.5) or dropped; the agent keeps working', async () => {
  const rec = noSessionRecord(C1, AGENT, get());
  (rec.recordType as { payload: Uint8Array }).payload = new Uint8Array([0x0a, 0xff, 0xff]);
  await mtp.deliver(encodeRecord(rec));
  for (const o of mtp.sent) {
    assert.equal(o.rec.toId, C1);
    if (o.rec.recordType.kind === 'noSessionContext') assert.equal(decodeMsg(o.rec.recordType.payload).header.msgType, 'ERROR');
  }
  assert.ok(mtp.sent.length === 1 || dropped.length === 1);
});
