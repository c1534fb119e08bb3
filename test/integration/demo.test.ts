/** `cwmp-usp-proxy demo`: the newcomer's tour runs end to end and prints real values. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import os from 'node:os';
import { runDemo } from '../../src/tools/demo.js';

function capture(): { io: { out(s: string): void; err(s: string): void }; out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (s) => void out.push(s), err: (s) => void err.push(s) }, out, err };
}

const demoDirs = (): string[] => readdirSync(os.tmpdir()).filter((n) => n.startsWith('cwmp-usp-demo-'));

test('demo: the whole tour with 10 devices, exit code 0, temp data dir removed', { timeout: 60_000 }, async () => {
  const before = new Set(demoDirs());
  const c = capture();
  const code = await runDemo([], c.io);
  const text = c.out.join('\n');
  assert.equal(code, 0, `exit code; stderr:\n${c.err.join('\n')}\nstdout:\n${text}`);
  assert.deepEqual(c.err, []);

  assert.match(text, /^cwmp-usp-proxy demo: ACS on http:\/\/127\.0\.0\.1:\d+\/, USP WebSocket on ws:\/\/127\.0\.0\.1:\d+\/usp/m);
  assert.match(text, /^10 simulated CWMP devices registered \(9 TR-181, 1 TR-098\).*os::F0AD4E-DEMO000001/m);
  // Get through CWMP, woken by a connection request.
  assert.match(
    text,
    /^> USP Get Device\.DeviceInfo\.SoftwareVersion on os::F0AD4E-DEMO000001 .*connection request, then .*GetParameterValues.* over CWMP, \d+ ms\)$/m,
  );
  assert.match(text, /^ {2}Device\.DeviceInfo\.SoftwareVersion = \S+$/m);
  // Set, and the value read back from the device.
  assert.match(text, /^> USP Set Device\.WiFi\.SSID\.1\.SSID = "demo-ssid" .*SetParameterValues over CWMP/m);
  assert.match(text, /^ {2}Device\.WiFi\.SSID\.1\.SSID = demo-ssid$/m);
  assert.match(text, /^ {2}2 instances: Device\.WiFi\.SSID\.1\., Device\.WiFi\.SSID\.2\.$/m);
  // Add then Delete of the same instance.
  const created = /^ {2}created (Device\.NAT\.PortMapping\.\d+\.)$/m.exec(text);
  assert.ok(created, 'Add printed the created instance');
  assert.match(text, new RegExp(`^> USP Delete ${created[1]!.replaceAll('.', '\\.')} .*DeleteObject over CWMP`, 'm'));
  assert.match(text, /^ {2}9 answers: DEMO000001, DEMO000002, DEMO000003, \.\.\. DEMO000009$/m);
  // The TR-098 device: Device.LocalAgent. from the proxy, Device:2 paths through the mapping.
  assert.match(text, /^ {2}Device\.LocalAgent\.EndpointID = os::F0AD4E-LEGACY000001$/m);
  assert.match(text, /^> USP Get Device\.DeviceInfo\.SoftwareVersion on the TR-098 device .*through the TR-098 mapping/m);
  assert.match(text, /^ {2}Device\.DeviceInfo\.SoftwareVersion = \S+$/m);
  // Subscription + Reboot -> Boot! Notify.
  assert.match(text, /^ {2}created Device\.LocalAgent\.Subscription\.\d+\.$/m);
  assert.match(text, /^ {2}OperateResp: Device\.LocalAgent\.Request\.\d+\.$/m);
  // The device may still be in the session of the previous request (no connection request needed).
  assert.match(text, /^ {2}CWMP: (connection request, then )?Reboot;/m);
  assert.match(text, /^ {2}Notify Boot! Cause=RemoteReboot CommandKey=demo /m);
  assert.match(text, /^done: everything stopped cleanly\.$/m);
  // Human-readable, not raw JSON.
  assert.doesNotMatch(text, /"reqPathResults"|"resultParams"/);
  assert.deepEqual(
    demoDirs().filter((d) => !before.has(d)),
    [],
    'temp data dir removed',
  );
});

test('demo: --help, bad flags and --devices 1 (no TR-098 device)', { timeout: 60_000 }, async () => {
  let c = capture();
  assert.equal(await runDemo(['--help'], c.io), 0);
  assert.match(c.out.join('\n'), /Usage: cwmp-usp-proxy demo/);

  c = capture();
  assert.equal(await runDemo(['--devices', '0'], c.io), 2);
  assert.match(c.err.join('\n'), /--devices wants an integer from 1 to 1000/);

  c = capture();
  assert.equal(await runDemo(['--bogus'], c.io), 2);
  assert.match(c.err.join('\n'), /bogus/);

  c = capture();
  assert.equal(await runDemo(['--devices', '1'], c.io), 0, c.err.join('\n'));
  const text = c.out.join('\n');
  assert.match(text, /^1 simulated CWMP device registered \(1 TR-181, 0 TR-098\)/m);
  assert.match(text, /^ {2}Notify Boot! Cause=RemoteReboot CommandKey=demo /m);
});
