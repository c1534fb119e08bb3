/**
 * The vendor-model sweep end to end on the two bundled simulator models, without quirks: an
 * in-process proxy, the simulated CPE over real HTTP and a USP Controller over WebSocket.
 * Asserts that every check of every model is reported with a result (not yet that all pass).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { sweepCli } from '../../src/tools/sweep.js';
import { CHECKS } from '../../src/tools/sweep/checks.js';
import { renderReport } from '../../src/tools/sweep/report.js';
import type { SweepResult } from '../../src/tools/sweep/run.js';
import { ROOT } from '../helpers/paths.js';

test('sweep --quirks none --json on assets/sim-models: every check of every model reported', async () => {
  const out: string[] = [];
  const err: string[] = [];
  const code = await sweepCli([path.join(ROOT, 'assets', 'sim-models'), '--quirks', 'none', '--json'], { out: (l) => out.push(l), err: (l) => err.push(l) });
  const r = JSON.parse(out.join('\n')) as SweepResult;
  assert.equal(code, r.ok ? 0 : 1, 'the exit code says whether a check failed');
  assert.equal(r.quirks, 'none');
  assert.deepEqual(r.checks, [...CHECKS]);
  assert.deepEqual(
    r.models.map((m) => [m.model, m.root]),
    [
      ['tr098-igd', 'InternetGatewayDevice.'],
      ['tr181-device', 'Device.'],
    ],
  );
  for (const m of r.models) {
    assert.equal(m.checks.register.status, 'ok', `${m.model} registered: ${m.checks.register.reason}`);
    assert.match(m.endpointId ?? '', /^os::F0AD4E-/);
    for (const c of CHECKS) {
      const res = m.checks[c];
      assert.ok(res, `${m.model} / ${c} reported`);
      assert.ok(['ok', 'FAIL', 'skip'].includes(res.status), `${m.model} / ${c}: ${res.status}`);
      if (res.status !== 'ok') assert.ok(res.reason, `${m.model} / ${c}: a reason for ${res.status}`);
      assert.ok(
        err.some((l) => l.startsWith(`sweep: ${m.model}: ${c} `)),
        `${m.model} / ${c} in the progress`,
      );
    }
    // Counted at the simulated CPE: the first Get of one parameter reached it as CWMP RPCs.
    assert.ok(m.firstGet && Object.values(m.firstGet.rpcs).reduce((a, b) => a + b, 0) >= 1, `${m.model}: RPCs of the first Get`);
    assert.ok(m.firstGet.bytes > 0 && (m.steadyGet?.bytes ?? 0) > 0, `${m.model}: bytes on the wire`);
  }
  const text = renderReport(r);
  assert.ok(text.some((l) => /^tr098-igd +(ok|FAIL|skip)/.test(l)) && text.some((l) => /^tr181-device +(ok|FAIL|skip)/.test(l)));
});
