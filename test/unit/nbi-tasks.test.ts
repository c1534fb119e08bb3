/**
 * Northbound tasks without sockets (docs/nbi.md): request parsing to CWMP RPCs, the task list's
 * bounds (count, age) and its read retry at the next Inform, driven through a scripted TaskPorts;
 * the CSV/JSON rows of a device import.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TaskList, TaskListFull, TaskRequestError, parseTask, type TaskPorts, type TaskView } from '../../src/ops/tasks.js';
import { ImportError, importRows, parseCsv } from '../../src/ops/device-import.js';
import { RpcError } from '../../src/cwmp/session-types.js';
import type { AcsRequest } from '../../src/cwmp/types.js';
import type { RpcOutcome } from '../../src/cwmp/session-types.js';

test('parseTask: each type gives its CWMP RPC; a Set value takes the learned type, else xsd:string', () => {
  assert.deepEqual(parseTask({ type: 'get', names: ['Device.DeviceInfo.UpTime'] }).action, { kind: 'read', what: { names: ['Device.DeviceInfo.UpTime'] } });
  assert.deepEqual(parseTask({ type: 'refresh', object: 'Device.WiFi.' }).action, { kind: 'read', what: { object: 'Device.WiFi.' } });
  const set = parseTask(
    {
      type: 'set',
      values: [
        { name: 'Device.WiFi.SSID.1.Enable', value: true },
        { name: 'Device.WiFi.SSID.1.SSID', value: 'x' },
        { name: 'Device.X', value: 5, type: 'xsd:int' },
      ],
    },
    new Map([['Device.WiFi.SSID.1.Enable', 'xsd:boolean']]),
  ).action;
  assert.deepEqual(set, {
    kind: 'rpc',
    rpc: {
      method: 'SetParameterValues',
      parameterKey: '',
      parameterList: [
        { name: 'Device.WiFi.SSID.1.Enable', value: 'true', type: 'xsd:boolean' },
        { name: 'Device.WiFi.SSID.1.SSID', value: 'x', type: 'xsd:string' },
        { name: 'Device.X', value: '5', type: 'xsd:int' },
      ],
    },
  });
  const rpc = (b: unknown) => (parseTask(b).action as { rpc: AcsRequest }).rpc;
  assert.deepEqual(rpc({ type: 'add', object: 'Device.NAT.PortMapping.' }), { method: 'AddObject', objectName: 'Device.NAT.PortMapping.', parameterKey: '' });
  assert.deepEqual(rpc({ type: 'delete', object: 'Device.NAT.PortMapping.2.', parameterKey: 'k' }), {
    method: 'DeleteObject',
    objectName: 'Device.NAT.PortMapping.2.',
    parameterKey: 'k',
  });
  assert.deepEqual(rpc({ type: 'reboot' }), { method: 'Reboot', commandKey: '' });
  assert.deepEqual(rpc({ type: 'factoryReset' }), { method: 'FactoryReset' });
  const dl = rpc({ type: 'download', url: 'https://fw.example/x.bin', fileSize: 10 });
  assert.equal(dl.method, 'Download');
  assert.equal((dl as { fileType: string }).fileType, '1 Firmware Upgrade Image');
  assert.deepEqual(parseTask({ type: 'connectionRequest' }).action, { kind: 'connectionRequest' });
});

test('parseTask refuses malformed requests with a message', () => {
  for (const b of [
    null,
    [],
    { type: 'nope' },
    { type: 'get', names: [] },
    { type: 'get', names: ['Device..X'] },
    { type: 'get', names: [7] },
    { type: 'set', values: [{ name: 'Device.X', value: {} }] },
    { type: 'set', values: [{ name: 'Device.X', value: 'v', type: 'string' }] },
    { type: 'add', object: 'Device.X' },
    { type: 'delete' },
    { type: 'reboot', commandKey: 'k'.repeat(33) },
    { type: 'download', url: 'nota url' },
    { type: 'download', url: 'javascript:alert(1)' },
    { type: 'download', url: 'http://x/', fileSize: -1 },
  ]) {
    assert.throws(() => parseTask(b), TaskRequestError, JSON.stringify(b));
  }
});

/** A scripted TaskPorts: RPCs and reads answer from the script; Informs are sent by the test. */
function scripted(
  answer: (rpc: AcsRequest) => Promise<RpcOutcome>,
  read: () => Promise<Array<{ name: string; value: string; type: string }>> = async () => [],
) {
  let inform: (k: string) => void = () => undefined;
  const ports: TaskPorts = {
    enqueue: (_k, rpc) => answer(rpc),
    read,
    inSession: async () => false,
    connectionRequest: async () => ({ ok: false, detail: 'refused' }),
    onInform: (l) => {
      inform = l;
    },
  };
  return { ports, inform: (k: string) => inform(k) };
}

async function settled(list: TaskList, id: string): Promise<TaskView> {
  for (;;) {
    const t = (await list.get(id))!;
    if (t.status === 'done' || t.status === 'failed') return t;
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('TaskList: results, faults, delivery errors; a secured value reads empty', async () => {
  const { ports } = scripted(
    async (rpc) => {
      if (rpc.method === 'AddObject') return { kind: 'response', response: { method: 'AddObjectResponse', instanceNumber: 4, status: 0 } };
      if (rpc.method === 'Reboot') throw new RpcError('unreachable', 'no session');
      return {
        kind: 'fault',
        fault: { method: 'Fault', soapFaultCode: 'Client', faultCode: 9003, faultString: 'Invalid arguments', setParameterValuesFault: [] },
      };
    },
    async () => [{ name: 'Device.ManagementServer.Password', value: 'S3cret', type: 'xsd:string' }],
  );
  const list = new TaskList(ports);
  const add = list.start('K', 'add', parseTask({ type: 'add', object: 'Device.NAT.PortMapping.' }).action);
  assert.equal(add.status, 'queued');
  assert.deepEqual((await settled(list, add.id)).result, { instanceNumber: 4, status: 0 });
  const f = list.start('K', 'factoryReset', parseTask({ type: 'factoryReset' }).action);
  assert.deepEqual((await settled(list, f.id)).fault, { faultCode: 9003, faultString: 'Invalid arguments' });
  const r = list.start('K', 'reboot', parseTask({ type: 'reboot' }).action);
  assert.match((await settled(list, r.id)).error!, /^unreachable: no session/);
  const g = list.start('K', 'get', parseTask({ type: 'get', names: ['Device.ManagementServer.Password'] }).action);
  assert.deepEqual((await settled(list, g.id)).result, { parameters: [{ name: 'Device.ManagementServer.Password', value: '', type: 'xsd:string' }] });
  const c = list.start('K', 'connectionRequest', parseTask({ type: 'connectionRequest' }).action);
  assert.match((await settled(list, c.id)).error!, /refused/);
  assert.equal((await list.forDevice('K')).length, 5);
  assert.deepEqual(await list.forDevice('other'), []);
});

test('TaskList: a read of an unreachable device is tried again at its next Inform', async () => {
  let reads = 0;
  const s = scripted(
    async () => {
      throw new Error('unused');
    },
    async () => {
      if (++reads === 1) throw Object.assign(new Error('device unreachable'), { code: 7002 });
      return [{ name: 'Device.DeviceInfo.UpTime', value: '5', type: 'xsd:unsignedInt' }];
    },
  );
  const list = new TaskList(s.ports);
  const t = list.start('K', 'get', parseTask({ type: 'get', names: ['Device.DeviceInfo.UpTime'] }).action);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal((await list.get(t.id))!.status, 'queued');
  s.inform('other-device');
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(reads, 1);
  s.inform('K');
  assert.equal((await settled(list, t.id)).status, 'done');
  assert.equal(reads, 2);
});

test('TaskList bounds: finished tasks dropped by age and count; a full list of unfinished ones refuses', async () => {
  let now = 1_000_000;
  const realNow = Date.now;
  Date.now = () => now;
  try {
    const pending: Array<() => void> = [];
    const { ports } = scripted(
      (rpc) =>
        new Promise((resolve) => {
          pending.push(() => resolve({ kind: 'response', response: { method: 'RebootResponse' } }));
          void rpc;
        }),
    );
    const list = new TaskList(ports, { maxTasks: 2, keepMs: 1000 });
    const reboot = parseTask({ type: 'reboot' }).action;
    const a = list.start('K', 'reboot', reboot);
    list.start('K', 'reboot', reboot);
    assert.throws(() => list.start('K', 'reboot', reboot), TaskListFull);
    pending.shift()!();
    await new Promise((r) => setTimeout(r, 5));
    // a finished: dropped to make room for a new one.
    const c = list.start('K', 'reboot', reboot);
    assert.equal(await list.get(a.id), null);
    assert.equal(list.size, 2);
    for (const f of pending.splice(0)) f();
    await new Promise((r) => setTimeout(r, 5));
    assert.equal((await list.get(c.id))!.status, 'done');
    now += 1001;
    assert.equal(await list.get(c.id), null);
    assert.equal(list.size, 0);
  } finally {
    Date.now = realNow;
  }
});

test('device import: CSV with quoting and JSON rows, checked', () => {
  const rows = importRows(parseCsv('serialNumber,oui,cpeUsername,cpePassword,tags\r\nS1,00d09e,u,"p,""q""",a;b\nS2,00D09E,,,\n'));
  assert.deepEqual(rows, [
    {
      deviceId: { manufacturer: '', oui: '00D09E', productClass: '', serialNumber: 'S1' },
      rootModel: 'Device',
      cpeUsername: 'u',
      cpePassword: 'p,"q"',
      tags: ['a', 'b'],
    },
    {
      deviceId: { manufacturer: '', oui: '00D09E', productClass: '', serialNumber: 'S2' },
      rootModel: 'Device',
      cpeUsername: null,
      cpePassword: null,
      tags: null,
    },
  ]);
  assert.equal(importRows({ devices: [{ oui: '00D09E', serialNumber: 'S', rootModel: 'InternetGatewayDevice' }] })[0]!.rootModel, 'InternetGatewayDevice');
  for (const csv of ['', 'oui,nope\n1,2\n', 'oui,serialNumber\n00D09E\n', 'oui,serialNumber\n00D09E,"x"y\n'])
    assert.throws(() => parseCsv(csv), ImportError, csv);
  for (const j of [
    {},
    [],
    [{ oui: '00D09E' }],
    [{ oui: 'zz', serialNumber: 'S' }],
    [{ oui: '00D09E', serialNumber: 'S', rootModel: 'X' }],
    [{ oui: '00D09E', serialNumber: '\u0001' }],
  ])
    assert.throws(() => importRows(j), ImportError, JSON.stringify(j));
});
