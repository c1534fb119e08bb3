/**
 * Short soak: 1,000 simulated devices (60 s periodic Inform) and a controller over MQTT issuing a
 * steady Get/Set/Operate mix for 60 s through the proxy in a child process (bench/soak-harness.ts).
 * Every request must be answered, by the agent it was sent to; device-side failures must be USP
 * Error Msgs with a code. No latency or memory assertions (a loaded 2-core CI machine).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startMosquitto, findBinary } from '../helpers/brokers.js';
import { runSoak } from '../../bench/soak-harness.js';

const skip = findBinary('mosquitto') ? false : 'mosquitto is not installed';

test('soak (short): 1,000 devices, 60 s of Get/Set/Operate over MQTT, zero lost or misrouted responses', { skip, timeout: 150_000 }, async (t) => {
  const mosq = await startMosquitto();
  assert.ok(mosq, 'mosquitto started');
  const lines: string[] = [];
  try {
    const r = await runSoak({
      mqttUrl: mosq.url,
      devices: 1000,
      durationS: 60,
      rate: 20,
      reportEveryS: 20,
      timeoutMs: 25_000,
      concurrency: 50,
      log: (l) => lines.push(l),
    });
    for (const l of lines) t.diagnostic(l.replace(/^# /, ''));
    const detail = lines.join('\n');
    assert.ok(r.requests >= 1000, `requests issued: ${r.requests}\n${detail}`);
    assert.equal(r.lost, 0, `lost responses\n${detail}`);
    assert.equal(r.misrouted, 0, `misrouted responses: ${r.misroutedExamples.join('; ')}\n${detail}`);
    assert.equal(r.uncoded, 0, `USP Error Msgs without an error code\n${detail}`);
    assert.equal(r.answered, r.requests, detail);
  } finally {
    await mosq.stop();
  }
});
