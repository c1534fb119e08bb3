/**
 * Secrets never reach a log line (README "Security"): every path of REDACT_PATHS is censored in
 * the JSON line, in pretty lines too, the caller's objects are left as they were, and a line
 * without secrets is written as given.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createLogger, infoLine, REDACT_PATHS, redactSecrets } from '../../src/app/log.js';

function capture(pretty = false): { lines: string[]; log: ReturnType<typeof createLogger> } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      cb();
    },
  });
  return { lines, log: createLogger('info', sink as never, { pretty }) };
}

/** An object with the secret "s3cr3t-<path>" at `path` ("*" as a key named "any"). */
function withSecret(path: string): Record<string, unknown> {
  const keys = path.split('.').map((k) => (k === '*' ? 'any' : k));
  const root: Record<string, unknown> = {};
  let at = root;
  for (const k of keys.slice(0, -1)) at = at[k] = {} as Record<string, unknown>;
  at[keys.at(-1)!] = `s3cr3t-${path}`;
  return root;
}

test('every REDACT_PATHS path is censored in the JSON line, and the caller object is unchanged', async () => {
  const { lines, log } = capture();
  for (const p of REDACT_PATHS) {
    const o = withSecret(p);
    const before = JSON.stringify(o);
    log.info(o, `path ${p}`);
    assert.equal(JSON.stringify(o), before, `${p}: the object logged is not modified`);
  }
  await new Promise((r) => setImmediate(r));
  assert.equal(lines.length, REDACT_PATHS.length);
  for (const line of lines) {
    assert.doesNotMatch(line, /s3cr3t/, line);
    assert.match(line, /\[redacted\]/, line);
  }
});

test('secrets inside arrays and child bindings are censored; pretty lines too', async () => {
  const { lines, log } = capture();
  log.child({ device: { cpePassword: 's3cr3t-binding' } }).info({ rows: [{ password: 's3cr3t-row' }] }, 'rows');
  const pretty = capture(true);
  pretty.log.info({ creds: { connReqPassword: 's3cr3t-pretty' } }, 'pretty');
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(lines.length, 1);
  assert.doesNotMatch(lines[0]!, /s3cr3t/);
  assert.ok(pretty.lines.length >= 1);
  assert.doesNotMatch(pretty.lines.join('\n'), /s3cr3t/);
});

test('a line without secrets is written as given; an Error keeps its message', async () => {
  const fields = { controller: 'proto::c', agent: 'os::a', msgType: 'GET', paths: ['Device.LocalAgent.EndpointID'], outcome: 'ok', ms: 1 };
  assert.equal(redactSecrets(fields), fields, 'nothing to censor: the same object, no copy');
  const err = Object.assign(new Error('connection refused'), { password: 's3cr3t-err' });
  const censored = redactSecrets({ err });
  assert.equal((censored.err as { message: string }).message, 'connection refused');
  assert.equal((censored.err as unknown as { password: string }).password, '[redacted]');
  assert.equal(err.password, 's3cr3t-err', 'the Error itself is not modified');
  const { lines, log } = capture();
  log.info(fields, 'USP request');
  await new Promise((r) => setImmediate(r));
  const line = JSON.parse(lines[0]!) as Record<string, unknown>;
  assert.deepEqual(line.paths, fields.paths);
  assert.equal(line.outcome, 'ok');
});

test("infoLine: the request line is pino's own line for the same fields (JSON), and pino's pretty line when pretty", async () => {
  const fields = {
    controller: 'proto::ctl "quoted" \\ back',
    agent: 'os::00D09E-X\u0001',
    msgType: 'GET',
    msgId: 'é-1',
    paths: ['Device.LocalAgent.EndpointID', 'Device.WiFi.SSID.[Name=="a\\"b"].SSID'],
    pathCount: 2,
    outcome: 'partial (1 error)',
    ms: 3,
  };
  for (const pretty of [false, true]) {
    const { lines, log } = capture(pretty);
    const child = log.child({ module: 'usp' });
    child.info(fields, 'USP request');
    infoLine(child, fields, 'USP request');
    infoLine(log, {}, 'no fields');
    log.info({}, 'no fields');
    await new Promise((r) => setImmediate(r));
    assert.equal(lines.length, 4, lines.join('\n'));
    if (pretty) {
      // pino-pretty's time is to the millisecond: the lines match once it is taken out.
      const noTime = (l: string) => l.replace(/^\[[^\]]*\]/, '');
      assert.equal(noTime(lines[1]!), noTime(lines[0]!));
      assert.match(lines[1]!, /USP request/);
      continue;
    }
    const [a, b, c, d] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const untimed = (o: Record<string, unknown> | undefined) => ({ ...o, time: undefined });
    assert.deepEqual(untimed(b), untimed(a));
    assert.deepEqual(Object.keys(b!), Object.keys(a!), 'the same keys in the same order');
    assert.equal(b!.module, 'usp');
    assert.deepEqual(untimed(c), untimed(d));
    // Byte for byte once the time is the same (the same millisecond): pino escapes like JSON.stringify here.
    const sameTime = (l: string) => l.replace(/"time":"[^"]*"/, '"time":""');
    assert.equal(sameTime(lines[1]!), sameTime(lines[0]!));
  }
});
