/**
 * Many simulated CPE in one process: one shared model template, one connection-request
 * server, a fleet-wide cap on sessions in flight.
 */
import { ConnReqServer } from './connreq-server.js';
import { SimDevice, type SessionSummary, type SimTimers, type TransferOptions } from './device.js';
import { loadModel, type ModelTemplate } from './model.js';
import type { Quirks } from './quirks.js';
import type { CwmpVersion } from '../../cwmp/types.js';
import { deviceKeyOf } from '../../cwmp/device-id.js';
import { SimNatUdp, withNatParameters } from './nat-udp.js';
import { SimNatXmpp } from './nat-xmpp.js';

export type { SessionSummary, SimTimers } from './device.js';
import type { SimXmppServer } from './nat-xmpp.js';
export { SimDevice } from './device.js';

export interface FleetOptions {
  acsUrl: string;
  count: number;
  /** 'tr181' | 'tr098' (bundled) or a path to a model CSV. */
  model: string;
  /** Serial numbers are prefix + 6-digit index; default: the model's serial + index. */
  serialPrefix?: string;
  /** Exact serial numbers of the first devices (e.g. the model's own); the rest use serialPrefix. */
  serials?: readonly string[];
  oui?: string;
  productClass?: string;
  manufacturer?: string;
  /** CPE -> ACS authentication. username/password may contain {serial}. */
  auth?: { mode: 'none' | 'basic' | 'digest'; username?: string; password?: string; preemptiveBasic?: boolean };
  /** Connection-request server port (0 = ephemeral, the default) and host (default 127.0.0.1). */
  connReqPort?: number;
  connReqHost?: string;
  /** Host put in ConnectionRequestURL when it differs from the listen host (e.g. listen on 0.0.0.0). */
  connReqAdvertiseHost?: string;
  /** Initial ConnectionRequestUsername/Password ({serial} allowed; default {serial} / "sim-{serial}"); Basic accepted when basic: true. */
  connReqAuth?: { username?: string; password?: string; basic?: boolean };
  /** undefined: the model's PeriodicInform settings; null: no periodic Informs; n: every n seconds. */
  periodicIntervalS?: number | null;
  /** 0 BOOTSTRAP with the first boot (default true). */
  bootstrap?: boolean;
  timers?: SimTimers;
  transfers?: TransferOptions;
  /** Max sessions in flight at once, fleet-wide (default 100). */
  concurrency?: number;
  /** Bump counters that have notification on every N ms (4 VALUE CHANGE); off by default. */
  valueChangeTickMs?: number;
  cwmpVersion?: CwmpVersion;
  /** Behaviours of stricter third-party CPE agents, for every device (parseQuirks); none by default. */
  quirks?: Quirks;
  /**
   * Devices behind NAT (TR-069 Annex G): HTTP connection requests are refused; 'udp' runs a STUN
   * client per device and takes UDP connection requests. stunServer presets the STUN settings
   * (STUNUsername = the ACS's device key), as a CPE configured at the factory; without it the
   * ACS sets them on BOOTSTRAP.
   */
  nat?: { mode: 'udp'; stunServer?: { host: string; port: number } } | { mode: 'xmpp'; xmpp: SimXmppServer };
  log?: (msg: string, extra?: object) => void;
  /** Called as devices finish booting in start() (done of total). */
  onProgress?: (done: number, total: number) => void;
}

/** A counting semaphore. */
class Gate {
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  constructor(private readonly max: number) {}
  run = async <T>(fn: () => Promise<T>): Promise<T> => {
    if (this.active >= this.max) await new Promise<void>((r) => this.waiting.push(r));
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  };
}

export class Fleet {
  readonly devices: SimDevice[] = [];
  readonly template: ModelTemplate;
  private readonly bySerial = new Map<string, SimDevice>();
  private readonly server: ConnReqServer;
  private readonly natClients = new Map<string, SimNatUdp>();
  private readonly xmppClients = new Map<string, SimNatXmpp>();
  private readonly gate: Gate;
  private ticker: NodeJS.Timeout | null = null;
  private started = false;

  constructor(private readonly opts: FleetOptions) {
    if (!(opts.count >= 0) || !Number.isInteger(opts.count)) throw new Error('count must be a non-negative integer');
    new URL(opts.acsUrl); // throws on a bad URL, before anything starts
    this.template = opts.nat ? withNatParameters(loadModel(opts.model)) : loadModel(opts.model);
    this.gate = new Gate(Math.max(1, opts.concurrency ?? 100));
    this.createDevices();
    this.server = new ConnReqServer({
      host: opts.connReqHost ?? '127.0.0.1',
      port: opts.connReqPort ?? 0,
      allowBasic: !!opts.connReqAuth?.basic,
      lookup: (s) => this.bySerial.get(s),
      log: opts.log,
      refuse: !!opts.nat,
    });
  }

  /** The STUN / UDP side of a device behind NAT (FleetOptions.nat). */
  nat(serial: string): SimNatUdp | undefined {
    return this.natClients.get(serial);
  }

  /** The XMPP side of a device behind NAT (FleetOptions.nat mode 'xmpp'). */
  xmpp(serial: string): SimNatXmpp | undefined {
    return this.xmppClients.get(serial);
  }

  get connReqPort(): number {
    return this.server.port;
  }

  device(serial: string): SimDevice | undefined {
    return this.bySerial.get(serial);
  }

  /** Starts the connection-request server, then boots every device (0 BOOTSTRAP / 1 BOOT). */
  async start(): Promise<void> {
    if (this.started) throw new Error('fleet already started');
    this.started = true;
    const port = await this.server.listen();
    const o = this.opts;
    let host = o.connReqAdvertiseHost ?? o.connReqHost ?? '127.0.0.1';
    if (host === '0.0.0.0' || host === '::') host = '127.0.0.1';
    if (host.includes(':') && !host.startsWith('[')) host = `[${host}]`;
    for (const d of this.devices) d.setConnectionRequestUrl(`http://${host}:${port}/${encodeURIComponent(d.serial)}`);
    if (this.opts.valueChangeTickMs && this.opts.valueChangeTickMs > 0) {
      this.ticker = setInterval(() => {
        for (const d of this.devices) if (!d.offline) d.tick();
      }, this.opts.valueChangeTickMs);
    }
    for (const c of this.natClients.values()) await c.start();
    const onProgress = this.opts.onProgress;
    let booted = 0;
    await Promise.all(this.devices.map((d) => (onProgress ? d.boot().finally(() => onProgress(++booted, this.devices.length)) : d.boot())));
    // Logged in after the boot: the JID then comes in a VALUE CHANGE session, as from a real CPE.
    // A few logins at a time: a burst of thousands makes XMPP servers time the streams out.
    const pending = [...this.xmppClients.values()];
    await Promise.all(
      Array.from({ length: Math.min(16, pending.length) }, async () => {
        for (let c = pending.shift(); c; c = pending.shift()) await c.start();
      }),
    );
  }

  private createDevices(): void {
    const o = this.opts;
    const tplSerial = this.template.deviceId.serialNumber || 'SIM';
    const prefix = o.serialPrefix ?? tplSerial;
    const fill = (s: string | undefined, serial: string): string | undefined => s?.replaceAll('{serial}', serial);
    for (let i = 0; i < o.count; i++) {
      const serial = o.serials?.[i] ?? prefix + String(i + 1).padStart(6, '0');
      const auth =
        o.auth && o.auth.mode !== 'none'
          ? {
              mode: o.auth.mode,
              username: fill(o.auth.username, serial) ?? serial,
              password: fill(o.auth.password, serial) ?? '',
              preemptiveBasic: o.auth.preemptiveBasic,
            }
          : undefined;
      const d = new SimDevice({
        template: this.template,
        serial,
        index: i,
        acsUrl: o.acsUrl,
        auth,
        connReqUsername: fill(o.connReqAuth?.username ?? '{serial}', serial),
        connReqPassword: fill(o.connReqAuth?.password ?? 'sim-{serial}', serial),
        periodicIntervalS: o.periodicIntervalS,
        bootstrap: o.bootstrap,
        timers: o.timers,
        transfers: o.transfers,
        manufacturer: o.manufacturer,
        oui: o.oui,
        productClass: o.productClass,
        cwmpVersion: o.cwmpVersion,
        quirks: o.quirks,
        gate: this.gate.run,
        log: o.log,
      });
      if (this.bySerial.has(serial)) throw new Error(`duplicate serial ${serial}`);
      if (o.nat?.mode === 'xmpp') this.xmppClients.set(serial, new SimNatXmpp(d, o.nat.xmpp, o.log));
      if (o.nat?.mode === 'udp') {
        const stun = o.nat.stunServer;
        if (stun) {
          const ms = `${this.template.root}ManagementServer.`;
          d.model.set(`${ms}STUNEnable`, 'true');
          d.model.set(`${ms}STUNServerAddress`, stun.host);
          d.model.set(`${ms}STUNServerPort`, String(stun.port));
          d.model.set(`${ms}STUNUsername`, deviceKeyOf(d.deviceId));
        }
        this.natClients.set(serial, new SimNatUdp(d, o.connReqHost && o.connReqHost !== '0.0.0.0' ? o.connReqHost : '127.0.0.1', o.log));
      }
      this.devices.push(d);
      this.bySerial.set(serial, d);
    }
  }

  /** All devices run one session now (e.g. 2 PERIODIC); resolves when all ended. */
  async informAll(events: string[] = []): Promise<void> {
    await Promise.all(this.devices.map((d) => d.inform(events)));
  }

  /** Every device's summary of one session each, for callers that want the results. */
  informAllSummaries(events: string[] = []): Promise<SessionSummary[]> {
    return Promise.all(this.devices.map((d) => d.inform(events)));
  }

  /** Fleet-wide counters. */
  totals(): { devices: number; sessions: number; ok: number; failed: number; connectionRequests: number; busy: number } {
    const t = { devices: this.devices.length, sessions: 0, ok: 0, failed: 0, connectionRequests: 0, busy: 0 };
    for (const d of this.devices) {
      t.sessions += d.stats.sessions;
      t.ok += d.stats.sessionsOk;
      t.failed += d.stats.sessionsFailed;
      t.connectionRequests += d.stats.connectionRequests;
      if (d.busy) t.busy++;
    }
    return t;
  }

  async stop(): Promise<void> {
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = null;
    for (const d of this.devices) d.stop();
    for (const c of this.natClients.values()) c.stop();
    await Promise.all([...this.xmppClients.values()].map((c) => c.stop()));
    await this.server.close();
  }
}
