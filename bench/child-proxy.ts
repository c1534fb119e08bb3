/**
 * Benchmark child: the real proxy (or a bare baseline server) in its own process, answering
 * stats requests over IPC so that the load generator's CPU is not counted as the server's.
 *   node child-proxy.js proxy <dataDir>     the cwmp-usp-proxy ACS
 *   node child-proxy.js bare                node:http + decodeSoap + fixed InformResponse
 *   node child-proxy.js express             the same bare handler behind express
 *   node child-proxy.js echo <mqttUrl> <topic>
 *                                           a trivial USP agent on the same broker: decodes each
 *                                           Get Record, answers a GetResp with its own EndpointID
 *                                           (the ceiling for bench:usp)
 *   node child-proxy.js soak <dataDir> <mqttUrl> <controllerEid> <controllerTopic> <agentTopic>
 *                                           the proxy with MQTT and one full controller (npm run soak)
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { writeHeapSnapshot } from 'node:v8';
import { decodeSoap, encodeSoap } from '../src/cwmp/soap.js';
import { encodeRecord, noSessionRecord, type Msg } from '../src/usp/codec/record.js';
import { benchProxyOverrides } from './proxy-overrides.js';
import { loadConfig } from '../src/app/config.js';
import { createLogger, silentLogger } from '../src/app/log.js';
import { CwmpUspProxy } from '../src/app/proxy.js';
import type { DeviceRecord } from '../src/store/types.js';

const mode = process.argv[2] ?? 'proxy';
const BENCH_LOG = process.env.BENCH_LOG as 'info' | 'warn' | undefined;
// Never outlive the benchmark that started us.
process.on('disconnect', () => process.exit(0));
const el = monitorEventLoopDelay({ resolution: 1 });
el.enable();
const gc = (globalThis as { gc?: () => void }).gc;
const send = (m: unknown): void => {
  process.send!(m);
};

const FIXED_RESPONSE = encodeSoap({ cwmpVersion: '1-0', id: 'bench', body: { method: 'InformResponse', maxEnvelopes: 1 } });

function bareHandler(body: string, res: http.ServerResponse): void {
  if (body.length === 0) {
    res.writeHead(204);
    res.end();
    return;
  }
  decodeSoap(body);
  res.writeHead(200, { 'Content-Type': 'text/xml; charset="utf-8"', 'Content-Length': Buffer.byteLength(FIXED_RESPONSE), 'Set-Cookie': 'session=bench' });
  res.end(FIXED_RESPONSE);
}

let proxy: CwmpUspProxy | null = null;

/** The echo responder: one MQTT 5 connection (TCP_NODELAY), QoS 1 both ways like the proxy. */
async function startEcho(url: string, topic: string): Promise<void> {
  // Imported here: MQTT.js in the proxy modes would count in bench:informs' memory figures.
  const { connectMqtt5, onUspMsg } = await import('./mqtt-peer.js');
  const c = await connectMqtt5(url);
  onUspMsg(c, (req, rec, packet) => {
    const reply = packet.properties?.responseTopic;
    if (!reply) return;
    const body = req.body;
    const paths = body.msgBody === 'request' ? body.request?.get?.paramPaths : undefined;
    if (!paths) return;
    const resp: Msg = {
      header: { msgId: req.header.msgId, msgType: 'GET_RESP' },
      body: {
        msgBody: 'response',
        response: {
          respType: 'getResp',
          getResp: {
            reqPathResults: paths.map((p) => ({
              requestedPath: p,
              resolvedPathResults: [{ resolvedPath: 'Device.LocalAgent.', resultParams: { EndpointID: rec.toId } }],
            })),
          },
        },
      },
    };
    const bytes = encodeRecord(noSessionRecord(rec.toId, rec.fromId, resp));
    c.publish(reply, Buffer.from(bytes), { qos: 1, properties: { contentType: 'usp.msg' } });
  });
  await c.subscribeAsync(topic, { qos: 1 });
}

async function start(): Promise<number> {
  if (mode === 'echo') {
    await startEcho(process.argv[3]!, process.argv[4]!);
    return 0;
  }
  if (mode === 'soak') {
    const [dataDir, mqttUrl, ctlEid, ctlTopic, agentTopic] = process.argv.slice(3) as [string, string, string, string, string];
    const config = loadConfig({
      env: {},
      overrides: {
        dataDir,
        'acs.host': '127.0.0.1',
        'acs.port': 0,
        'log.level': 'silent',
        'usp.websocket.enabled': false,
        'usp.stomp.host': '',
        'usp.mqtt.url': mqttUrl,
        'usp.mqtt.topic': agentTopic,
        controllers: [{ endpointId: ctlEid, role: 'full', mqtt: { topic: ctlTopic } }],
      },
    });
    proxy = new CwmpUspProxy(config, silentLogger());
    await proxy.start();
    return proxy.acsPort;
  }
  if (mode === 'proxy' || mode === 'usp') {
    const dataDir = process.argv[3]!;
    const usp: Record<string, unknown> =
      mode === 'usp'
        ? {
            'usp.websocket.host': '127.0.0.1',
            'usp.websocket.port': 0,
            'usp.mqtt.url': process.argv[4] ?? '',
            'usp.mqtt.topic': process.env.BENCH_AGENT_TOPIC ?? '/usp/agent',
            'usp.stomp.host': process.argv[5] ?? '',
            'usp.stomp.port': Number(process.argv[6] ?? 61613),
            'usp.stomp.destination': '/queue/usp.agent',
            // The bench controller measures throughput: lift the per-controller request budget.
            'usp.requestRatePerController': 1_000_000,
            'usp.requestBurstPerController': 1_000_000,
            controllers: [{ endpointId: 'proto::bench-ctl', role: 'full', mqtt: { topic: '/usp/bench-ctl' }, stomp: { destination: '/queue/usp.bench-ctl' } }],
          }
        : { 'usp.websocket.enabled': false };
    const config = loadConfig({
      env: {},
      overrides: benchProxyOverrides(dataDir, BENCH_LOG ?? 'silent', {
        'acs.connectionRequest.deadlineMs': 600_000,
        'acs.setConnectionRequestCredentials': false,
        ...usp,
        // e.g. BENCH_PROXY_OVERRIDES='{"acs.inlineDecodeBytes":0}': every body on a worker, as under load.
        ...(process.env.BENCH_PROXY_OVERRIDES ? (JSON.parse(process.env.BENCH_PROXY_OVERRIDES) as Record<string, unknown>) : {}),
      }),
    });
    // BENCH_LOG=info: lines built and written to stdout as deployed (the bench points it at /dev/null).
    proxy = new CwmpUspProxy(config, BENCH_LOG ? createLogger(BENCH_LOG) : silentLogger());
    await proxy.start();
    return proxy.acsPort;
  }
  let server: http.Server;
  if (mode === 'express') {
    const { default: express } = await import('express');
    const app = express();
    app.use(express.text({ type: () => true, limit: '8mb' }));
    app.post('/', (req, res) => bareHandler(typeof req.body === 'string' ? req.body : '', res));
    server = http.createServer({ keepAlive: true }, app);
  } else {
    server = http.createServer({ keepAlive: true }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => bareHandler(Buffer.concat(chunks).toString('utf8'), res));
    });
  }
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

process.on('message', (m: { cmd: string; [k: string]: unknown }) => {
  void (async () => {
    switch (m.cmd) {
      case 'stats': {
        if (m.gc && gc) {
          gc();
          gc();
        }
        send({
          cmd: 'stats',
          rss: process.memoryUsage().rss,
          heapUsed: process.memoryUsage().heapUsed,
          // Where RSS above the JS heap goes (bench:informs' memory breakdown).
          heapTotal: process.memoryUsage().heapTotal,
          external: process.memoryUsage().external,
          arrayBuffers: process.memoryUsage().arrayBuffers,
          elP99: el.percentile(99) / 1e6,
          elMax: el.max / 1e6,
          devices: proxy ? await proxy.store.countDevices() : 0,
        });
        break;
      }
      case 'smaps': {
        // RSS by mapping (Linux): anonymous memory (JS heap, malloc), files (code, SQLite's -shm), stacks.
        const by = new Map<string, number>();
        let name = '';
        try {
          for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
            const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
            if (head) name = head[1] || '[anon]';
            else if (line.startsWith('Rss:')) by.set(name, (by.get(name) ?? 0) + Number(line.split(/\s+/)[1]) * 1024);
          }
        } catch {
          // not Linux: no breakdown
        }
        // The last RegExp match keeps its input alive (a slice of the whole smaps text, ~0.5 MiB
        // of JS heap that the next memory figure would count): match something small instead.
        /x/.exec('x');
        send({ cmd: 'smaps', by: Object.fromEntries([...by].sort((a, b) => b[1] - a[1]).slice(0, 12)) });
        break;
      }
      case 'cpu': {
        const u = process.cpuUsage();
        send({ cmd: 'cpu', us: u.user + u.system });
        break;
      }
      case 'reset-el':
        el.reset();
        send({ cmd: 'reset-el' });
        break;
      case 'enqueue': {
        // Queue a GetParameterValues for a device; the answer is reported when it arrives.
        const t0 = Date.now();
        proxy!.engine.enqueue(m.deviceKey as string, { method: 'GetParameterValues', parameterNames: ['Device.'] }).then(
          (o) => send({ cmd: 'enqueued-result', kind: o.kind, ms: Date.now() - t0 }),
          (e: Error) => send({ cmd: 'enqueued-result', error: e.message }),
        );
        send({ cmd: 'enqueue' });
        break;
      }
      case 'seed': {
        // Registered-but-idle devices straight into the store (as if they had informed once).
        const store = proxy!.store;
        const from = m.from as number;
        const to = m.to as number;
        const now = new Date().toISOString();
        for (let i = from; i < to; i++) {
          const serial = `SEED${String(i).padStart(8, '0')}`;
          const d: DeviceRecord = {
            deviceKey: `00BENC-BenchBox-${serial}`,
            endpointId: `os::00BENC-${serial}`,
            deviceId: { manufacturer: 'Bench', oui: '00BENC', productClass: 'BenchBox', serialNumber: serial },
            rootModel: 'Device',
            softwareVersion: '1.0',
            connectionRequestUrl: `http://127.0.0.1:9/${serial}`,
            connReqUsername: 'u',
            connReqPassword: 'p',
            cpeUsername: null,
            cpePassword: null,
            periodicInformInterval: 86400,
            lastInform: now,
            lastInformEvents: ['2 PERIODIC'],
            registeredAt: now,
          };
          await store.upsertDevice(d);
        }
        if (m.agents) for (let i = from; i < to; i++) proxy!.usp.deviceSeen(`os::00BENC-SEED${String(i).padStart(8, '0')}`);
        send({ cmd: 'seed', wsPort: proxy!.usp.ws?.serverAddress()?.port ?? 0 });
        break;
      }
      case 'heap-snapshot':
        send({ cmd: 'heap-snapshot', file: writeHeapSnapshot(path.join(m.dir as string, `proxy-${process.pid}-${Date.now()}.heapsnapshot`)) });
        break;
      case 'ws-port':
        send({ cmd: 'ws-port', wsPort: proxy!.usp.ws?.serverAddress()?.port ?? 0 });
        break;
      case 'usp-stats':
        send({ cmd: 'usp-stats', ...proxy!.usp.endpoint.stats, agents: proxy!.usp.agents.size });
        break;
      case 'stop':
        if (proxy) await proxy.stop();
        process.exit(0);
    }
  })().catch((e: unknown) => {
    send({ cmd: 'error', message: String((e as Error).stack ?? e) });
  });
});

start().then(
  (port) => send({ cmd: 'ready', port, pid: process.pid, dir: path.resolve('.') }),
  (e: unknown) => {
    send({ cmd: 'error', message: String(e) });
    process.exit(1);
  },
);
