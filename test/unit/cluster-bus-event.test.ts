/**
 * Device events relayed between instances over the cluster bus (Redis pub/sub JSON): what another
 * instance published is rebuilt field by field (remoteDeviceEventOf) and any other shape is dropped,
 * because what comes out of Redis is a network input like any other.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { decodeSoap } from '../../src/cwmp/soap.js';
import { remoteDeviceEventOf, type RemoteDeviceEvent } from '../../src/cluster/session-engine.js';

const fixture = (name: string): string => readFileSync(new URL(`../../../test/fixtures/soap/cpe/${name}.xml`, import.meta.url), 'utf8');
/** What the bus handler receives: the publisher's JSON.stringify, parsed. */
const overTheBus = (m: object): Record<string, unknown> => JSON.parse(JSON.stringify(m)) as Record<string, unknown>;

test('TransferComplete and AutonomousTransferComplete decoded from real envelopes come back equal', () => {
  for (const name of ['TransferComplete.1-1', 'AutonomousTransferComplete.1-2']) {
    const body = decodeSoap(fixture(name)).envelope!.body;
    assert.ok(body.method === 'TransferComplete' || body.method === 'AutonomousTransferComplete', name);
    const sent: RemoteDeviceEvent = { from: 'a', deviceKey: '00D09E-Box-1', transferComplete: body };
    assert.deepEqual(remoteDeviceEventOf(overTheBus(sent)), sent, name);
  }
});

test('an Inform relays its events only; extra fields are not carried', () => {
  const sent = {
    from: 'a',
    deviceKey: 'k',
    inform: {
      event: [
        { eventCode: '1 BOOT', commandKey: '' },
        { eventCode: 'M Reboot', commandKey: 'ck' },
      ],
      parameterList: [],
    },
  };
  assert.deepEqual(remoteDeviceEventOf(overTheBus(sent)), sent);
  const extra = overTheBus({ ...sent, inform: { ...sent.inform, parameterList: [{ name: 'x', value: 'secret' }], evil: 1 } });
  assert.deepEqual(remoteDeviceEventOf(extra), sent);
});

test('malformed device events are null', () => {
  const tc = overTheBus(
    (() => {
      const body = decodeSoap(fixture('TransferComplete.1-1')).envelope!.body;
      return { from: 'a', deviceKey: 'k', transferComplete: body };
    })(),
  );
  const bad: Record<string, unknown>[] = [
    {},
    { from: 'a' },
    { from: 1, deviceKey: 'k', inform: { event: [] } },
    { from: 'a', deviceKey: 'k' },
    { from: 'a', deviceKey: 'k', inform: null },
    { from: 'a', deviceKey: 'k', inform: { event: 'BOOT' } },
    { from: 'a', deviceKey: 'k', inform: { event: [{ eventCode: 1, commandKey: '' }] } },
    { from: 'a', deviceKey: 'k', inform: { event: [{ eventCode: '1 BOOT' }] } },
    { from: 'a', deviceKey: 'k', inform: { event: Array.from({ length: 65 }, () => ({ eventCode: '4 VALUE CHANGE', commandKey: '' })) } },
    { ...tc, transferComplete: { ...(tc.transferComplete as object), fault: 'none' } },
    { ...tc, transferComplete: { ...(tc.transferComplete as object), fault: { faultCode: '0', faultString: '' } } },
    { ...tc, transferComplete: { ...(tc.transferComplete as object), commandKey: 7 } },
    { ...tc, transferComplete: { ...(tc.transferComplete as object), method: 'Reboot' } },
    { ...tc, transferComplete: { ...(tc.transferComplete as object), method: 'AutonomousTransferComplete' } },
    { ...tc, transferComplete: [] },
  ];
  for (const m of bad) assert.equal(remoteDeviceEventOf(m), null, JSON.stringify(m).slice(0, 120));
});
