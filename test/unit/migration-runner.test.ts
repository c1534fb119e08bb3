/**
 * The migration runner (src/migration/runner.ts) over a simulated dual-stack CPE without sockets:
 * CWMP reads and writes are the device's own GetParameterValues/SetParameterValues answers, and
 * the native agent's Get is answered by the simulator's native-agent code when the settings the
 * migration wrote would start it (readNativeSettings) and name the right broker. The MQTT path
 * itself is covered by test/integration/migration-*.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { GetParameterValuesResponse } from '../../src/cwmp/types.js';
import { type MigrationPorts, runMigration } from '../../src/migration/runner.js';
import type { MigrationTarget } from '../../src/migration/plan.js';
import { SimDevice } from '../../src/tools/sim/device.js';
import { loadModel } from '../../src/tools/sim/model.js';
import { answerGet, readNativeSettings } from '../../src/tools/sim/native-agent.js';
import { parseQuirks } from '../../src/tools/sim/quirks.js';

const target: MigrationTarget = {
  brokerHost: 'broker.test',
  brokerPort: 1883,
  brokerTls: false,
  brokerUsername: '',
  brokerPassword: '',
  agentTopicPrefix: '/usp/agent/',
  controllerEndpointId: 'proto::ctl',
  controllerTopic: '/usp/ctl',
};
const opts = {
  target,
  verifyPaths: ['Device.DeviceInfo.SerialNumber', 'Device.DeviceInfo.SoftwareVersion'],
  appearTimeoutMs: 300,
  pollIntervalMs: 20,
  requestTimeoutMs: 50,
};

function device(quirks = 'dual-stack'): SimDevice {
  return new SimDevice({ template: loadModel('tr181'), serial: 'RUN1', acsUrl: 'http://127.0.0.1:9/', quirks: parseQuirks(quirks) });
}

/** Ports over the device; `reachable`: the broker the device is told to use (its agent answers only there). */
function portsOf(d: SimDevice, reachable = 'broker.test', disagree = new Set<string>()): MigrationPorts & { handedOver: string[]; writes: number } {
  const handedOver: string[] = [];
  const ports = {
    handedOver,
    writes: 0,
    async readCwmp(names: readonly string[]) {
      const listed = names.filter((n) => d.model.has(n));
      const a = d.handleRpc({ method: 'GetParameterValues', parameterNames: listed }) as GetParameterValuesResponse;
      return Object.fromEntries(a.parameterList.map((p) => [p.name, p.value]));
    },
    async writeCwmp(values: Record<string, string>) {
      ports.writes++;
      const a = d.handleRpc({
        method: 'SetParameterValues',
        parameterList: Object.entries(values).map(([name, value]) => ({ name, value, type: 'xsd:string' })),
        parameterKey: '',
      });
      if (a.method === 'Fault') throw new Error(`fault ${a.faultCode}`);
    },
    async nativeGet(eid: string, paths: readonly string[]) {
      const s = readNativeSettings((p) => d.getValue(p));
      if ('off' in s || !s.url.includes(reachable) || s.endpointId !== eid) throw new Error('no answer');
      const out: Record<string, string> = {};
      for (const rp of answerGet(d, paths, disagree))
        for (const rr of rp.resolvedPathResults) for (const [k, v] of Object.entries(rr.resultParams)) out[rr.resolvedPath + k] = v;
      return out;
    },
    async handover(eid: string) {
      handedOver.push(eid);
    },
    sleep: (ms: number) => new Promise<void>((r) => setTimeout(r, ms)),
    now: () => new Date(),
  };
  return ports;
}

test('a dual-stack device: configured, enabled, its agent answers, values match, handed over', async () => {
  const d = device();
  const p = portsOf(d);
  const seen: string[] = [];
  const s = await runMigration(p, opts, new AbortController().signal, (x) => seen.push(x.step ?? x.phase));
  assert.equal(s.phase, 'migrated', s.reason ?? '');
  assert.equal(s.nativeEndpointId, `os::${d.deviceId.oui}-RUN1`);
  assert.deepEqual(seen, ['read-settings', 'configure', 'enable', 'await-agent', 'verify', 'handover', 'migrated']);
  assert.deepEqual(p.handedOver, [s.nativeEndpointId]);
  assert.equal(d.getValue('Device.MQTT.Client.1.BrokerAddress'), 'broker.test');
  assert.equal(d.getValue('Device.LocalAgent.Controller.1.EndpointID'), 'proto::ctl');
  assert.equal(d.getValue('Device.LocalAgent.MTP.1.MQTT.ResponseTopicConfigured'), `/usp/agent/${s.nativeEndpointId}`);
  for (const n of ['Device.MQTT.Client.1.Enable', 'Device.LocalAgent.MTP.1.Enable', 'Device.LocalAgent.Controller.1.Enable'])
    assert.equal(d.getValue(n), 'true', n);
});

test('values that disagree: rolled back to the saved settings, failed with the differing values', async () => {
  const d = device();
  d.setValue('Device.MQTT.Client.1.BrokerAddress', 'old.broker');
  const p = portsOf(d, 'broker.test', new Set(['Device.DeviceInfo.SoftwareVersion']));
  const s = await runMigration(p, opts, new AbortController().signal);
  assert.equal(s.phase, 'failed');
  assert.equal(s.rolledBack, true);
  assert.match(s.reason ?? '', /^verify: values differ: Device\.DeviceInfo\.SoftwareVersion usp="1\.0\.0\+native" cwmp="1\.0\.0"$/);
  assert.equal(d.getValue('Device.MQTT.Client.1.BrokerAddress'), 'old.broker');
  assert.equal(d.getValue('Device.MQTT.Client.1.Enable'), 'false');
  assert.equal(d.getValue('Device.LocalAgent.Controller.1.EndpointID'), '');
  assert.deepEqual(p.handedOver, []);
});

test('an agent that never answers: timeout, rollback', async () => {
  const d = device();
  const s = await runMigration(portsOf(d, 'elsewhere'), opts, new AbortController().signal);
  assert.equal(s.phase, 'failed');
  assert.equal(s.rolledBack, true);
  assert.match(s.reason ?? '', /^await-agent: the native agent \S+ did not answer within 300 ms \(no answer\)$/);
  assert.equal(d.getValue('Device.MQTT.Client.1.Enable'), 'false');
});

test('the device reboots while the proxy waits for its agent: the wait ends at once, rollback', async () => {
  const d = device();
  const abort = new AbortController();
  const s = await runMigration(portsOf(d, 'elsewhere'), { ...opts, appearTimeoutMs: 60_000 }, abort.signal, (x) => {
    if (x.step === 'await-agent') abort.abort('the device rebooted during the migration');
  });
  assert.equal(s.phase, 'failed');
  assert.equal(s.reason, 'await-agent: the device rebooted during the migration');
  assert.equal(s.rolledBack, true);
  assert.equal(d.getValue('Device.LocalAgent.MTP.1.Enable'), 'false');
});

test('a device without its own USP Agent: failed at read-settings, nothing written', async () => {
  const d = device('none');
  const p = portsOf(d);
  const s = await runMigration(p, opts, new AbortController().signal);
  assert.equal(s.phase, 'failed');
  assert.equal(s.rolledBack, false);
  assert.match(s.reason ?? '', /^read-settings: the device has no Device\.LocalAgent\.EndpointID/);
  assert.equal(p.writes, 0);
});
