/**
 * `cwmp-usp-proxy simulate ...`: runs a fleet of simulated CPE until SIGINT/SIGTERM.
 */
import { parseArgs } from 'node:util';
import { Fleet, type FleetOptions } from './fleet.js';
import { parseQuirks, QUIRK_HELP } from './quirks.js';
import { ProgressBar } from '../../util/progress.js';

const QUIRK_LINES = QUIRK_HELP.map(([k, h]) => `      ${k.padEnd(22)}${h}`).join('\n');

export const SIMULATE_USAGE = `Usage: cwmp-usp-proxy simulate --acs URL [options]

Runs simulated TR-069 CPE against an ACS until interrupted (SIGINT/SIGTERM).

  --acs URL               ACS URL (required), e.g. http://127.0.0.1:7547/
  --count N               number of devices (default 1)
  --model M               tr181 | tr098 | path to a model CSV (default tr181)
  --serial-prefix X       serial numbers are X000001, X000002, ... (default: the model's serial)
  --oui X                 DeviceId OUI (default: the model's)
  --product-class X       DeviceId ProductClass (default: the model's)
  --auth MODE             none | basic | digest (default none)
  --username U            ACS username; {serial} is replaced (default {serial})
  --password P            ACS password; {serial} is replaced
  --preemptive            send Basic credentials without waiting for a 401
  --connreq-host H        connection-request listen host (default 127.0.0.1)
  --connreq-port N        connection-request port, 0 = any (default 0)
  --connreq-username U    initial ConnectionRequestUsername (default {serial})
  --connreq-password P    initial ConnectionRequestPassword (default sim-{serial})
  --periodic S            periodic Inform every S seconds (0 = off; default: the model's)
  --no-bootstrap          do not send 0 BOOTSTRAP on start
  --concurrency N         max sessions in flight (default 100)
  --nat MODE              behind NAT, HTTP connection requests refused; udp: STUN client and
                          UDP connection requests (TR-069 Annex G); xmpp: XMPP client (Annex K)
  --stun HOST:PORT        with --nat udp: preset STUN server (default: the ACS sets it on BOOTSTRAP)
  --xmpp-service URL      with --nat xmpp: xmpp://host:5222; each device logs in as <serial>@domain
  --xmpp-domain D         with --nat xmpp: the XMPP domain (default: the service's host)
  --xmpp-password P       with --nat xmpp: the devices' account password ({serial} allowed)
  --quirks LIST           behave like stricter CPE agents (comma-separated; default none):
${QUIRK_LINES}
  --status-interval S     one-line JSON status on stderr every S seconds (default 10, 0 = off)
  --no-progress           no progress bar while the devices boot
  --help                  this text

Exit codes: 0 stopped by SIGINT/SIGTERM, 1 the fleet failed to start, 2 usage error.
`;

function int(name: string, v: string | undefined, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min} (got ${JSON.stringify(v)})`);
  return n;
}

/** Parses the simulate arguments into FleetOptions (exported for tests). */
export function parseSimulateArgs(argv: string[]): { help: true } | { help: false; opts: FleetOptions; statusIntervalS: number; progress: boolean } {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      acs: { type: 'string' },
      count: { type: 'string' },
      model: { type: 'string' },
      'serial-prefix': { type: 'string' },
      oui: { type: 'string' },
      'product-class': { type: 'string' },
      auth: { type: 'string' },
      username: { type: 'string' },
      password: { type: 'string' },
      preemptive: { type: 'boolean' },
      'connreq-host': { type: 'string' },
      'connreq-port': { type: 'string' },
      'connreq-username': { type: 'string' },
      'connreq-password': { type: 'string' },
      periodic: { type: 'string' },
      'no-bootstrap': { type: 'boolean' },
      concurrency: { type: 'string' },
      quirks: { type: 'string' },
      nat: { type: 'string' },
      stun: { type: 'string' },
      'xmpp-service': { type: 'string' },
      'xmpp-domain': { type: 'string' },
      'xmpp-password': { type: 'string' },
      'status-interval': { type: 'string' },
      'no-progress': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return { help: true };
  if (!values.acs) throw new Error('--acs URL is required');
  try {
    const u = new URL(values.acs);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error();
  } catch {
    throw new Error(`--acs must be an http(s) URL (got ${JSON.stringify(values.acs)})`);
  }
  const mode = values.auth ?? 'none';
  if (mode !== 'none' && mode !== 'basic' && mode !== 'digest') throw new Error(`--auth must be none, basic or digest (got ${JSON.stringify(mode)})`);
  const periodic = int('periodic', values.periodic, 0);
  const opts: FleetOptions = {
    acsUrl: values.acs,
    count: int('count', values.count, 1) ?? 1,
    model: values.model ?? 'tr181',
    serialPrefix: values['serial-prefix'],
    oui: values.oui,
    productClass: values['product-class'],
    auth: { mode, username: values.username ?? '{serial}', password: values.password ?? '', preemptiveBasic: !!values.preemptive },
    connReqHost: values['connreq-host'],
    connReqPort: int('connreq-port', values['connreq-port'], 0),
    connReqAuth: { username: values['connreq-username'], password: values['connreq-password'] },
    periodicIntervalS: periodic === undefined ? undefined : periodic === 0 ? null : periodic,
    bootstrap: !values['no-bootstrap'],
    concurrency: int('concurrency', values.concurrency, 1),
  };
  if (values.nat !== undefined) {
    if (values.nat === 'xmpp') {
      const service = values['xmpp-service'];
      if (!service || !/^xmpps?:\/\/[^/\s]+$/.test(service)) throw new Error('--nat xmpp needs --xmpp-service xmpp://host:port');
      const domain = values['xmpp-domain'] ?? new URL(service).hostname;
      opts.nat = { mode: 'xmpp', xmpp: { service, domain, password: values['xmpp-password'] ?? '' } };
    } else if (values.nat !== 'udp') throw new Error(`--nat must be udp or xmpp (got ${JSON.stringify(values.nat)})`);
    else opts.nat = { mode: 'udp' };
    if (values.stun !== undefined && opts.nat.mode === 'udp') {
      const m = /^(.+):(\d{1,5})$/.exec(values.stun);
      if (!m || Number(m[2]) > 65535) throw new Error(`--stun must be HOST:PORT (got ${JSON.stringify(values.stun)})`);
      opts.nat.stunServer = { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) };
    }
  } else if (values.stun !== undefined) throw new Error('--stun needs --nat udp');
  if (values.quirks !== undefined) {
    try {
      opts.quirks = parseQuirks(values.quirks);
    } catch (e) {
      throw new Error(`--quirks: ${(e as Error).message}`);
    }
  }
  return { help: false, opts, statusIntervalS: int('status-interval', values['status-interval'], 0) ?? 10, progress: !values['no-progress'] };
}

/** Runs the simulator; resolves with the exit code once stopped by a signal. */
export async function runSimulateCli(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parseSimulateArgs>;
  try {
    parsed = parseSimulateArgs(argv);
  } catch (e) {
    process.stderr.write(`simulate: ${(e as Error).message}\n\n${SIMULATE_USAGE}`);
    return 2;
  }
  if (parsed.help) {
    process.stdout.write(SIMULATE_USAGE);
    return 0;
  }
  const { opts, statusIntervalS } = parsed;
  opts.log = (msg, extra) => process.stderr.write(JSON.stringify({ time: new Date().toISOString(), msg, ...extra }) + '\n');
  const bar = parsed.progress && opts.count > 1 ? new ProgressBar({ label: 'devices booted', total: opts.count }) : null;
  if (bar) opts.onProgress = (done) => bar.update(done);
  let fleet: Fleet;
  try {
    fleet = new Fleet(opts);
  } catch (e) {
    process.stderr.write(`simulate: ${(e as Error).message}\n`);
    return 1;
  }
  const status = (): void => {
    process.stderr.write(JSON.stringify({ time: new Date().toISOString(), msg: 'status', connReqPort: fleet.connReqPort, ...fleet.totals() }) + '\n');
  };
  let _stopping: Promise<void> | null = null;
  const done = new Promise<void>((resolve) => {
    const stop = (): void => {
      _stopping ??= fleet.stop().then(resolve);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  try {
    await fleet.start();
    bar?.finish();
  } catch (e) {
    bar?.finish();
    process.stderr.write(`simulate: ${(e as Error).message}\n`);
    await fleet.stop();
    return 1;
  }
  status();
  const timer = statusIntervalS > 0 ? setInterval(status, statusIntervalS * 1000) : null;
  await done;
  if (timer) clearInterval(timer);
  status();
  return 0;
}
