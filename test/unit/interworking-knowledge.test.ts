/**
 * What the proxy learns of devices and device models (src/interworking/knowledge/): the device
 * tree from GetParameterNames answers (levels and subtrees, freshness, Add/Delete, refused names,
 * interning, persistence) and the model profile (schema, types, capabilities, failures with
 * back-off, persistence). Inputs are GetParameterNames answers of the in-repo simulator.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ParameterInfoStruct } from '../../src/cwmp/types.js';
import { DeviceTree, Interner, leafOf, parentOf } from '../../src/interworking/knowledge/device-tree.js';
import { KnowledgeBase, modelKeyOf } from '../../src/interworking/knowledge/knowledge-base.js';
import { ModelProfile, schemaPathOf } from '../../src/interworking/knowledge/model-profile.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import type { DeviceRecord } from '../../src/store/types.js';
import { DeviceModel, loadModel } from '../../src/tools/sim/model.js';
import { handleRpc } from '../../src/tools/sim/rpc.js';

const sim = new DeviceModel(loadModel('tr181'));
function gpn(path: string, nextLevel: boolean): ParameterInfoStruct[] {
  const a = handleRpc({ model: sim, get: (p) => sim.get(p), post: () => undefined }, { method: 'GetParameterNames', parameterPath: path, nextLevel });
  assert.equal(a.method, 'GetParameterNamesResponse');
  return (a as { parameterList: ParameterInfoStruct[] }).parameterList;
}

describe('DeviceTree', () => {
  it('paths: parentOf, leafOf, schemaPathOf', () => {
    assert.equal(parentOf('Device.WiFi.SSID.3.Enable'), 'Device.WiFi.SSID.3.');
    assert.equal(parentOf('Device.WiFi.SSID.3.'), 'Device.WiFi.SSID.');
    assert.equal(parentOf('Device.'), '');
    assert.equal(leafOf('Device.WiFi.SSID.3.'), '3');
    assert.equal(leafOf('Device.WiFi.SSID.3.Enable'), 'Enable');
    assert.equal(schemaPathOf('Device.IP.Interface.2.IPv4Address.1.IPAddress'), 'Device.IP.Interface.{i}.IPv4Address.{i}.IPAddress');
  });

  it('a level: direct parameters and children, nothing deeper asserted', () => {
    const t = new DeviceTree(new Interner());
    assert.equal(t.learnLevel('Device.WiFi.SSID.', gpn('Device.WiFi.SSID.', true), 1_000), 0);
    assert.deepEqual(t.instances('Device.WiFi.SSID.'), [1, 2]);
    assert.equal(t.knowsLevel('Device.WiFi.SSID.', 0), true);
    assert.equal(t.knowsLevel('Device.WiFi.SSID.1.', 0), false, 'a child level is not known from its parent');
    assert.equal(t.knowsSubtree('Device.WiFi.SSID.', 0), false);
    assert.equal(t.hasParam('Device.WiFi.SSID.1.SSID'), false);
  });

  it('a subtree: every name below, instances in numeric order, params of each object', () => {
    const t = new DeviceTree(new Interner());
    t.learnSubtree('Device.IP.', gpn('Device.IP.', false), 1_000);
    assert.equal(t.knowsSubtree('Device.IP.Interface.2.IPv4Address.', 999), true);
    assert.equal(t.knowsSubtree('Device.IP.', 1_000), false, 'not fresh after its time');
    assert.deepEqual(t.instances('Device.IP.Interface.'), [1, 2]);
    assert.equal(t.hasParam('Device.IP.Interface.2.IPv4Address.1.IPAddress'), true);
    assert.ok(t.paramsUnder('Device.IP.Interface.1.').includes('Device.IP.Interface.1.IPv4Address.1.IPAddress'));
    assert.ok(t.objectsUnder('Device.IP.').includes('Device.IP.Diagnostics.TraceRoute.RouteHops.'));
  });

  it('names outside the object are ignored and counted (bad input)', () => {
    const t = new DeviceTree(new Interner());
    const ignored = t.learnSubtree(
      'Device.WiFi.',
      [...gpn('Device.WiFi.', false), { name: 'Device.Other.Secret', writable: true }, { name: 'Dev', writable: false }],
      1,
    );
    assert.equal(ignored, 2);
    assert.equal(t.hasObject('Device.Other.'), false);
  });

  it('a CPE that lists only parameters still gets its objects', () => {
    const t = new DeviceTree(new Interner());
    t.learnSubtree('Device.X.', [{ name: 'Device.X.A.1.B', writable: false }], 1);
    assert.deepEqual(t.instances('Device.X.A.'), [1]);
    assert.equal(t.hasParam('Device.X.A.1.B'), true);
  });

  it('Add and Delete update a table without learning it again', () => {
    const t = new DeviceTree(new Interner());
    t.learnSubtree('Device.NAT.', gpn('Device.NAT.', false), 1);
    const v = t.version;
    t.addInstance(
      'Device.NAT.PortMapping.7.',
      [
        { name: 'Device.NAT.PortMapping.7.', writable: true },
        { name: 'Device.NAT.PortMapping.7.Enable', writable: true },
      ],
      2,
    );
    assert.deepEqual(t.instances('Device.NAT.PortMapping.'), [1, 7]);
    assert.ok(t.version > v);
    t.removeInstance('Device.NAT.PortMapping.1.');
    assert.deepEqual(t.instances('Device.NAT.PortMapping.'), [7]);
    assert.equal(t.hasParam('Device.NAT.PortMapping.1.ExternalPort'), false);
  });

  it('refused names are forgotten and remembered; a BOOT (markStale of all) clears them', () => {
    const t = new DeviceTree(new Interner());
    t.learnSubtree('Device.WiFi.', gpn('Device.WiFi.', false), 5);
    t.refuse('Device.WiFi.SSID.2.SSID');
    assert.equal(t.hasParam('Device.WiFi.SSID.2.SSID'), false);
    assert.equal(t.isRefused('Device.WiFi.SSID.2.SSID'), true);
    t.markStale('Device.WiFi.SSID.');
    assert.equal(t.knowsSubtree('Device.WiFi.', 0), false, 'a table that may have changed stales its ancestors');
    assert.equal(t.knowsLevel('Device.WiFi.Radio.', 0), true, 'but not its siblings levels');
    t.markStale();
    assert.equal(t.isRefused('Device.WiFi.SSID.2.SSID'), false);
  });

  it('rows of one table share interned name lists', () => {
    const i = new Interner();
    const t = new DeviceTree(i);
    t.learnSubtree('Device.WiFi.', gpn('Device.WiFi.', false), 1);
    assert.equal(t.node('Device.WiFi.SSID.1.')!.params, t.node('Device.WiFi.SSID.2.')!.params);
  });

  it('round-trips through JSON; malformed JSON gives an empty tree, never a throw', () => {
    const i = new Interner();
    const t = new DeviceTree(i);
    t.learnSubtree('Device.IP.', gpn('Device.IP.', false), 77);
    t.refuse('Device.IP.IPv4Enable');
    const back = DeviceTree.fromJSON(JSON.parse(JSON.stringify(t.toJSON())), i);
    assert.deepEqual(back.paramsUnder('Device.IP.'), t.paramsUnder('Device.IP.'));
    assert.equal(back.knowsSubtree('Device.IP.', 76), true);
    assert.equal(back.isRefused('Device.IP.IPv4Enable'), true);
    for (const bad of [null, 3, { v: 2 }, { v: 1, nodes: { 'Device.': 'x' } }]) assert.equal(DeviceTree.fromJSON(bad, i).size().objects, 0);
  });
});

describe('ModelProfile', () => {
  it('learns schema, writability and types; types from Informs and GPV answers', () => {
    const m = new ModelProfile('OUI|PC|1');
    m.learnNames(gpn('Device.NAT.', false));
    assert.equal(m.hasParam('Device.NAT.PortMapping.{i}.ExternalPort'), true);
    assert.equal(m.writableOf('Device.NAT.PortMapping.3.ExternalPort'), true);
    assert.equal(m.tableWritable('Device.NAT.PortMapping.'), true);
    assert.equal(m.knowsParamsOf('Device.NAT.PortMapping.{i}.'), true);
    assert.equal(m.typeOf('Device.NAT.PortMapping.1.ExternalPort'), undefined);
    m.learnTypes([{ name: 'Device.NAT.PortMapping.1.ExternalPort', type: 'xsd:unsignedInt' }]);
    assert.equal(m.typeOf('Device.NAT.PortMapping.9.ExternalPort'), 'xsd:unsignedInt');
    assert.equal(m.dirty, true);
  });

  it('failures back off exponentially and clear on success', () => {
    const m = new ModelProfile('k');
    const f1 = m.fail('GPN x', 'fault 9002', 'dev', 1_000);
    assert.equal(f1.until, 31_000);
    assert.ok(m.failing('GPN x', 2_000));
    assert.equal(m.failing('GPN x', 31_001), undefined);
    const f2 = m.fail('GPN x', 'fault 9002', 'dev', 40_000);
    assert.equal(f2.until, 100_000);
    m.succeeded('GPN x');
    assert.equal(m.failing('GPN x', 40_001), undefined);
  });

  it('round-trips through JSON with its capabilities; junk is ignored', () => {
    const m = new ModelProfile('k', { gpvBatch: 32 });
    m.learnNames(gpn('Device.WiFi.', false));
    m.learnTypes([{ name: 'Device.WiFi.SSID.1.Enable', type: 'xsd:boolean' }]);
    m.setCap('gpvBatch', 8);
    m.setCap('rpcMethods', ['GetParameterValues']);
    m.rootComplete = true;
    const back = ModelProfile.fromJSON('k', JSON.parse(JSON.stringify(m.toJSON())));
    assert.equal(back.caps.gpvBatch, 8);
    assert.deepEqual(back.caps.rpcMethods, ['GetParameterValues']);
    assert.equal(back.typeOf('Device.WiFi.SSID.2.Enable'), 'xsd:boolean');
    assert.equal(back.rootComplete, true);
    assert.equal(back.knowsParamsOf('Device.WiFi.SSID.{i}.'), true);
    const junk = ModelProfile.fromJSON('k', { v: 1, caps: { gpvBatch: -3, partialPaths: 'maybe' } }, { gpvBatch: 16 });
    assert.equal(junk.caps.gpvBatch, 16);
    assert.equal(junk.caps.partialPaths, 'unknown');
  });
});

describe('KnowledgeBase', () => {
  const device = (sw: string): DeviceRecord => ({
    deviceKey: 'K1',
    endpointId: 'os::X-1',
    deviceId: { manufacturer: 'M', oui: 'OUI', productClass: 'PC', serialNumber: '1' },
    rootModel: 'Device',
    softwareVersion: sw,
    connectionRequestUrl: null,
    connReqUsername: null,
    connReqPassword: null,
    cpeUsername: null,
    cpePassword: null,
    periodicInformInterval: null,
    lastInform: null,
    lastInformEvents: [],
    registeredAt: '',
  });

  it('stores trees and profiles; a firmware change is another model and starts the device afresh', async () => {
    const store = openSqliteStore(':memory:');
    const kb = new KnowledgeBase(store);
    const d = device('1.0');
    const tree = await kb.tree(d);
    const model = await kb.model(d);
    tree.learnSubtree('Device.WiFi.', gpn('Device.WiFi.', false), Date.now());
    model.learnNames(gpn('Device.WiFi.', false));
    await kb.save(d, tree, model);
    assert.equal(modelKeyOf(d), 'OUI|PC|1.0');
    // No two models share a key, whatever their parts hold.
    const a = modelKeyOf({ deviceId: { ...d.deviceId, productClass: 'A|B' }, softwareVersion: '1' });
    const b = modelKeyOf({ deviceId: { ...d.deviceId, productClass: 'A' }, softwareVersion: 'B|1' });
    assert.notEqual(a, b);
    const again = new KnowledgeBase(store);
    assert.deepEqual((await again.tree(d)).instances('Device.WiFi.SSID.'), [1, 2]);
    assert.equal((await again.model(d)).hasParam('Device.WiFi.SSID.{i}.SSID'), true);
    const upgraded = device('2.0');
    assert.equal((await again.tree(upgraded)).size().objects, 0);
    assert.equal((await again.model(upgraded)).paramCount, 0);
  });

  it('a store that fails to write is reported, never thrown at the request', async () => {
    const errors: string[] = [];
    const kb = new KnowledgeBase(
      {
        getLearned: async () => null,
        putLearned: async () => {
          throw new Error('disk full');
        },
        deleteLearned: async () => undefined,
      },
      { onStoreError: (what, e) => errors.push(`${what}: ${e.message}`) },
    );
    const d = device('1.0');
    await kb.save(d, await kb.tree(d), await kb.model(d));
    assert.equal(errors.length, 1);
    assert.match(errors[0]!, /disk full/);
  });
});
