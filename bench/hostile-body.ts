/**
 * What a hostile body costs the ACS (issue 14 item 4): a 4 MB Inform of a million empty elements
 * POSTed to a proxy in this process, with the default parse budget (acs.limits.parse) and with
 * the budget lifted (what main did before). Prints the time to the answer and the process RSS
 * (workers included) before, at its peak while decoding, and after.
 *   npm run bench:hostile [-- elements]
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CwmpUspProxy } from '../src/app/proxy.js';
import { loadConfig } from '../src/app/config.js';
import { silentLogger } from '../src/app/log.js';

const elements = Number(process.argv[2] ?? 1_000_000);
const MiB = 1024 * 1024;

const body = Buffer.from(
  '<soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/" xmlns:cwmp="urn:dslforum-org:cwmp-1-0"><soap-env:Header><cwmp:ID soap-env:mustUnderstand="1">1</cwmp:ID></soap-env:Header><soap-env:Body><cwmp:Inform>' +
    '<a/>'.repeat(elements) +
    '</cwmp:Inform></soap-env:Body></soap-env:Envelope>',
  'utf8',
);

function post(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, method: 'POST', path: '/', agent: false, headers: { 'Content-Type': 'text/xml', 'Content-Length': body.length } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function run(label: string, maxElements: number): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cup-bench-hostile-'));
  const config = loadConfig({
    env: {},
    overrides: {
      dataDir: dir,
      'acs.host': '127.0.0.1',
      'acs.port': 0,
      'usp.websocket.enabled': false,
      'log.level': 'silent',
      'acs.limits.parse.maxElements': maxElements,
      'acs.limits.parse.maxMs': 600_000,
    },
  });
  const proxy = new CwmpUspProxy(config, silentLogger());
  await proxy.start();
  try {
    const port = (proxy.acs.server.address() as AddressInfo).port;
    globalThis.gc?.();
    await new Promise((r) => setTimeout(r, 200));
    const rss0 = process.memoryUsage.rss();
    let peak = rss0;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 10);
    const t0 = performance.now();
    const status = await post(port);
    const ms = performance.now() - t0;
    clearInterval(sampler);
    peak = Math.max(peak, process.memoryUsage.rss());
    const rss1 = process.memoryUsage.rss();
    console.log(
      `${label.padEnd(34)} HTTP ${status}  ${ms.toFixed(0).padStart(6)} ms  RSS ${(rss0 / MiB).toFixed(0)} -> peak ${(peak / MiB).toFixed(0)} MiB (+${((peak - rss0) / MiB).toFixed(0)}), after ${(rss1 / MiB).toFixed(0)} MiB`,
    );
  } finally {
    await proxy.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log(
  `hostile body: Inform with ${elements.toLocaleString('en')} empty elements, ${(body.length / MiB).toFixed(1)} MiB, one POST over loopback; ${os.cpus().length} cores, node ${process.version}`,
);
await run('default budget (500,000 elements)', 500_000);
await run('budget lifted (as before)', 100_000_000);
