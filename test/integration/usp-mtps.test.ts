/**
 * The USP side end to end over each MTP with real brokers: a registered CWMP device (from the
 * in-repo simulator) is a USP Agent; our own controller CLI does Add/Get/Set/GetInstances/
 * GetSupportedDM/Delete on Device.LocalAgent.Subscription. over WebSocket, MQTT 5 (mosquitto)
 * and STOMP (RabbitMQ). Trust: a read-only controller gets 7006 on writes, an unknown one
 * gets 7006 for everything.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { CwmpUspProxy } from '../../src/app/proxy.js';
import { Fleet } from '../../src/tools/sim/fleet.js';
import { runUspCli } from '../../src/tools/controller/cli.js';
import { startMosquitto, startRabbitStomp, type MosquittoHandle, type RabbitStompHandle } from '../helpers/brokers.js';
import { startTestProxy, type TestProxy } from '../helpers/test-proxy.js';
import { STRICT_SIM } from '../helpers/sim.js';

const CTL = 'proto::cwmp-usp-proxy-cli';
const RO = 'proto::read-only-ctl';
let mosq: MosquittoHandle | null = null;
let rabbit: RabbitStompHandle | null = null;
let tp: TestProxy;
let proxy: CwmpUspProxy;
let fleet: Fleet;
let agent = '';

before(async () => {
  [mosq, rabbit] = await Promise.all([startMosquitto(), startRabbitStomp()]);
  tp = await startTestProxy({
    'usp.mqtt.url': mosq ? mosq.url : '',
    'usp.mqtt.topic': '/usp/agent',
    'usp.stomp.host': rabbit ? rabbit.host : '',
    'usp.stomp.port': rabbit ? rabbit.port : 61613,
    'usp.stomp.destination': '/queue/usp.agent',
    'usp.reconnectBaseMs': 200,
    'usp.reconnectMaxMs': 2000,
    controllers: [
      { endpointId: CTL, role: 'full', mqtt: { topic: '/usp/controller' }, stomp: { destination: '/queue/usp.controller' } },
      { endpointId: RO, role: 'read-only', mqtt: { topic: '/usp/ro' }, stomp: { destination: '/queue/usp.ro' } },
    ],
  });
  proxy = tp.proxy;
  fleet = new Fleet({ quirks: STRICT_SIM, acsUrl: tp.acsUrl, count: 2, model: 'tr181', serialPrefix: 'USP', periodicIntervalS: null });
  await fleet.start();
  agent = (await proxy.store.listDevices())[0]!.endpointId;
});

after(async () => {
  await fleet?.stop();
  await tp?.stop();
  await Promise.all([mosq?.stop(), rabbit?.stop()]);
});

// biome-ignore lint/suspicious/noExplicitAny: the CLI's JSON output, read field by field
async function cli(args: string[]): Promise<{ code: number; json: any; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runUspCli(['--json', ...args], { out: (s) => (out += s), err: (s) => (err += s), env: {} });
  // biome-ignore lint/suspicious/noExplicitAny: as above
  let json: any = null;
  try {
    json = JSON.parse(out);
  } catch {
    json = null;
  }
  return { code, json, out, err };
}

function transport(mtp: 'ws' | 'mqtt' | 'stomp', from = CTL): string[] {
  const wsPort = proxy.usp.ws!.serverAddress()!.port;
  switch (mtp) {
    case 'ws':
      return ['--mtp', 'ws', '--url', `ws://127.0.0.1:${wsPort}/usp`, '--to', agent, '--from', from, '--timeout', '5000'];
    case 'mqtt':
      return [
        '--mtp',
        'mqtt',
        '--url',
        mosq!.url,
        '--controller-topic',
        from === CTL ? '/usp/controller' : '/usp/ro',
        '--agent-topic',
        '/usp/agent',
        '--to',
        agent,
        '--from',
        from,
        '--timeout',
        '5000',
      ];
    case 'stomp':
      return [
        '--mtp',
        'stomp',
        '--host',
        rabbit!.host,
        '--port',
        String(rabbit!.port),
        '--login',
        'guest',
        '--passcode',
        'guest',
        '--controller-dest',
        from === CTL ? '/queue/usp.controller' : '/queue/usp.ro',
        '--agent-dest',
        '/queue/usp.agent',
        '--to',
        agent,
        '--from',
        from,
        '--timeout',
        '5000',
      ];
  }
}

for (const mtp of ['ws', 'mqtt', 'stomp'] as const) {
  test(`${mtp}: Add/Get/Set/GetInstances/GetSupportedDM/Delete on Device.LocalAgent.Subscription.`, async (t) => {
    if (mtp === 'mqtt' && !mosq) return t.skip('mosquitto not installed (apt-get install mosquitto; .ci/run does)');
    if (mtp === 'stomp' && !rabbit) return t.skip('rabbitmq-server not installed (apt-get install rabbitmq-server; .ci/run does)');
    const tr = transport(mtp);
    const id = `sub-${mtp}`;

    const add = await cli([
      'add',
      'Device.LocalAgent.Subscription.',
      'Enable=true',
      `ID=${id}`,
      'NotifType=ValueChange',
      'ReferenceList=Device.LocalAgent.Controller.1.ProvisioningCode',
      ...tr,
    ]);
    assert.equal(add.code, 0, add.err + add.out);
    const ok = add.json.body.response.addResp.createdObjResults[0].operStatus.operSuccess;
    assert.match(ok.instantiatedPath, /^Device\.LocalAgent\.Subscription\.\d+\.$/);
    assert.equal(ok.uniqueKeys.ID, id);
    assert.equal(ok.uniqueKeys.Recipient, 'Device.LocalAgent.Controller.1');
    const inst = ok.instantiatedPath as string;

    const get = await cli(['get', `Device.LocalAgent.Subscription.[ID=="${id}"].`, ...tr]);
    assert.equal(get.code, 0, get.err);
    const r = get.json.body.response.getResp.reqPathResults[0].resolvedPathResults[0];
    assert.equal(r.resolvedPath, inst);
    assert.equal(r.resultParams.NotifType, 'ValueChange');
    assert.equal(r.resultParams.Enable, 'true');

    const set = await cli(['set', inst, 'NotifRetry=true', 'TimeToLive=3600', '--required', ...tr]);
    assert.equal(set.code, 0, set.err);
    const upd = set.json.body.response.setResp.updatedObjResults[0].operStatus.operSuccess.updatedInstResults[0];
    assert.equal(upd.affectedPath, inst);
    assert.deepEqual(upd.updatedParams, { NotifRetry: 'true', TimeToLive: '3600' });

    const bad = await cli(['set', inst, 'Enable=maybe', '--required', ...tr]);
    assert.equal(bad.code, 1, 'a USP Error Msg exits 1');
    assert.equal(bad.json.body.error.errCode, 7004);
    assert.equal(bad.json.body.error.paramErrs[0].errCode, 7011);

    const inst2 = await cli(['instances', 'Device.LocalAgent.Subscription.', ...tr]);
    assert.equal(inst2.code, 0);
    const insts = inst2.json.body.response.getInstancesResp.reqPathResults[0].currInsts;
    assert.ok(insts.some((i: { instantiatedObjPath: string; uniqueKeys: Record<string, string> }) => i.instantiatedObjPath === inst && i.uniqueKeys.ID === id));

    const dm = await cli(['supported-dm', 'Device.LocalAgent.Subscription.', ...tr]);
    assert.equal(dm.code, 0);
    const obj = dm.json.body.response.getSupportedDmResp.reqObjResults[0].supportedObjs[0];
    assert.equal(obj.supportedObjPath, 'Device.LocalAgent.Subscription.{i}.');
    assert.equal(obj.access, 'OBJ_ADD_DELETE');
    assert.equal(obj.isMultiInstance, true);
    const params = Object.fromEntries(obj.supportedParams.map((p: { paramName: string; valueType: string }) => [p.paramName, p.valueType]));
    assert.equal(params.Enable, 'PARAM_BOOLEAN');
    assert.equal(params.TimeToLive, 'PARAM_UNSIGNED_INT');

    const del = await cli(['delete', inst, ...tr]);
    assert.equal(del.code, 0);
    assert.deepEqual(del.json.body.response.deleteResp.deletedObjResults[0].operStatus.operSuccess.affectedPaths, [inst]);
    const gone = await cli(['get', `Device.LocalAgent.Subscription.[ID=="${id}"].`, ...tr]);
    assert.deepEqual(gone.json.body.response.getResp.reqPathResults[0].resolvedPathResults, []);
  });
}

test('a read-only controller gets 7006 on Add; Get still works', async () => {
  const tr = transport('ws', RO);
  const add = await cli(['add', 'Device.LocalAgent.Controller.1.BootParameter.', 'ParameterName=Device.DeviceInfo.SerialNumber', ...tr]);
  assert.equal(add.code, 1);
  assert.equal(add.json.body.error.errCode, 7006);
  const get = await cli(['get', 'Device.LocalAgent.EndpointID', ...tr]);
  assert.equal(get.code, 0);
  assert.equal(get.json.body.response.getResp.reqPathResults[0].resolvedPathResults[0].resultParams.EndpointID, agent);
});

test('an unknown controller gets 7006 (untrusted) at once; configured controllers unaffected', async (t) => {
  if (!mosq) return t.skip('mosquitto not installed');
  const stranger = [
    '--mtp',
    'mqtt',
    '--url',
    mosq.url,
    '--controller-topic',
    '/usp/stranger',
    '--agent-topic',
    '/usp/agent',
    '--to',
    agent,
    '--from',
    'proto::stranger',
    '--timeout',
    '800',
  ];
  const r = await cli(['get', 'Device.LocalAgent.EndpointID', ...stranger]);
  assert.equal(r.code, 1, `a USP Error Msg within the 800 ms timeout: ${r.err}`);
  assert.equal(r.json.body.error.errCode, 7006);
  assert.match(r.json.body.error.errMsg, /proto::stranger is not configured/);
  const ok = await cli(['get', 'Device.LocalAgent.EndpointID', ...transport('mqtt')]);
  assert.equal(ok.code, 0);
});

test('GetSupportedProtocol and a partial-path Get over WebSocket', async () => {
  const tr = transport('ws');
  const p = await cli(['supported-proto', '1.3', ...tr]);
  assert.equal(p.json.body.response.getSupportedProtocolResp.agentSupportedProtocolVersions, '1.0,1.1,1.2,1.3,1.4');
  const g = await cli(['get', 'Device.LocalAgent.', '--max-depth', '1', ...tr]);
  const res = g.json.body.response.getResp.reqPathResults[0].resolvedPathResults;
  assert.equal(res.length, 1, 'max_depth 1: the object itself only');
  assert.equal(res[0].resolvedPath, 'Device.LocalAgent.');
  assert.equal(res[0].resultParams.EndpointID, agent);
});
