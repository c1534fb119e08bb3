/**
 * The endpoint layer with a scripted in-memory MTP: routing by to_id, who is speaking (configured
 * address first, untrusted controllers answered 7006, topics bound to one controller), R-MTP.5
 * handling of bad Records, the per-controller limits, Connect Records on new channels, that one bad
 * peer leaves other agents untouched, and that a closed connection cancels its read-only work.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { loadConfig } from '../../src/app/config.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { createLogger, silentLogger } from '../../src/app/log.js';
import { LocalAgent, SUPPORTED_USP_VERSIONS } from '../../src/usp/agent/local-agent.js';
import { DmRouter } from '../../src/usp/dm/router.js';
import { AgentDirectory, UspEndpoint, type RecordEvent } from '../../src/usp/agent/endpoint.js';
import { type Coordination, type RelayedRecord, SingleInstance } from '../../src/usp/agent/coordination.js';
import { ControllerIdentities } from '../../src/usp/agent/controller-identity.js';
import { MemoryModel } from '../../src/usp/dm/memory.js';
import type { DmBackend, GetOptions } from '../../src/usp/dm/types.js';
import type { CallScope } from '../../src/usp/request-scope.js';
import type { MtpKind } from '../../src/usp/mtp/types.js';
import { decodeMsg, decodeRecord, encodeMsg, encodeRecord, noSessionRecord, type Msg, type UspRecord } from '../../src/usp/codec/record.js';
import type { InboundRecord } from '../../src/usp/mtp/types.js';
import { FakeMtp } from '../helpers/fake-mtp.js';

const CTL = 'proto::ctl';
/** A controller reached over WebSocket only (none here: the fake MTP is MQTT). */
const WS_CTL = 'proto::ws-ctl';
const AGENT = 'os::000001-A1';
const OTHER = 'os::000001-A2';

/** A controller whose Records are trusted only on its own topic (controllers[].mqtt.agentTopic). */
const BOUND_CTL = 'proto::bound-ctl';

interface SetupOptions {
  maxInFlight?: number;
  coordination?: Coordination;
  allowUntrusted?: boolean;
  rate?: number;
  burst?: number;
  now?: () => number;
  /** Collects the log as JSON objects (warn and above). */
  logLines?: Record<string, unknown>[];
  kind?: MtpKind;
  /** More data-model backends after Device.LocalAgent. */
  backends?: DmBackend[];
}

function setup(o: SetupOptions = {}) {
  const config = loadConfig({
    env: {},
    overrides: {
      controllers: [
        { endpointId: CTL, mqtt: { topic: '/ctl' } },
        { endpointId: WS_CTL, websocket: { url: 'ws://127.0.0.1:1/usp' } },
        { endpointId: BOUND_CTL, mqtt: { topic: '/bound-ctl', agentTopic: '/usp/agent/bound-ctl' } },
      ],
    },
  });
  const store = openSqliteStore(':memory:');
  const localAgent = new LocalAgent(config, store, '1.0');
  const agents = new AgentDirectory();
  agents.add(AGENT);
  agents.add(OTHER);
  const mtp = new FakeMtp(true, o.kind ?? 'mqtt');
  const lines = o.logLines;
  const log = lines ? createLogger('warn', { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) }) : silentLogger();
  const endpoint = new UspEndpoint({
    agents,
    controllers: config.controllers,
    mtps: [mtp],
    context: { router: new DmRouter([localAgent.model, ...(o.backends ?? [])]), localAgent, versions: SUPPORTED_USP_VERSIONS },
    log,
    identities: new ControllerIdentities(config.controllers, { requireWsAuth: false, allowUntrusted: o.allowUntrusted ?? false }),
    maxInFlightPerController: o.maxInFlight ?? 256,
    requestRatePerController: o.rate,
    requestBurstPerController: o.burst,
    now: o.now,
    agentAddresses: { mqtt: '/usp/agent' },
    coordination: o.coordination,
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

test("a request is routed by to_id and answered from that agent at the controller's configured topic, whatever its Response Topic", async () => {
  const { mtp } = setup();
  mtp.inject(rec(CTL, OTHER, getMsg('g1')), '/my/reply');
  await settle();
  assert.equal(mtp.sent.length, 1);
  const out = mtp.sent[0]!;
  assert.equal(out.dest.address, '/ctl', 'a Record cannot divert the answer of a configured controller');
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

test("a configured controller without an address on this MTP is answered on the Record's Response Topic", async () => {
  const { mtp } = setup();
  mtp.inject(rec(WS_CTL, AGENT, getMsg('g3')), '/ws-ctl/reply');
  await settle();
  assert.equal(mtp.sent.length, 1);
  assert.equal(mtp.sent[0]!.dest.address, '/ws-ctl/reply');
  assert.equal(msgOf(mtp.sent[0]!.rec).body.response?.getResp?.reqPathResults[0]?.resolvedPathResults[0]?.resultParams.EndpointID, AGENT);
});

test('2.1, 2.2: Records to an unknown to_id or from the agent itself are dropped silently', async () => {
  const { mtp, endpoint } = setup();
  mtp.inject(rec(CTL, 'os::000001-NOPE', getMsg('x1')));
  mtp.inject(rec(AGENT, AGENT, getMsg('x2')));
  await settle();
  assert.equal(mtp.sent.length, 0);
  assert.equal(endpoint.stats.dropped, 2);
});

test('a controller that is not configured gets Error 7006 saying so, on its reply address; the log names it once', async () => {
  const lines: Record<string, unknown>[] = [];
  const { mtp, endpoint } = setup({ logLines: lines });
  const untrusted: string[] = [];
  endpoint.on('untrusted', (u) => untrusted.push(`${u.fromId} ${u.reason}`));
  for (let i = 0; i < 20; i++) mtp.inject(rec('proto::stranger', AGENT, getMsg(`s${i}`)), '/stranger/reply');
  await settle();
  assert.equal(mtp.sent.length, 20);
  for (const [i, s] of mtp.sent.entries()) {
    assert.equal(s.dest.address, '/stranger/reply');
    assert.equal(s.rec.toId, 'proto::stranger');
    const m = msgOf(s.rec);
    assert.equal(m.header.msgId, `s${i}`);
    assert.equal(m.body.error?.errCode, 7006);
    assert.match(m.body.error?.errMsg ?? '', /proto::stranger is not configured/);
  }
  assert.equal(untrusted.length, 20);
  assert.equal(untrusted[0], 'proto::stranger not configured');
  const logged = lines.filter((l) => l.fromId === 'proto::stranger');
  assert.equal(logged.length, 1, 'one log line per from_id per minute');
  assert.match(String(logged[0]!.msg), /untrusted controller \(not configured\)/);
  // Its responses and Notify answers are not for the handlers: dropped, not answered.
  const resp: Msg = {
    header: { msgId: 'n1', msgType: 'NOTIFY_RESP' },
    body: { msgBody: 'response', response: { respType: 'notifyResp', notifyResp: { subscriptionId: 'x' } } },
  };
  mtp.inject(rec('proto::stranger', AGENT, resp), '/stranger/reply');
  await settle();
  assert.equal(mtp.sent.length, 20);
});

test('a topic bound to one controller: only its Records count there, and it is trusted only there', async () => {
  const { mtp, endpoint } = setup();
  const on = (from: string, id: string, channel: string, replyTo = '/forged'): void => {
    mtp.emit('record', {
      mtp: 'mqtt',
      bytes: rec(from, AGENT, getMsg(id)),
      replyTo: { mtp: 'mqtt', address: replyTo },
      agentEid: null,
      peerEid: null,
      channel,
    });
  };
  on(BOUND_CTL, 'b1', '/usp/agent/bound-ctl');
  await settle();
  assert.equal(mtp.sent.length, 1);
  assert.equal(mtp.sent[0]!.dest.address, '/bound-ctl');
  assert.equal(msgOf(mtp.sent[0]!.rec).body.msgBody, 'response');
  // Its Endpoint ID on the shared topic, or another controller's on its topic: dropped, nothing sent anywhere.
  on(BOUND_CTL, 'b2', '/usp/agent');
  on(CTL, 'b3', '/usp/agent/bound-ctl');
  await settle();
  assert.equal(mtp.sent.length, 1);
  assert.equal(endpoint.stats.dropped, 2);
  // An unbound controller on the shared topic is trusted as before.
  on(CTL, 'b4', '/usp/agent');
  await settle();
  assert.equal(mtp.sent.length, 2);
  assert.equal(msgOf(mtp.sent[1]!.rec).body.msgBody, 'response');
});

test('usp.allowUntrusted: a controller that failed authentication is answered 7006 at its configured address only', async () => {
  const { mtp } = setup({ allowUntrusted: true });
  mtp.emit('record', {
    mtp: 'mqtt',
    bytes: rec(BOUND_CTL, AGENT, getMsg('u1')),
    replyTo: { mtp: 'mqtt', address: '/forged' },
    agentEid: null,
    peerEid: null,
    channel: '/usp/agent',
  });
  await settle();
  assert.equal(mtp.sent.length, 1);
  assert.equal(mtp.sent[0]!.dest.address, '/bound-ctl');
  assert.equal(msgOf(mtp.sent[0]!.rec).body.error?.errCode, 7006);
  assert.match(msgOf(mtp.sent[0]!.rec).body.error?.errMsg ?? '', /not authenticated/);
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
  const { mtp } = setup({ maxInFlight: 2 });
  for (let i = 0; i < 10; i++) mtp.inject(rec(CTL, AGENT, getMsg(`f${i}`)));
  await settle();
  const msgs = mtp.sent.map((s) => msgOf(s.rec));
  assert.equal(msgs.length, 10);
  const refused = msgs.filter((m) => m.body.error?.errCode === 7005);
  const answered = msgs.filter((m) => m.body.msgBody === 'response');
  assert.ok(answered.length >= 2, `answered ${answered.length}`);
  assert.equal(refused.length + answered.length, 10);
});

test('rate limit: beyond the burst a controller gets 7002 naming the limit until tokens come back; others are unaffected', async () => {
  let now = 1_000_000;
  const { mtp } = setup({ rate: 2, burst: 3, now: () => now });
  for (let i = 0; i < 5; i++) mtp.inject(rec(CTL, AGENT, getMsg(`r${i}`)));
  await settle();
  // Refusals leave before answers: compare in msg_id order.
  const codes = (from: number) =>
    mtp.sent
      .slice(from)
      .map((s) => msgOf(s.rec))
      .sort((a, b) => a.header.msgId.localeCompare(b.header.msgId))
      .map((m) => m.body.error?.errCode ?? 'ok');
  assert.deepEqual(codes(0), ['ok', 'ok', 'ok', 7002, 7002]);
  const refusal = mtp.sent.map((s) => msgOf(s.rec)).find((m) => m.header.msgId === 'r3')!;
  assert.match(refusal.body.error?.errMsg ?? '', /rate limit exceeded by proto::ctl \(2 requests\/s, bursts of 3\)/);
  // Another controller has its own bucket.
  mtp.inject(rec(WS_CTL, AGENT, getMsg('w1')), '/w');
  await settle();
  assert.deepEqual(codes(5), ['ok']);
  // Half a second later one token is back (2/s).
  now += 500;
  mtp.inject(rec(CTL, AGENT, getMsg('r5')));
  mtp.inject(rec(CTL, AGENT, getMsg('r6')));
  await settle();
  assert.deepEqual(codes(6), ['ok', 7002]);
});

test('untrusted controllers share one bucket, whatever from_id they invent', async () => {
  const { mtp } = setup({ rate: 1, burst: 2, now: () => 0 });
  for (let i = 0; i < 4; i++) mtp.inject(rec(`proto::stranger-${i}`, AGENT, getMsg(`x${i}`)), `/s${i}`);
  await settle();
  const byId = new Map(mtp.sent.map((s) => [msgOf(s.rec).header.msgId, msgOf(s.rec).body.error] as const));
  assert.deepEqual(
    ['x0', 'x1', 'x2', 'x3'].map((id) => byId.get(id)?.errCode),
    [7006, 7006, 7002, 7002],
  );
  assert.match(byId.get('x2')?.errMsg ?? '', /untrusted controllers/);
  mtp.inject(rec(CTL, AGENT, getMsg('c1')));
  await settle();
  assert.equal(msgOf(mtp.sent[4]!.rec).body.msgBody, 'response', 'a configured controller is not slowed down by them');
});

/** Device.Slow.: its get() holds until released and reports whether its request was cancelled meanwhile. */
class SlowBackend extends MemoryModel {
  readonly seen: (boolean | undefined)[] = [];
  private release: (() => void) | null = null;
  readonly entered: Promise<void>;
  private enter!: () => void;
  constructor() {
    super(
      ['Device.Slow.'],
      [
        {
          path: 'Device.Slow.',
          access: 'readOnly',
          multiInstance: false,
          params: [{ name: 'X', type: 'string', access: 'readOnly' }],
          commands: [],
          events: [],
          uniqueKeys: [],
        },
      ],
      { seed: (_eid, tree) => void tree.objects.set('Device.Slow.', { X: 'x' }) },
    );
    this.entered = new Promise((r) => (this.enter = r));
  }
  override async get(agentEid: string, paths: readonly string[], _opts?: GetOptions, scope?: CallScope): Promise<Map<string, string>> {
    const signal = scope?.signal;
    this.enter();
    await new Promise<void>((r) => (this.release = r));
    this.seen.push(signal?.aborted);
    return super.get(agentEid, paths);
  }
  done(): void {
    this.release?.();
  }
}

test("a connection that closes cancels its read-only requests' work; other connections' requests go on", async () => {
  const slow = new SlowBackend();
  const { mtp } = setup({ kind: 'websocket', backends: [slow] });
  const get: Msg = {
    header: { msgId: 'q1', msgType: 'GET' },
    body: { msgBody: 'request', request: { reqType: 'get', get: { paramPaths: ['Device.Slow.X'] } } },
  };
  mtp.inject(rec(CTL, AGENT, get), 'srv-1');
  await slow.entered;
  mtp.emit('channelClose', { mtp: 'websocket', agentEid: null, dest: { mtp: 'websocket', address: 'srv-2' }, reason: 'another connection' });
  await settle();
  mtp.emit('channelClose', { mtp: 'websocket', agentEid: null, dest: { mtp: 'websocket', address: 'srv-1' }, reason: 'peer closed' });
  slow.done();
  await settle();
  assert.deepEqual(slow.seen, [true], 'the request of the closed connection sees its signal aborted');
  const second = new SlowBackend();
  const s2 = setup({ kind: 'websocket', backends: [second] });
  s2.mtp.inject(rec(CTL, AGENT, get), 'srv-1');
  await second.entered;
  s2.mtp.emit('channelClose', { mtp: 'websocket', agentEid: null, dest: { mtp: 'websocket', address: 'srv-9' }, reason: 'another connection' });
  second.done();
  await settle();
  assert.deepEqual(second.seen, [false]);
  assert.equal(s2.mtp.sent.length, 1);
  // A request read only after its connection closed starts cancelled.
  const third = new SlowBackend();
  const s3 = setup({ kind: 'websocket', backends: [third] });
  s3.mtp.emit('channelClose', { mtp: 'websocket', agentEid: null, dest: { mtp: 'websocket', address: 'srv-3' }, reason: 'peer closed' });
  s3.mtp.inject(rec(CTL, AGENT, get), 'srv-3');
  await third.entered;
  third.done();
  await settle();
  assert.deepEqual(third.seen, [true]);
});

test('R-MTP.6: a (re)connected broker channel makes every agent send its Connect Record', async () => {
  const { mtp } = setup();
  mtp.emit('channelOpen', { mtp: 'mqtt', agentEid: null, dest: null, peerEid: null });
  await settle();
  const connects = mtp.sent.filter((s) => s.rec.recordType.kind === 'mqttConnect');
  assert.deepEqual(connects.map((c) => `${c.rec.fromId} ${c.dest.address}`).sort(), [
    `${AGENT} /bound-ctl`,
    `${AGENT} /ctl`,
    `${OTHER} /bound-ctl`,
    `${OTHER} /ctl`,
  ]);
  assert.ok(connects.every((c) => (c.rec.recordType as { subscribedTopic: string }).subscribedTopic === '/usp/agent'));
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

test('a WebSocket connection that proved one controller: Records with another from_id are dropped, logged once per connection', async () => {
  const lines: Record<string, unknown>[] = [];
  const { mtp, endpoint } = setup({ kind: 'websocket', logLines: lines });
  const spoof = (conn: string): void => {
    mtp.emit('record', {
      mtp: 'websocket',
      bytes: rec(CTL, AGENT, getMsg('sp')),
      replyTo: { mtp: 'websocket', address: conn },
      agentEid: null,
      peerEid: WS_CTL,
      authenticated: true,
    });
  };
  for (let i = 0; i < 5; i++) spoof('srv-7');
  await settle();
  assert.equal(mtp.sent.length, 0);
  assert.equal(endpoint.stats.dropped, 5);
  const logged = () => lines.filter((l) => /does not match the Endpoint ID of the connection/.test(String(l.msg)));
  assert.equal(logged().length, 1);
  assert.equal(logged()[0]!.fromId, CTL);
  mtp.emit('channelClose', { mtp: 'websocket', agentEid: null, dest: { mtp: 'websocket', address: 'srv-7' }, reason: 'closed' });
  spoof('srv-8');
  await settle();
  assert.equal(logged().length, 2, 'a new connection is logged again');
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
  // GET answered; the stranger's GET answered with an Error (untrusted); garbage; Connect Records to the two controllers with a topic.
  assert.deepEqual(seen, [
    'in GET',
    'in GET',
    'in undecodable',
    'out ERROR',
    'out GET_RESP',
    'out mqttConnect',
    'out mqttConnect',
    'out mqttConnect',
    'out mqttConnect',
  ]);
  assert.ok(events.every((e) => e.mtp === 'mqtt' && e.ms >= 0));
  assert.equal(endpoint.stats.recordsIn, 3);
  assert.equal(endpoint.stats.recordsOut, 6);
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
  override requestAnswered(_a: string, _c: string, msgId: string): boolean {
    this.calls.push(`answered ${msgId}`);
    return true;
  }
}

test('several instances: agents registered elsewhere are served, requests tracked, unreachable controllers relayed', async () => {
  const FAR = 'os::000001-FAR';
  const coordination = new NotingCoordination(new Set([FAR]));
  const { mtp, endpoint } = setup({ coordination });
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

test('several instances: each opens its broker channel, yet a controller gets one Connect Record per agent (claimed once)', async () => {
  const claimed = new Set<string>();
  class SharedClaims extends SingleInstance {
    override async claimOnce(key: string): Promise<boolean> {
      if (claimed.has(key)) return false;
      claimed.add(key);
      return true;
    }
  }
  const one = setup({ coordination: new SharedClaims() });
  const two = setup({ coordination: new SharedClaims() });
  for (const { mtp } of [one, two]) mtp.emit('channelOpen', { mtp: 'mqtt', agentEid: null, dest: null, peerEid: null });
  await settle();
  const connects = [...one.mtp.sent, ...two.mtp.sent].filter((s) => s.rec.recordType.kind === 'mqttConnect');
  assert.deepEqual(connects.map((c) => `${c.rec.fromId} ${c.dest.address}`).sort(), [
    `${AGENT} /bound-ctl`,
    `${AGENT} /ctl`,
    `${OTHER} /bound-ctl`,
    `${OTHER} /ctl`,
  ]);
  // A claim that cannot be checked (the store is down) still sends: better twice than never.
  class Broken extends SingleInstance {
    override async claimOnce(): Promise<boolean> {
      throw new Error('redis down');
    }
  }
  const three = setup({ coordination: new Broken() });
  three.mtp.emit('channelOpen', { mtp: 'mqtt', agentEid: null, dest: null, peerEid: null });
  await settle();
  assert.equal(three.mtp.sent.filter((s) => s.rec.recordType.kind === 'mqttConnect').length, 4);
});

test('several instances: an answer whose request another instance took over and answered is not sent again', async () => {
  // What RedisCoordination answers when this instance was declared dead while the request ran.
  class TakenOver extends SingleInstance {
    readonly calls: string[] = [];
    override requestStarted(_a: string, _c: string, msgId: string): void {
      this.calls.push(`started ${msgId}`);
    }
    override requestAnswered(_a: string, _c: string, msgId: string): Promise<boolean> {
      this.calls.push(`answered ${msgId}`);
      return Promise.resolve(msgId !== 'gone');
    }
  }
  const coordination = new TakenOver();
  const { mtp } = setup({ coordination });
  mtp.inject(rec(CTL, AGENT, getMsg('gone')));
  mtp.inject(rec(CTL, AGENT, getMsg('kept')));
  await settle();
  const answers = mtp.sent.filter((s) => s.rec.recordType.kind === 'noSessionContext').map((s) => msgOf(s.rec).header.msgId);
  assert.deepEqual(answers, ['kept']);
  assert.deepEqual(coordination.calls.sort(), ['answered gone', 'answered kept', 'started gone', 'started kept']);
});
