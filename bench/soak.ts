/**
 * Load and soak (npm run soak): the proxy in a child process, mosquitto, N simulated TR-181 devices
 * with a 60 s periodic Inform, and a USP controller over MQTT issuing a steady Get/Set/Operate mix.
 * Prints one line per minute (requests, errors by kind, p50/p99, proxy RSS and heap), then the RSS
 * slope after warm-up and a verdict. Exit code 1 when a response was lost or misrouted or memory grew.
 *
 * Options: --devices N (10000) --minutes M (10) --rate R req/s (50) --timeout ms (30000)
 *          --concurrency C fleet sessions in flight (200) --report-every S (60)
 */
import { parseArgs } from 'node:util';
import os from 'node:os';
import { startMosquitto } from '../test/helpers/brokers.js';
import { runSoak } from './soak-harness.js';

const { values } = parseArgs({
  options: {
    devices: { type: 'string', default: '10000' },
    minutes: { type: 'string', default: '10' },
    rate: { type: 'string', default: '50' },
    timeout: { type: 'string', default: '30000' },
    concurrency: { type: 'string', default: '200' },
    'report-every': { type: 'string', default: '60' },
  },
});

async function main(): Promise<void> {
  const mosq = await startMosquitto();
  if (!mosq) {
    console.error('soak: mosquitto is not installed (apt-get install mosquitto)');
    process.exit(2);
  }
  try {
    console.log(
      `# soak: ${values.devices} devices, ${values.minutes} min at ${values.rate} req/s over MQTT; ${os.cpus().length} cores, Node ${process.version}`,
    );
    const r = await runSoak({
      mqttUrl: mosq.url,
      devices: Number(values.devices),
      durationS: Number(values.minutes) * 60,
      rate: Number(values.rate),
      timeoutMs: Number(values.timeout),
      concurrency: Number(values.concurrency),
      reportEveryS: Number(values['report-every']),
    });
    process.exitCode = r.verdict.startsWith('PASS') ? 0 : 1;
  } finally {
    await mosq.stop();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
