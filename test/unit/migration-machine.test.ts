/**
 * The migration state machine (src/migration/machine.ts), the plan of what is written
 * (plan.ts) and the rollout decisions (rollout.ts): pure functions.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { advance, begin, interrupt, outputArgs, STEPS } from '../../src/migration/machine.js';
import { clientIdOf, ENABLE_PARAMS, namesToSave, restrictTo, settingsFor, type MigrationTarget } from '../../src/migration/plan.js';
import { overFailureLimit, selects } from '../../src/migration/rollout.js';
import type { DeviceRecord } from '../../src/store/types.js';

const t0 = new Date('2026-12-05T12:00:00.000Z');
const at = (ms: number): Date => new Date(t0.getTime() + ms);
const ok = { ok: true as const };

test('every step succeeding ends migrated, with each step timed', () => {
  let s = begin('os::F0AD4E-A1', t0);
  let clock = 0;
  for (const name of STEPS) {
    assert.equal(s.step, name);
    s = advance(s, ok, at(clock), at(clock + 10));
    clock += 10;
  }
  assert.equal(s.phase, 'migrated');
  assert.equal(s.step, null);
  assert.equal(s.finishedAt, at(60).toISOString());
  assert.deepEqual(
    s.steps.map((r) => [r.name, r.durationMs]),
    STEPS.map((n) => [n, 10]),
  );
  const out = outputArgs(s);
  assert.equal(out.Status, 'Migrated');
  assert.equal(out.NativeEndpointID, 'os::F0AD4E-A1');
  assert.equal(out.DurationMs, '60');
  assert.equal(out.Steps, STEPS.map((n) => `${n}:ok:10ms`).join(','));
  assert.throws(() => advance(s, ok, at(60), at(70)), /finished/);
});

test('a failure after the settings were touched rolls back, then fails with the first reason', () => {
  let s = begin('e', t0);
  s = advance(s, ok, t0, t0); // read-settings
  s = advance(s, ok, t0, t0); // configure
  s = advance(s, ok, t0, t0); // enable
  s = advance(s, { ok: false, reason: 'no answer' }, t0, at(5));
  assert.equal(s.phase, 'running');
  assert.equal(s.step, 'rollback');
  assert.equal(s.reason, 'await-agent: no answer');
  const rolled = advance(s, ok, at(5), at(6));
  assert.equal(rolled.phase, 'failed');
  assert.equal(rolled.rolledBack, true);
  assert.equal(rolled.reason, 'await-agent: no answer');
  assert.equal(outputArgs(rolled).Status, 'Failed');
  assert.equal(outputArgs(rolled).RolledBack, 'true');
  const notRolled = advance(s, { ok: false, reason: 'fault 9002' }, at(5), at(6));
  assert.equal(notRolled.rolledBack, false);
  assert.equal(notRolled.reason, 'await-agent: no answer; rollback failed: fault 9002');
});

test('read-settings failing ends at once: nothing was written, nothing to roll back', () => {
  const s = advance(begin('', t0), { ok: false, reason: 'no LocalAgent' }, t0, t0);
  assert.equal(s.phase, 'failed');
  assert.equal(s.rolledBack, false);
  assert.deepEqual(
    s.steps.map((r) => r.name),
    ['read-settings'],
  );
});

test('an interruption (device reboot) fails the step in progress; the rollback itself is never interrupted', () => {
  let s = begin('e', t0);
  s = advance(s, ok, t0, t0);
  s = interrupt(s, 'the device rebooted during the migration', t0, t0);
  assert.equal(s.step, 'rollback');
  assert.equal(s.reason, 'configure: the device rebooted during the migration');
  assert.equal(interrupt(s, 'again', t0, t0), s);
});

const target: MigrationTarget = {
  brokerHost: 'broker.example',
  brokerPort: 8883,
  brokerTls: true,
  brokerUsername: 'u',
  brokerPassword: 'p',
  agentTopicPrefix: '/usp/agent/',
  controllerEndpointId: 'proto::ctl',
  controllerTopic: '/usp/ctl',
};

test('the plan: TR-181 settings for the broker and the controller; secured parameters are written but never saved', () => {
  const s = settingsFor(target, 'os::1C61B4-22264');
  assert.equal(s['Device.MQTT.Client.1.TransportProtocol'], 'TLS');
  assert.equal(s['Device.MQTT.Client.1.BrokerPort'], '8883');
  assert.equal(s['Device.MQTT.Client.1.ClientID'], 'os--1C61B4-22264');
  assert.equal(s['Device.MQTT.Client.1.Password'], 'p');
  assert.equal(s['Device.LocalAgent.MTP.1.MQTT.ResponseTopicConfigured'], '/usp/agent/os::1C61B4-22264');
  assert.equal(s['Device.LocalAgent.Controller.1.EndpointID'], 'proto::ctl');
  const saved = namesToSave(target, 'os::1C61B4-22264');
  assert.ok(!saved.includes('Device.MQTT.Client.1.Password'));
  for (const n of ENABLE_PARAMS) assert.ok(saved.includes(n), n);
  assert.equal(clientIdOf('x'.repeat(100)).length, 64);
  const missing = restrictTo(s, new Set(['Device.MQTT.Client.1.BrokerAddress']));
  assert.ok('missing' in missing && missing.missing.includes('Device.LocalAgent.Controller.1.EndpointID'));
  const listed = new Set([...saved, 'Device.MQTT.Client.1.Password'].filter((n) => !n.endsWith('.Username')));
  const r = restrictTo(s, listed);
  assert.ok('values' in r && !('Device.MQTT.Client.1.Username' in r.values), 'names the device does not list are not written');
});

const dev = (productClass: string, softwareVersion: string, oui = 'F0AD4E'): DeviceRecord =>
  ({ deviceKey: productClass + softwareVersion, deviceId: { oui, productClass, serialNumber: 'S', manufacturer: 'M' }, softwareVersion }) as DeviceRecord;

test('rollout selection by model, firmware, OUI and tag; the stop condition', () => {
  assert.equal(selects({}, dev('A', '1'), []), true);
  assert.equal(selects({ productClass: 'A' }, dev('B', '1'), []), false);
  assert.equal(selects({ productClass: 'A', softwareVersion: '1' }, dev('A', '1'), []), true);
  assert.equal(selects({ softwareVersion: '2' }, dev('A', '1'), []), false);
  assert.equal(selects({ oui: 'f0ad4e' }, dev('A', '1'), []), true);
  assert.equal(selects({ tag: 'wave-1' }, dev('A', '1'), ['x']), false);
  assert.equal(selects({ tag: 'wave-1' }, dev('A', '1'), ['wave-1']), true);
  assert.equal(overFailureLimit(0, 0, 0), false);
  assert.equal(overFailureLimit(1, 10, 10), false);
  assert.equal(overFailureLimit(2, 10, 10), true);
  assert.equal(overFailureLimit(1, 25, 0), true);
});

test('the decisions stay pure: detect, plan, machine and rollout import no I/O module', async () => {
  const { readFileSync } = await import('node:fs');
  const { ROOT } = await import('../helpers/paths.js');
  for (const f of ['detect.ts', 'plan.ts', 'machine.ts']) {
    const text = readFileSync(`${ROOT}/src/migration/${f}`, 'utf8');
    const imports = [...text.matchAll(/from '([^']+)'/g)].map((m) => m[1]!);
    for (const i of imports)
      assert.ok(
        !/^node:(fs|net|http|https|dgram)$|\/store\/(sqlite|redis)|\/app\/log|mqtt$/.test(i) && (i.startsWith('.') || i.startsWith('node:events')),
        `${f} imports ${i}`,
      );
  }
});
