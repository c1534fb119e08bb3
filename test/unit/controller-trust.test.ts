/**
 * TR-369 Controller Trust enforced in every message and in notifications, on a CWMP-backed agent
 * (a Device:2 CPE) and on a TR-098 CPE seen through the mapping: the same Device:2 paths, the same
 * answers. Controllers: an operator ("full"), a viewer ("read-only"), an end-user Wi-Fi app (the
 * Role of docs/controller-trust.md plus a Permission hiding the BSSIDs), one configured without a
 * Role and peers that are not trusted. The cases follow TR-369 R-GET.1/.4, R-SET.3, R-ADD.6,
 * R-DEL.1/.2/.4, R-GIN.0/.1, R-GSP.0, R-OPR.1 and R-SEC.1 (CONFORMANCE.md lists no TP-469 case for
 * permissions; these are the requirements such cases check).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Msg } from '../../src/usp/codec/record.js';
import { APP, NOBODY, OPERATOR, request, settle, TrustWorld, VIEWER } from '../helpers/trust-world.js';

const get = (paramPaths: string[]) => request('get', { paramPaths });
const set = (objPath: string, params: Record<string, string>, required = true, allowPartial = false) =>
  request('set', { allowPartial, updateObjs: [{ objPath, paramSettings: Object.entries(params).map(([param, value]) => ({ param, value, required })) }] });
const add = (objPath: string, params: Record<string, string> = {}, required = true) =>
  request('add', {
    allowPartial: false,
    createObjs: [{ objPath, paramSettings: Object.entries(params).map(([param, value]) => ({ param, value, required })) }],
  });
const del = (objPaths: string[], allowPartial = false) => request('delete', { allowPartial, objPaths });

function error(m: Msg): { errCode: number; errMsg: string; paramErrs: { paramPath?: string; errCode?: number }[] } {
  assert.equal(m.header.msgType, 'ERROR', JSON.stringify(m.body));
  const e = m.body.error!;
  return { errCode: e.errCode ?? 0, errMsg: e.errMsg ?? '', paramErrs: e.paramErrs };
}
function getResults(m: Msg) {
  assert.equal(m.header.msgType, 'GET_RESP', JSON.stringify(m.body));
  return m.body.response!.getResp!.reqPathResults;
}
/** Get of one path: its error code (0: success) and the values found, keyed by full path. */
async function read(w: TrustWorld, who: string, path: string): Promise<{ code: number; values: Record<string, string> }> {
  const [r] = getResults(await w.ask(who, get([path])));
  const values: Record<string, string> = {};
  for (const res of r!.resolvedPathResults) for (const [k, v] of Object.entries(res.resultParams)) values[res.resolvedPath + k] = v;
  return { code: r!.errCode ?? 0, values };
}

for (const root of ['Device', 'InternetGatewayDevice'] as const) {
  describe(`Controller Trust on a ${root === 'Device' ? 'Device:2' : 'TR-098 (mapped)'} CPE`, () => {
    let w: TrustWorld;
    before(async () => {
      w = await new TrustWorld(root).start();
    });
    after(() => w.close());

    it('a peer that is not trusted, or a configured controller without a Role, gets Error 7006 for every request', async () => {
      for (const [who, trusted, why] of [
        ['proto::stranger', false, /not a trusted controller/],
        [OPERATOR, false, /not a trusted controller/],
        [NOBODY, true, /grant nothing/],
      ] as const) {
        for (const m of [get(['Device.DeviceInfo.SerialNumber']), set('Device.WiFi.SSID.1.', { SSID: 'x' }), request('getSupportedProtocol', {})]) {
          const e = error(await w.ask(who, m, trusted));
          assert.equal(e.errCode, 7006);
          assert.match(e.errMsg, /not authorised/);
          assert.match(e.errMsg, why);
        }
      }
      assert.notEqual(w.sim.get(w.native('Device.WiFi.SSID.1.SSID')), 'x');
    });

    it('Get: readable parameters only; one named in full that may not be read is an invalid path (R-GET.1, R-GET.4)', async () => {
      const ssid = await read(w, APP, 'Device.WiFi.SSID.1.SSID');
      assert.deepEqual(ssid, { code: 0, values: { 'Device.WiFi.SSID.1.SSID': w.sim.get(w.native('Device.WiFi.SSID.1.SSID'))! } });
      for (const p of ['Device.WiFi.SSID.1.BSSID', 'Device.DeviceInfo.SerialNumber', 'Device.', 'Device.DeviceInfo.'])
        assert.equal((await read(w, APP, p)).code, 7026, p);
      // The object: every readable parameter, the hidden BSSID left out.
      const obj = await read(w, APP, 'Device.WiFi.SSID.1.');
      assert.equal(obj.code, 0);
      assert.ok('Device.WiFi.SSID.1.SSID' in obj.values && 'Device.WiFi.SSID.1.Enable' in obj.values, JSON.stringify(obj.values));
      assert.ok(!('Device.WiFi.SSID.1.BSSID' in obj.values));
      // A search: what may not be read is left out, no error.
      assert.deepEqual(await read(w, APP, 'Device.WiFi.SSID.*.BSSID'), { code: 0, values: {} });
      // The same for the operator and the viewer: everything.
      for (const who of [OPERATOR, VIEWER]) {
        assert.equal((await read(w, who, 'Device.WiFi.SSID.1.BSSID')).values['Device.WiFi.SSID.1.BSSID'], w.sim.get(w.native('Device.WiFi.SSID.1.BSSID')));
        assert.equal((await read(w, who, 'Device.DeviceInfo.SerialNumber')).code, 0);
      }
    });

    it('Set: a parameter that may not be written fails with 7006 naming it; not required, the rest applies (R-SET.3)', async () => {
      const before = w.sim.get(w.native('Device.WiFi.SSID.1.SSID'));
      const e = error(await w.ask(APP, set('Device.WiFi.SSID.1.', { Enable: 'false', SSID: 'app-net' })));
      assert.equal(e.errCode, 7006);
      assert.deepEqual(
        e.paramErrs.map((p) => [p.paramPath, p.errCode]),
        [['Device.WiFi.SSID.1.Enable', 7006]],
      );
      assert.equal(w.sim.get(w.native('Device.WiFi.SSID.1.SSID')), before, 'nothing applied');
      const r = await w.ask(APP, set('Device.WiFi.SSID.1.', { Enable: 'false', SSID: 'app-net' }, false));
      const inst = r.body.response!.setResp!.updatedObjResults[0]!.operStatus!.operSuccess!.updatedInstResults[0]!;
      assert.deepEqual(inst.updatedParams, { SSID: 'app-net' });
      assert.deepEqual(
        inst.paramErrs.map((p) => [p.param, p.errCode]),
        [['Enable', 7006]],
      );
      assert.equal(w.sim.get(w.native('Device.WiFi.SSID.1.SSID')), 'app-net');
      assert.equal(w.sim.get(w.native('Device.WiFi.SSID.1.Enable')), 'true');
      // The viewer may write nothing here.
      assert.equal(error(await w.ask(VIEWER, set('Device.WiFi.SSID.1.', { SSID: 'viewer' }))).errCode, 7006);
      assert.equal(w.sim.get(w.native('Device.WiFi.SSID.1.SSID')), 'app-net');
    });

    it('Add, Delete and Operate outside the Role: 7006 naming the path, nothing done (R-DEL.1, R-SEC.1)', async () => {
      const sent = w.port.sent.length;
      const a = error(await w.ask(APP, add('Device.NAT.PortMapping.', { ExternalPort: '9000' })));
      assert.equal(a.errCode, 7006);
      assert.match(a.errMsg, /Device\.NAT\.PortMapping\./);
      const d = error(await w.ask(APP, del(['Device.NAT.PortMapping.1.'])));
      assert.equal(d.errCode, 7006);
      assert.match(d.errMsg, /Device\.NAT\.PortMapping\.1\./);
      const o = error(await w.ask(APP, request('operate', { command: 'Device.Reboot()', commandKey: 'k', sendResp: true, inputArgs: {} })));
      assert.equal(o.errCode, 7006);
      assert.match(o.errMsg, /Device\.Reboot\(\)/);
      assert.ok(
        w.port.sent.slice(sent).every(({ rpc }) => !['AddObject', 'DeleteObject', 'Reboot', 'SetParameterValues'].includes(rpc.method)),
        'no CWMP change was asked',
      );
      // allow_partial true: the refused instance is an unaffected_path_err only if the app could read it (R-DEL.4): here it cannot.
      const p = await w.ask(APP, del(['Device.NAT.PortMapping.1.'], true));
      assert.deepEqual(p.body.response!.deleteResp!.deletedObjResults[0]!.operStatus!.operSuccess, { affectedPaths: [], unaffectedPathErrs: [] });
    });

    it('GetSupportedDM: only what may be read, access as the Role allows it (R-GSP.0)', async () => {
      const r = await w.ask(APP, request('getSupportedDm', { objPaths: ['Device.WiFi.', 'Device.DeviceInfo.', 'Device.'], returnParams: true }));
      const [wifi, info, device] = r.body.response!.getSupportedDmResp!.reqObjResults;
      assert.equal(info!.errCode, 7026);
      assert.equal(device!.errCode, 7026);
      assert.ok(wifi!.supportedObjs.length > 1);
      assert.ok(wifi!.supportedObjs.every((o) => o.supportedObjPath!.startsWith('Device.WiFi.')));
      const ssid = wifi!.supportedObjs.find((o) => o.supportedObjPath === 'Device.WiFi.SSID.{i}.')!;
      const access = Object.fromEntries(ssid.supportedParams.map((p) => [p.paramName, p.access ?? 'PARAM_READ_ONLY']));
      assert.equal(access.SSID, 'PARAM_READ_WRITE');
      assert.equal(access.Enable, 'PARAM_READ_ONLY', 'writable on the CPE, not by this Role');
      assert.ok(!('BSSID' in access));
      // The operator sees the same object as the CPE has it.
      const op = await w.ask(OPERATOR, request('getSupportedDm', { objPaths: ['Device.WiFi.SSID.'], returnParams: true }));
      const full = op.body.response!.getSupportedDmResp!.reqObjResults[0]!.supportedObjs.find((o) => o.supportedObjPath === 'Device.WiFi.SSID.{i}.')!;
      const opAccess = Object.fromEntries(full.supportedParams.map((p) => [p.paramName, p.access ?? 'PARAM_READ_ONLY']));
      assert.equal(opAccess.Enable, 'PARAM_READ_WRITE');
      assert.ok('BSSID' in opAccess);
    });

    it('GetInstances: instances and unique keys the Role may read; a search on a hidden parameter matches nothing (R-GIN.0, R-GIN.1)', async () => {
      const inst = async (who: string, path: string) => {
        const r = await w.ask(who, request('getInstances', { objPaths: [path], firstLevelOnly: true }));
        return r.body.response!.getInstancesResp!.reqPathResults[0]!;
      };
      const mine = await inst(APP, 'Device.WiFi.SSID.');
      assert.ok(mine.currInsts.length >= 1);
      for (const c of mine.currInsts) assert.ok(!('BSSID' in c.uniqueKeys), JSON.stringify(c.uniqueKeys));
      assert.deepEqual((await inst(APP, 'Device.NAT.PortMapping.')).currInsts, []);
      assert.ok((await inst(OPERATOR, 'Device.NAT.PortMapping.')).currInsts.length >= 1);
      const bssid = w.sim.get(w.native('Device.WiFi.SSID.1.BSSID'))!;
      const search = `Device.WiFi.SSID.[BSSID=="${bssid}"].`;
      assert.deepEqual((await inst(APP, search)).currInsts, []);
      assert.deepEqual(
        (await inst(OPERATOR, search)).currInsts.map((c) => c.instantiatedObjPath),
        ['Device.WiFi.SSID.1.'],
      );
    });

    it('Subscriptions: only on what the Recipient may read; a Notify only when it may read what changed', async () => {
      // The app may not watch the firmware version.
      const refused = error(
        await w.ask(
          APP,
          add('Device.LocalAgent.Subscription.', { Enable: 'true', NotifType: 'ValueChange', ReferenceList: 'Device.DeviceInfo.SoftwareVersion' }),
        ),
      );
      assert.equal(refused.errCode, 7006);
      assert.match(refused.errMsg, /Device\.DeviceInfo\.SoftwareVersion/);
      for (const who of [APP, OPERATOR]) {
        const r = await w.ask(
          who,
          add('Device.LocalAgent.Subscription.', { Enable: 'true', ID: `wifi-${who}`, NotifType: 'ValueChange', ReferenceList: 'Device.WiFi.SSID.' }),
        );
        assert.equal(r.header.msgType, 'ADD_RESP', JSON.stringify(r.body));
      }
      await settle();
      w.sent.length = 0;
      w.valueChangeInform(w.native('Device.WiFi.SSID.1.SSID'), 'renamed-by-user');
      w.valueChangeInform(w.native('Device.WiFi.SSID.1.BSSID'), '02:00:00:00:00:01');
      await settle();
      const seen = (who: string) => w.notifiesTo(who).map((n) => `${n.valueChange!.paramPath}=${n.valueChange!.paramValue}`);
      // (A TR-098 BSSID is also the Device:2 MACAddress, which the app may read.)
      assert.deepEqual(
        seen(APP).filter((n) => !n.includes('MACAddress')),
        ['Device.WiFi.SSID.1.SSID=renamed-by-user'],
      );
      assert.deepEqual(
        seen(OPERATOR)
          .filter((n) => !n.includes('MACAddress'))
          .sort(),
        ['Device.WiFi.SSID.1.BSSID=02:00:00:00:00:01', 'Device.WiFi.SSID.1.SSID=renamed-by-user'],
      );
    });

    it("ObjectCreation follows the Recipient's Roles as they are when the object appears", async () => {
      const r = await w.ask(
        VIEWER,
        add('Device.LocalAgent.Subscription.', { Enable: 'true', ID: 'nat', NotifType: 'ObjectCreation', ReferenceList: 'Device.NAT.PortMapping.' }),
      );
      assert.equal(r.header.msgType, 'ADD_RESP', JSON.stringify(r.body));
      w.sent.length = 0;
      const one = await w.ask(OPERATOR, add('Device.NAT.PortMapping.', { ExternalPort: '9001' }, false));
      assert.equal(one.header.msgType, 'ADD_RESP', JSON.stringify(one.body));
      await settle();
      assert.equal(w.notifiesTo(VIEWER).filter((n) => n.objCreation).length, 1);
      // The operator gives the viewer the Wi-Fi Role instead: NAT is no longer its business.
      const row = await read(w, OPERATOR, 'Device.LocalAgent.Controller.3.AssignedRole');
      assert.deepEqual(row.values, { 'Device.LocalAgent.Controller.3.AssignedRole': 'Device.LocalAgent.ControllerTrust.Role.3' });
      const s = await w.ask(OPERATOR, set('Device.LocalAgent.Controller.2.', { AssignedRole: 'Device.LocalAgent.ControllerTrust.Role.3' }));
      assert.equal(s.header.msgType, 'SET_RESP', JSON.stringify(s.body));
      w.sent.length = 0;
      await w.ask(OPERATOR, add('Device.NAT.PortMapping.', { ExternalPort: '9002' }, false));
      await settle();
      assert.deepEqual(
        w.notifiesTo(VIEWER).filter((n) => n.objCreation),
        [],
      );
      assert.equal((await read(w, VIEWER, 'Device.DeviceInfo.SerialNumber')).code, 7026);
      await w.ask(OPERATOR, set('Device.LocalAgent.Controller.2.', { AssignedRole: 'Device.LocalAgent.ControllerTrust.Role.2' }));
    });

    it('a Role made by the operator with a search-expression Target: evaluated against the CPE at each request', async () => {
      const ROLE = 'Device.LocalAgent.ControllerTrust.Role.';
      const r = await w.ask(OPERATOR, add(ROLE, { Name: 'enabled-ssids', Enable: 'true' }));
      const role = r.body.response!.addResp!.createdObjResults[0]!.operStatus!.operSuccess!.instantiatedPath!;
      const p = await w.ask(
        OPERATOR,
        add(`${role}Permission.`, { Enable: 'true', Order: '1', Targets: 'Device.WiFi.SSID.[Enable==true].', Param: 'r---', Obj: 'r---' }),
      );
      assert.equal(p.header.msgType, 'ADD_RESP', JSON.stringify(p.body));
      await w.ask(OPERATOR, set('Device.LocalAgent.Controller.4.', { AssignedRole: role.slice(0, -1) }));
      // (The device backend keeps a column it searched for a second: the row is disabled before the first search.)
      await w.ask(OPERATOR, set('Device.WiFi.SSID.2.', { Enable: 'false' }));
      assert.deepEqual(Object.keys((await read(w, NOBODY, 'Device.WiFi.SSID.*.SSID')).values), ['Device.WiFi.SSID.1.SSID']);
      assert.equal((await read(w, NOBODY, 'Device.WiFi.SSID.2.SSID')).code, 7026);
      assert.equal((await read(w, NOBODY, 'Device.WiFi.SSID.1.SSID')).code, 0);
      await w.ask(OPERATOR, set('Device.WiFi.SSID.2.', { Enable: 'true' }));
      await w.ask(OPERATOR, set('Device.LocalAgent.Controller.4.', { AssignedRole: '' }));
    });

    it('secured parameters read empty through Get, search values and Notify, and can still be Set', async () => {
      const KEY = 'Device.WiFi.AccessPoint.1.Security.KeyPassphrase';
      const r = await w.ask(APP, set('Device.WiFi.AccessPoint.1.Security.', { KeyPassphrase: 'S3cret-value' }));
      assert.equal(r.header.msgType, 'SET_RESP', JSON.stringify(r.body));
      assert.equal(w.sim.get(w.native(KEY)), 'S3cret-value', 'set on the CPE');
      for (const who of [APP, OPERATOR]) assert.deepEqual(await read(w, who, KEY), { code: 0, values: { [KEY]: '' } });
      if (root === 'Device') {
        // Whatever the CPE reports for the ACS password (the mapping of a TR-098 CPE does not show it at all).
        w.sim.set('Device.ManagementServer.Password', 'Acs-Pa55');
        assert.deepEqual(await read(w, OPERATOR, 'Device.ManagementServer.Password'), { code: 0, values: { 'Device.ManagementServer.Password': '' } });
        const all = await read(w, OPERATOR, 'Device.ManagementServer.');
        assert.equal(all.values['Device.ManagementServer.Password'], '');
        assert.ok(!Object.values(all.values).includes('Acs-Pa55'));
      }
      // A search cannot probe it: the value it compares is the empty one.
      const probe = async (value: string) =>
        (await w.ask(OPERATOR, request('getInstances', { objPaths: [`Device.WiFi.AccessPoint.[Security.KeyPassphrase=="${value}"].`], firstLevelOnly: true })))
          .body.response!.getInstancesResp!.reqPathResults[0]!;
      const miss = await probe('S3cret-value');
      assert.equal(miss.errCode ?? 0, 0);
      assert.deepEqual(miss.currInsts, []);
      assert.ok((await probe('')).currInsts.some((c) => c.instantiatedObjPath === 'Device.WiFi.AccessPoint.1.'));
      // A ValueChange of it carries the empty value.
      const sub = await w.ask(OPERATOR, add('Device.LocalAgent.Subscription.', { Enable: 'true', ID: 'key', NotifType: 'ValueChange', ReferenceList: KEY }));
      assert.equal(sub.header.msgType, 'ADD_RESP', JSON.stringify(sub.body));
      w.sent.length = 0;
      await w.idle();
      w.valueChangeInform(w.native(KEY), 'Changed-0n-CPE');
      await w.idle();
      const vc = w.notifiesTo(OPERATOR).filter((n) => n.valueChange?.paramPath === KEY);
      assert.equal(vc.length, 1);
      assert.equal(vc[0]!.valueChange!.paramValue ?? '', '', 'proto3: the empty string is the absent field');
      assert.ok(!JSON.stringify(w.sent).includes('Changed-0n-CPE'));
    });
  });
}
