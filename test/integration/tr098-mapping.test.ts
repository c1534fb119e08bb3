/**
 * TR-098 devices presented as Device:2 (the declarative mapping), end to end: the real Huawei
 * TR-098 dumps and the TP-Link TR-181 dumps of ../shared/reference/cwmp-models/ loaded into the
 * simulator, one proxy (WebSocket MTP), one USP controller script for all four models.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CwmpUspProxy } from '../../src/app/proxy.js';
import { loadConfig } from '../../src/app/config.js';
import { createLogger } from '../../src/app/log.js';
import { Fleet } from '../../src/tools/sim/fleet.js';
import type { SimDevice } from '../../src/tools/sim/device.js';
import { UspControllerClient, get, set, add, del, getInstances, getSupportedDM } from '../../src/tools/controller/client.js';
import { modelParams, runMappingCli } from '../../src/tools/coverage.js';
import { DeviceMapping } from '../../src/mapping/engine.js';
import { loadDefaultMapping } from '../../src/mapping/load.js';
import { hasReference, REFERENCE } from '../helpers/paths.js';
import { STRICT_SIM } from '../helpers/sim.js';
import { isSecret } from '../../src/interworking/values.js';

type Msg = Awaited<ReturnType<UspControllerClient['request']>>;

const MODELS = ['huawei-BM632w-tr098.csv', 'huawei-EG8145V5-tr098.csv', 'tplink-EX220-tr181.csv', 'tplink-EC220G5v3-tr181.csv'];
const skip = hasReference('cwmp-models') ? false : 'needs ../shared/reference/cwmp-models (the shared reference checkout is absent)';
const CTL = 'proto::tr098-ctl';
const EXT = 'Device.X_CWMP-USP-PROXY_Native.';

let proxy: CwmpUspProxy;
let dir: string;

before(async () => {
  if (skip) return;
  dir = mkdtempSync(path.join(os.tmpdir(), 'tr098-map-'));
  const config = loadConfig({
    env: {},
    overrides: {
      dataDir: dir,
      'acs.host': '127.0.0.1',
      'acs.port': 0,
      'usp.websocket.host': '127.0.0.1',
      'usp.websocket.port': 0,
      'usp.notifRetryMinWaitS': 1,
      controllers: [{ endpointId: CTL, role: 'full' }],
      'log.level': 'silent',
    },
  });
  proxy = new CwmpUspProxy(config, createLogger('silent'));
  await proxy.start();
});

after(async () => {
  await proxy?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const resp = (m: Msg) => {
  assert.equal(m.body.msgBody, 'response', `expected a response, got ${JSON.stringify(m.body)}`);
  return m.body.response!;
};
/** Resolved path -> params of one requested path of a GetResp (asserting it succeeded). */
function resolved(m: Msg, i: number): { resolvedPath: string; resultParams: Record<string, string> }[] {
  const r = resp(m).getResp!.reqPathResults[i]!;
  assert.equal(r.errCode ?? 0, 0, `${r.requestedPath}: ${r.errCode} ${r.errMsg}`);
  return r.resolvedPathResults.map((x) => ({ resolvedPath: x.resolvedPath ?? '', resultParams: x.resultParams ?? {} }));
}
/** Every native parameter of the simulated device matching re, with its value. */
function natives(dev: SimDevice, re: RegExp): [string, string][] {
  const out: [string, string][] = [];
  for (const p of dev.model.walk(dev.model.root)) if (!p.endsWith('.') && re.test(p)) out.push([p, dev.getValue(p) ?? '']);
  return out;
}
const sorted = (l: string[]) => [...l].sort();

for (const file of MODELS) {
  const tr098 = file.includes('tr098');
  test(`${file}: the controller script through USP`, { skip, timeout: 60_000 }, async (t) => {
    const fleet = new Fleet({
      quirks: STRICT_SIM,
      acsUrl: `http://127.0.0.1:${proxy.acsPort}/`,
      count: 1,
      model: path.join(REFERENCE, 'cwmp-models', file),
      serialPrefix: `T${MODELS.indexOf(file)}X`,
      periodicIntervalS: null,
    });
    let c: UspControllerClient | null = null;
    try {
      await fleet.start();
      const dev = fleet.devices[0]!;
      const rec = (await proxy.store.listDevices()).find((r) => r.deviceId.serialNumber === dev.serial);
      assert.ok(rec, 'device registered');
      assert.equal(rec.rootModel, tr098 ? 'InternetGatewayDevice' : 'Device');
      const R = tr098 ? 'InternetGatewayDevice.' : 'Device.';
      c = new UspControllerClient({
        agentId: rec.endpointId,
        endpointId: CTL,
        transport: { mtp: 'ws', url: `ws://127.0.0.1:${proxy.usp.ws!.serverAddress()!.port}/usp` },
        timeoutMs: 20_000,
      });
      const notifies: Msg[] = [];
      const waiters: { pred: (m: Msg) => boolean; resolve: (m: Msg) => void }[] = [];
      c.on('notify', (m) => {
        notifies.push(m);
        for (const w of [...waiters]) if (w.pred(m)) waiters.splice(waiters.indexOf(w), 1), w.resolve(m);
      });
      c.on('error', () => undefined);
      await c.connect();
      const ctl = c;
      const req = (m: Msg) => ctl.request(m, 20_000);

      await t.test('Get: DeviceInfo, SSIDs, passphrases, hosts, IPv4 addresses are the device values', async () => {
        const g = await req(
          get([
            'Device.DeviceInfo.',
            'Device.WiFi.SSID.*.SSID',
            'Device.WiFi.AccessPoint.*.Security.KeyPassphrase',
            'Device.Hosts.Host.*.',
            'Device.IP.Interface.*.IPv4Address.*.IPAddress',
          ]),
        );
        // DeviceInfo: same names on both sides
        const di = resolved(g, 0);
        assert.equal(di[0]!.resolvedPath, 'Device.DeviceInfo.');
        let checked = 0;
        for (const r of di) {
          for (const [k, v] of Object.entries(r.resultParams)) {
            if (r.resolvedPath !== 'Device.DeviceInfo.' || k === 'UpTime') continue;
            const nv = dev.getValue(R + 'DeviceInfo.' + k);
            if (nv === undefined) continue;
            assert.equal(v, nv, `Device.DeviceInfo.${k}`);
            checked++;
          }
        }
        for (const k of ['Manufacturer', 'SoftwareVersion', 'SerialNumber']) assert.equal(di[0]!.resultParams[k], dev.getValue(R + 'DeviceInfo.' + k), k);
        assert.ok(checked >= 5, `only ${checked} DeviceInfo params compared`);

        const ssid = resolved(g, 1).map((r) => r.resultParams.SSID!);
        const pskRes = resp(g).getResp!.reqPathResults[2]!;
        const psk = (pskRes.errCode ? [] : resolved(g, 2)).map((r) => r.resultParams.KeyPassphrase!);
        const hosts = resolved(g, 3);
        const ips = resolved(g, 4).map((r) => r.resultParams.IPAddress!);
        assert.ok(ssid.length > 0, 'SSIDs present');
        if (tr098) {
          assert.deepEqual(sorted(ssid), sorted(natives(dev, /^InternetGatewayDevice\.LANDevice\.\d+\.WLANConfiguration\.\d+\.SSID$/).map(([, v]) => v)));
          // one passphrase per WLANConfiguration, from whichever alternative the model has
          const wlans = natives(dev, /^InternetGatewayDevice\.LANDevice\.\d+\.WLANConfiguration\.\d+\.SSID$/).map(([p]) => p.slice(0, -'SSID'.length));
          const expected = wlans.map((w) =>
            ['KeyPassphrase', 'PreSharedKey.1.KeyPassphrase', 'X_HW_KeyPassphrase'].map((a) => dev.getValue(w + a)).find((v) => v !== undefined),
          );
          const want = expected.filter((v): v is string => v !== undefined);
          // BM632w has no passphrase parameter at all (only PreSharedKey.1.PreSharedKey, mapped to Security.PreSharedKey)
          if (want.length === 0) assert.equal(pskRes.errCode, 7026, 'no native passphrase: not in the supported model');
          else assert.deepEqual(sorted(psk), sorted(want));
          const nHosts = natives(dev, /^InternetGatewayDevice\.LANDevice\.\d+\.Hosts\.Host\.\d+\.MACAddress$/);
          assert.equal(hosts.length, nHosts.length, 'one Device.Hosts.Host per native host');
          assert.deepEqual(sorted(hosts.map((h) => h.resultParams.PhysAddress!)), sorted(nHosts.map(([, v]) => v)));
          assert.deepEqual(
            sorted(hosts.map((h) => h.resultParams.IPAddress!)),
            sorted(natives(dev, /^InternetGatewayDevice\.LANDevice\.\d+\.Hosts\.Host\.\d+\.IPAddress$/).map(([, v]) => v)),
          );
          const nIps = natives(
            dev,
            /^InternetGatewayDevice\.(WANDevice\.\d+\.WANConnectionDevice\.\d+\.WAN(IP|PPP)Connection\.\d+\.ExternalIPAddress|LANDevice\.\d+\.LANHostConfigManagement\.IPInterface\.\d+\.IPInterfaceIPAddress)$/,
          );
          assert.deepEqual(sorted(ips), sorted(nIps.map(([, v]) => v)));
        } else {
          // Device:2 devices pass through: every answered value is the native one at the same path
          assert.ok(psk.length > 0, 'passphrases present');
          for (const i of [1, 2, 3, 4]) {
            for (const r of resolved(g, i))
              for (const [k, v] of Object.entries(r.resultParams))
                if (!/LeaseTimeRemaining|UpTime/.test(k)) assert.equal(v, dev.getValue(r.resolvedPath + k), r.resolvedPath + k);
          }
          assert.equal(hosts.length, natives(dev, /^Device\.Hosts\.Host\.\d+\.PhysAddress$/).length);
          assert.equal(ips.length, natives(dev, /^Device\.IP\.Interface\.\d+\.IPv4Address\.\d+\.IPAddress$/).length);
        }
      });

      await t.test('Set on Device.WiFi.SSID.1.SSID changes the right native parameter', async () => {
        const native = tr098 ? 'InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.SSID' : 'Device.WiFi.SSID.1.SSID';
        const before = await req(get(['Device.WiFi.SSID.1.SSID']));
        assert.equal(resolved(before, 0)[0]!.resultParams.SSID, dev.getValue(native));
        const s = await req(set([{ objPath: 'Device.WiFi.SSID.1.', params: { SSID: `usp-${file.slice(7, 13)}` } }]));
        const upd = resp(s).setResp!.updatedObjResults[0]!.operStatus!.operSuccess!.updatedInstResults[0]!;
        assert.equal(upd.affectedPath, 'Device.WiFi.SSID.1.');
        assert.equal(dev.getValue(native), `usp-${file.slice(7, 13)}`);
      });

      await t.test('Add/Delete on Device.NAT.PortMapping. creates/deletes the native row', async () => {
        let table: string;
        let params: Record<string, string> = {};
        if (tr098) {
          // The WANIPConnection with a PortMapping table; its Device.IP.Interface instance names the table.
          const conns = natives(dev, /^InternetGatewayDevice\.WANDevice\.\d+\.WANConnectionDevice\.\d+\.WANIPConnection\.\d+\.PortMappingNumberOfEntries$/).map(
            ([p]) => p.slice(0, -'PortMappingNumberOfEntries'.length),
          );
          assert.ok(conns.length > 0, 'a WANIPConnection with PortMapping');
          const conn = conns[0]!;
          const names = await req(get(['Device.IP.Interface.*.Name']));
          const nativeName = dev.getValue(conn + 'Name');
          const hits = resolved(names, 0).filter((r) => r.resultParams.Name === nativeName);
          assert.equal(hits.length, 1, `one Device.IP.Interface named ${nativeName}`);
          params = { Interface: hits[0]!.resolvedPath.slice(0, -1) };
          table = conn + 'PortMapping.';
        } else {
          table = 'Device.NAT.PortMapping.';
          if (!dev.model.has(table)) {
            // EC220G5v3 has no NAT.PortMapping table: passed through as not in the supported model
            const a = await req(add([{ objPath: table, params: {} }]));
            assert.equal(a.body.msgBody, 'error');
            assert.equal(a.body.error!.errCode, 7026);
            return;
          }
        }
        const before = dev.model.instances(table);
        const a = await req(add([{ objPath: 'Device.NAT.PortMapping.', params }]));
        const ok = resp(a).addResp!.createdObjResults[0]!.operStatus!.operSuccess;
        assert.ok(ok, `Add failed: ${JSON.stringify(resp(a).addResp)}`);
        assert.match(ok.instantiatedPath ?? '', /^Device\.NAT\.PortMapping\.\d+\.$/);
        const added = dev.model.instances(table).filter((n) => !before.includes(n));
        assert.equal(added.length, 1, `one new row in ${table}`);
        const row = `${table}${added[0]}.`;
        if (tr098 && before.length === 0) assert.equal(row, `${table}1.`);
        const inst = await req(get([ok.instantiatedPath!]));
        assert.equal(resolved(inst, 0)[0]?.resolvedPath ?? ok.instantiatedPath, ok.instantiatedPath);
        const d = await req(del([ok.instantiatedPath!]));
        const dr = resp(d).deleteResp!.deletedObjResults[0]!.operStatus!;
        assert.ok(dr.operSuccess, `Delete failed: ${JSON.stringify(dr)}`);
        assert.deepEqual(dr.operSuccess.affectedPaths, [ok.instantiatedPath]);
        assert.equal(dev.model.has(row), false, `${row} deleted natively`);
        assert.deepEqual(dev.model.instances(table), before);
      });

      const hosts = natives(dev, /^InternetGatewayDevice\.LANDevice\.\d+\.Hosts\.Host\.\d+\.AddressSource$/).filter(([, v]) => v === 'DHCP');
      await t.test(
        'a DHCP host is a DHCPv4 server client; Delete of that row is refused and leaves the host',
        { skip: hosts.length === 0 ? 'no DHCP host in this dump' : false },
        async () => {
          const g = await req(get(['Device.DHCPv4.Server.Pool.*.Client.*.Chaddr']));
          const macs = resolved(g, 0).map((r) => r.resultParams.Chaddr);
          assert.deepEqual(
            macs,
            hosts.map(([p]) => dev.getValue(p.replace(/AddressSource$/, 'MACAddress'))),
          );
          const client = resolved(g, 0)[0]!.resolvedPath;
          const before = dev.model.instances('InternetGatewayDevice.LANDevice.1.Hosts.Host.');
          const d = await req(del([client]));
          const err = d.body.msgBody === 'error' ? d.body.error : resp(d).deleteResp!.deletedObjResults[0]!.operStatus!.operFailure;
          assert.equal(err?.errCode, 7024, JSON.stringify(d.body));
          assert.deepEqual(dev.model.instances('InternetGatewayDevice.LANDevice.1.Hosts.Host.'), before);
        },
      );

      await t.test('ValueChange subscription on Device.WiFi.SSID.1.SSID fires on a local change', async () => {
        const id = `vc-${MODELS.indexOf(file)}`;
        const native = tr098 ? 'InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.SSID' : 'Device.WiFi.SSID.1.SSID';
        const s = await req(
          add([
            {
              objPath: 'Device.LocalAgent.Subscription.',
              params: { Enable: 'true', ID: id, NotifType: 'ValueChange', ReferenceList: 'Device.WiFi.SSID.1.SSID' },
            },
          ]),
        );
        assert.ok(resp(s).addResp!.createdObjResults[0]!.operStatus!.operSuccess, JSON.stringify(resp(s).addResp));
        // the proxy mirrors it as SetParameterAttributes Notification=2 on the native parameter
        for (let i = 0; i < 100 && dev.model.attr(native).notification !== 2; i++) await new Promise((r) => setTimeout(r, 50));
        assert.equal(dev.model.attr(native).notification, 2, `Notification=2 on ${native}`);
        const got = new Promise<Msg>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`no ValueChange; got ${JSON.stringify(notifies.map((n) => n.body.request?.notify))}`)), 20_000);
          waiters.push({ pred: (m) => m.body.request?.notify?.subscriptionId === id, resolve: (m) => (clearTimeout(timer), resolve(m)) });
        });
        // The subscription is set up (Notification=2 and the baseline read) before the value changes.
        await proxy.events.idle(rec.endpointId);
        dev.setValue(native, 'x');
        const n = (await got).body.request!.notify!;
        assert.equal(n.valueChange!.paramPath, 'Device.WiFi.SSID.1.SSID');
        assert.equal(n.valueChange!.paramValue, 'x');
      });

      await t.test('the extension object: the native parameters the agent does not serve from the device, read, set and watched', async () => {
        // TR-098: the whole native tree; Device:2: the device's own subtrees the proxy's LocalAgent./MQTT./STOMP. shadow.
        const roots = tr098 ? [''] : ['LocalAgent.', 'MQTT.', 'STOMP.'].filter((o) => dev.model.has(`Device.${o}`));
        const g = await req(get(roots.map((o) => EXT + o)));
        let compared = 0;
        for (const [i, o] of roots.entries()) {
          const want = natives(dev, new RegExp(`^${(R + o).replace(/\./g, '\\.')}`));
          const got = new Map<string, string>();
          for (const r of resolved(g, i)) for (const [k, v] of Object.entries(r.resultParams)) got.set(r.resolvedPath + k, v);
          assert.equal(got.size, want.length, `${EXT}${o}: one value per native parameter`);
          for (const [n, v] of want) {
            const u = got.get(EXT + n.slice(R.length));
            assert.ok(u !== undefined, `${n} reachable`);
            if (/UpTime|LeaseTimeRemaining/.test(n)) continue;
            if (isSecret(n)) assert.ok(['', '0', 'false'].includes(u), `${n} secured (its type's null value)`);
            else assert.equal(u, v === '1' && u === 'true' ? 'true' : v === '0' && u === 'false' ? 'false' : v, n);
            compared++;
          }
        }
        if (roots.length === 0) {
          // A Device:2 device without its own agent: the extension object has nothing below it.
          const none = await req(get([EXT]));
          assert.deepEqual(
            resolved(none, 0).flatMap((r) => Object.keys(r.resultParams)),
            [],
          );
          return;
        }
        assert.ok(compared > (tr098 ? 500 : 40), `${compared} native values compared`);
        // GetSupportedDM and GetInstances through the extension object
        const table = tr098 ? 'LANDevice.1.WLANConfiguration.' : 'LocalAgent.Controller.';
        const sdm = await req(getSupportedDM([EXT + roots[0]!], { firstLevelOnly: false }));
        const objs = resp(sdm).getSupportedDmResp!.reqObjResults[0]!.supportedObjs!.map((o) => o.supportedObjPath);
        assert.ok(objs.includes(`${EXT}${table.replace(/\.1\./, '.{i}.')}{i}.`), `${table} rows in ${objs.length} supported objects`);
        const gi = await req(getInstances([EXT + table], true));
        const inst = resp(gi).getInstancesResp!.reqPathResults[0]!.currInsts!.map((x) => x.instantiatedObjPath ?? '');
        assert.deepEqual(sorted(inst), sorted(dev.model.instances(R + table).map((n) => `${EXT}${table}${n}.`)));
        // Set: the device's own controller (TR-181 device) / a native parameter (TR-098)
        const [obj, param] = tr098 ? ['LANDevice.1.WLANConfiguration.1.', 'SSID'] : ['LocalAgent.Controller.1.', 'EndpointID'];
        const s = await req(set([{ objPath: EXT + obj, params: { [param]: 'usp::via-extension' } }]));
        assert.ok(resp(s).setResp!.updatedObjResults[0]!.operStatus!.operSuccess, JSON.stringify(resp(s).setResp));
        assert.equal(dev.getValue(R + obj + param), 'usp::via-extension');
        if (!tr098) {
          // The agent's own Device.LocalAgent. is still the proxy's, not the device's.
          const own = await req(get(['Device.LocalAgent.EndpointID', `${EXT}LocalAgent.EndpointID`]));
          assert.equal(resolved(own, 0)[0]!.resultParams.EndpointID, rec.endpointId);
          assert.equal(resolved(own, 1)[0]!.resultParams.EndpointID, dev.getValue('Device.LocalAgent.EndpointID'));
          const mqtt = await req(set([{ objPath: `${EXT}MQTT.Client.1.`, params: { BrokerPort: '1884' } }]));
          assert.ok(resp(mqtt).setResp!.updatedObjResults[0]!.operStatus!.operSuccess, JSON.stringify(resp(mqtt).setResp));
          assert.equal(dev.getValue('Device.MQTT.Client.1.BrokerPort'), '1884');
        }
        // ValueChange on an extension path: notified under that path
        const id = `vc-ext-${MODELS.indexOf(file)}`;
        const ref = EXT + obj + param;
        const sub = await req(
          add([{ objPath: 'Device.LocalAgent.Subscription.', params: { Enable: 'true', ID: id, NotifType: 'ValueChange', ReferenceList: ref } }]),
        );
        assert.ok(resp(sub).addResp!.createdObjResults[0]!.operStatus!.operSuccess, JSON.stringify(resp(sub).addResp));
        for (let i = 0; i < 100 && dev.model.attr(R + obj + param).notification !== 2; i++) await new Promise((r) => setTimeout(r, 50));
        assert.equal(dev.model.attr(R + obj + param).notification, 2, `Notification=2 on ${R + obj + param}`);
        const got = new Promise<Msg>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`no ValueChange; got ${JSON.stringify(notifies.map((n) => n.body.request?.notify))}`)), 20_000);
          waiters.push({ pred: (m) => m.body.request?.notify?.subscriptionId === id, resolve: (m) => (clearTimeout(timer), resolve(m)) });
        });
        await proxy.events.idle(rec.endpointId);
        dev.setValue(R + obj + param, 'usp::changed-locally');
        const n = (await got).body.request!.notify!;
        assert.equal(n.valueChange!.paramPath, ref);
        assert.equal(n.valueChange!.paramValue, 'usp::changed-locally');
      });
    } finally {
      await c?.close();
      await fleet.stop();
    }
  });
}

for (const file of MODELS.filter((f) => f.includes('tr098'))) {
  test(`${file}: every mapped value, as a controller reads it, is the dump's value through the mapping`, { skip, timeout: 120_000 }, async () => {
    const csv = path.join(REFERENCE, 'cwmp-models', file);
    const { params, values } = modelParams(csv);
    // The device keeps the dump's own serial number, so that DeviceInfo.SerialNumber is the dump's too.
    const serial = values.get('InternetGatewayDevice.DeviceInfo.SerialNumber')!;
    const fleet = new Fleet({
      serials: [serial],
      quirks: STRICT_SIM,
      acsUrl: `http://127.0.0.1:${proxy.acsPort}/`,
      count: 1,
      model: csv,
      serialPrefix: `V${MODELS.indexOf(file)}ALL`,
      periodicIntervalS: null,
    });
    let c: UspControllerClient | null = null;
    try {
      await fleet.start();
      const dev = fleet.devices[0]!;
      const rec = (await proxy.store.listDevices()).find((r) => r.deviceId.serialNumber === dev.serial);
      assert.ok(rec, 'device registered');
      c = new UspControllerClient({
        agentId: rec.endpointId,
        endpointId: CTL,
        transport: { mtp: 'ws', url: `ws://127.0.0.1:${proxy.usp.ws!.serverAddress()!.port}/usp` },
        timeoutMs: 60_000,
      });
      c.on('error', () => undefined);
      await c.connect();
      const g = await c.request(get(['Device.']), 60_000);
      const got = new Map<string, string>();
      for (const r of resolved(g, 0)) for (const [k, v] of Object.entries(r.resultParams)) got.set(r.resolvedPath + k, v);
      // The expectation: the mapping applied to the dump's own values (a fresh device numbers its rows as the proxy does),
      // except what the simulator gives each device of its own (its WAN address, connection request URL).
      const personal = [...values.keys()].filter((n) => dev.getValue(n) !== undefined && dev.getValue(n) !== values.get(n));
      for (const n of personal)
        assert.match(
          n,
          /\.(UpTime|ExternalIPAddress|ManagementServer\.(URL|ConnectionRequest\w+))$/,
          `${n}: only the simulator's per-device values differ from the dump`,
        );
      for (const n of personal) values.set(n, dev.getValue(n)!);
      const m = new DeviceMapping(loadDefaultMapping(), { deviceKey: 'expected', params, values });
      let compared = 0;
      let verbatim = 0;
      for (const p of m.paramsUnder('Device.')) {
        if (/UpTime|Uptime|CurrentLocalTime|LeaseTimeRemaining/.test(p)) continue;
        // Device.BulkData. is the proxy's own for every agent (docs/bulkdata.md); the device's stays under the Native extension.
        if (p.startsWith('Device.BulkData.')) continue;
        const natives = m.toNative(p) ?? [];
        const secret = isSecret(p) || natives.some(isSecret);
        const want = m.nativeToUspValue(p, values);
        if (want === null) continue;
        assert.ok(got.has(p), `${p} answered`);
        const v = got.get(p)!;
        if (secret) assert.ok(['', '0', 'false'].includes(v), `${p} secured`);
        else assert.equal(v, want, `${p} (native ${natives.join(', ') || 'computed'})`);
        compared++;
        if (natives.length === 1 && values.get(natives[0]!) === v) verbatim++;
      }
      assert.ok(compared > 100, `${compared} values compared`);
      console.log(`values ${file}: ${compared} Device:2 values equal to the dump through the mapping (${verbatim} verbatim), 2-core machine`);
    } finally {
      await c?.close();
      await fleet.stop();
    }
  });
}

/**
 * A gateway with 8 SSIDs on 2 radios, built from the EG8145V5 dump: its 2.4 GHz WLANConfiguration.1
 * repeated as 2-4 and its 5 GHz WLANConfiguration.5 as 6-8 (what two vendors' gateways show).
 */
function eightSsidModel(): string {
  const lines = readFileSync(path.join(REFERENCE, 'cwmp-models', 'huawei-EG8145V5-tr098.csv'), 'utf8').split('\n');
  const W = 'InternetGatewayDevice.LANDevice.1.WLANConfiguration.';
  const out: string[] = [];
  for (const l of lines) {
    out.push(l);
    for (const [from, copies] of [
      [1, [2, 3, 4]],
      [5, [6, 7, 8]],
    ] as const) {
      const head = `${W}${from}`;
      if (!l.startsWith(`${head}.`) && !l.startsWith(`${head},`)) continue;
      for (const n of copies) out.push(`${W}${n}${l.slice(head.length)}`.replace(/"Anlix-EG8145(-5G)?"/, `"Anlix-EG8145-ssid${n}"`));
    }
  }
  const file = path.join(dir, 'eg8145v5-8ssid.csv');
  writeFileSync(file, out.join('\n'));
  return file;
}

test('radios as radios: a gateway with 8 SSIDs on 2 radios has 2 Device.WiFi.Radio rows', { skip, timeout: 60_000 }, async () => {
  const fleet = new Fleet({
    quirks: STRICT_SIM,
    acsUrl: `http://127.0.0.1:${proxy.acsPort}/`,
    count: 1,
    model: eightSsidModel(),
    serialPrefix: 'R8SSID',
    periodicIntervalS: null,
  });
  let c: UspControllerClient | null = null;
  try {
    await fleet.start();
    const dev = fleet.devices[0]!;
    const rec = (await proxy.store.listDevices()).find((r) => r.deviceId.serialNumber === dev.serial);
    assert.ok(rec, 'device registered');
    c = new UspControllerClient({
      agentId: rec.endpointId,
      endpointId: CTL,
      transport: { mtp: 'ws', url: `ws://127.0.0.1:${proxy.usp.ws!.serverAddress()!.port}/usp` },
      timeoutMs: 20_000,
    });
    c.on('error', () => undefined);
    await c.connect();
    const g = await c.request(get(['Device.WiFi.Radio.*.', 'Device.WiFi.SSID.*.', 'Device.WiFi.RadioNumberOfEntries']), 20_000);
    const radios = resolved(g, 0).filter((r) => /^Device\.WiFi\.Radio\.\d+\.$/.test(r.resolvedPath));
    assert.equal(radios.length, 2, radios.map((r) => r.resolvedPath).join(' '));
    assert.deepEqual(sorted(radios.map((r) => r.resultParams.OperatingFrequencyBand!)), ['2.4GHz', '5GHz']);
    assert.deepEqual(
      sorted(radios.map((r) => r.resultParams.Channel!)),
      sorted([
        dev.getValue('InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.Channel')!,
        dev.getValue('InternetGatewayDevice.LANDevice.1.WLANConfiguration.5.Channel')!,
      ]),
    );
    assert.equal(resolved(g, 2)[0]!.resultParams.RadioNumberOfEntries, '2');
    const ssids = resolved(g, 1).filter((r) => /^Device\.WiFi\.SSID\.\d+\.$/.test(r.resolvedPath));
    assert.equal(ssids.length, 8);
    const radioOf = new Map(radios.map((r) => [r.resolvedPath.slice(0, -1), r.resultParams.OperatingFrequencyBand!]));
    for (const s of ssids) {
      const n = Number(/ssid(\d)/.exec(s.resultParams.SSID!)?.[1] ?? (s.resultParams.SSID!.endsWith('-5G') ? 5 : 1));
      assert.equal(
        radioOf.get(s.resultParams.LowerLayers!),
        n <= 4 ? '2.4GHz' : '5GHz',
        `${s.resolvedPath} ${s.resultParams.SSID} LowerLayers ${s.resultParams.LowerLayers}`,
      );
    }
    // "Set the 5 GHz channel": one Set on its Radio, every WLANConfiguration of that radio follows.
    const five = radios.find((r) => r.resultParams.OperatingFrequencyBand === '5GHz')!.resolvedPath;
    const s = await c.request(set([{ objPath: five, params: { Channel: '44' } }]), 20_000);
    assert.ok(resp(s).setResp!.updatedObjResults[0]!.operStatus!.operSuccess, JSON.stringify(resp(s).setResp));
    for (const n of [5, 6, 7, 8])
      assert.equal(dev.getValue(`InternetGatewayDevice.LANDevice.1.WLANConfiguration.${n}.Channel`), '44', `WLANConfiguration.${n}`);
    for (const n of [1, 2, 3, 4]) assert.notEqual(dev.getValue(`InternetGatewayDevice.LANDevice.1.WLANConfiguration.${n}.Channel`), '44');
  } finally {
    await c?.close();
    await fleet.stop();
  }
});

test('mapping coverage of the four reference models', { skip }, () => {
  for (const file of MODELS) {
    const out: string[] = [];
    const err: string[] = [];
    const code = runMappingCli(['coverage', '--model', path.join(REFERENCE, 'cwmp-models', file), '--json'], {
      out: (l) => out.push(l),
      err: (l) => err.push(l),
    });
    assert.equal(code, 0, err.join('\n'));
    const j = JSON.parse(out[0]!);
    assert.equal(j.unreachable, 0, `${file}: every parameter reachable`);
    assert.deepEqual(j.phantoms, [], `${file}: no phantom name`);
    if (file.includes('tr098')) assert.ok(j.reachable > 0);
    const tables = j.objects.filter((o: { path: string }) => o.path.endsWith('{i}.')).length;
    console.log(
      `coverage ${file}: placed ${j.reachable}/${j.nativeParams} (${j.placedShare}%), non-vendor ${j.nonVendorPlaced}/${j.nonVendorParams} (${j.nonVendorPlacedShare}%), BBF-defined ${j.byOrigin.bbf.placed}/${j.byOrigin.bbf.params} (${j.bbfPlacedShare}%), non-standard ${j.byOrigin['non-standard'].params}, extension object only ${j.extensionOnly}, reachable ${j.reachableShare}%, phantoms ${j.phantoms.length} (${tables} mapped tables)`,
    );
  }
});
