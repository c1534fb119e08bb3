/**
 * Metric labels fed from peer input take values from a fixed set (issue 14 item 9): the
 * EventCodes of TR-069 Table 7, "M <method>" for the standard methods, "M other" and "other".
 * Five real Informs over HTTP carrying 100,000 distinct vendor EventCodes leave a bounded number
 * of cwmp_informs_total series.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CwmpUspProxy } from '../../src/app/proxy.js';
import { loadConfig } from '../../src/app/config.js';
import { silentLogger } from '../../src/app/log.js';
import { informEventLabel, STANDARD_EVENT_CODES } from '../../src/ops/metrics.js';
import { fixture } from '../helpers/paths.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'cup-labels-'));
let proxy: CwmpUspProxy;

before(async () => {
  const config = loadConfig({
    env: {},
    overrides: { dataDir: dir, 'acs.host': '127.0.0.1', 'acs.port': 0, 'usp.websocket.enabled': false, 'log.level': 'silent' },
  });
  proxy = new CwmpUspProxy(config, silentLogger());
  await proxy.start();
});

after(async () => {
  await proxy?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function post(body: string): Promise<number> {
  const port = (proxy.acs.server.address() as AddressInfo).port;
  const buf = Buffer.from(body, 'utf8');
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, method: 'POST', path: '/', agent: false, headers: { 'Content-Type': 'text/xml', 'Content-Length': buf.length } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(buf);
  });
}

test('the label of an EventCode: standard ones as sent, other methods as "M other", anything else as "other"', () => {
  for (const c of STANDARD_EVENT_CODES) assert.equal(informEventLabel(c), c);
  assert.equal(informEventLabel('14 HEARTBEAT'), '14 HEARTBEAT');
  assert.equal(informEventLabel('M Reboot'), 'M Reboot');
  assert.equal(informEventLabel('M X_00D09E_Frobnicate'), 'M other');
  assert.equal(informEventLabel('X 00D09E BOOT'), 'other');
  assert.equal(informEventLabel('2 periodic'), 'other');
  assert.equal(informEventLabel(''), 'other');
});

test('five Informs with 100,000 distinct vendor EventCodes leave a bounded number of cwmp_informs_total series', async () => {
  const inform = readFileSync(fixture('soap', 'cpe', 'Inform.1-0.xml'), 'utf8');
  for (let k = 0; k < 5; k++) {
    const events = Array.from({ length: 20_000 }, (_, i) => `<EventStruct><EventCode>X 00D09E EV${k}-${i}</EventCode><CommandKey></CommandKey></EventStruct>`);
    events.push('<EventStruct><EventCode>M X_00D09E_Method</EventCode><CommandKey></CommandKey></EventStruct>');
    const body = inform
      .replace(/<SerialNumber>[^<]*<\/SerialNumber>/, `<SerialNumber>LBL${k}</SerialNumber>`)
      .replace(
        /<Event [^>]*>[\s\S]*<\/Event>/,
        `<Event soap-enc:arrayType="cwmp:EventStruct[${events.length}]"><EventStruct><EventCode>2 PERIODIC</EventCode><CommandKey></CommandKey></EventStruct>${events.join('')}</Event>`,
      );
    assert.equal(await post(body), 200);
  }
  const text = await proxy.metrics.metricsText();
  const series = text.split('\n').filter((l) => l.startsWith('cwmp_informs_total{'));
  const labels = series.map((l) => /event="([^"]*)"/.exec(l)?.[1]).sort();
  assert.deepEqual(labels, ['2 PERIODIC', 'M other', 'other']);
  const other = series.find((l) => l.includes('event="other"'))!;
  assert.equal(Number(other.split(' ').pop()), 100_000);
  assert.ok(text.length < 100_000, `/metrics is ${text.length} bytes`);
});
