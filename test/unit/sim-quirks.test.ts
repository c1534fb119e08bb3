/**
 * Simulator quirk profiles: the parser, each quirk's answer at the RPC level, and the quirks
 * that live on the wire (HTTP/1.0, SOAP prefix, cookies, pacing, dropped connections) against a
 * small raw node:http ACS that tracks sessions by TCP connection and records the bytes it reads.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { decodeSoap, encodeSoap } from '../../src/cwmp/soap.js';
import type { AcsRequest, CwmpMessage, Fault, Inform, SoapEnvelope } from '../../src/cwmp/types.js';
import type { SessionSummary, SimDevice } from '../../src/tools/sim/device.js';
import { Fleet, type FleetOptions, SimDevice as SimDeviceClass } from '../../src/tools/sim/fleet.js';
import { parseResponse } from '../../src/tools/sim/http10.js';
import { loadModel } from '../../src/tools/sim/model.js';
import { formatQuirks, parseQuirks, type Quirks, STRICT_QUIRKS } from '../../src/tools/sim/quirks.js';
import { withEnvelopePrefix } from '../../src/tools/sim/envelope-prefix.js';
import { parseSimulateArgs } from '../../src/tools/sim/cli.js';

// ---------------------------------------------------------------- parsing

test('parseQuirks: every quirk, the strict preset, none', () => {
  assert.deepEqual(parseQuirks(''), {});
  assert.deepEqual(parseQuirks('none'), {});
  assert.deepEqual(
    parseQuirks(
      'explicit-names-only,no-spa,no-value-change,no-cookies,soap-prefix=soapenv,http10,slow=250,max-gpv=32,no-deep-gpn,drop-on=Reboot,drop-on=AddObject',
    ),
    {
      explicitNamesOnly: true,
      noSpa: true,
      noValueChange: true,
      noCookies: true,
      soapPrefix: 'soapenv',
      http10: true,
      slowMs: 250,
      maxGpv: 32,
      noDeepGpn: true,
      dropOn: ['Reboot', 'AddObject'],
    },
  );
  assert.deepEqual(parseQuirks('soap-prefix='), { soapPrefix: '' }, 'empty prefix = default namespace');
  const strict = parseQuirks('strict');
  assert.deepEqual(strict, { explicitNamesOnly: true, noCookies: true, soapPrefix: 'SOAP-ENV', http10: true });
  assert.deepEqual(parseQuirks(STRICT_QUIRKS), strict);
  assert.deepEqual(parseQuirks(' strict , http10 ,max-gpv=8'), { ...strict, maxGpv: 8 }, 'flags may repeat');
  assert.equal(formatQuirks(strict), 'explicit-names-only,no-cookies,soap-prefix=SOAP-ENV,http10');
  assert.equal(formatQuirks({}), 'none');
  assert.deepEqual(parseQuirks(formatQuirks(parseQuirks('slow=5,drop-on=Reboot,no-spa'))), parseQuirks('no-spa,slow=5,drop-on=Reboot'));
});

test('parseQuirks: clear errors', () => {
  const bad: Array<[string, RegExp]> = [
    ['explicit-names', /unknown quirk "explicit-names" \(known: explicit-names-only, /],
    ['no-spa=1', /quirk "no-spa" takes no value/],
    ['slow', /quirk "slow" needs a value: slow=MS/],
    ['slow=fast', /slow.*MS must be an integer from 0 to 600000 \(got "fast"\)/],
    ['max-gpv=0', /max-gpv.*N must be an integer from 1/],
    ['max-gpv=-3', /max-gpv.*got "-3"/],
    ['soap-prefix=a:b', /"a:b" is not a usable XML namespace prefix/],
    ['soap-prefix=xmlns', /not a usable XML namespace prefix/],
    ['drop-on=Inform', /drop-on.*unknown ACS method "Inform" \(one of GetRPCMethods, /],
    ['drop-on', /needs a value: drop-on=METHOD/],
    ['slow=5,slow=6', /quirk "slow" given twice with different values \("5", "6"\)/],
    ['strict,soap-prefix=soap', /soap-prefix.*given twice/],
    ['none,http10', /"none" cannot be combined/],
  ];
  for (const [spec, re] of bad) assert.throws(() => parseQuirks(spec), re, spec);
});

test('simulate --quirks: parsed into the fleet options, errors name the flag', () => {
  const r = parseSimulateArgs(['--acs', 'http://127.0.0.1:1/', '--quirks', 'strict,slow=10']);
  assert.ok(!r.help);
  if (r.help) return;
  assert.deepEqual(r.opts.quirks, { ...parseQuirks('strict'), slowMs: 10 });
  const none = parseSimulateArgs(['--acs', 'http://127.0.0.1:1/']);
  assert.ok(!none.help && none.opts.quirks === undefined, 'no quirks by default');
  assert.throws(() => parseSimulateArgs(['--acs', 'http://127.0.0.1:1/', '--quirks', 'bogus']), /^Error: --quirks: unknown quirk "bogus"/);
});

// ---------------------------------------------------------------- RPC level

const R = 'Device.';

function dev(quirks: Quirks, model = 'tr181'): SimDevice {
  return new SimDeviceClass({ template: loadModel(model), serial: 'Q000001', index: 0, acsUrl: 'http://127.0.0.1:9/', quirks });
}

function fault(m: CwmpMessage): Fault {
  assert.equal(m.method, 'Fault', `expected a Fault, got ${JSON.stringify(m).slice(0, 200)}`);
  return m as Fault;
}

test('explicit-names-only: GPV/GPA of a partial path or an unknown name is dropped; full names, SPV, Add/Delete, GPN stay normal', () => {
  const d = dev(parseQuirks('explicit-names-only'));
  const ok = d.respond({ method: 'GetParameterValues', parameterNames: [R + 'DeviceInfo.SoftwareVersion', R + 'WiFi.SSID.1.SSID'] });
  assert.ok('answer' in ok && ok.answer.method === 'GetParameterValuesResponse' && ok.answer.parameterList.length === 2);
  for (const name of [R, R + 'WiFi.', '', R + 'WiFi', R + 'DeviceInfo.NoSuchThing', R + 'WiFi.SSID.99.SSID']) {
    for (const method of ['GetParameterValues', 'GetParameterAttributes'] as const) {
      const out = d.respond({ method, parameterNames: [R + 'DeviceInfo.SoftwareVersion', name] });
      assert.ok('drop' in out, `${method} ${JSON.stringify(name)} dropped`);
      assert.equal(out.drop.retry, true, 'a new session follows');
      assert.match(out.drop.reason, /explicit-names-only/);
    }
  }
  const gpn = d.respond({ method: 'GetParameterNames', parameterPath: R, nextLevel: false });
  assert.ok('answer' in gpn && gpn.answer.method === 'GetParameterNamesResponse' && gpn.answer.parameterList.length > 100);
  const spv = d.handleRpc({
    method: 'SetParameterValues',
    parameterKey: '',
    parameterList: [{ name: R + 'WiFi.SSID.1.SSID', value: 'q', type: 'xsd:string' }],
  });
  assert.equal(spv.method, 'SetParameterValuesResponse');
  const add = d.handleRpc({ method: 'AddObject', objectName: R + 'NAT.PortMapping.', parameterKey: '' });
  assert.equal(add.method, 'AddObjectResponse');
  const n = add.method === 'AddObjectResponse' ? add.instanceNumber : 0;
  assert.equal(d.handleRpc({ method: 'DeleteObject', objectName: `${R}NAT.PortMapping.${n}.`, parameterKey: '' }).method, 'DeleteObjectResponse');
  assert.throws(() => d.handleRpc({ method: 'GetParameterValues', parameterNames: [R] }), /dropped the connection/);
  // without the quirk the same partial path is answered
  const plain = dev({}).respond({ method: 'GetParameterValues', parameterNames: [R + 'WiFi.'] });
  assert.ok('answer' in plain && plain.answer.method === 'GetParameterValuesResponse');
});

test('no-spa: SetParameterAttributes -> 9000, attributes untouched, not in GetRPCMethods', () => {
  const d = dev(parseQuirks('no-spa'));
  const f = fault(
    d.handleRpc({
      method: 'SetParameterAttributes',
      parameterList: [{ name: R + 'WiFi.SSID.1.SSID', notificationChange: true, notification: 2, accessListChange: false, accessList: [] }],
    }),
  );
  assert.equal(f.faultCode, 9000);
  assert.equal(d.model.attr(R + 'WiFi.SSID.1.SSID').notification, 0);
  const m = d.handleRpc({ method: 'GetRPCMethods' });
  assert.ok(m.method === 'GetRPCMethodsResponse' && !m.methodList.includes('SetParameterAttributes') && m.methodList.includes('GetParameterAttributes'));
});

test('max-gpv=N: 9004 on more than N names, N names answered', () => {
  const d = dev(parseQuirks('max-gpv=2'));
  const names = [R + 'DeviceInfo.SoftwareVersion', R + 'DeviceInfo.HardwareVersion', R + 'DeviceInfo.Manufacturer'];
  const f = fault(d.handleRpc({ method: 'GetParameterValues', parameterNames: names }));
  assert.equal(f.faultCode, 9004);
  assert.equal(f.soapFaultCode, 'Server');
  const ok = d.handleRpc({ method: 'GetParameterValues', parameterNames: names.slice(0, 2) });
  assert.ok(ok.method === 'GetParameterValuesResponse' && ok.parameterList.length === 2);
  // a partial path counts as one name
  const partial = d.handleRpc({ method: 'GetParameterValues', parameterNames: [R + 'DeviceInfo.'] });
  assert.ok(partial.method === 'GetParameterValuesResponse' && partial.parameterList.length > 2);
});

test('no-deep-gpn: NextLevel=false on the root -> 9004; deeper objects and NextLevel=true stay normal', () => {
  for (const model of ['tr181', 'tr098'] as const) {
    const d = dev(parseQuirks('no-deep-gpn'), model);
    const root = d.model.root;
    assert.equal(fault(d.handleRpc({ method: 'GetParameterNames', parameterPath: root, nextLevel: false })).faultCode, 9004);
    assert.equal(fault(d.handleRpc({ method: 'GetParameterNames', parameterPath: '', nextLevel: false })).faultCode, 9004);
    const top = d.handleRpc({ method: 'GetParameterNames', parameterPath: root, nextLevel: true });
    assert.ok(top.method === 'GetParameterNamesResponse' && top.parameterList.some((p) => p.name === root + 'DeviceInfo.'));
    const deep = d.handleRpc({ method: 'GetParameterNames', parameterPath: root + 'DeviceInfo.', nextLevel: false });
    assert.ok(deep.method === 'GetParameterNamesResponse' && deep.parameterList.some((p) => p.name === root + 'DeviceInfo.SoftwareVersion'));
  }
});

test('drop-on=METHOD: that RPC is dropped without a retry; others answered', () => {
  const d = dev(parseQuirks('drop-on=Reboot'));
  const out = d.respond({ method: 'Reboot', commandKey: 'k' });
  assert.deepEqual(out, { drop: { retry: false, reason: 'drop-on=Reboot' } });
  assert.deepEqual(d.takePostActions(), [], 'a dropped Reboot does not reboot');
  assert.equal(d.handleRpc({ method: 'GetRPCMethods' }).method, 'GetRPCMethodsResponse');
});

test('withEnvelopePrefix: SOAP-ENV, soap, default namespace; decodes back to the same message', () => {
  const env: SoapEnvelope = {
    cwmpVersion: '1-0',
    id: 'id-1',
    body: {
      method: 'GetParameterValuesResponse',
      parameterList: [{ name: 'Device.X', value: '<soap-env:Body> " soap-env:mustUnderstand="1"', type: 'xsd:string' }],
    },
  };
  const xml = encodeSoap(env);
  for (const p of ['SOAP-ENV', 'soap', 'soapenv', '']) {
    const out = withEnvelopePrefix(xml, p);
    const el = p === '' ? '' : `${p}:`;
    assert.ok(
      out.includes(
        p === '' ? '<Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/"' : `<${p}:Envelope xmlns:${p}="http://schemas.xmlsoap.org/soap/envelope/"`,
      ),
      out,
    );
    assert.ok(out.includes(`<${el}Header><cwmp:ID ${el}mustUnderstand="1">id-1</cwmp:ID></${el}Header><${el}Body>`), out);
    assert.ok(out.endsWith(`</${el}Body></${el}Envelope>`));
    assert.ok(!/<\/?soap-env:|xmlns:soap-env=/.test(out), 'no soap-env markup left');
    assert.ok(out.includes('xmlns:cwmp="urn:dslforum-org:cwmp-1-0"') && out.includes('<cwmp:GetParameterValuesResponse>'), 'cwmp prefix kept');
    const back = decodeSoap(out).envelope!;
    assert.equal(back.id, 'id-1');
    assert.deepEqual(back.body, env.body, 'values untouched, even ones that look like markup');
  }
  assert.equal(withEnvelopePrefix(xml, 'soap-env'), xml);
});

test('HTTP/1.0 response parser: Content-Length, chunked, close-delimited, interim 1xx, keep-alive rules', () => {
  const b = (s: string) => Buffer.from(s, 'latin1');
  const cl = parseResponse(b('HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\nabc'), false)!;
  assert.equal(cl.response.status, 200);
  assert.equal(cl.response.body.toString(), 'abc');
  assert.equal(cl.keepAlive, true);
  assert.equal(parseResponse(b('HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nab'), false), null, 'incomplete');
  assert.equal(parseResponse(b('HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nabc'), false)!.keepAlive, false, 'HTTP/1.0 without keep-alive closes');
  assert.equal(parseResponse(b('HTTP/1.1 204 No Content\r\n\r\n'), false)!.keepAlive, true, 'HTTP/1.1 keeps by default');
  assert.equal(parseResponse(b('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n'), false)!.keepAlive, false);
  const ch = parseResponse(
    b('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nT: 1\r\n\r\n'),
    false,
  )!;
  assert.equal(ch.response.body.toString(), 'abcde');
  assert.equal(parseResponse(b('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab'), false), null);
  assert.equal(parseResponse(b('HTTP/1.0 200 OK\r\n\r\nuntil close'), false), null);
  const eof = parseResponse(b('HTTP/1.0 200 OK\r\n\r\nuntil close'), true)!;
  assert.equal(eof.response.body.toString(), 'until close');
  assert.equal(eof.keepAlive, false);
  assert.throws(() => parseResponse(b('SMTP ready\r\n\r\n'), false), /malformed status line/);
  assert.throws(() => parseResponse(b('HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n'), false), /bad Content-Length/);
  assert.throws(() => parseResponse(b('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'), false), /bad chunk size/);
  assert.throws(() => parseResponse(Buffer.alloc(70_000, 0x41), false), /head too large/);
});

// ---------------------------------------------------------------- on the wire

interface SeenRequest {
  conn: number;
  httpVersion: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  msg: CwmpMessage | null;
  at: number;
}

interface Session {
  conn: number;
  inform: Inform;
  /** Everything the CPE sent after the Inform on this connection. */
  after: SeenRequest[];
}

/**
 * A raw ACS: a CWMP session is the TCP connection of its Inform, or the connection named by the
 * session cookie when the CPE sends it back; answered from `script`. The bytes every
 * connection carried are kept.
 */
class RawAcs {
  readonly server: http.Server;
  url = '';
  readonly raw = new Map<number, string>();
  readonly closed = new Set<number>();
  readonly requests: SeenRequest[] = [];
  readonly sessions: Session[] = [];
  script: (inform: Inform, n: number) => AcsRequest[] = () => [];
  private connSeq = 0;
  private readonly connOf = new WeakMap<Socket, number>();
  private readonly queues = new Map<number, { s: Session; queue: AcsRequest[] }>();
  private waiters: Array<{ pred: () => boolean; resolve: () => void }> = [];

  constructor() {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => this.handle(req, res, Buffer.concat(chunks).toString('utf8')));
    });
    this.server.on('connection', (sock: Socket) => {
      const id = ++this.connSeq;
      this.connOf.set(sock, id);
      this.raw.set(id, '');
      sock.on('data', (c: Buffer) => this.raw.set(id, this.raw.get(id) + c.toString('latin1')));
      sock.on('close', () => {
        this.closed.add(id);
        this.poke();
      });
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

  /** Resolves once pred() holds (checked after every request and connection close). */
  until(pred: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
    if (pred()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), timeoutMs);
      this.waiters.push({
        pred,
        resolve: () => {
          clearTimeout(t);
          resolve();
        },
      });
    });
  }

  private poke(): void {
    this.waiters = this.waiters.filter((w) => {
      if (!w.pred()) return true;
      w.resolve();
      return false;
    });
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse, body: string): void {
    const conn = this.connOf.get(req.socket)!;
    const cookie = /acs-session=(\d+)/.exec(req.headers.cookie ?? '')?.[1];
    const sessionKey = cookie !== undefined ? Number(cookie) : conn;
    const env = body.trim() === '' ? null : decodeSoap(body).envelope;
    const seen: SeenRequest = { conn, httpVersion: req.httpVersion, headers: req.headers, body, msg: env?.body ?? null, at: Date.now() };
    this.requests.push(seen);
    const send = (e: SoapEnvelope, cookie = false): void => {
      const xml = Buffer.from(encodeSoap(e), 'utf8');
      // A known length lets node keep an HTTP/1.0 keep-alive connection open.
      const headers: Record<string, string | number> = { 'Content-Type': 'text/xml; charset="utf-8"', 'Content-Length': xml.length };
      if (cookie) headers['Set-Cookie'] = `acs-session=${conn}; Path=/`;
      res.writeHead(200, headers).end(xml);
    };
    if (env?.body.method === 'Inform') {
      const s: Session = { conn, inform: env.body, after: [] };
      this.sessions.push(s);
      this.queues.set(conn, { s, queue: this.script(env.body, this.sessions.length - 1) });
      send({ cwmpVersion: env.cwmpVersion, id: env.id, body: { method: 'InformResponse', maxEnvelopes: 1 } }, true);
    } else {
      const st = this.queues.get(sessionKey);
      st?.s.after.push(seen);
      const next = st?.queue.shift();
      if (next) send({ cwmpVersion: '1-0', id: `acs-${this.requests.length}`, body: next });
      else res.writeHead(204).end();
    }
    this.poke();
  }
}

const acs = new RawAcs();
await acs.start();
const fleets: Fleet[] = [];
after(async () => {
  for (const f of fleets) await f.stop();
  await acs.close();
});

async function startDevice(prefix: string, quirks: Quirks, extra: Partial<FleetOptions> = {}): Promise<SimDevice> {
  const f = new Fleet({
    acsUrl: acs.url,
    count: 1,
    model: 'tr181',
    serialPrefix: prefix,
    periodicIntervalS: null,
    bootstrap: false,
    quirks,
    timers: { retryMinWaitS: 0.02, retryMultiplier: 2000, httpTimeoutMs: 3000 },
    ...extra,
  });
  fleets.push(f);
  await f.start();
  return f.devices[0]!;
}

const serialIs = (s: Session, d: SimDevice): boolean => s.inform.deviceId.serialNumber === d.serial;
const sessionsOf = (d: SimDevice): Session[] => acs.sessions.filter((s) => serialIs(s, d));
const GPV_ONE: AcsRequest = { method: 'GetParameterValues', parameterNames: ['Device.DeviceInfo.SoftwareVersion'] };

test('http10: HTTP/1.0 request lines with Connection: Keep-Alive; one connection per session when the ACS keeps it', async () => {
  acs.script = () => [GPV_ONE, GPV_ONE];
  const d = await startDevice('H10', parseQuirks('http10'));
  const s = sessionsOf(d)[0]!;
  assert.equal(s.after.length, 3, 'empty POST and two answers on the same connection');
  assert.ok(s.after.every((r) => r.conn === s.conn));
  const raw = acs.raw.get(s.conn)!;
  const heads = raw.split(/(?=POST )/);
  assert.equal(heads.length, 4, 'Inform, empty POST, two answers');
  for (const h of heads) {
    assert.match(h, /^POST \/acs HTTP\/1\.0\r\n/);
    assert.match(h, /\r\nConnection: Keep-Alive\r\n/);
    assert.match(h, /\r\nContent-Length: \d+\r\n/);
    assert.match(h, /\r\nHost: 127\.0\.0\.1:\d+\r\n/);
  }
  assert.match(heads[1]!, /Content-Length: 0\r\n/);
  assert.ok(!/Content-Type/.test(heads[1]!.split('\r\n\r\n')[0]!), 'the empty POST has no Content-Type');
  assert.ok(s.after.every((r) => r.httpVersion === '1.0'));
  assert.equal(d.stats.bytesSent, Buffer.byteLength(raw, 'latin1'), 'bytes sent counted on the wire');
  assert.ok(d.stats.bytesReceived > 0);
  acs.script = () => [];
});

test('http10 against an ACS that closes after every answer: a new connection per request, the session goes on', async () => {
  const closeAll = (_req: http.IncomingMessage, res: http.ServerResponse): void => {
    res.shouldKeepAlive = false;
  };
  acs.server.prependListener('request', closeAll);
  try {
    acs.script = () => [GPV_ONE];
    const d = await startDevice('H10C', parseQuirks('http10'));
    const s = sessionsOf(d)[0]!;
    assert.equal(s.after.length, 2, 'empty POST and the answer, found through the session cookie');
    assert.equal(new Set([s.conn, ...s.after.map((r) => r.conn)]).size, 3, 'each request on a new connection');
    assert.ok(s.after[1]!.msg?.method === 'GetParameterValuesResponse');
    assert.equal(d.stats.sessionsOk, 1);
  } finally {
    acs.server.off('request', closeAll);
    acs.script = () => [];
  }
});

test('no-cookies: Set-Cookie is ignored; the default sends it back', async () => {
  acs.script = () => [GPV_ONE];
  const plain = await startDevice('CK', {});
  const quirky = await startDevice('NOCK', parseQuirks('no-cookies'));
  const a = sessionsOf(plain)[0]!;
  const b = sessionsOf(quirky)[0]!;
  assert.ok(a.after.length === 2 && a.after.every((r) => r.headers.cookie === `acs-session=${a.conn}`));
  assert.ok(b.after.length === 2 && b.after.every((r) => r.headers.cookie === undefined));
  assert.equal(quirky.stats.sessionsOk, 1);
  // Bytes on the wire, counted at the CPE's socket: all the ACS read on the session's connection.
  assert.equal(plain.stats.bytesSent, Buffer.byteLength(acs.raw.get(a.conn)!, 'latin1'));
  assert.ok(plain.stats.bytesReceived > 0);
  acs.script = () => [];
});

test('soap-prefix: every envelope the CPE sends uses the prefix (or the default namespace)', async () => {
  acs.script = () => [GPV_ONE, { method: 'GetParameterValues', parameterNames: ['Device.NoSuch.Thing'] }];
  for (const [prefix, open] of [
    ['SOAP-ENV', '<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"'],
    ['', '<Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/"'],
  ] as const) {
    const d = await startDevice(`SP${prefix.length}X`, { soapPrefix: prefix });
    const s = sessionsOf(d)[0]!;
    const bodies = acs.requests.filter((r) => r.conn === s.conn && r.body !== '').map((r) => r.body);
    assert.equal(bodies.length, 3, 'Inform, GPV response, Fault');
    for (const b of bodies) {
      assert.ok(b.includes(open), b.slice(0, 200));
      assert.ok(!b.includes('soap-env'), 'no codec prefix left');
    }
    assert.ok(bodies[2]!.includes(prefix ? '<SOAP-ENV:Fault>' : '<Fault>'));
    assert.equal((s.after[2]!.msg as Fault).faultCode, 9005, 'the ACS decodes the fault');
  }
  acs.script = () => [];
});

test('slow=MS: every request leaves MS ms or more after the previous answer', async () => {
  acs.script = () => [GPV_ONE, GPV_ONE];
  const d = await startDevice('SLOW', parseQuirks('slow=60'));
  const s = sessionsOf(d)[0]!;
  const reqs = acs.requests.filter((r) => r.conn === s.conn);
  assert.equal(reqs.length, 4);
  // The ACS answers at once, so the gap between two requests is the CPE's pause (timers may fire 1 ms early).
  for (let i = 1; i < reqs.length; i++) assert.ok(reqs[i]!.at - reqs[i - 1]!.at >= 59, `gap ${i}: ${reqs[i]!.at - reqs[i - 1]!.at} ms`);
  acs.script = () => [];
});

test('explicit-names-only over the wire: a partial-path GPV drops the TCP connection, then a retried session carries the undelivered events', async () => {
  acs.script = () => [];
  const d = await startDevice('XNO', parseQuirks('strict'));
  const boot = sessionsOf(d).length;
  acs.script = (inform) =>
    inform.deviceId.serialNumber !== d.serial ? [] : inform.retryCount === 0 ? [{ method: 'GetParameterValues', parameterNames: ['Device.WiFi.'] }] : [GPV_ONE];
  const retried = new Promise<SessionSummary>((resolve) => {
    const on = (s: SessionSummary): void => {
      if (!s.ok) return;
      d.off('session', on);
      resolve(s);
    };
    d.on('session', on);
  });
  const summary = await d.inform(['6 CONNECTION REQUEST']);
  assert.equal(summary.ok, false);
  assert.match(summary.error ?? '', /dropped the connection \(explicit-names-only: GetParameterValues of "Device.WiFi."\)/);
  assert.deepEqual(summary.rpcs, ['GetParameterValues']);
  const first = sessionsOf(d)[boot]!;
  await acs.until(() => acs.closed.has(first.conn), 'the dropped connection');
  assert.equal(first.after.length, 1, 'only the empty POST: the GPV was never answered');
  assert.equal(first.after[0]!.body, '');
  const again = await retried;
  assert.deepEqual(again.events, ['6 CONNECTION REQUEST']);
  assert.deepEqual(again.rpcs, ['GetParameterValues']);
  const retry = sessionsOf(d)[boot + 1]!;
  assert.notEqual(retry.conn, first.conn);
  assert.equal(retry.inform.retryCount, 1, 'TR-069 3.2.1.1 RetryCount');
  assert.deepEqual(
    retry.inform.event.map((e) => e.eventCode),
    ['6 CONNECTION REQUEST'],
  );
  const answer = retry.after[1]!.msg;
  assert.ok(
    answer?.method === 'GetParameterValuesResponse' && answer.parameterList[0]!.name === 'Device.DeviceInfo.SoftwareVersion',
    'explicit names answered',
  );
  assert.equal(d.stats.drops, 1);
  acs.script = () => [];
});

test('drop-on=METHOD over the wire: the connection closes and the CPE stays silent until its next Inform', async () => {
  acs.script = () => [];
  const d = await startDevice('DROP', parseQuirks('drop-on=GetParameterNames'));
  const boot = sessionsOf(d).length;
  acs.script = (inform) => (inform.deviceId.serialNumber === d.serial ? [{ method: 'GetParameterNames', parameterPath: 'Device.', nextLevel: true }] : []);
  const summary = await d.inform(['6 CONNECTION REQUEST']);
  assert.equal(summary.ok, false);
  assert.match(summary.error ?? '', /drop-on=GetParameterNames/);
  const first = sessionsOf(d)[boot]!;
  await acs.until(() => acs.closed.has(first.conn), 'the dropped connection');
  // A retry would come within the retry window (20-40 ms here); wait ten times that.
  await new Promise((r) => setTimeout(r, 400));
  assert.equal(sessionsOf(d).length, boot + 1, 'no retry session');
  acs.script = () => [];
  const next = await d.inform(['2 PERIODIC']);
  assert.ok(next.ok);
  const s = sessionsOf(d)[boot + 1]!;
  assert.equal(s.inform.retryCount, 0, 'not a retry');
  assert.deepEqual(
    s.inform.event.map((e) => e.eventCode),
    ['2 PERIODIC'],
  );
});

test('no-value-change: a changed parameter with notification on never brings 4 VALUE CHANGE; without the quirk it does', async () => {
  acs.script = () => [];
  const spa: AcsRequest = {
    method: 'SetParameterAttributes',
    parameterList: [{ name: 'Device.WiFi.SSID.1.SSID', notificationChange: true, notification: 1, accessListChange: false, accessList: [] }],
  };
  const results: Record<string, string[]> = {};
  for (const [prefix, quirks] of [
    ['VC', {}],
    ['NOVC', parseQuirks('no-value-change')],
  ] as const) {
    const d = await startDevice(prefix, quirks);
    acs.script = (inform) => (inform.deviceId.serialNumber === d.serial && inform.event.some((e) => e.eventCode === '2 PERIODIC') ? [spa] : []);
    await d.inform(['2 PERIODIC']);
    assert.equal(d.model.attr('Device.WiFi.SSID.1.SSID').notification, 1, 'the attribute is stored');
    acs.script = () => [];
    d.setValue('Device.WiFi.SSID.1.SSID', `changed-${prefix}`);
    await d.inform(['6 CONNECTION REQUEST']);
    const last = sessionsOf(d).at(-1)!;
    results[prefix] = last.inform.event.map((e) => e.eventCode);
    const carried = last.inform.parameterList.some((p) => p.name === 'Device.WiFi.SSID.1.SSID');
    assert.equal(carried, prefix === 'VC', `${prefix}: the changed parameter in the Inform`);
  }
  assert.deepEqual(results, { VC: ['6 CONNECTION REQUEST', '4 VALUE CHANGE'], NOVC: ['6 CONNECTION REQUEST'] });
});
