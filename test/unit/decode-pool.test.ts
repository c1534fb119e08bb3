/** Large bodies are decoded on worker threads exactly as inline; errors keep what the ACS needs to fault back. */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { bodyText } from '../../src/cwmp/body-text.js';
import { DecodePool } from '../../src/cwmp/decode-pool.js';
import { packLists, unpackLists } from '../../src/cwmp/parameter-columns.js';
import { decodeSoap, encodeSoap, SoapError } from '../../src/cwmp/soap.js';
import { fixture } from '../helpers/paths.js';

const pool = new DecodePool(2, 0); // every body on a worker
after(() => pool.close());

test('every fixture decodes on a worker to what decodeSoap gives inline, warnings included', async () => {
  const files = ['acs', 'cpe', 'foreign'].flatMap((d) =>
    readdirSync(fixture('soap', d))
      .filter((f) => f.endsWith('.xml'))
      .map((f) => fixture('soap', d, f)),
  );
  assert.ok(files.length > 40);
  for (const f of files) {
    const xml = readFileSync(f, 'utf8');
    assert.deepEqual(await pool.decode(xml, Buffer.byteLength(xml)), decodeSoap(xml), f);
  }
  const nul = readFileSync(fixture('soap', 'cpe', 'Kicked.1-1.xml'), 'utf8') + '\u0000';
  assert.deepEqual((await pool.decode(nul, nul.length)).warnings, ['1 NUL character(s) after the envelope ignored']);
});

test('a worker error is a SoapError with code, cwmp version, cwmp:ID and method', async () => {
  const xml =
    '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:c="urn:dslforum-org:cwmp-1-2"><s:Header><c:ID s:mustUnderstand="1">w-1</c:ID></s:Header>' +
    '<s:Body><c:ChangeDUState/></s:Body></s:Envelope>';
  await assert.rejects(pool.decode(xml, xml.length), (e: unknown) => {
    assert.ok(e instanceof SoapError);
    assert.equal(e.code, 'unsupported-method');
    assert.equal(e.cwmpVersion, '1-2');
    assert.equal(e.id, 'w-1');
    assert.equal(e.method, 'ChangeDUState');
    return true;
  });
  await assert.rejects(pool.decode('<!DOCTYPE x><x/>', 16), (e: unknown) => e instanceof SoapError && e.code === 'forbidden-dtd');
});

test('small bodies are parsed inline while the main thread is idle and go to the worker once it is busy', async () => {
  const adaptive = new DecodePool(1, 0, {}, { inlineBytes: 4096, busyUtilization: 0.75, windowMs: 20 });
  try {
    const xml = readFileSync(fixture('soap', 'cpe', 'Kicked.1-1.xml'), 'utf8');
    const size = Buffer.byteLength(xml);
    assert.ok(size < 4096);
    // Idle: the event loop waited in the poll phase for the whole window.
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(adaptive.placement(size), 'inline');
    assert.deepEqual(await adaptive.decode(xml, size), decodeSoap(xml));
    // Over the limit, always the worker, idle or not (the event-loop bound of one large body).
    assert.equal(adaptive.placement(4097), 'worker');
    // Busy: the whole next window is spent in this synchronous loop.
    const until = performance.now() + 60;
    while (performance.now() < until);
    assert.equal(adaptive.placement(size), 'worker');
    assert.deepEqual(await adaptive.decode(xml, size), decodeSoap(xml));
    // Idle again: back inline.
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(adaptive.placement(size), 'inline');
  } finally {
    await adaptive.close();
  }
  // Without workers everything is inline; below the worker threshold too, busy or not.
  const none = new DecodePool(0, 0, {}, { inlineBytes: 4096 });
  assert.equal(none.placement(1_000_000), 'inline');
  const threshold = new DecodePool(1, 65536, {}, { inlineBytes: 0 });
  try {
    assert.equal(threshold.placement(65535), 'inline');
    assert.equal(threshold.placement(65536), 'worker');
  } finally {
    await threshold.close();
  }
});

test('bodies handed over in one turn (28: more than one message takes, 4) leave in bounded batches and each gets its own answer, a long one and a bad one among them', async () => {
  const one = new DecodePool(1, 0);
  try {
    const small = readFileSync(fixture('soap', 'cpe', 'Kicked.1-1.xml'), 'utf8');
    const files = readdirSync(fixture('soap', 'cpe'))
      .filter((f) => f.endsWith('.xml'))
      .map((f) => readFileSync(fixture('soap', 'cpe', f), 'utf8'));
    // Over the worker's long-body mark (32 KiB): the answers before it leave first.
    const long = files.reduce((a, b) => (b.length > a.length ? b : a));
    const padded = long.replace('<soap', `${' '.repeat(40 * 1024)}<soap`);
    assert.ok(padded.length > 40 * 1024);
    const bodies = [...files, padded, '<x', small];
    const results = await Promise.allSettled(bodies.map((b) => one.decode(b, Buffer.byteLength(b))));
    bodies.forEach((b, i) => {
      let inline: unknown;
      try {
        inline = { status: 'fulfilled', value: decodeSoap(b) };
      } catch (e) {
        assert.ok(e instanceof SoapError);
        const r = results[i]!;
        assert.equal(r.status, 'rejected', `body ${i}`);
        assert.ok(r.status === 'rejected' && r.reason instanceof SoapError && r.reason.code === e.code, `body ${i}`);
        return;
      }
      assert.deepEqual(results[i], inline, `body ${i}`);
    });
    // A pool closed with bodies not yet posted rejects their callers instead of leaving them waiting.
    const rejected = assert.rejects(one.decode(small, small.length), /the decode pool was closed/);
    await one.close();
    await rejected;
  } finally {
    await one.close();
  }
});

/** A GetParameterValuesResponse of n parameters, as a CPE sends it (about 125 bytes each). */
function bigResponse(n: number): string {
  const parameterList = Array.from({ length: n }, (_, i) => ({
    name: `Device.X_VENDOR_Table.${i + 1}.Value`,
    value: `value-${i}`,
    type: 'xsd:string',
  }));
  return encodeSoap({ cwmpVersion: '1-0', id: 'big-1', body: { method: 'GetParameterValuesResponse', parameterList } });
}

/** The order in which the decodes of these bodies, handed over in one turn, settle. */
async function settleOrder(pool: DecodePool, bodies: string[]): Promise<number[]> {
  const order: number[] = [];
  await Promise.all(bodies.map((b, i) => pool.decode(b, Buffer.byteLength(b)).then(() => order.push(i))));
  return order;
}

test('a big body has a worker of its own: a small body handed over after it is not queued behind its parse', async () => {
  const small = readFileSync(fixture('soap', 'cpe', 'Kicked.1-1.xml'), 'utf8');
  const big = bigResponse(8000);
  assert.ok(Buffer.byteLength(big) > 65536);
  const lanes = new DecodePool(1, 0, {}, {}, { bulkBytes: 65536 });
  const shared = new DecodePool(1, 0);
  try {
    // Both workers of each pool started first, so that no start-up is measured.
    await settleOrder(lanes, [big, small]);
    await settleOrder(shared, [big, small]);
    assert.equal(lanes.workersRunning, 2);
    assert.equal(shared.workersRunning, 1);
    // One shared worker parses in order: the small body waits for the big one.
    assert.deepEqual(await settleOrder(shared, [big, small]), [0, 1]);
    // With the bulk lane it is answered while the big one is still being parsed.
    assert.deepEqual(await settleOrder(lanes, [big, small]), [1, 0]);
    const decoded = await lanes.decode(big, Buffer.byteLength(big));
    assert.deepEqual(decoded, decodeSoap(big));
  } finally {
    await lanes.close();
    await shared.close();
  }
});

test('workers start on their first body and stop after parseWorkerIdleMs without one; the next body starts one again', async () => {
  const small = readFileSync(fixture('soap', 'cpe', 'Kicked.1-1.xml'), 'utf8');
  const big = bigResponse(1000);
  const pool = new DecodePool(1, 0, {}, {}, { bulkBytes: 65536, idleMs: 200 });
  const stopped = async (): Promise<void> => {
    for (let i = 0; i < 500 && pool.workersRunning > 0; i++) await new Promise((r) => setTimeout(r, 10));
  };
  try {
    assert.equal(pool.workersRunning, 0);
    assert.deepEqual(await pool.decode(small, small.length), decodeSoap(small));
    // Only the shared lane's worker: no big body yet.
    assert.equal(pool.workersRunning, 1);
    await stopped();
    assert.equal(pool.workersRunning, 0);
    // Both lanes in one turn: both start, and both are still there when both have answered.
    const both = await Promise.all([pool.decode(big, Buffer.byteLength(big)), pool.decode(small, small.length)]);
    assert.deepEqual(both, [decodeSoap(big), decodeSoap(small)]);
    assert.equal(pool.workersRunning, 2);
    await stopped();
    assert.equal(pool.workersRunning, 0);
    assert.deepEqual(await pool.decode(small, small.length), decodeSoap(small));
  } finally {
    await pool.close();
  }
  assert.equal(pool.workersRunning, 0);
});

test('a shared worker is kept while bodies keep coming inline (the main thread idle) and stops once no body comes at all', async () => {
  const small = readFileSync(fixture('soap', 'cpe', 'Kicked.1-1.xml'), 'utf8');
  const medium = bigResponse(20);
  assert.ok(medium.length > small.length);
  // Bodies up to small's size are parsed inline unless the main thread is busy (it is not: the
  // test waits on timers); the medium one always goes to the worker. No bulk lane.
  const pool = new DecodePool(1, 0, {}, { inlineBytes: small.length, busyUtilization: 0.99, windowMs: 100 }, { idleMs: 1000 });
  try {
    assert.deepEqual(await pool.decode(medium, medium.length), decodeSoap(medium));
    assert.equal(pool.workersRunning, 1);
    // Two and a half idle windows of inline bodies, one every 50 ms: the worker is not idle-stopped.
    for (let t = 0; t < 2500; t += 50) {
      assert.deepEqual(await pool.decode(small, small.length), decodeSoap(small));
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(pool.workersRunning, 1, 'bodies kept coming: the worker stays (and stays compiled)');
    for (let i = 0; i < 500 && pool.workersRunning > 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(pool.workersRunning, 0, 'no body for idleMs: the worker stops');
  } finally {
    await pool.close();
  }
});

/** A body in chunks of `size` bytes (a multi-byte character may straddle two), as separate socket reads give it. */
function chunked(b: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < b.length; at += size) out.push(Buffer.from(b.subarray(at, at + size)));
  return out;
}

test('a big body goes to a worker as the bytes read and decodes as on the main thread, in every charset a CPE uses', async () => {
  const parameterList = Array.from({ length: 800 }, (_, i) => ({ name: `Device.X_VENDOR_Names.${i + 1}.Name`, value: `café Ü €uro ${i}`, type: 'xsd:string' }));
  const xml = encodeSoap({ cwmpVersion: '1-0', id: 'cs-1', body: { method: 'GetParameterValuesResponse', parameterList } });
  const utf16be = (s: string): Buffer => Buffer.from(s, 'utf16le').swap16();
  const cp1252 = Buffer.from(xml.replace(/€/g, '\x80'), 'latin1'); // windows-1252 0x80 is the euro sign
  const cases: { label: string; bytes: Buffer; contentType?: string }[] = [
    { label: 'utf-8 labelled', bytes: Buffer.from(xml), contentType: 'text/xml; charset="utf-8"' },
    { label: 'utf-8 unlabelled', bytes: Buffer.from(xml) },
    { label: 'utf-16le with a byte order mark', bytes: Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(xml, 'utf16le')]) },
    { label: 'utf-16be with a byte order mark', bytes: Buffer.concat([Buffer.from([0xfe, 0xff]), utf16be(xml)]) },
    { label: 'windows-1252 labelled ISO-8859-1', bytes: cp1252, contentType: 'text/xml; charset=ISO-8859-1' },
    { label: 'an unknown label (read as UTF-8, reported)', bytes: Buffer.from(xml), contentType: 'text/xml; charset=x-klingon' },
  ];
  const lanes = new DecodePool(1, 0, {}, { inlineBytes: 8192 }, { bulkBytes: 65_536 });
  try {
    for (const c of cases) {
      assert.equal(lanes.placement(c.bytes.length), 'worker', c.label);
      const expected = bodyText(c.bytes, c.contentType);
      for (const size of [7777, 65_536]) {
        const got = await lanes.decodeBody(chunked(c.bytes, size), c.bytes.length, c.contentType);
        const { unknownLabel, ...decoded } = got;
        assert.deepEqual(decoded, decodeSoap(expected.text), `${c.label}, chunks of ${size}`);
        assert.equal(unknownLabel, expected.unknownLabel, c.label);
      }
      const first = (await lanes.decodeBody(chunked(c.bytes, 7777), c.bytes.length, c.contentType)).envelope;
      assert.ok(first?.body.method === 'GetParameterValuesResponse' && first.body.parameterList[799]!.value === 'café Ü €uro 799', c.label);
    }
    // Only white space: no message (an empty POST), on the worker as inline.
    const blank = Buffer.alloc(40_000, ' ');
    assert.deepEqual(await lanes.decodeBody(chunked(blank, 16_384), blank.length, undefined), { envelope: null, warnings: [] });
    assert.deepEqual(await lanes.decodeBody([Buffer.from(' \r\n')], 3, undefined), { envelope: null, warnings: [] });
  } finally {
    await lanes.close();
  }
});

test('a big body over the parse budget is refused from its bytes on the worker, and the next body decodes', async () => {
  const limited = new DecodePool(1, 0, { budget: { maxElements: 1000, maxAttributes: 1000, maxMs: 5000 } });
  try {
    const bomb = Buffer.from(`<a>${'<b/>'.repeat(20_000)}</a>`);
    await assert.rejects(limited.decodeBody(chunked(bomb, 4096), bomb.length, undefined), (e: unknown) => e instanceof SoapError && e.code === 'over-budget');
    const xml = bigResponse(300);
    const bytes = Buffer.from(xml);
    assert.deepEqual(await limited.decodeBody(chunked(bytes, 9000), bytes.length, undefined), decodeSoap(xml));
  } finally {
    await limited.close();
  }
});

test('long parameter lists come back from the worker in columns and read back entry for entry', async () => {
  const values = bigResponse(500);
  const names = encodeSoap({
    cwmpVersion: '1-2',
    id: 'gpn-1',
    body: {
      method: 'GetParameterNamesResponse',
      parameterList: Array.from({ length: 300 }, (_, i) => ({ name: `Device.IP.Interface.${i + 1}.`, writable: i % 3 === 0 })),
    },
  });
  for (const xml of [values, names]) {
    const inline = decodeSoap(xml);
    assert.deepEqual(await pool.decode(xml, Buffer.byteLength(xml)), inline);
    const copy = structuredClone(inline);
    const packed = packLists(copy);
    assert.ok(packed, 'a long list is packed');
    assert.equal((copy.envelope!.body as { parameterList: unknown[] }).parameterList.length, 0);
    unpackLists(copy, structuredClone(packed));
    assert.deepEqual(copy, inline);
  }
  // A short list travels as it is.
  const short = decodeSoap(bigResponse(10));
  assert.equal(packLists(short), undefined);
  assert.equal((short.envelope!.body as { parameterList: unknown[] }).parameterList.length, 10);
});

/** Nice values of this process's threads (field 19 of /proc/self/task/T/stat), or null where there is no /proc. */
function threadNices(): number[] | null {
  try {
    return readdirSync('/proc/self/task').map((t) => Number(readFileSync(`/proc/self/task/${t}/stat`, 'utf8').split(') ')[1]!.split(' ')[16]));
  } catch {
    return null;
  }
}

test('the big-body worker runs at acs.bulkParseNice, the shared worker and the main thread as the proxy', {
  skip: threadNices() === null ? 'no /proc' : false,
}, async () => {
  const small = readFileSync(fixture('soap', 'cpe', 'Kicked.1-1.xml'), 'utf8');
  const big = bigResponse(1000);
  const before = threadNices()!;
  const lanes = new DecodePool(1, 0, {}, {}, { bulkBytes: 65_536, bulkNice: 10 });
  try {
    await lanes.decode(small, Buffer.byteLength(small));
    assert.deepEqual(threadNices()!.filter((n) => n !== 0).length, before.filter((n) => n !== 0).length, 'the shared worker keeps the priority');
    await lanes.decode(big, Buffer.byteLength(big));
    assert.equal(lanes.workersRunning, 2);
    const nices = threadNices()!;
    assert.equal(nices.filter((n) => n === 10).length, before.filter((n) => n === 10).length + 1, `one thread more at nice 10: ${nices}`);
    assert.equal(Number(readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[16]), 0, 'the main thread keeps the priority');
  } finally {
    await lanes.close();
  }
});
