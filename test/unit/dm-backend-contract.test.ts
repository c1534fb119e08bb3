/**
 * The DmBackend contract (src/usp/dm/types.ts), one suite run against every implementation: the
 * proxy's own Device.LocalAgent. (a MemoryModel), the Device:2 CWMP backend and the TR-098 mapped
 * backend (both driven by the simulator through a scripted RpcPort, strict profile). What a
 * handler may rely on, whoever owns the path.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/app/config.js';
import { createLogger } from '../../src/app/log.js';
import { Interworking } from '../../src/interworking/index.js';
import { loadDefaultMapping } from '../../src/mapping/load.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { parseQuirks } from '../../src/tools/sim/quirks.js';
import { LocalAgent } from '../../src/usp/agent/local-agent.js';
import { LOCAL_AGENT_PREFIXES } from '../../src/usp/agent/local-agent-schema.js';
import type { DmBackend, RequestContext } from '../../src/usp/dm/types.js';
import { deviceRecord, SimPort } from '../helpers/sim-port.js';
import { hasReference, REFERENCE } from '../helpers/paths.js';
import path from 'node:path';

interface Fixture {
  backend: DmBackend;
  agentEid: string;
  /** A parameter that exists, and an object path above it. */
  param: string;
  object: string;
  /** A table with rows, and a path that is not a table. */
  table: string;
  notTable: string;
  /** A writable parameter and a value to set. */
  writable: [object: string, param: string, value: string];
  /** A table to Add to (with settings) and Delete from. */
  addable: [table: string, settings: { param: string; value: string; required: boolean }[]];
}

async function cwmpFixture(root: 'Device' | 'InternetGatewayDevice'): Promise<Fixture> {
  const port = new SimPort(parseQuirks('explicit-names-only'));
  const store = openSqliteStore(':memory:');
  const iw = new Interworking(
    { port, store, rules: loadDefaultMapping(), log: createLogger('silent') },
    { operationTimeoutMs: 5_000, excludedPrefixes: LOCAL_AGENT_PREFIXES },
  );
  const d = deviceRecord(root === 'Device' ? 'C181' : 'C098', '1.0.0', root);
  await store.upsertDevice(d);
  port.add(d.deviceKey, root === 'Device' ? 'tr181' : 'tr098');
  return {
    backend: iw.backend,
    agentEid: d.endpointId,
    param: 'Device.DeviceInfo.SoftwareVersion',
    object: 'Device.DeviceInfo.',
    table: 'Device.WiFi.SSID.',
    notTable: 'Device.DeviceInfo.',
    writable: ['Device.WiFi.SSID.1.', 'SSID', 'contract-ssid'],
    addable: ['Device.NAT.PortMapping.', root === 'Device' ? [{ param: 'ExternalPort', value: '9191', required: true }] : []],
  };
}

const EXT = 'Device.X_CWMP-USP-PROXY_Native.';
const EX220 = path.join(REFERENCE, 'cwmp-models', 'tplink-EX220-tr181.csv');

/** The extension object: a TR-098 device's native tree, a Device:2 device's shadowed LocalAgent. (EX220 dump). */
async function extensionFixture(root: 'Device' | 'InternetGatewayDevice'): Promise<Fixture> {
  const port = new SimPort(parseQuirks('explicit-names-only'));
  const store = openSqliteStore(':memory:');
  const iw = new Interworking(
    { port, store, rules: loadDefaultMapping(), log: createLogger('silent') },
    { operationTimeoutMs: 5_000, excludedPrefixes: LOCAL_AGENT_PREFIXES },
  );
  const d = deviceRecord(root === 'Device' ? 'X181' : 'X098', '1.0.0', root);
  await store.upsertDevice(d);
  port.add(d.deviceKey, root === 'Device' ? EX220 : 'tr098');
  if (root === 'Device')
    return {
      backend: iw.extension,
      agentEid: d.endpointId,
      param: `${EXT}LocalAgent.EndpointID`,
      object: `${EXT}LocalAgent.`,
      table: `${EXT}LocalAgent.Controller.`,
      notTable: `${EXT}LocalAgent.`,
      writable: [`${EXT}LocalAgent.Controller.1.`, 'EndpointID', 'usp::contract'],
      addable: [`${EXT}LocalAgent.Controller.`, []],
    };
  const wan = `${EXT}WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.`;
  return {
    backend: iw.extension,
    agentEid: d.endpointId,
    param: `${EXT}DeviceInfo.SoftwareVersion`,
    object: `${EXT}DeviceInfo.`,
    table: `${EXT}LANDevice.1.WLANConfiguration.`,
    notTable: `${EXT}DeviceInfo.`,
    writable: [`${EXT}LANDevice.1.WLANConfiguration.1.`, 'SSID', 'contract-ssid'],
    addable: [`${wan}PortMapping.`, [{ param: 'ExternalPort', value: '9191', required: true }]],
  };
}

function localAgentFixture(): Fixture {
  const config = loadConfig({ env: {}, overrides: { controllers: [{ endpointId: 'proto::c1' }, { endpointId: 'proto::c2' }] } });
  const la = new LocalAgent(config, openSqliteStore(':memory:'), '1.0');
  return {
    backend: la.model,
    agentEid: 'os::012345-LA1',
    param: 'Device.LocalAgent.EndpointID',
    object: 'Device.LocalAgent.',
    table: 'Device.LocalAgent.Controller.',
    notTable: 'Device.LocalAgent.',
    writable: ['Device.LocalAgent.Controller.1.', 'ProvisioningCode', 'contract-code'],
    addable: [
      'Device.LocalAgent.Subscription.',
      [
        { param: 'NotifType', value: 'ValueChange', required: true },
        { param: 'ReferenceList', value: 'Device.LocalAgent.EndpointID', required: true },
      ],
    ],
  };
}

const fixtures: [string, () => Promise<Fixture> | Fixture][] = [
  ['LocalAgent (MemoryModel)', localAgentFixture],
  ['Device:2 CWMP backend', () => cwmpFixture('Device')],
  ['TR-098 mapped backend', () => cwmpFixture('InternetGatewayDevice')],
  ['extension object, TR-098 native tree', () => extensionFixture('InternetGatewayDevice')],
  // The EX220 dump (a TR-181 device with its own USP agent) is reference material, not in the repository.
  ...(hasReference('cwmp-models')
    ? [['extension object, Device:2 shadowed LocalAgent. (EX220)', () => extensionFixture('Device')] as [string, () => Promise<Fixture>]]
    : []),
];

for (const [name, make] of fixtures) {
  describe(`DmBackend contract: ${name}`, () => {
    const ctx = (f: Fixture): RequestContext => ({ agentEid: f.agentEid, controllerEid: 'proto::c1' });

    it('prefixes are object paths or commands; the supported model lies under them, in "{i}" form', async () => {
      const f = await make();
      assert.ok(f.backend.prefixes.length > 0);
      for (const p of f.backend.prefixes) assert.ok(p.startsWith('Device.') && (p.endsWith('.') || p.endsWith('()')), p);
      const model = await f.backend.supported(f.agentEid);
      assert.ok(model.length > 0);
      for (const o of model) {
        assert.ok(o.path === 'Device.' || f.backend.prefixes.some((p) => o.path.startsWith(p)), o.path);
        assert.equal(o.multiInstance, o.path.endsWith('{i}.'), o.path);
        assert.ok(!/\.\d+\./.test(o.path), `no instance numbers in ${o.path}`);
        for (const p of o.params) assert.ok(p.type && p.access, `${o.path}${p.name}`);
      }
    });

    it('get: a parameter by name; an object path gives only what lies below it; an unknown name is absent', async () => {
      const f = await make();
      const one = await f.backend.get(f.agentEid, [f.param]);
      assert.equal(typeof one.get(f.param), 'string');
      const below = await f.backend.get(f.agentEid, [f.object]);
      assert.ok(below.size >= 1);
      for (const k of below.keys()) assert.ok(k.startsWith(f.object), k);
      const none = await f.backend.get(f.agentEid, [`${f.object}NoSuchParameter`]);
      assert.equal(none.size, 0);
    });

    it('instances: ascending positive numbers for a table, null for what is not one', async () => {
      const f = await make();
      const rows = await f.backend.instances(f.agentEid, f.table);
      assert.ok(rows && rows.length > 0);
      assert.deepEqual(
        [...rows].sort((a, b) => a - b),
        rows,
      );
      for (const n of rows) assert.ok(Number.isInteger(n) && n > 0);
      assert.equal(await f.backend.instances(f.agentEid, f.notTable), null);
    });

    it('set: a writable parameter changes and reads back', async () => {
      const f = await make();
      const [obj, param, value] = f.writable;
      const r = await f.backend.set(ctx(f), obj, [{ param, value, required: true }]);
      assert.equal(r.ok, true, JSON.stringify(r));
      assert.equal((await f.backend.get(f.agentEid, [obj + param])).get(obj + param), value);
    });

    it('set: an unknown parameter is refused with 7010 or 7026 naming it, nothing else changes', async () => {
      const f = await make();
      const [obj] = f.writable;
      const r = await f.backend.set(ctx(f), obj, [{ param: 'NoSuchParameter', value: 'x', required: true }]);
      assert.equal(r.ok, false);
      if (!r.ok)
        assert.ok(
          r.paramErrs.some((e) => e.param === 'NoSuchParameter' && [7010, 7026].includes(e.errCode)),
          JSON.stringify(r),
        );
    });

    it('add then delete: the instance appears and goes; deleting it again is success with nothing deleted', async () => {
      const f = await make();
      const [table, settings] = f.addable;
      const added = await f.backend.add(ctx(f), table, settings);
      assert.equal(added.ok, true, JSON.stringify(added));
      if (!added.ok) return;
      assert.ok((await f.backend.instances(f.agentEid, table))?.includes(added.instance));
      const path = `${table}${added.instance}.`;
      assert.deepEqual(await f.backend.delete(ctx(f), path), { ok: true });
      assert.ok(!(await f.backend.instances(f.agentEid, table))?.includes(added.instance));
      const again = await f.backend.delete(ctx(f), path);
      assert.equal(again.ok, true);
      if (again.ok) assert.equal(again.deleted, false);
    });

    it('a lazy model agrees with the supported model', async (t) => {
      const f = await make();
      const lazy = f.backend.lazy;
      if (!lazy) return t.skip('this backend answers from its supported model (no lazy queries)');
      const model = await f.backend.supported(f.agentEid);
      for (const o of model.slice(0, 40)) {
        assert.ok(await lazy.exists(f.agentEid, o.path), o.path);
        for (const p of o.params.slice(0, 3)) assert.ok(await lazy.exists(f.agentEid, o.path + p.name), o.path + p.name);
      }
      assert.equal(await lazy.exists(f.agentEid, 'Device.NoSuchObject.Thing'), false);
    });
  });
}
