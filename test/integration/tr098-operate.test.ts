/** Commands on a TR-098 device through the mapping: IPPing() runs on InternetGatewayDevice.IPPingDiagnostics. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CwmpUspProxy } from '../../src/app/proxy.js';
import { loadConfig } from '../../src/app/config.js';
import { silentLogger } from '../../src/app/log.js';
import { Fleet } from '../../src/tools/sim/fleet.js';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { UspControllerClient, add, get, getSupportedDM, operate } from '../../src/tools/controller/client.js';
import type { Notify } from '../../src/usp/codec/record.js';
import { STRICT_SIM } from '../helpers/sim.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'cup-tr098-op-'));
let proxy: CwmpUspProxy;
let fleet: Fleet;
let client: UspControllerClient;
const notes: Notify[] = [];

before(async () => {
  const config = loadConfig({
    env: {},
    overrides: {
      dataDir: dir,
      'acs.host': '127.0.0.1',
      'acs.port': 0,
      'usp.websocket.host': '127.0.0.1',
      'usp.websocket.port': 0,
      'log.level': 'silent',
      controllers: [{ endpointId: 'proto::ctl', role: 'full' }],
    },
  });
  proxy = new CwmpUspProxy(config, silentLogger());
  await proxy.start();
  fleet = new Fleet({
    quirks: STRICT_SIM,
    acsUrl: `http://127.0.0.1:${proxy.acsPort}/`,
    count: 1,
    model: 'tr098',
    serialPrefix: 'OP98',
    periodicIntervalS: null,
    timers: { diagnosticsDelayMs: 100 },
  });
  await fleet.start();
  const eid = (await proxy.store.listDevices())[0]!.endpointId;
  client = new UspControllerClient({
    agentId: eid,
    endpointId: 'proto::ctl',
    transport: { mtp: 'ws', url: `ws://127.0.0.1:${proxy.usp.ws!.serverAddress()!.port}/usp` },
  });
  client.on('notify', (m) => notes.push(m.body.request!.notify!));
  await client.connect();
});

after(async () => {
  await client?.close();
  await fleet?.stop();
  await proxy?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('GetSupportedDM offers IPPing() on the mapped Device.IP.Diagnostics.', async () => {
  const r = await client.request(getSupportedDM(['Device.IP.Diagnostics.'], { firstLevelOnly: true }), 20_000);
  const obj = r.body.response!.getSupportedDmResp!.reqObjResults[0]!.supportedObjs.find((o) => o.supportedObjPath === 'Device.IP.Diagnostics.')!;
  const ping = obj.supportedCommands.find((c) => c.commandName === 'IPPing()');
  assert.ok(ping, 'IPPing() is offered');
  assert.equal(ping.commandType, 'CMD_ASYNC');
  assert.ok(ping.inputArgNames.includes('Host'));
});

test('IPPing() on a TR-098 device: Request object, then OperationComplete with the mapped results', async () => {
  await client.request(
    add([
      {
        objPath: 'Device.LocalAgent.Subscription.',
        params: { Enable: 'true', ID: 'oc', NotifType: 'OperationComplete', ReferenceList: 'Device.IP.Diagnostics.IPPing()' },
      },
    ]),
    20_000,
  );
  const r = await client.request(
    operate('Device.IP.Diagnostics.IPPing()', { Host: '192.0.2.1', NumberOfRepetitions: '3' }, { commandKey: 'ping-98', sendResp: true }),
    20_000,
  );
  const res = r.body.response!.operateResp!.operationResults[0]!;
  assert.match(res.reqObjPath ?? '', /^Device\.LocalAgent\.Request\.\d+\.$/);
  const deadline = Date.now() + 15_000;
  while (!notes.some((n) => n.operComplete) && Date.now() < deadline) await new Promise((res2) => setTimeout(res2, 50));
  const done = notes.find((n) => n.operComplete)!.operComplete!;
  assert.equal(done.commandName, 'IPPing()');
  assert.equal(done.commandKey, 'ping-98');
  const out = done.reqOutputArgs!.outputArgs;
  assert.equal(out.Status, 'Complete');
  assert.equal(out.SuccessCount, '3');
  // The native IPPingDiagnostics object got the inputs through the mapping.
  assert.equal(fleet.devices[0]!.getValue('InternetGatewayDevice.IPPingDiagnostics.Host'), '192.0.2.1');
});

test('Download() on a TR-098 device: FirmwareImage.1 is the running image; OperationComplete after TransferComplete', async () => {
  const files = http.createServer((req, res) => {
    res.writeHead(req.url === '/fw-2.0.bin' ? 200 : 404, { 'Content-Type': 'application/octet-stream' });
    res.end(req.url === '/fw-2.0.bin' ? Buffer.alloc(1024) : undefined);
  });
  await new Promise<void>((r) => files.listen(0, '127.0.0.1', r));
  try {
    const g = await client.request(get(['Device.DeviceInfo.FirmwareImage.1.Version', 'Device.DeviceInfo.SoftwareVersion']), 20_000);
    const results = g.body.response!.getResp!.reqPathResults;
    const image = results[0]!.resolvedPathResults[0]!.resultParams.Version;
    assert.equal(image, results[1]!.resolvedPathResults[0]!.resultParams.SoftwareVersion, 'FirmwareImage.1 is the running software');
    await client.request(
      add([
        {
          objPath: 'Device.LocalAgent.Subscription.',
          // Persistent: the Download reboots the device, which ends non-persistent subscriptions.
          params: {
            Enable: 'true',
            ID: 'dl',
            NotifType: 'OperationComplete',
            ReferenceList: 'Device.DeviceInfo.FirmwareImage.*.Download()',
            Persistent: 'true',
          },
        },
      ]),
      20_000,
    );
    const url = `http://127.0.0.1:${(files.address() as AddressInfo).port}/fw-2.0.bin`;
    const r = await client.request(
      operate('Device.DeviceInfo.FirmwareImage.1.Download()', { URL: url, AutoActivate: 'true' }, { commandKey: 'dl-98', sendResp: true }),
      20_000,
    );
    assert.match(r.body.response!.operateResp!.operationResults[0]!.reqObjPath ?? '', /^Device\.LocalAgent\.Request\.\d+\.$/);
    const deadline = Date.now() + 20_000;
    const isDone = (n: Notify) => n.operComplete?.commandName === 'Download()';
    while (!notes.some(isDone) && Date.now() < deadline) await new Promise((res2) => setTimeout(res2, 50));
    const done = notes.find(isDone)!.operComplete!;
    assert.equal(done.commandKey, 'dl-98');
    assert.equal(done.objPath, 'Device.DeviceInfo.FirmwareImage.1.');
    assert.ok(done.reqOutputArgs, `success expected, got ${JSON.stringify(done.cmdFailure)}`);
  } finally {
    await new Promise((r) => files.close(r));
  }
});
