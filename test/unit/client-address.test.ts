import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clientAddress } from '../../src/cwmp/client-address.js';
import { CidrList } from '../../src/util/cidr.js';

test('not behind a trusted proxy: the TCP peer, X-Forwarded-For ignored (a client can write anything there)', () => {
  const trusted = new CidrList(['10.0.0.0/8']);
  assert.deepEqual(clientAddress('192.0.2.9', '198.51.100.1', trusted), { address: '192.0.2.9', proxied: false });
  assert.deepEqual(clientAddress('192.0.2.9', undefined, new CidrList([])), { address: '192.0.2.9', proxied: false });
});

test('behind trusted proxies: the right-most X-Forwarded-For entry that is not a trusted proxy', () => {
  const trusted = new CidrList(['10.0.0.0/8', '::1']);
  assert.deepEqual(clientAddress('10.0.0.5', '203.0.113.7, 198.51.100.3, 10.1.1.1', trusted), { address: '198.51.100.3', proxied: true });
  assert.deepEqual(clientAddress('::ffff:10.0.0.5', ['203.0.113.7', '198.51.100.4'], trusted), { address: '198.51.100.4', proxied: true });
  // Only proxies in the chain, or no header: still proxied (the connection says nothing of the CPE).
  assert.deepEqual(clientAddress('::1', '10.2.2.2', trusted), { address: '10.2.2.2', proxied: true });
  assert.deepEqual(clientAddress('10.0.0.5', undefined, trusted), { address: '10.0.0.5', proxied: true });
});
