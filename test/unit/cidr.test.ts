import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CidrList, cidrContains, parseCidr } from '../../src/util/cidr.js';

test('IPv4 blocks: inside, outside, edges, bare address', () => {
  const c = parseCidr('10.1.0.0/16');
  assert.equal(cidrContains(c, '10.1.0.0'), true);
  assert.equal(cidrContains(c, '10.1.255.255'), true);
  assert.equal(cidrContains(c, '10.2.0.0'), false);
  assert.equal(cidrContains(parseCidr('192.168.1.7'), '192.168.1.7'), true);
  assert.equal(cidrContains(parseCidr('192.168.1.7'), '192.168.1.8'), false);
  assert.equal(cidrContains(parseCidr('0.0.0.0/0'), '203.0.113.9'), true);
  // host bits in the written block are ignored (the network is what counts)
  assert.equal(cidrContains(parseCidr('10.1.2.3/8'), '10.200.0.1'), true);
});

test('IPv6 blocks, compressed forms, and zone indexes', () => {
  const c = parseCidr('2001:db8::/32');
  assert.equal(cidrContains(c, '2001:db8:0:1::5'), true);
  assert.equal(cidrContains(c, '2001:0db8:ffff:ffff:ffff:ffff:ffff:ffff'), true);
  assert.equal(cidrContains(c, '2001:db9::1'), false);
  assert.equal(cidrContains(parseCidr('::1'), '0:0:0:0:0:0:0:1'), true);
  assert.equal(cidrContains(parseCidr('fe80::/10'), 'fe80::1%eth0'), true);
  assert.equal(cidrContains(parseCidr('::/0'), '10.0.0.1'), false, 'an IPv6 block does not hold IPv4 addresses');
});

test('IPv4-mapped IPv6 addresses match IPv4 blocks, and mapped blocks are IPv4 blocks', () => {
  assert.equal(cidrContains(parseCidr('127.0.0.0/8'), '::ffff:127.0.0.1'), true);
  assert.equal(cidrContains(parseCidr('127.0.0.0/8'), '::ffff:7f00:1'), true);
  assert.equal(cidrContains(parseCidr('::ffff:10.0.0.0/104'), '10.9.9.9'), true);
  assert.equal(cidrContains(parseCidr('::ffff:10.0.0.0/104'), '11.0.0.1'), false);
  assert.equal(cidrContains(parseCidr('64:ff9b::/96'), '64:ff9b::192.0.2.1'), true);
});

test('bad blocks throw a RangeError naming the input; bad addresses never match', () => {
  for (const bad of ['10.0.0.0/33', '10.0.0/8', 'host.example', '::1/129', '1.2.3.4/x', '']) {
    assert.throws(
      () => parseCidr(bad),
      (e: Error) => e instanceof RangeError && e.message.includes(`"${bad}"`),
      bad,
    );
  }
  assert.equal(cidrContains(parseCidr('10.0.0.0/8'), 'not an ip'), false);
  assert.equal(cidrContains(parseCidr('10.0.0.0/8'), ''), false);
});

test('CidrList: any block, empty list holds nothing', () => {
  const l = new CidrList(['10.0.0.0/8', '::1', ' 192.168.0.0/24 ']);
  assert.equal(l.has('10.3.4.5'), true);
  assert.equal(l.has('::1'), true);
  assert.equal(l.has('::ffff:192.168.0.99'), true);
  assert.equal(l.has('172.16.0.1'), false);
  assert.equal(l.has(undefined), false);
  assert.equal(new CidrList([]).has('10.0.0.1'), false);
});
