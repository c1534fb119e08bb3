import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, loadConfig } from '../../src/app/config.js';

const load = (overrides: Record<string, unknown>) => loadConfig({ env: {}, overrides });

test('CPE authentication keys: defaults keep existing setups working', () => {
  const c = load({});
  assert.equal(c.acs.auth.perDevice, false);
  assert.equal(c.acs.auth.nonceMaxAgeMs, 300_000);
  assert.equal(c.acs.preAuthMaxBodyBytes, 64 * 1024);
  assert.deepEqual(c.acs.trustedProxies, []);
  assert.equal(c.acs.identityPolicy, 'log');
  assert.equal(c.acs.tls.clientCert, 'off');
});

test('perDevice needs an authenticating mode and the bootstrap login; trustedProxies must be CIDR blocks', () => {
  assert.throws(
    () => load({ 'acs.auth.perDevice': true }),
    (e: Error) => e instanceof ConfigError && /acs\.auth\.perDevice/.test(e.message),
  );
  assert.throws(() => load({ 'acs.auth.perDevice': true, 'acs.auth.mode': 'digest' }), ConfigError);
  const ok = load({ 'acs.auth.perDevice': true, 'acs.auth.mode': 'digest', 'acs.auth.username': 'boot', 'acs.auth.password': 'x' });
  assert.equal(ok.acs.auth.perDevice, true);
  assert.deepEqual(load({ 'acs.trustedProxies': '10.0.0.0/8, ::1' }).acs.trustedProxies, ['10.0.0.0/8', '::1']);
  assert.throws(
    () => load({ 'acs.trustedProxies': ['10.0.0.0/33'] }),
    (e: Error) => e instanceof ConfigError && /acs\.trustedProxies/.test(e.message),
  );
  assert.throws(() => load({ 'acs.identityPolicy': 'ignore' }), ConfigError);
});
