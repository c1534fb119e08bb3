/**
 * The simulator's CWMP sessions against a tiny scripted ACS (node:http + the codec), and
 * connection requests to the fleet's server. Short timers throughout.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeSoap, encodeSoap } from '../../src/cwmp/soap.js';
import { authenticate, basicAuthorization, digestAuthorization, parseChallenge, pickChallenge } from '../../src/cwmp/http-auth.js';
import type { AcsRequest, CwmpMessage, Inform, SoapEnvelope, TransferComplete } from '../../src/cwmp/types.js';
import { Fleet, type FleetOptions } from '../../src/tools/sim/fleet.js';
import type { SessionSummary } from '../../src/tools/sim/device.js';

// ---------------------------------------------------------------- scripted ACS

interface AcsSession {
  n: number;
  inform: Inform;
  /** Every CPE message after the Inform, in order ('empty' for an empty POST). */
  received: Array<CwmpMessage | 'empty'>;
  cookieSeen: boolean[];
  authHeaders: Array<string | undefined>;
  ended: boolean;
}

type Script = (inform: Inform, n: number) => { rpcs?: Array<AcsRequest | string>; holdRequests?: boolean };

class ScriptedAcs {
  server: http.Server;
  url = '';
  sessions: AcsSession[] = [];
  /** Serves GET /files/<name>: 200 for names starting "ok", 404 otherwise. */
  fileGets: string[] = [];
  uploads: string[] = [];
  unauthorized = 0;
  failNextInforms = 0;
  script: Script = () => ({});
  auth: { mode: 'basic' | 'digest'; username: string; password: string } | null = null;
  private bySid = new Map<string, { s: AcsSession; queue: Array<AcsRequest | string>; seq: number }>();
  private waiters: Array<{ pred: (s: AcsSession) => boolean; resolve: (s: AcsSession) => void }> = [];

  constructor() {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => void this.handle(req, res, Buffer.concat(chunks).toString('utf8')));
    });
  }

  async start(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/acs`;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  /** Resolves with the next ended session (from now on) that matches. */
  waitSession(pred: (s: AcsSession) => boolean = () => true, timeoutMs = 5000): Promise<AcsSession> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no matching session within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({
        pred,
        resolve: (s) => {
          clearTimeout(t);
          resolve(s);
        },
      });
    });
  }

  private ended(s: AcsSession): void {
    s.ended = true;
    const keep: typeof this.waiters = [];
    for (const w of this.waiters) {
      if (w.pred(s)) w.resolve(s);
      else keep.push(w);
    }
    this.waiters = keep;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse, body: string): Promise<void> {
    if (req.method === 'GET' && req.url?.startsWith('/files/')) {
      const name = req.url.slice(7);
      this.fileGets.push(name);
      res.writeHead(name.startsWith('ok') ? 200 : 404, { 'Content-Type': 'application/octet-stream' }).end('FIRMWARE');
      return;
    }
    if (req.method === 'PUT' && req.url?.startsWith('/files/')) {
      this.uploads.push(body);
      res.writeHead(200).end();
      return;
    }
    if (this.auth) {
      const r = await authenticate(req.headers.authorization, {
        mode: this.auth.mode,
        realm: 'acs',
        method: 'POST',
        nonceSecret: 'secret',
        lookup: (u) => (u === this.auth!.username ? this.auth!.password : null),
      });
      if (!r.ok) {
        this.unauthorized++;
        res.writeHead(401, { 'WWW-Authenticate': r.challenge, 'Content-Length': 0 }).end();
        return;
      }
    }
    const sid = /(?:^|;\s*)sid=([^;]+)/.exec(req.headers.cookie ?? '')?.[1];
    const env = body.trim() === '' ? null : decodeSoap(body).envelope;
    const send = (e: SoapEnvelope | string, cookie?: string): void => {
      const xml = typeof e === 'string' ? e : encodeSoap(e);
      const headers: Record<string, string | string[]> = { 'Content-Type': 'text/xml; charset="utf-8"' };
      if (cookie) headers['Set-Cookie'] = [`sid=${cookie}; Path=/; HttpOnly`, 'other=1; Path=/'];
      res.writeHead(200, headers).end(xml);
    };
    if (env?.body.method === 'Inform') {
      if (this.failNextInforms > 0) {
        this.failNextInforms--;
        res.writeHead(500).end();
        return;
      }
      const n = this.sessions.length;
      const s: AcsSession = { n, inform: env.body, received: [], cookieSeen: [], authHeaders: [req.headers.authorization], ended: false };
      this.sessions.push(s);
      const plan = this.script(env.body, n);
      this.bySid.set(`s${n}`, { s, queue: [...(plan.rpcs ?? [])], seq: 0 });
      const resp: SoapEnvelope = { cwmpVersion: env.cwmpVersion, id: env.id, body: { method: 'InformResponse', maxEnvelopes: 1 } };
      if (plan.holdRequests) resp.holdRequests = true;
      send(resp, `s${n}`);
      return;
    }
    const st = sid ? this.bySid.get(sid) : undefined;
    if (!st) {
      res.writeHead(400).end('no session');
      return;
    }
    st.s.cookieSeen.push(/other=1/.test(req.headers.cookie ?? ''));
    st.s.authHeaders.push(req.headers.authorization);
    st.s.received.push(env ? env.body : 'empty');
    if (env?.body.method === 'TransferComplete') {
      send({ cwmpVersion: env.cwmpVersion, id: env.id, body: { method: 'TransferCompleteResponse' } });
      return;
    }
    const next = st.queue.shift();
    if (next === undefined) {
      res.writeHead(204).end();
      this.ended(st.s);
      return;
    }
    send(typeof next === 'string' ? next : { cwmpVersion: '1-0', id: `acs-${++st.seq}`, body: next });
  }
}

// ---------------------------------------------------------------- helpers

const acs = new ScriptedAcs();
await acs.start();
const fleets: Fleet[] = [];
after(async () => {
  for (const f of fleets) await f.stop();
  await acs.close();
});

async function startFleet(extra: Partial<FleetOptions> = {}): Promise<Fleet> {
  const f = new Fleet({
    acsUrl: acs.url,
    count: 1,
    model: 'tr181',
    periodicIntervalS: null,
    timers: { rebootDelayMs: 30, transferDelayMs: 20, diagnosticsDelayMs: 20, retryMinWaitS: 0.05, retryMultiplier: 2000, httpTimeoutMs: 3000 },
    ...extra,
  });
  fleets.push(f);
  await f.start();
  return f;
}

const codes = (s: AcsSession): string[] => s.inform.event.map((e) => e.eventCode);
const evKey = (s: AcsSession, code: string): string | undefined => s.inform.event.find((e) => e.eventCode === code)?.commandKey;
const param = (s: AcsSession, name: string): string | undefined => s.inform.parameterList.find((p) => p.name === name)?.value;
const ofSerial = (serial: string) => (s: AcsSession) => s.inform.deviceId.serialNumber === serial;

function get(url: string, authorization?: string, method = 'GET'): Promise<{ status: number; www: string[] }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers: authorization ? { Authorization: authorization } : {}, agent: false }, (res) => {
      res.resume();
      const www: string[] = [];
      for (let i = 0; i < res.rawHeaders.length; i += 2) if (res.rawHeaders[i].toLowerCase() === 'www-authenticate') www.push(res.rawHeaders[i + 1]);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, www }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function digestGet(url: string, username: string, password: string): Promise<number> {
  const first = await get(url);
  if (first.status !== 401) return first.status;
  const c = pickChallenge(parseChallenge(first.www));
  assert.ok(c, 'a usable challenge');
  const u = new URL(url);
  const auth = digestAuthorization({ challenge: c, method: 'GET', uri: u.pathname, username, password, nc: 1 });
  return (await get(url, auth)).status;
}

function withDevice<_T>(serial: string, pred: (s: AcsSession) => boolean = () => true): (s: AcsSession) => boolean {
  return (s) => ofSerial(serial)(s) && pred(s);
}

// ---------------------------------------------------------------- tests

test('boot session: Inform contents, cookies, Digest toward the ACS, ACS RPCs answered, cwmp:ID echoed', async () => {
  acs.auth = { mode: 'digest', username: 'BOOT000001', password: 'pw-BOOT000001' };
  const before = acs.unauthorized;
  acs.script = () => ({
    rpcs: [
      { method: 'GetParameterValues', parameterNames: ['Device.DeviceInfo.SoftwareVersion', 'Device.ManagementServer.'] },
      { method: 'SetParameterValues', parameterKey: 'pk-1', parameterList: [{ name: 'Device.WiFi.SSID.1.SSID', value: 'acs-set', type: 'xsd:string' }] },
      `<?xml version="1.0"?><soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/" xmlns:cwmp="urn:dslforum-org:cwmp-1-0"><soap-env:Header><cwmp:ID soap-env:mustUnderstand="1">raw-9</cwmp:ID></soap-env:Header><soap-env:Body><cwmp:X_Vendor_Thing/></soap-env:Body></soap-env:Envelope>`,
    ],
  });
  const waiting = acs.waitSession(ofSerial('BOOT000001'));
  const f = await startFleet({ serialPrefix: 'BOOT', auth: { mode: 'digest', username: '{serial}', password: 'pw-{serial}' } });
  const s = await waiting;
  const d = f.device('BOOT000001')!;
  acs.auth = null;
  assert.deepEqual(codes(s), ['0 BOOTSTRAP', '1 BOOT']);
  assert.deepEqual(s.inform.deviceId, { manufacturer: 'CWMP-USP-Proxy Simulator', oui: 'F0AD4E', productClass: 'SimGW', serialNumber: 'BOOT000001' });
  assert.equal(s.inform.maxEnvelopes, 1);
  assert.equal(s.inform.retryCount, 0);
  assert.equal(param(s, 'Device.ManagementServer.ConnectionRequestURL'), `http://127.0.0.1:${f.connReqPort}/BOOT000001`);
  assert.equal(d.connectionRequestUrl, `http://127.0.0.1:${f.connReqPort}/BOOT000001`);
  for (const p of [
    'Device.DeviceInfo.HardwareVersion',
    'Device.DeviceInfo.SoftwareVersion',
    'Device.DeviceInfo.ProvisioningCode',
    'Device.ManagementServer.ParameterKey',
  ]) {
    assert.ok(param(s, p) !== undefined, `${p} in the Inform`);
  }
  assert.match(param(s, 'Device.IP.Interface.2.IPv4Address.1.IPAddress') ?? '', /^100\.64\./, 'a WAN address');
  // one 401 for the Inform, then the nonce is reused with nc incremented
  assert.equal(acs.unauthorized - before, 1);
  const ncs = s.authHeaders.map((h) => /nc=([0-9a-f]{8})/.exec(h ?? '')?.[1]);
  assert.deepEqual(ncs, ['00000001', '00000002', '00000003', '00000004', '00000005']);
  assert.ok(s.cookieSeen.every(Boolean), 'all cookies sent back on every POST');
  const [empty, gpv, spv, fault] = s.received;
  assert.equal(empty, 'empty');
  assert.ok(typeof gpv === 'object' && gpv.method === 'GetParameterValuesResponse' && gpv.parameterList.some((p) => p.name === 'Device.ManagementServer.URL'));
  assert.deepEqual(spv, { method: 'SetParameterValuesResponse', status: 0 });
  assert.ok(typeof fault === 'object' && fault.method === 'Fault' && fault.faultCode === 9000);
  assert.equal(d.getValue('Device.WiFi.SSID.1.SSID'), 'acs-set');
  assert.equal(d.getValue('Device.ManagementServer.ParameterKey'), 'pk-1');
  assert.deepEqual(d.stats.rpcsReceived, { GetParameterValues: 1, SetParameterValues: 1, X_Vendor_Thing: 1 });
  // the summary, and a second session without 0 BOOTSTRAP
  acs.script = () => ({});
  const sum: SessionSummary = await d.inform(['2 PERIODIC']);
  assert.deepEqual(sum.events, ['2 PERIODIC']);
  assert.ok(sum.ok);
  assert.equal(d.stats.sessions, 2);
});

test('cwmp:ID is echoed in responses', async () => {
  let raw = '';
  const f = await startFleet({ serialPrefix: 'ID' });
  acs.script = () => ({ rpcs: [{ method: 'GetRPCMethods' }] });
  const orig = acs.server.listeners('request')[0] as (req: http.IncomingMessage, res: http.ServerResponse) => void;
  acs.server.removeAllListeners('request');
  acs.server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    req.on('data', (c: Buffer) => {
      if (c.toString().includes('GetRPCMethodsResponse')) raw = c.toString();
    });
    orig(req, res);
  });
  try {
    await f.device('ID000001')!.inform(['6 CONNECTION REQUEST']);
  } finally {
    acs.server.removeAllListeners('request');
    acs.server.on('request', orig);
  }
  assert.match(raw, /<cwmp:ID[^>]*>acs-1<\/cwmp:ID>/);
  acs.script = () => ({});
});

test('Basic toward the ACS, pre-emptive', async () => {
  acs.auth = { mode: 'basic', username: 'u', password: 'p' };
  const before = acs.unauthorized;
  const waiting = acs.waitSession(ofSerial('BAS000001'));
  await startFleet({ serialPrefix: 'BAS', auth: { mode: 'basic', username: 'u', password: 'p', preemptiveBasic: true } });
  const s = await waiting;
  acs.auth = null;
  assert.equal(acs.unauthorized, before, 'no 401 round trip');
  assert.equal(s.authHeaders[0], basicAuthorization('u', 'p'));
});

test('wrong ACS credentials fail the session and it is retried with RetryCount', async () => {
  acs.auth = { mode: 'digest', username: 'x', password: 'right' };
  const f = await startFleet({ serialPrefix: 'BADPW', auth: { mode: 'digest', username: 'x', password: 'wrong' } });
  const d = f.device('BADPW000001')!;
  assert.equal(d.stats.sessionsFailed, 1);
  assert.match(d.stats.lastSessionError ?? '', /401/);
  acs.auth = null;
  const s = await acs.waitSession(ofSerial('BADPW000001'));
  assert.deepEqual(codes(s), ['0 BOOTSTRAP', '1 BOOT'], 'events kept for the retry');
  assert.ok(s.inform.retryCount >= 1);
});

test('HTTP 500 on the Inform: retried with backoff, RetryCount counts', async () => {
  acs.failNextInforms = 2;
  const waiting = acs.waitSession(ofSerial('RETRY000001'));
  await startFleet({ serialPrefix: 'RETRY' });
  const s = await waiting;
  assert.equal(s.inform.retryCount, 2);
  assert.deepEqual(codes(s), ['0 BOOTSTRAP', '1 BOOT']);
});

test('connection request: Digest with the credentials the ACS set -> 6 CONNECTION REQUEST; 401, 404, 405', async () => {
  const f = await startFleet({ serialPrefix: 'CR', count: 2 });
  const d = f.device('CR000001')!;
  const url = d.connectionRequestUrl;
  // default per-device credentials
  assert.deepEqual(d.connReqCredentials, { username: 'CR000001', password: 'sim-CR000001' });
  // the ACS sets its own
  acs.script = () => ({
    rpcs: [
      {
        method: 'SetParameterValues',
        parameterKey: '',
        parameterList: [
          { name: 'Device.ManagementServer.ConnectionRequestUsername', value: 'acs-user', type: 'xsd:string' },
          { name: 'Device.ManagementServer.ConnectionRequestPassword', value: 'acs-secret', type: 'xsd:string' },
        ],
      },
    ],
  });
  await d.inform(['2 PERIODIC']);
  acs.script = () => ({ rpcs: [{ method: 'GetParameterValues', parameterNames: ['Device.DeviceInfo.UpTime'] }] });
  const noAuth = await get(url);
  assert.equal(noAuth.status, 401);
  assert.match(noAuth.www.join(), /Digest realm="[^"]+", qop="auth"/);
  assert.equal(await digestGet(url, 'CR000001', 'sim-CR000001'), 401, 'old credentials no longer work');
  assert.equal(await digestGet(url, 'acs-user', 'wrong'), 401);
  assert.equal((await get(url, basicAuthorization('acs-user', 'acs-secret'))).status, 401, 'Basic is off by default');
  assert.equal(d.stats.connectionRequests, 0);
  const waiting = acs.waitSession(ofSerial('CR000001'));
  assert.equal(await digestGet(url, 'acs-user', 'acs-secret'), 200);
  const s = await waiting;
  assert.deepEqual(codes(s), ['6 CONNECTION REQUEST']);
  assert.equal(d.stats.connectionRequests, 1);
  assert.equal(d.stats.rpcsReceived.GetParameterValues, 1);
  // other devices and paths
  assert.equal((await get(`http://127.0.0.1:${f.connReqPort}/NOPE`)).status, 404);
  assert.equal((await get(url, undefined, 'POST')).status, 405);
  const other = f.device('CR000002')!;
  assert.equal(await digestGet(other.connectionRequestUrl, 'acs-user', 'acs-secret'), 401, 'credentials are per device');
  acs.script = () => ({});
});

test('connection request during a session runs another session after it', async () => {
  const f = await startFleet({ serialPrefix: 'BUSY', connReqAuth: { username: 'u', password: 'p' } });
  const d = f.device('BUSY000001')!;
  let fired = false;
  let resp = 0;
  acs.script = (inform) => {
    if (!fired && inform.deviceId.serialNumber === 'BUSY000001') {
      fired = true;
      // fire the connection request from inside the session
      void digestGet(d.connectionRequestUrl, 'u', 'p').then((st) => (resp = st));
      return { rpcs: [{ method: 'GetParameterNames', parameterPath: 'Device.', nextLevel: true }, { method: 'GetRPCMethods' }] };
    }
    return {};
  };
  const next = acs.waitSession(withDevice('BUSY000001', (s) => codes(s).includes('6 CONNECTION REQUEST')));
  const first = await d.inform(['2 PERIODIC']);
  assert.deepEqual(first.events, ['2 PERIODIC']);
  assert.deepEqual(first.rpcs, ['GetParameterNames', 'GetRPCMethods']);
  const s = await next;
  assert.equal(resp, 200);
  assert.deepEqual(codes(s), ['6 CONNECTION REQUEST']);
  acs.script = () => ({});
});

test('Reboot: the next session has 1 BOOT + M Reboot with the CommandKey', async () => {
  const f = await startFleet({ serialPrefix: 'RB' });
  const d = f.device('RB000001')!;
  acs.script = (i) =>
    i.deviceId.serialNumber === 'RB000001' && i.event.some((e) => e.eventCode === '2 PERIODIC') ? { rpcs: [{ method: 'Reboot', commandKey: 'rb-7' }] } : {};
  const next = acs.waitSession(withDevice('RB000001', (s) => codes(s).includes('M Reboot')));
  const sum = await d.inform(['2 PERIODIC']);
  assert.deepEqual(sum.rpcs, ['Reboot']);
  const s = await next;
  assert.deepEqual(codes(s), ['1 BOOT', 'M Reboot']);
  assert.equal(evKey(s, 'M Reboot'), 'rb-7');
  acs.script = () => ({});
});

test('FactoryReset: values back to the template, then 0 BOOTSTRAP + 1 BOOT', async () => {
  const f = await startFleet({ serialPrefix: 'FR' });
  const d = f.device('FR000001')!;
  d.setValue('Device.WiFi.SSID.1.SSID', 'changed');
  acs.script = (i) =>
    i.deviceId.serialNumber === 'FR000001' && i.event.some((e) => e.eventCode === '2 PERIODIC') ? { rpcs: [{ method: 'FactoryReset' }] } : {};
  const next = acs.waitSession(withDevice('FR000001', (s) => codes(s).includes('0 BOOTSTRAP')));
  await d.inform(['2 PERIODIC']);
  const s = await next;
  assert.deepEqual(codes(s), ['0 BOOTSTRAP', '1 BOOT']);
  assert.equal(d.getValue('Device.WiFi.SSID.1.SSID'), 'SimGW-2G');
  assert.equal(d.getValue('Device.DeviceInfo.SerialNumber'), 'FR000001', 'identity survives');
  acs.script = () => ({});
});

test('Download (firmware): fetched over HTTP, TransferComplete in a new session with 7 TRANSFER COMPLETE + M Download + 1 BOOT; HoldRequests defers it', async () => {
  const f = await startFleet({ serialPrefix: 'DL' });
  const d = f.device('DL000001')!;
  const base = acs.url.replace(/\/acs$/, '');
  let holdOnce = true;
  acs.script = (i) => {
    if (i.deviceId.serialNumber !== 'DL000001') return {};
    const ev = i.event.map((e) => e.eventCode);
    if (ev.includes('2 PERIODIC')) {
      return {
        rpcs: [
          {
            method: 'Download',
            commandKey: 'dl-1',
            fileType: '1 Firmware Upgrade Image',
            url: `${base}/files/ok-fw-2.5.0.bin`,
            username: '',
            password: '',
            fileSize: 8,
            targetFileName: 'fw-2.5.0.bin',
            delaySeconds: 0,
            successURL: '',
            failureURL: '',
          },
        ],
      };
    }
    if (ev.includes('7 TRANSFER COMPLETE') && holdOnce) {
      holdOnce = false;
      return { holdRequests: true, rpcs: [{ method: 'GetRPCMethods' }] };
    }
    return {};
  };
  const held = acs.waitSession(withDevice('DL000001', (s) => codes(s).includes('7 TRANSFER COMPLETE')));
  const sum = await d.inform(['2 PERIODIC']);
  assert.deepEqual(sum.rpcs, ['Download']);
  const s1 = await held;
  assert.deepEqual(codes(s1), ['1 BOOT', '7 TRANSFER COMPLETE', 'M Download']);
  assert.equal(evKey(s1, 'M Download'), 'dl-1');
  assert.equal(param(s1, 'Device.DeviceInfo.SoftwareVersion'), '2.5.0');
  assert.deepEqual(
    acs.fileGets.filter((n) => n.includes('2.5.0')),
    ['ok-fw-2.5.0.bin'],
  );
  // HoldRequests: the CPE sent no request, only the empty POST and the RPC response
  assert.equal(s1.received[0], 'empty');
  assert.ok(!s1.received.some((m) => typeof m === 'object' && m.method === 'TransferComplete'));
  // next session: the TransferComplete goes first, events still announced
  const s2p = acs.waitSession(ofSerial('DL000001'));
  await d.inform();
  const s2 = await s2p;
  assert.deepEqual(codes(s2), ['7 TRANSFER COMPLETE', 'M Download']);
  const tc = s2.received[0] as TransferComplete;
  assert.equal(tc.method, 'TransferComplete');
  assert.equal(tc.commandKey, 'dl-1');
  assert.equal(tc.fault.faultCode, 0);
  assert.equal(s2.received[1], 'empty');
  // and after that it is gone
  const s3p = acs.waitSession(ofSerial('DL000001'));
  await d.inform(['2 PERIODIC']);
  assert.ok(!codes(await s3p).includes('7 TRANSFER COMPLETE'));
  acs.script = () => ({});
});

test('Download of a missing file: TransferComplete with 9010; Upload: M Upload', async () => {
  const f = await startFleet({ serialPrefix: 'DLF' });
  const d = f.device('DLF000001')!;
  const base = acs.url.replace(/\/acs$/, '');
  acs.script = (i) =>
    i.deviceId.serialNumber === 'DLF000001' && i.event.some((e) => e.eventCode === '2 PERIODIC')
      ? {
          rpcs: [
            {
              method: 'Download',
              commandKey: 'dl-404',
              fileType: '3 Vendor Configuration File',
              url: `${base}/files/missing.cfg`,
              username: '',
              password: '',
              fileSize: 0,
              targetFileName: '',
              delaySeconds: 0,
              successURL: '',
              failureURL: '',
            },
          ],
        }
      : {};
  const next = acs.waitSession(withDevice('DLF000001', (s) => codes(s).includes('7 TRANSFER COMPLETE')));
  await d.inform(['2 PERIODIC']);
  const s = await next;
  assert.deepEqual(codes(s), ['7 TRANSFER COMPLETE', 'M Download'], 'no BOOT for a failed download');
  const tc = s.received[0] as TransferComplete;
  assert.equal(tc.fault.faultCode, 9010);
  assert.match(tc.fault.faultString, /404/);
  assert.equal(d.getValue('Device.DeviceInfo.SoftwareVersion'), '1.0.0');
  // Upload
  acs.script = (i) =>
    i.deviceId.serialNumber === 'DLF000001' && i.event.some((e) => e.eventCode === '2 PERIODIC')
      ? {
          rpcs: [
            {
              method: 'Upload',
              commandKey: 'up-1',
              fileType: '3 Vendor Configuration File',
              url: `${base}/files/up`,
              username: '',
              password: '',
              delaySeconds: 0,
            },
          ],
        }
      : {};
  const up = acs.waitSession(withDevice('DLF000001', (s2) => codes(s2).includes('M Upload')));
  await d.inform(['2 PERIODIC']);
  const s2 = await up;
  assert.equal(evKey(s2, 'M Upload'), 'up-1');
  assert.equal((s2.received[0] as TransferComplete).fault.faultCode, 0);
  assert.ok(acs.uploads.some((u) => u.includes('Device.DeviceInfo.SerialNumber=DLF000001')));
  acs.script = () => ({});
});

test('ScheduleInform -> 3 SCHEDULED + M ScheduleInform', async () => {
  const f = await startFleet({ serialPrefix: 'SI' });
  const d = f.device('SI000001')!;
  acs.script = (i) =>
    i.deviceId.serialNumber === 'SI000001' && i.event.some((e) => e.eventCode === '2 PERIODIC')
      ? { rpcs: [{ method: 'ScheduleInform', delaySeconds: 1, commandKey: 'si-1' }] }
      : {};
  const next = acs.waitSession(withDevice('SI000001', (s) => codes(s).includes('3 SCHEDULED')));
  await d.inform(['2 PERIODIC']);
  const s = await next;
  assert.deepEqual(codes(s), ['3 SCHEDULED', 'M ScheduleInform']);
  assert.equal(evKey(s, 'M ScheduleInform'), 'si-1');
  acs.script = () => ({});
});

for (const [model, obj, trObj] of [
  ['tr181', 'Device.IP.Diagnostics.IPPing.', 'Device.IP.Diagnostics.TraceRoute.'],
  ['tr098', 'InternetGatewayDevice.IPPingDiagnostics.', 'InternetGatewayDevice.TraceRouteDiagnostics.'],
] as const) {
  test(`diagnostics (${model}): IPPing and TraceRoute results, 8 DIAGNOSTICS COMPLETE`, async () => {
    const prefix = `DG${model.slice(2)}`;
    const serial = `${prefix}000001`;
    const f = await startFleet({ serialPrefix: prefix, model });
    const d = f.device(serial)!;
    acs.script = (i) =>
      i.deviceId.serialNumber === serial && i.event.some((e) => e.eventCode === '2 PERIODIC')
        ? {
            rpcs: [
              {
                method: 'SetParameterValues',
                parameterKey: '',
                parameterList: [
                  { name: obj + 'Host', value: '192.0.2.7', type: 'xsd:string' },
                  { name: obj + 'NumberOfRepetitions', value: '4', type: 'xsd:unsignedInt' },
                  { name: obj + 'DiagnosticsState', value: 'Requested', type: 'xsd:string' },
                  { name: trObj + 'Host', value: 'example.net', type: 'xsd:string' },
                  { name: trObj + 'DiagnosticsState', value: 'Requested', type: 'xsd:string' },
                ],
              },
            ],
          }
        : {};
    const next = acs.waitSession(withDevice(serial, (s) => codes(s).includes('8 DIAGNOSTICS COMPLETE')));
    await d.inform(['2 PERIODIC']);
    const s = await next;
    assert.deepEqual(codes(s), ['8 DIAGNOSTICS COMPLETE']);
    assert.equal(d.getValue(obj + 'DiagnosticsState'), 'Complete');
    assert.equal(d.getValue(obj + 'SuccessCount'), '4');
    assert.ok(Number(d.getValue(obj + 'AverageResponseTime')) > 0);
    assert.equal(d.getValue(trObj + 'DiagnosticsState'), 'Complete');
    assert.equal(d.getValue(trObj + 'RouteHopsNumberOfEntries'), '3');
    assert.equal(d.getValue(trObj + 'RouteHops.3.Host'), 'example.net');
    assert.match(d.getValue(trObj + 'RouteHops.1.RTTimes') ?? '', /^\d+,\d+,\d+$/);
    acs.script = () => ({});
  });
}

test('4 VALUE CHANGE: active notification starts a session, passive waits for the next one', async () => {
  const f = await startFleet({ serialPrefix: 'VC' });
  const d = f.device('VC000001')!;
  acs.script = (i) =>
    i.deviceId.serialNumber === 'VC000001' && i.event.some((e) => e.eventCode === '2 PERIODIC')
      ? {
          rpcs: [
            {
              method: 'SetParameterAttributes',
              parameterList: [
                { name: 'Device.WiFi.SSID.1.SSID', notificationChange: true, notification: 2, accessListChange: false, accessList: [] },
                { name: 'Device.WiFi.SSID.2.SSID', notificationChange: true, notification: 1, accessListChange: false, accessList: [] },
              ],
            },
          ],
        }
      : {};
  await d.inform(['2 PERIODIC']);
  acs.script = () => ({});
  // passive: no session by itself
  const sessionsBefore = d.stats.sessions;
  d.setValue('Device.WiFi.SSID.2.SSID', 'passive-change');
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(d.stats.sessions, sessionsBefore);
  const next = acs.waitSession(withDevice('VC000001', (s) => codes(s).includes('4 VALUE CHANGE')));
  d.setValue('Device.WiFi.SSID.1.SSID', 'active-change');
  const s = await next;
  assert.deepEqual(codes(s), ['4 VALUE CHANGE']);
  assert.equal(param(s, 'Device.WiFi.SSID.1.SSID'), 'active-change');
  assert.equal(param(s, 'Device.WiFi.SSID.2.SSID'), 'passive-change');
  // delivered once
  const again = acs.waitSession(ofSerial('VC000001'));
  await d.inform(['2 PERIODIC']);
  const s2 = await again;
  assert.equal(param(s2, 'Device.WiFi.SSID.1.SSID'), undefined);
  assert.deepEqual(codes(s2), ['2 PERIODIC']);
});

test('informAll over a fleet with bounded concurrency; periodic Informs fire', async () => {
  const f = await startFleet({ serialPrefix: 'ALL', count: 20, concurrency: 3, bootstrap: false });
  assert.equal(f.devices.length, 20);
  const before = acs.sessions.length;
  await f.informAll(['2 PERIODIC']);
  const mine = acs.sessions.slice(before).filter((s) => s.inform.deviceId.serialNumber.startsWith('ALL'));
  assert.equal(mine.length, 20);
  assert.ok(f.devices.every((d) => d.stats.sessions === 2 && d.stats.sessionsOk === 2));
  const booted = acs.sessions.filter((s) => s.inform.deviceId.serialNumber === 'ALL000001');
  assert.deepEqual(codes(booted[0]), ['1 BOOT'], 'bootstrap: false');
  // periodic
  const p = await startFleet({ serialPrefix: 'PER', periodicIntervalS: 1, bootstrap: false });
  const s = await acs.waitSession(
    withDevice('PER000001', (x) => codes(x).includes('2 PERIODIC')),
    3000,
  );
  assert.equal(param(s, 'Device.ManagementServer.PeriodicInformInterval'), undefined);
  assert.equal(p.device('PER000001')!.getValue('Device.ManagementServer.PeriodicInformInterval'), '1');
});

test('TR-098 model: Inform carries DeviceSummary, SpecVersion and ExternalIPAddress', async () => {
  const waiting = acs.waitSession(ofSerial('IGD000001'));
  await startFleet({ serialPrefix: 'IGD', model: 'tr098' });
  const s = await waiting;
  assert.ok(param(s, 'InternetGatewayDevice.DeviceSummary'));
  assert.equal(param(s, 'InternetGatewayDevice.DeviceInfo.SpecVersion'), '1.0');
  assert.match(param(s, 'InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.ExternalIPAddress') ?? '', /^100\.64\./);
});
