/**
 * Retained failed reports survive a proxy restart (issue 20): an HTTP profile whose collector
 * answers 500 keeps its failed reports (NumberOfRetainedFailedReports bounds them); the proxy stops
 * and starts again on the same data folder; once the collector accepts, the first body carries the
 * reports collected before the restart, oldest first, then the current one.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Fleet } from '../../src/tools/sim/fleet.js';
import { UspControllerClient, add, set } from '../../src/tools/controller/client.js';
import type { Msg } from '../../src/usp/codec/record.js';
import { freePort } from '../helpers/brokers.js';
import { startTestProxy, type TestProxy } from '../helpers/test-proxy.js';
import { TestController } from '../helpers/test-controller.js';
import { STRICT_SIM } from '../helpers/sim.js';

const CTL = 'proto::bulkdata-retained-ctl';
const dir = mkdtempSync(path.join(os.tmpdir(), 'cup-bulkdata-retained-'));
const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
  rmSync(dir, { recursive: true, force: true });
});

async function until(pred: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!pred()) {
    if (Date.now() > deadline) assert.fail(`${what}: not within 30 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('retained failed reports are kept in the store and sent after a restart', { timeout: 90_000 }, async () => {
  let down = true;
  const accepted: string[] = [];
  const collector = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (!down) accepted.push(Buffer.concat(chunks).toString());
      res.writeHead(down ? 500 : 200).end();
    });
  });
  await new Promise<void>((r) => collector.listen(0, '127.0.0.1', r));
  cleanup.push(() => new Promise<void>((r) => collector.close(() => r())));
  const url = `http://127.0.0.1:${(collector.address() as AddressInfo).port}/bdc`;
  const acsPort = await freePort();
  const wsPort = await freePort();
  const start = () =>
    startTestProxy({
      dataDir: dir,
      'acs.port': acsPort,
      'usp.websocket.port': wsPort,
      'bulkData.minReportingIntervalS': 1,
      controllers: [{ endpointId: CTL, role: 'full' }],
    });
  let tp: TestProxy = await start();
  cleanup.push(() => tp.stop());
  const fleet = new Fleet({ quirks: STRICT_SIM, acsUrl: tp.acsUrl, count: 1, model: 'tr181', serialPrefix: 'BDK', periodicIntervalS: null });
  await fleet.start();
  cleanup.push(() => fleet.stop());
  const serial = fleet.devices[0]!.serial;
  const agent = (await tp.proxy.store.listDevices()).find((d) => d.deviceId.serialNumber === serial)!.endpointId;
  const c = new UspControllerClient({ endpointId: CTL, agentId: agent, transport: { mtp: 'ws', url: `ws://127.0.0.1:${wsPort}/usp` }, timeoutMs: 20_000 });
  await c.connect();
  const ctl = new TestController(c);
  const ok = (m: Msg, type = 'ADD_RESP') => assert.equal(m.header.msgType, type, JSON.stringify(m.body));
  ok(
    await ctl.req(
      add([
        {
          objPath: 'Device.BulkData.Profile.',
          params: { Protocol: 'HTTP', EncodingType: 'JSON', ReportingInterval: '1', NumberOfRetainedFailedReports: '3' },
          required: true,
        },
      ]),
      20_000,
    ),
  );
  ok(
    await ctl.req(add([{ objPath: 'Device.BulkData.Profile.1.Parameter.', params: { Reference: 'Device.DeviceInfo.SerialNumber' }, required: true }]), 20_000),
  );
  ok(
    await ctl.req(
      set([
        { objPath: 'Device.BulkData.Profile.1.HTTP.', params: { URL: url }, required: true },
        { objPath: 'Device.BulkData.Profile.1.', params: { Enable: 'true' }, required: true },
      ]),
      20_000,
    ),
    'SET_RESP',
  );
  await until(() => tp.proxy.bulkDataScheduler.retainedReports(agent, 1) >= 3, 'three retained reports');
  await c.close();
  await tp.stop();
  const stoppedAt = Date.now() / 1000;
  down = false;
  tp = await start();
  await until(() => accepted.length > 0, 'a report accepted after the restart');
  const body = JSON.parse(accepted[0]!) as { Report: { CollectionTime: number; Device: { DeviceInfo: { SerialNumber: string } } }[] };
  assert.ok(body.Report.length >= 2 && body.Report.length <= 4, `at most 3 retained + the current one: ${body.Report.length}`);
  assert.ok(body.Report[0]!.CollectionTime < stoppedAt, 'the oldest was collected before the restart');
  assert.ok(body.Report.at(-1)!.CollectionTime >= Math.floor(stoppedAt), 'the last one after it');
  for (const r of body.Report) assert.equal(r.Device.DeviceInfo.SerialNumber, serial);
  await until(() => tp.proxy.bulkDataScheduler.retainedReports(agent, 1) === 0, 'nothing retained once delivered');
  ok(
    await new TestController(await reconnect(agent, wsPort)).req(
      set([{ objPath: 'Device.BulkData.Profile.1.', params: { Enable: 'false' }, required: true }]),
      20_000,
    ),
    'SET_RESP',
  );
});

async function reconnect(agent: string, wsPort: number): Promise<UspControllerClient> {
  const c = new UspControllerClient({ endpointId: CTL, agentId: agent, transport: { mtp: 'ws', url: `ws://127.0.0.1:${wsPort}/usp` }, timeoutMs: 20_000 });
  await c.connect();
  cleanup.push(() => c.close());
  return c;
}
