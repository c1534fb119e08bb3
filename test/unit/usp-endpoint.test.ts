/**
 * The endpoint layer with a scripted in-memory MTP: routing by to_id, trust, R-MTP.5 handling of
 * bad Records, the flood guard, Connect Records on new channels, and that one bad peer leaves
 * other agents untouched.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { loadConfig } from '../../src/app/config.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { silentLogger } from '../../src/app/log.js';
import { LocalAgent, SUPPORTED_USP_VERSIONS } from '../../src/usp/agent/local-agent.js';
import { DmRouter } from '../../src/usp/dm/router.js';
import { AgentDirectory, UspEndpoint, type RecordEvent } from '../../src/usp/agent/endpoint.js';
import { type Coordination, type RelayedRecord, SingleInstance } from '../../src/usp/agent/coordination.js';
import { decodeMsg, decodeRecord, encodeMsg, encodeRecord, noSessionRecord, type Msg, type UspRecord } from '../../src/usp/codec/record.js';
import type { InboundRecord } from '../../src/usp/mtp/types.js';
import { FakeMtp } from '../helpers/fake-mtp.js';

const CTL = 'proto::ctl';
/** A controller reached over WebSocket only (none here: the fake MTP is MQTT). */
const WS_CTL = 'proto::ws-ctl';
const AGENT = 'os::000001-A1';
const OTHER = 'os::000001-A2';

function setup(maxInFlight = 256, coordination?: Coordination) {
  const config = loadConfig({
    env: {},
    overrides: {
      controllers: [
        { endpointId: CTL, mqtt: { topic: '/ctl' } },
        { endpointId: WS_CTL, websocket: { url: 'ws://127.0.0.1:1/usp' } },
      ],
    },
  });
  const store = openSqliteStore(':memory:');
  const localAgent = new LocalAgent(config, store, '1.0');
  const agents = new AgentDirectory();
  agents.add(AGENT);
  agents.add(OTHER);
  const mtp = new FakeMtp();
  const endpoint = new UspEndpoint({
    agents,
    controllers: config.controllers,
    mtps: [mtp],
    context: { router: new DmRouter([localAgent.model]), localAgent, versions: SUPPORTED_USP_VERSIONS },
    log: silentLogger(),
    maxInFlightPerController: maxInFlight,
    agentAddresses: { mqtt: '/usp/agent' },
    coordination,
  });
  return { mtp, endpoint, store };
}

const getMsg = (id: string): Msg => ({
  header: { msgId: id, msgType: 'GET' },
  body: { msgBody: 'request', request: { reqType: 'get', get: { paramPaths: ['Device.LocalAgent.EndpointID'] } } },
});
const rec = (from: string, to: string, msg: Msg): Uint8Array => encodeRecord(noSessionRecord(from, to, msg));
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 30));
const msgOf = (r: UspRecord): Msg => {
  assert.equal(r.recordType.kind, 'noSessionContext');
  return decodeMsg((r.recordType as { payload: Uint8Array }).payload);
};

test('a request is routed by to_id and answered on the reply path from that agent', async () => {
  const { mtp } = setup();
  mtp.inject(rec(CTL, OTHER, getMsg('g1')), '/my/reply');
  await settle();
  assert.equal(mtp.sent.length, 1);
  const out = mtp.sent[0]!;
  assert.equal(out.dest.address, '/my/reply');
  assert.equal(out.rec.fromId, OTHER);
  assert.equal(out.rec.toId, CTL);
  const m = msgOf(out.rec);
  assert.equal(m.header.msgId, 'g1');
  assert.equal(m.body.response?.getResp?.reqPathResults[0]?.resolvedPathResults[0]?.resultParams.EndpointID, OTHER);
});

test("no Response Topic: the reply goes to the controller's configured topic", async () => {
  const { mtp } = setup();
  mtp.inject(rec(CTL, AGENT, getMsg('g2')), null);
  await settle();
  assert.equal(mtp.sent[0]?.dest.address, '/ctl');
});

test('2.1, 2.2: Records to an unknown to_id, from the agent itself or from an unknown controller are dropped silently', async () => {
  const { mtp, endpoint } = setup();
  mtp.inject(rec(CTL, 'os::000001-NOPE', getMsg('x1')));
  mtp.inject(rec(AGENT, AGENT, getMsg('x2')));
  mtp.inject(rec('proto::stranger', AGENT, getMsg('x3')));
  await settle();
  assert.equal(mtp.sent.length, 0);
  assert.equal(endpoint.stats.dropped, 3);
});

test('3.1: truncated or random bytes never crash; a Record whose Msg cannot be parsed gets an Error (R-MTP.5)', async () => {
  const { mtp } = setup();
  const good = rec(CTL, AGENT, getMsg('t1'));
  mtp.inject(good.subarray(0, good.length - 7));
  mtp.inject(new Uint8Array([0xff, 0xff, 0xff, 0x01, 0x02]));
  // A well-formed Record carrying a broken Msg whose msg_id is readable: Error 7100-ish reply.
  const msgBytes = encodeMsg(getMsg('t2'));
  const broken = encodeRecord({
    version: '1.4',
    toId: AGENT,
    fromId: CTL,
    recordType: { kind: 'noSessionContext', payload: new Uint8Array([...msgBytes.subarray(0, msgBytes.length - 3), 0xff]) },
  });
  mtp.inject(broken);
  await settle();
  const errors = mtp.sent.map((s) => msgOf(s.rec)).filter((m) => m.body.msgBody === 'error');
  assert.ok(errors.length <= 2);
  for (const e of errors) assert.ok((e.body.error?.errCode ?? 0) >= 7000);
  // The agent still answers afterwards.
  mtp.sent.length = 0;
  mtp.inject(rec(CTL, AGENT, getMsg('t3')));
  await settle();
  assert.equal(msgOf(mtp.sent[0]!.rec).header.msgId, 't3');
});

test('property: arbitrary bytes on an MTP never throw and never reach a device', async () => {
  const { mtp } = setup();
  await fc.assert(
    fc.asyncProperty(fc.uint8Array({ maxLength: 300 }), async (bytes) => {
      mtp.inject(bytes);
      await new Promise((r) => setImmediate(r));
    }),
    { numRuns: 500 },
  );
  await settle();
  for (const s of mtp.sent) assert.ok([AGENT, OTHER].includes(s.rec.fromId));
});

test('flood guard: requests beyond the per-controller limit get 7005; the others are answered', async () => {
  const { mtp } = setup(2);
  for (let i = 0; i < 10; i++) mtp.inject(rec(CTL, AGENT, getMsg(`f${i}`)));
  await settle();
  const msgs = mtp.sent.map((s) => msgOf(s.rec));
  assert.equal(msgs.length, 10);
  const refused = msgs.filter((m) => m.body.error?.errCode === 7005);
  const answered = msgs.filter((m) => m.body.msgBody === 'response');
  assert.ok(answered.length >= 2, `answered ${answered.length}`);
  assert.equal(refused.length + answered.length, 10);
});

test('R-MTP.6: a (re)connected broker channel makes every agent send its Connect Record', async () => {
  const { mtp } = setup();
  mtp.emit('channelOpen', { mtp: 'mqtt', agentEid: null, dest: null, peerEid: null });
  await settle();
  const connects = mtp.sent.filter((s) => s.rec.recordType.kind === 'mqttConnect');
  assert.deepEqual(connects.map((c) => c.rec.fromId).sort(), [AGENT, OTHER]);
  assert.ok(connects.every((c) => c.dest.address === '/ctl' && (c.rec.recordType as { subscribedTopic: string }).subscribedTopic === '/usp/agent'));
});

test('a connection that stated its peer (WebSocket ?eid=) cannot speak for another controller', async () => {
  const { mtp, endpoint } = setup();
  const r: InboundRecord = {
    mtp: 'mqtt',
    bytes: rec(CTL, AGENT, getMsg('p1')),
    replyTo: { mtp: 'mqtt', address: '/r' },
    agentEid: null,
    peerEid: 'proto::someone-else',
  };
  mtp.emit('record', r);
  await settle();
  assert.equal(mtp.sent.length, 0);
  assert.equal(endpoint.stats.dropped, 1);
  mtp.emit('record', { ...r, peerEid: CTL });
  await settle();
  assert.equal(mtp.sent.length, 1);
});

test('every Record in and out is reported once, typed by its Msg (or Record) type', async () => {
  const { mtp, endpoint } = setup();
  const events: RecordEvent[] = [];
  endpoint.on('record', (e) => events.push(e));
  mtp.inject(rec(CTL, AGENT, getMsg('e1')));
  mtp.inject(rec('proto::stranger', AGENT, getMsg('e2')));
  mtp.inject(new Uint8Array([0xff, 0xff, 0xff, 0x01, 0x02]));
  mtp.emit('channelOpen', { mtp: 'mqtt', agentEid: null, dest: null, peerEid: null });
  await settle();
  const seen = events.map((e) => `${e.direction} ${e.msgType}`).sort();
  // GET answered; the stranger's GET dropped (still counted as a GET); garbage; two Connect Records out.
  assert.deepEqual(seen, ['in GET', 'in GET', 'in undecodable', 'out GET_RESP', 'out mqttConnect', 'out mqttConnect']);
  assert.ok(events.every((e) => e.mtp === 'mqtt' && e.ms >= 0));
  assert.equal(endpoint.stats.recordsIn, 3);
  assert.equal(endpoint.stats.recordsOut, 3);
});

/** Answers resolveAgent for agents registered "elsewhere" and notes what the endpoint asks. */
class NotingCoordination extends SingleInstance {
  readonly calls: string[] = [];
  constructor(private readonly elsewhere: ReadonlySet<string>) {
    super();
  }
  override async resolveAgent(eid: string): Promise<boolean> {
    this.calls.push(`resolve ${eid}`);
    return this.elsewhere.has(eid);
  }
  override relayRecord(r: RelayedRecord): boolean {
    this.calls.push(`relay ${r.agentEid} ${r.controllerEid} ${r.msgType} ${decodeRecord(r.bytes).toId}`);
    return true;
  }
  override requestStarted(_a: string, _c: string, msgId: string): void {
    this.calls.push(`started ${msgId}`);
  }
  override requestAnswered(_a: string, _c: string, msgId: string): void {
    this.calls.push(`answered ${msgId}`);
  }
}

test('several instances: agents registered elsewhere are served, requests tracked, unreachable controllers relayed', async () => {
  const FAR = 'os::000001-FAR';
  const coordination = new NotingCoordination(new Set([FAR]));
  const { mtp, endpoint } = setup(256, coordination);
  mtp.inject(rec(CTL, FAR, getMsg('c1')));
  mtp.inject(rec(CTL, 'os::000001-NOPE', getMsg('c2')));
  await settle();
  const answers = () => mtp.sent.filter((s) => s.rec.recordType.kind === 'noSessionContext');
  assert.deepEqual(
    answers().map((s) => `${s.rec.fromId} ${msgOf(s.rec).header.msgId}`),
    [`${FAR} c1`],
  );
  assert.ok(mtp.agents.includes(FAR), 'the agent found elsewhere is added to the MTPs (and sends its Connect Record)');
  assert.deepEqual(coordination.calls, [`resolve ${FAR}`, 'resolve os::000001-NOPE', 'started c1', 'answered c1']);

  // A Notify for a controller no MTP here reaches goes to the other instances, encoded once.
  coordination.calls.length = 0;
  const notify: Msg = {
    header: { msgId: 'n1', msgType: 'NOTIFY' },
    body: {
      msgBody: 'request',
      request: { reqType: 'notify', notify: { subscriptionId: 's', sendResp: false, notification: 'objDeletion', objDeletion: { objPath: 'Device.X.1.' } } },
    },
  };
  assert.equal(await endpoint.sendToController(AGENT, WS_CTL, notify), true);
  assert.deepEqual(coordination.calls, [`relay ${AGENT} ${WS_CTL} NOTIFY ${WS_CTL}`]);
  // Inbound: a relayed Record goes out over WebSocket only (there is none here); a new agent appears.
  coordination.emit('relayedRecord', { agentEid: AGENT, controllerEid: CTL, bytes: rec(AGENT, CTL, notify), msgType: 'NOTIFY' });
  coordination.emit('agentAdded', { endpointId: 'os::000001-NEW' });
  await settle();
  assert.equal(answers().length, 1);
  assert.ok(mtp.agents.includes('os::000001-NEW'));
});
