import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig, ConfigError, envName, describeConfig } from '../../src/app/config.js';
import { BUILTIN_ROLES } from '../../src/usp/trust/roles.js';
import { ROOT } from '../helpers/paths.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'cup-config-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));
const file = (name: string, text: string): string => {
  const p = path.join(tmp, name);
  writeFileSync(p, text);
  return p;
};

test('defaults: ACS on 7547, data in ./data', () => {
  const c = loadConfig({ env: {} });
  assert.equal(c.acs.port, 7547);
  assert.equal(c.dataDir, './data');
  assert.equal(c.store.path, path.join('data', 'proxy.db'));
  assert.equal(c.acs.sessionTimeoutMs, 30_000);
  assert.equal(c.acs.auth.mode, 'none');
});

test('YAML and JSON files; env overrides file; CLI overrides env', () => {
  const y = file(
    'a.yaml',
    'acs:\n  port: 17547\n  auth: { mode: digest, username: cpe, password: s3cret }\n  connectionRequest: { timeoutMs: 900 }\nlog: { level: debug }\n',
  );
  const c = loadConfig({ file: y, env: { CUP_ACS__CONNECTION_REQUEST__TIMEOUT_MS: '1200' } });
  assert.equal(c.acs.port, 17547);
  assert.equal(c.acs.auth.mode, 'digest');
  assert.equal(c.acs.connectionRequest.timeoutMs, 1200);
  assert.equal(c.log.level, 'debug');
  const j = file('b.json', JSON.stringify({ acs: { port: 1 } }));
  const c2 = loadConfig({ file: j, env: { CUP_ACS__PORT: '2' }, overrides: { 'acs.port': 3 } });
  assert.equal(c2.acs.port, 3);
  assert.equal(envName('acs.connectionRequest.deadlineMs'), 'CUP_ACS__CONNECTION_REQUEST__DEADLINE_MS');
  assert.ok(describeConfig().some((d) => d.key === 'acs.auth.password' && d.def === ''));
});

test('bad keys and values are named in the error', () => {
  const bad = (text: string, re: RegExp, name = 'bad.yaml'): void => {
    assert.throws(
      () => loadConfig({ file: file(name, text), env: {} }),
      (e: unknown) => e instanceof ConfigError && re.test(e.message),
    );
  };
  bad('acs:\n  prot: 1\n', /unknown key "acs\.prot"/);
  bad('acs:\n  port: seventy\n', /acs\.port must be an integer/);
  bad('acs:\n  port: 70000\n', /acs\.port must be between 0 and 65535/);
  bad('acs:\n  auth: { mode: kerberos }\n', /acs\.auth\.mode must be one of none, basic, digest/);
  bad('acs: [1, 2]\n', /acs must be a mapping/);
  bad('acs: {port: 1\n', /not valid YAML/);
  bad('{"acs": ', /not valid JSON/, 'bad.json');
  assert.throws(() => loadConfig({ env: { CUP_ACS__HOLD_REQUESTS: 'maybe' } }), /environment CUP_ACS__HOLD_REQUESTS: acs\.holdRequests must be true or false/);
  assert.throws(() => loadConfig({ file: path.join(tmp, 'missing.yaml') }), /cannot read config file/);
  assert.throws(() => loadConfig({ env: {}, overrides: { 'acs.nope': 1 } }), /command line: unknown key "acs\.nope"/);
  // TR-106 3.3 vendor token of the extension object Device.X_<token>_Native.
  assert.equal(loadConfig({ env: {} }).interworking.extensionVendor, 'CWMP-USP-PROXY');
  assert.equal(loadConfig({ env: {}, overrides: { 'interworking.extensionVendor': '00D09E' } }).interworking.extensionVendor, '00D09E');
  assert.throws(
    () => loadConfig({ env: {}, overrides: { 'interworking.extensionVendor': 'my.vendor' } }),
    /interworking\.extensionVendor: "my\.vendor" is not a TR-106 vendor token/,
  );
});

test('a secret never appears in an error message', () => {
  assert.throws(
    () => loadConfig({ env: {}, file: file('s.yaml', 'acs:\n  auth: { password: [1] }\n') }),
    (e: unknown) => e instanceof ConfigError && /acs\.auth\.password must be a string/.test(e.message),
  );
});

test('Controller Trust: the Roles of docs/controller-trust.md load as written; bad Roles are named', () => {
  const doc = readFileSync(path.join(ROOT, 'docs', 'controller-trust.md'), 'utf8');
  const yaml = /## Roles[\s\S]*?```yaml\n([\s\S]*?)```/.exec(doc)?.[1];
  assert.ok(yaml, 'a YAML block under "## Roles"');
  const c = loadConfig({ file: file('trust.yaml', yaml), env: {} });
  assert.deepEqual(
    c.controllerTrust.roles.map((r) => r.name),
    ['full', 'read-only', 'end-user-wifi'],
  );
  const wifi = c.controllerTrust.roles[2]!;
  assert.deepEqual(wifi.permissions[1]!.targets, ['Device.WiFi.SSID.*.SSID', 'Device.WiFi.AccessPoint.*.Security.KeyPassphrase']);
  assert.equal(wifi.permissions[1]!.obj, '----', 'a flag string left out grants nothing');
  assert.deepEqual(
    c.controllers.map((x) => x.role),
    ['full', 'read-only', 'end-user-wifi'],
  );
  assert.equal(c.usp.maxGetParams, 20_000);
  // The built-in Roles as written in the document are the built-in ones.
  assert.deepEqual(
    c.controllerTrust.roles.slice(0, 2),
    BUILTIN_ROLES.map((r) => ({ name: r.name, permissions: r.permissions })),
  );

  // Targets from the environment: one comma-separated string, commas inside [...] kept.
  const env = loadConfig({
    env: {
      CUP_CONTROLLER_TRUST__ROLES: JSON.stringify([{ name: 'x', permissions: [{ order: 1, targets: 'Device.A.[B==1&&C==2].,Device.D.', param: 'r---' }] }]),
    },
  });
  assert.deepEqual(env.controllerTrust.roles[0]!.permissions[0]!.targets, ['Device.A.[B==1&&C==2].', 'Device.D.']);

  assert.throws(
    () => loadConfig({ env: {}, overrides: { controllers: [{ endpointId: 'proto::a', role: 'admin' }] } }),
    (e: unknown) => e instanceof ConfigError && /controllers\[0\]\.role "admin" is not a role \(known: full, read-only\)/.test(e.message),
  );
  assert.throws(
    () => loadConfig({ env: {}, overrides: { 'controllerTrust.roles': [{ name: 'x', permissions: [{ order: 1, targets: ['Device.'], param: 'read' }] }] } }),
    (e: unknown) => e instanceof ConfigError && /controllerTrust\.roles\[0\]\.permissions\[0\]\.param must be 4 characters/.test(e.message),
  );
  assert.throws(
    () =>
      loadConfig({
        env: {},
        overrides: {
          'controllerTrust.roles': [
            {
              name: 'x',
              permissions: [
                { order: 1, targets: 'Device.' },
                { order: 1, targets: 'Device.X.' },
              ],
            },
          ],
        },
      }),
    (e: unknown) => e instanceof ConfigError && /order 1 is used twice in role "x"/.test(e.message),
  );
  assert.throws(
    () => loadConfig({ env: {}, overrides: { 'controllerTrust.roles': [{ name: 'x', permissions: [{ order: 1, targets: 7 }] }] } }),
    (e: unknown) => e instanceof ConfigError && /targets must be a list of strings/.test(e.message),
  );
});
