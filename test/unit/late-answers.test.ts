/** LateAnswers: answers owed to controllers that went away, bounded by count per peer, total count, bytes and age. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LateAnswers } from '../../src/usp/agent/late-answers.js';

const answer = (agentEid: string, controllerEid: string, msgId: string, size = 10) => ({
  agentEid,
  controllerEid,
  msgId,
  msgType: 'SET_RESP',
  bytes: new Uint8Array(size),
});

test('kept per agent and controller, oldest first, given once', () => {
  const l = new LateAnswers();
  l.keep(answer('a1', 'c1', 'm1'));
  l.keep(answer('a1', 'c1', 'm2'));
  l.keep(answer('a2', 'c1', 'm3'));
  l.keep(answer('a1', 'c2', 'm4'));
  assert.deepEqual(l.agentsOwing('c1').sort(), ['a1', 'a2']);
  assert.deepEqual(
    l.take('a1', 'c1').map((a) => a.msgId),
    ['m1', 'm2'],
  );
  assert.deepEqual(l.take('a1', 'c1'), []);
  assert.equal(l.size, 2);
});

test('bounded: per peer, in total, in bytes (oldest dropped) and by age; one answer bigger than the byte bound is not kept', () => {
  let now = 0;
  const l = new LateAnswers({ maxPerPeer: 2, maxTotal: 3, maxBytes: 100, maxAgeMs: 1000 }, () => now);
  for (const id of ['m1', 'm2', 'm3']) l.keep(answer('a', 'c', id));
  assert.deepEqual(
    l.take('a', 'c').map((a) => a.msgId),
    ['m2', 'm3'],
  );
  for (const id of ['x1', 'x2']) l.keep(answer('a', 'c', id));
  l.keep(answer('b', 'c', 'y1'));
  l.keep(answer('b', 'd', 'z1'));
  assert.equal(l.size, 3, 'total bound: the oldest (x1) went');
  assert.deepEqual(
    l.take('a', 'c').map((a) => a.msgId),
    ['x2'],
  );
  l.keep(answer('e', 'c', 'big', 90));
  assert.ok(l.size <= 3);
  assert.deepEqual(
    l.take('b', 'c').map((a) => a.msgId),
    [],
    'byte bound: older ones made room',
  );
  assert.equal(l.keep(answer('e', 'c', 'huge', 101)), false);
  now = 5000;
  assert.deepEqual(l.take('e', 'c'), [], 'expired');
  l.keep(answer('f', 'c', 'old'));
  now = 7000;
  l.sweep();
  assert.equal(l.size, 0);
});
