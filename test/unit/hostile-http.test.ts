/**
 * Hostile HTTP at the ACS URL: slow headers and slow bodies are cut off by the (short, for the
 * test) deadlines while a normal CPE session proceeds; an oversized body gets 413 without being
 * buffered (RSS stays bounded after 200 MB streamed); 500 connections from one address leave
 * the server up; DOCTYPE / entity expansion, 10,000-deep nesting and attribute floods get 400; bodies over
 * the parse budget (a million empty elements, 300,000 attributes) get 413 from the default
 * configuration, and a body with 100,000 decode warnings logs a bounded number of lines; the Content-Type
 * header is not trusted (CWMP is decided by the body). No wall-clock speed is asserted.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CwmpUspProxy } from '../../src/app/proxy.js';
import { loadConfig } from '../../src/app/config.js';
import { silentLogger } from '../../src/app/log.js';
import { AcsServer } from '../../src/cwmp/acs-server.js';
import { Fleet } from '../../src/tools/sim/fleet.js';
import { fixture } from '../helpers/paths.js';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { STRICT_SIM } from '../helpers/sim.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'cup-hostile-'));
const LIMIT = 1 << 20;
let proxy: CwmpUspProxy;
let acs: AcsServer;
let port = 0;
let fleet: Fleet;

before(async () => {
  const config = loadConfig({
    env: {},
    overrides: { dataDir: dir, 'acs.host': '127.0.0.1', 'acs.port': 0, 'usp.websocket.enabled': false, 'acs.auth.mode': 'none', 'log.level': 'silent' },
  });
  proxy = new CwmpUspProxy(config, silentLogger());
  await proxy.start();
  // A second ACS front on the same engine, with short deadlines and a 1 MiB body limit.
  acs = new AcsServer(
    proxy.engine,
    proxy.decoder,
    proxy.store,
    {
      host: '127.0.0.1',
      port: 0,
      maxBodyBytes: LIMIT,
      auth: { mode: 'none', realm: 'r', username: '', password: '' },
      headersTimeoutMs: 800,
      requestTimeoutMs: 1500,
    },
    silentLogger(),
  );
  port = await acs.listen();
  fleet = new Fleet({ quirks: STRICT_SIM, acsUrl: `http://127.0.0.1:${port}/`, count: 1, model: 'tr181', serialPrefix: 'HH', periodicIntervalS: null });
  await fleet.start();
});

after(async () => {
  await fleet?.stop();
  await acs?.close();
  await proxy?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function normalSessionWorks(): Promise<void> {
  const before = fleet.totals();
  await fleet.informAll(['2 PERIODIC']);
  const t = fleet.totals();
  assert.equal(t.sessions - before.sessions, 1);
  assert.equal(t.failed - before.failed, 0, 'a normal CPE session failed');
}

function request(body: string | Buffer, headers: Record<string, string | number> = {}, toPort = port): Promise<{ status: number; body: string }> {
  const buf = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port: toPort, method: 'POST', path: '/', agent: false, headers: { 'Content-Length': buf.length, ...headers } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.end(buf);
  });
}

/** Resolves with what the server sent when it closes the connection (bounded: fails after 20 s). */
function closedByServer(sock: net.Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error('the server did not close the stalled connection within 20 s'));
    }, 20_000);
    sock.setEncoding('utf8');
    sock.on('data', (c: string) => (got += c));
    sock.on('error', () => undefined);
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(got);
    });
  });
}

function connect(): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}

test('slow headers and a slow body are disconnected by the deadlines; a normal session works meanwhile', async () => {
  const slowHeaders = await connect();
  slowHeaders.write('POST / HT'); // half a request line, then nothing
  const slowBody = await connect();
  slowBody.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nContent-Length: 1000\r\n\r\n<soap-env:Envelope');
  const closes = Promise.all([closedByServer(slowHeaders), closedByServer(slowBody)]);
  await normalSessionWorks();
  const [a, b] = await closes;
  assert.ok(a === '' || /^HTTP\/1\.1 408/.test(a), `slow headers got ${JSON.stringify(a.slice(0, 40))}`);
  assert.ok(b === '' || /^HTTP\/1\.1 408/.test(b), `slow body got ${JSON.stringify(b.slice(0, 40))}`);
});

test('a declared body over the limit gets 413 at once, without reading it', async () => {
  const sock = await connect();
  const reply = closedByServer(sock);
  sock.write(`POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nContent-Length: ${200 * 1024 * 1024}\r\n\r\n<a>`);
  assert.match(await reply, /^HTTP\/1\.1 413/);
});

test('200 MB chunked body: 413, and the server does not buffer it (RSS growth < 100 MB)', async () => {
  // The proxy's own ACS front (default 60 s request deadline, 8 MiB limit): a slow CI machine
  // must not turn this into a 408.
  global.gc?.();
  const rss0 = process.memoryUsage().rss;
  let peak = rss0;
  const chunk = Buffer.alloc(64 * 1024, 0x41);
  const total = 200 * 1024 * 1024;
  const status = await new Promise<number>((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port: proxy.acsPort,
        method: 'POST',
        path: '/',
        agent: false,
        headers: { 'Content-Type': 'text/xml', 'Transfer-Encoding': 'chunked' },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    let sent = 0;
    const pump = (): void => {
      while (sent < total) {
        sent += chunk.length;
        if (sent % (16 * 1024 * 1024) === 0) peak = Math.max(peak, process.memoryUsage().rss);
        if (!req.write(chunk)) {
          req.once('drain', pump);
          return;
        }
      }
      req.end();
    };
    pump();
  });
  peak = Math.max(peak, process.memoryUsage().rss);
  assert.equal(status, 413);
  const growthMb = (peak - rss0) / 1024 / 1024;
  console.log(`hostile-http: 200 MB streamed, RSS growth ${growthMb.toFixed(1)} MB`);
  assert.ok(growthMb < 100, `RSS grew by ${growthMb.toFixed(1)} MB while a 200 MB body was refused`);
});

test('500 connections from one address: served or refused, the server stays up, a normal session works', async () => {
  const socks: net.Socket[] = [];
  let refused = 0;
  for (let i = 0; i < 500; i++) {
    try {
      const s = await connect();
      s.on('error', () => undefined);
      if (i % 2) s.write('POST / HTTP/1.1\r\nHost: x\r\n'); // half of them mid-headers
      socks.push(s);
    } catch {
      refused++;
    }
  }
  console.log(`hostile-http: 500 connections, ${socks.length} accepted, ${refused} refused`);
  try {
    await normalSessionWorks();
  } finally {
    for (const s of socks) s.destroy();
  }
  assert.equal(socks.length + refused, 500);
  await normalSessionWorks();
});

const ENV = (inner: string): string =>
  '<soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/" xmlns:cwmp="urn:dslforum-org:cwmp-1-0"><soap-env:Header><cwmp:ID soap-env:mustUnderstand="1">1</cwmp:ID></soap-env:Header><soap-env:Body>' +
  inner +
  '</soap-env:Body></soap-env:Envelope>';

test('billion laughs / DOCTYPE -> 400', async () => {
  const ents = ['<!ENTITY lol "lol">'];
  for (let i = 1; i < 10; i++) ents.push(`<!ENTITY lol${i} "${`&lol${i === 1 ? '' : i - 1};`.repeat(10)}">`);
  const laughs = `<?xml version="1.0"?><!DOCTYPE lolz [${ents.join('')}]>` + ENV('<cwmp:Inform>&lol9;</cwmp:Inform>');
  const r = await request(laughs, { 'Content-Type': 'text/xml' });
  assert.equal(r.status, 400);
  assert.match(r.body, /forbidden-dtd|DOCTYPE/);
  const external = `<?xml version="1.0"?><!DOCTYPE x SYSTEM "file:///etc/passwd">` + ENV('<cwmp:Inform/>');
  assert.equal((await request(external, { 'Content-Type': 'text/xml' })).status, 400);
  const entityOnly = ENV('<cwmp:Inform>&xxe;</cwmp:Inform>');
  assert.equal((await request(entityOnly, { 'Content-Type': 'text/xml' })).status, 400);
});

test('10,000-deep nested XML -> 400 (codec depth limit)', async () => {
  const deep = ENV('<a>'.repeat(10_000) + '</a>'.repeat(10_000));
  const r = await request(deep, { 'Content-Type': 'text/xml' });
  assert.equal(r.status, 400);
  assert.match(r.body, /nested deeper/);
});

test('attribute flood (50,000 attributes on one element) and namespace-declaration flood -> 400 before parsing', async () => {
  const attrs = Array.from({ length: 50_000 }, (_, i) => ` a${i}="1"`).join('');
  const flood = ENV('<cwmp:Inform/>').replace('<soap-env:Envelope ', `<soap-env:Envelope${attrs} `);
  const r = await request(flood, { 'Content-Type': 'text/xml' });
  assert.equal(r.status, 400);
  assert.match(r.body, /more than 32 attributes/);
  const decls = Array.from({ length: 200 }, (_, i) => `<x xmlns:p${i}="urn:p${i}"/>`).join('');
  const r2 = await request(ENV(`<cwmp:Inform>${decls}</cwmp:Inform>`), { 'Content-Type': 'text/xml' });
  assert.equal(r2.status, 400);
  assert.match(r2.body, /namespace declarations/);
  await normalSessionWorks();
});

test('Content-Type is not trusted: the body decides (valid Inform with application/json or none -> 200; JSON -> 400)', async () => {
  const inform = readFileSync(fixture('soap', 'cpe', 'Inform.1-0.xml'), 'utf8');
  const serial = (n: string): string => inform.replace(/<SerialNumber>[^<]*<\/SerialNumber>/, `<SerialNumber>${n}</SerialNumber>`);
  assert.equal((await request(serial('CT-JSON'), { 'Content-Type': 'application/json' })).status, 200);
  assert.equal((await request(serial('CT-NONE'))).status, 200);
  const json = await request('{"Inform": {"DeviceId": 1}}', { 'Content-Type': 'application/json' });
  assert.equal(json.status, 400);
  assert.match(json.body, /malformed-xml|not-soap/);
  await normalSessionWorks();
});

/** The proxy's own ACS, with the default limits (8 MB bodies, acs.limits.parse defaults). */
const defaultPort = (): number => (proxy.acs.server.address() as AddressInfo).port;

test('a million empty elements (4 MB) -> 413 from the default parse budget; a normal session works', async () => {
  const before = proxy.acs.parseBudgetRefusals;
  const body = ENV(`<cwmp:Inform>${'<a/>'.repeat(1_000_000)}</cwmp:Inform>`);
  const r = await request(body, { 'Content-Type': 'text/xml' }, defaultPort());
  assert.equal(r.status, 413);
  assert.match(r.body, /more than 500000 elements \(acs\.limits\.parse\.maxElements\)/);
  assert.equal(proxy.acs.parseBudgetRefusals, before + 1);
  await normalSessionWorks();
});

test('300,000 attributes spread over 10,000 elements (under the per-element limit) -> 413 from the default budget', async () => {
  const attrs = Array.from({ length: 30 }, (_, i) => ` a${i}="1"`).join('');
  const body = ENV(`<cwmp:Inform>${`<x${attrs}/>`.repeat(10_000)}</cwmp:Inform>`);
  const r = await request(body, { 'Content-Type': 'text/xml' }, defaultPort());
  assert.equal(r.status, 413);
  assert.match(r.body, /more than 250000 attributes/);
  await normalSessionWorks();
});

test('a body with 100,000 decode warnings logs at most maxLogLinesPerRequest lines plus one summary', async () => {
  const lines: { msg: string; more?: number }[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) if (l) lines.push(JSON.parse(l) as { msg: string; more?: number });
      cb();
    },
  });
  const quiet = new AcsServer(
    proxy.engine,
    proxy.decoder,
    proxy.store,
    {
      host: '127.0.0.1',
      port: 0,
      maxBodyBytes: 8 << 20,
      auth: { mode: 'none', realm: 'r', username: '', password: '' },
      limits: { maxLogLinesPerRequest: 5, perAddress: { maxConnections: 0, newSessionsPerMinute: 0, exemptLoopback: true } },
    },
    pino({ level: 'debug' }, sink),
  );
  const p = await quiet.listen();
  try {
    const inform = readFileSync(fixture('soap', 'cpe', 'Inform.1-0.xml'), 'utf8')
      .replace(/<SerialNumber>[^<]*<\/SerialNumber>/, '<SerialNumber>LOGCAP</SerialNumber>')
      .replace('</DeviceId>', `</DeviceId>${'<Unexpected/>'.repeat(100_000)}`);
    const r = await request(inform, { 'Content-Type': 'text/xml' }, p);
    assert.equal(r.status, 200);
    const warnings = lines.filter((l) => l.msg === 'ACS: decode warning');
    const summary = lines.filter((l) => /more decode warnings not logged/.test(l.msg));
    // proxy.decoder keeps the configured default (20); this front logs 5 of them and sums up the rest.
    assert.equal(warnings.length, 5);
    assert.equal(summary.length, 1);
    assert.equal(summary[0]!.more, 100_000 - 5);
    assert.ok(lines.length < 50, `${lines.length} log lines for one request`);
  } finally {
    await quiet.close();
  }
});
