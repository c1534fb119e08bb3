/**
 * The parts of Bulk Data collection that respect CWMP, without sockets: when a device's next
 * periodic Inform is expected (learned from its Informs), the fleet-wide connection-request budget,
 * the PeriodicInform* alignment list, and the collector URL shown by the admin API.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PeriodicInforms } from '../../src/bulkdata/periodic-informs.js';
import { ConnectionRequestBudget } from '../../src/bulkdata/cr-budget.js';
import { alignmentParameters } from '../../src/bulkdata/align.js';
import { shownUrl } from '../../src/ops/bulkdata-api.js';
import { collectorUrlProblem } from '../../src/bulkdata/http-delivery.js';
import { RetainedReports } from '../../src/bulkdata/retained.js';
import { collectionRpcOptions, collectionScope } from '../../src/bulkdata/rpc-scope.js';
import { sharedScope } from '../../src/usp/request-scope.js';

const T0 = Date.parse('2026-12-05T12:00:00Z');

test('periodic Informs: the interval from two "2 PERIODIC" Informs, then the next one predicted', () => {
  const p = new PeriodicInforms();
  p.inform('a', { events: ['1 BOOT'], parameters: [], at: T0 });
  assert.equal(p.next('a', T0), null, 'a boot says nothing of the periodic timer');
  p.inform('a', { events: ['2 PERIODIC'], parameters: [], at: T0 + 10_000 });
  assert.equal(p.next('a', T0 + 10_001), null, 'one periodic Inform: interval unknown');
  p.inform('a', { events: ['2 PERIODIC'], parameters: [], at: T0 + 310_400 });
  assert.equal(p.intervalMs('a'), 300_000, 'the gap, in whole seconds');
  assert.equal(p.next('a', T0 + 310_401), T0 + 610_400);
  assert.equal(p.next('a', T0 + 1_000_000), T0 + 1_210_400, 'missed Informs skipped: the next on the grid');
  // A connection-request session in between changes nothing; a gap of two intervals keeps the interval.
  p.inform('a', { events: ['6 CONNECTION REQUEST'], parameters: [], at: T0 + 400_000 });
  p.inform('a', { events: ['2 PERIODIC'], parameters: [], at: T0 + 910_400 });
  assert.equal(p.intervalMs('a'), 300_000);
});

test('periodic Informs: the interval an Inform carries wins; alignment re-arms the timer', () => {
  const p = new PeriodicInforms();
  p.inform('b', { events: ['2 PERIODIC'], parameters: [{ name: 'Device.ManagementServer.PeriodicInformInterval', value: '60' }], at: T0 });
  assert.equal(p.next('b', T0 + 1), T0 + 60_000);
  p.aligned('b', 900, T0 + 5_000);
  assert.equal(p.next('b', T0 + 5_001), T0 + 905_000);
  p.forget('b');
  assert.equal(p.next('b', T0), null);
});

test('periodic Informs: memory bounded per device', () => {
  const p = new PeriodicInforms(2);
  for (const eid of ['x', 'y', 'z']) p.aligned(eid, 60, T0);
  assert.equal(p.intervalMs('x'), 0, 'the least recently used device is forgotten');
  assert.equal(p.intervalMs('z'), 60_000);
  // A device that informs again is the most recent one: the next device pushes out the other.
  p.inform('y', { events: ['2 PERIODIC'], parameters: [], at: T0 + 60_000 });
  p.aligned('w', 30, T0);
  assert.equal(p.intervalMs('y'), 60_000, 'informed again: kept');
  assert.equal(p.intervalMs('z'), 0, 'now the least recently informed: forgotten');
  assert.equal(p.intervalMs('w'), 30_000);
});

test('connection-request budget: turns spaced 1/rate apart; a turn past the deadline is refused at once', async () => {
  let now = T0;
  const b = new ConnectionRequestBudget(10, () => now);
  assert.equal(await b.take(T0), true, 'the first turn is now');
  assert.equal(await b.take(T0 + 50), false, 'the next turn (T0 + 100 ms) is after this deadline');
  now = T0 + 100;
  assert.equal(await b.take(T0 + 100), true, 'refusals took no turn');
  assert.equal(await b.take(T0 + 150), false);
});

test('alignment: PeriodicInformEnable, Interval, and Time only when a TimeReference is set', () => {
  assert.deepEqual(alignmentParameters('Device', 300, '0001-01-01T00:00:00Z'), [
    { name: 'Device.ManagementServer.PeriodicInformEnable', value: 'true' },
    { name: 'Device.ManagementServer.PeriodicInformInterval', value: '300' },
  ]);
  assert.deepEqual(alignmentParameters('InternetGatewayDevice', 60, '2026-01-01T00:00:30Z').at(-1), {
    name: 'InternetGatewayDevice.ManagementServer.PeriodicInformTime',
    value: '2026-01-01T00:00:30Z',
  });
});

test('collector URL in the admin API: no user information', () => {
  assert.equal(shownUrl('https://user:secret@collector.example:8443/bdc?x=1'), 'https://collector.example:8443/bdc?x=1');
  assert.equal(shownUrl(''), '');
  assert.equal(shownUrl('not a url'), '(not a URL)');
});

test("collection scope: the RPC options of a collection's scope, none for any other scope", () => {
  assert.equal(collectionRpcOptions(undefined), undefined);
  const scope = collectionScope({ wake: false, deadlineAt: T0 + 5000 });
  assert.deepEqual(collectionRpcOptions(scope, T0 + 1000), { wake: false, deadlineMs: 4000 });
  // Past the deadline: at least 1 ms (the engine fails the RPC as unreachable then).
  assert.deepEqual(collectionRpcOptions(scope, T0 + 9000), { wake: false, deadlineMs: 1 });
  assert.equal(collectionRpcOptions({ ends: [] }, T0), undefined);
  // Work shared with others (a learn) keeps the collection's way of sending RPCs.
  assert.deepEqual(collectionRpcOptions(sharedScope(scope), T0 + 1000), { wake: false, deadlineMs: 4000 });
});

test('collector URL at Set time: IP literals through the connection-request guard, host names left to delivery', () => {
  const refused = new Set(['169.254.169.254', 'fe80::1']);
  const check = (address: string, port: number) =>
    refused.has(address)
      ? ({ ok: false, detail: `address ${address} is link-local` } as const)
      : port === 7547
        ? ({ ok: false, detail: 'own port' } as const)
        : ({ ok: true, address } as const);
  assert.equal(collectorUrlProblem('', check), null, 'unset');
  assert.equal(collectorUrlProblem('https://collector.example/bdc', check), null);
  assert.equal(collectorUrlProblem('http://127.0.0.1:8080/bdc', check), null);
  assert.match(collectorUrlProblem('http://169.254.169.254/latest', check)!, /link-local/);
  assert.match(collectorUrlProblem('http://[fe80::1]:8080/', check)!, /link-local/);
  assert.match(collectorUrlProblem('http://10.0.0.1:7547/', check)!, /own port/);
  assert.match(collectorUrlProblem('ftp://collector.example/', check)!, /not http or https/);
  assert.match(collectorUrlProblem('not a url', check)!, /not a URL/);
});

test('retained reports: stored per agent, newest kept within the byte bound, bad documents dropped', async () => {
  const docs = new Map<string, string>();
  const warnings: string[] = [];
  const port = {
    load: async (eid: string) => docs.get(eid) ?? null,
    save: async (eid: string, json: string | null) => void (json === null ? docs.delete(eid) : docs.set(eid, json)),
  };
  const report = (t: number) => ({ collectedAt: t, values: [{ name: 'Device.DeviceInfo.UpTime', value: 'x'.repeat(100), type: 'unsignedInt' as const }] });
  // Room for three reports (each counted as its JSON and its instance key).
  const bound = 2 + 3 * (JSON.stringify(report(1)).length + 9) + 5;
  const r = new RetainedReports(port, { warn: (_o, m) => warnings.push(m) }, bound);
  r.set('a', 1, [report(1), report(2), report(3), report(4), report(5)]);
  r.set('a', 2, [report(6)]);
  await r.flushed();
  const stored = JSON.parse(docs.get('a')!) as Record<string, { collectedAt: number }[]>;
  assert.ok(docs.get('a')!.length <= bound, 'bounded in bytes');
  assert.deepEqual(
    Object.values(stored)
      .flatMap((l) => l.map((x) => x.collectedAt))
      .sort(),
    [4, 5, 6],
    'the newest of each profile first, the oldest dropped',
  );
  assert.deepEqual(
    stored['1']!.map((x) => x.collectedAt),
    [4, 5],
    'oldest first within a profile',
  );
  const again = new RetainedReports(port);
  await again.load(['a', 'b']);
  assert.deepEqual(
    again.get('a', 1).map((x) => x.collectedAt),
    [4, 5],
  );
  r.delete('a', 1);
  r.delete('a', 2);
  await r.flushed();
  assert.equal(docs.has('a'), false, 'nothing retained: the document is deleted');
  docs.set('c', '{"1":[{"collectedAt":"no"}],"x":[]}');
  docs.set('d', 'not json');
  const bad = new RetainedReports(port, { warn: (_o, m) => warnings.push(m) });
  await bad.load(['c', 'd']);
  assert.deepEqual(bad.get('c', 1), []);
  assert.ok(warnings.some((w) => /not JSON/.test(w)));
});
