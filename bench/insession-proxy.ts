/**
 * bench:insession's proxy child: the real proxy (MQTT MTP, silent log) in its own process, loaded
 * from a build folder given on the command line, so the same child runs this build and a main
 * build side by side (paired rounds). Driven over IPC by bench/insession.ts.
 *   node insession-proxy.js <dist root> <dataDir> <mqttUrl> <agentTopic> <controllerEid> <controllerTopic>
 * IPC: {cmd:'hold', deviceKey} keeps one caller request open on the device (SessionEngine.beginRequest),
 * so its session lingers between Gets: one Get in flight then meets the device in session, as a
 * controller's sequential Gets do within acs.lingerMs; {cmd:'cpu'}; {cmd:'stop'}.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { benchProxyOverrides } from './proxy-overrides.js';

const [root, dataDir, mqttUrl, agentTopic, ctlEid, ctlTopic] = process.argv.slice(2) as [string, string, string, string, string, string];
if (!ctlTopic || !process.send)
  throw new Error('usage: insession-proxy.js <dist root> <dataDir> <mqttUrl> <agentTopic> <controllerEid> <controllerTopic> (child of bench/insession.js)');
process.on('disconnect', () => process.exit(0));
const load = <T>(rel: string): Promise<T> => import(pathToFileURL(path.join(root, rel)).href) as Promise<T>;
const { loadConfig } = await load<typeof import('../src/app/config.js')>('src/app/config.js');
const { createLogger, silentLogger } = await load<typeof import('../src/app/log.js')>('src/app/log.js');
const BENCH_LOG = process.env.BENCH_LOG as 'debug' | 'info' | undefined;
const { CwmpUspProxy } = await load<typeof import('../src/app/proxy.js')>('src/app/proxy.js');

const config = loadConfig({
  env: {},
  overrides: benchProxyOverrides(dataDir, BENCH_LOG ?? 'silent', {
    // The held request keeps the session lingering up to this between rounds; the session timeout likewise.
    'acs.lingerMs': 60_000,
    'acs.sessionTimeoutMs': 120_000,
    'usp.websocket.enabled': false,
    'usp.stomp.host': '',
    'usp.mqtt.url': mqttUrl,
    'usp.mqtt.topic': agentTopic,
    'usp.requestRatePerController': 1_000_000,
    'usp.requestBurstPerController': 1_000_000,
    controllers: [{ endpointId: ctlEid, role: 'full', mqtt: { topic: ctlTopic } }],
  }),
});
const proxy = new CwmpUspProxy(config, BENCH_LOG ? createLogger(BENCH_LOG) : silentLogger());
await proxy.start();
const held: (() => void)[] = [];

process.on('message', (m: { cmd: string; deviceKey?: string }) => {
  void (async () => {
    switch (m.cmd) {
      case 'hold': {
        const d = await proxy.store.getDevice(m.deviceKey!);
        if (!d) throw new Error(`no device ${m.deviceKey}`);
        held.push(proxy.engine.beginRequest(d.deviceKey));
        process.send!({ cmd: 'hold', endpointId: d.endpointId });
        break;
      }
      case 'cpu': {
        const u = process.cpuUsage();
        process.send!({ cmd: 'cpu', us: u.user + u.system });
        break;
      }
      case 'stop':
        for (const close of held) close();
        await proxy.stop();
        process.exit(0);
    }
  })().catch((e: unknown) => process.send!({ cmd: 'error', message: String((e as Error).stack ?? e) }));
});
process.send({ cmd: 'ready', port: proxy.acsPort });
