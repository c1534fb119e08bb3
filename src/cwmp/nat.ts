/**
 * Reaching CPEs behind NAT (TR-069 Annex G with TR-111 Part 2): the STUN server, the NAT bindings
 * it learns, the UDP connection requester that uses them, and the STUN settings the ACS gives a
 * CPE on BOOTSTRAP. Built by the proxy when acs.connectionRequest.udp.enabled is set.
 *
 * A CPE's STUN USERNAME is its device key (the ACS sets STUNUsername so on BOOTSTRAP), so a
 * Binding Request names the device directly; a username that is no registered device is ignored.
 */
import { createHmac } from 'node:crypto';
import type { Logger } from '../app/log.js';
import type { DeviceRecord, Store } from '../store/types.js';
import type { AcsRequest, Inform } from './types.js';
import { parseUdpConnectionRequestAddress, UdpBindings, UdpConnectionRequester, type UdpConnReqPolicy } from './connreq-udp.js';
import { StunServer, type StunBinding } from './stun/server.js';
import type { ConnReqTargetGuard } from './connreq-target.js';

export interface NatOptions extends UdpConnReqPolicy {
  host: string;
  port: number;
  ratePerSecond: number;
  /** STUNServerAddress given to CPEs on BOOTSTRAP ('' = the ACS does not set the STUN parameters). */
  stunServerAddress: string;
  /** STUNServerPort given to CPEs (0 = the port listened on). */
  stunServerPort: number;
  /** STUNMinimumKeepAlivePeriod given to CPEs (s). */
  keepAliveS: number;
  /** Derives each CPE's STUNPassword; Binding Requests must then be signed (MESSAGE-INTEGRITY). '' = no STUNPassword. */
  stunSecret: string;
}

export class NatReach {
  readonly bindings = new UdpBindings();
  readonly stun: StunServer;
  readonly udp: UdpConnectionRequester;

  constructor(
    private readonly opts: NatOptions,
    private readonly store: Pick<Store, 'getDevice'>,
    private readonly log: Logger,
    /** The HTTP connection requests' SSRF guard, applied to UDP targets too: a binding may come from an Inform's UDPConnectionRequestAddress. */
    private readonly guard?: Pick<ConnReqTargetGuard, 'check'>,
  ) {
    this.stun = new StunServer(
      { host: opts.host, port: opts.port, ratePerSecond: opts.ratePerSecond, password: opts.stunSecret ? (u) => this.stunPassword(u) : undefined },
      log,
    );
    const send = async (data: string, port: number, host: string): Promise<void> => {
      const target = this.guard ? await this.guard.check(host, port) : null;
      if (target && !target.ok) throw new Error(`forbidden target: ${target.detail}`);
      return this.stun.send(data, port, host);
    };
    this.udp = new UdpConnectionRequester(opts, { send, bindings: this.bindings });
    this.stun.on('binding', (b) => void this.learn(b));
  }

  async start(): Promise<number> {
    const port = await this.stun.listen();
    this.log.info({ port }, 'STUN server listening (UDP connection requests, TR-111)');
    if (!this.opts.stunServerAddress) this.log.warn('acs.connectionRequest.udp.stunServerAddress is empty: CPEs are not given STUN settings on BOOTSTRAP');
    return port;
  }

  async stop(): Promise<void> {
    this.udp.close();
    await this.stun.close();
  }

  private async learn(b: StunBinding): Promise<void> {
    const known = this.bindings.get(b.username);
    // Keep-alives of a known binding cost no store read.
    if (known?.source === 'stun' && known.host === b.address && known.port === b.port) {
      known.at = Date.now();
      return;
    }
    const device = await this.store.getDevice(b.username).catch(() => null);
    if (!device) return;
    this.bindings.set(device.deviceKey, { host: b.address, port: b.port, source: 'stun', at: Date.now() });
    if (known || b.changed) this.log.info({ endpointId: device.endpointId, address: `${b.address}:${b.port}` }, 'STUN binding changed');
    else this.log.debug({ endpointId: device.endpointId, address: `${b.address}:${b.port}` }, 'STUN binding learned');
  }

  /** A CPE's STUNPassword: derived from stunSecret and the device key, so nothing is stored. */
  stunPassword(deviceKey: string): string {
    return createHmac('sha256', this.opts.stunSecret).update(deviceKey).digest('base64url').slice(0, 24);
  }

  /** The Inform's UDPConnectionRequestAddress (TR-069 Annex G), unless STUN already told us where the device is. */
  inform(device: DeviceRecord, inform: Inform): void {
    const v = inform.parameterList.find((p) => p.name.endsWith('.ManagementServer.UDPConnectionRequestAddress'))?.value;
    if (!v) return;
    const a = parseUdpConnectionRequestAddress(v);
    if (!a || this.bindings.get(device.deviceKey)?.source === 'stun') return;
    this.bindings.set(device.deviceKey, { host: a.host, port: a.port, source: 'inform', at: Date.now() });
  }

  /** On BOOTSTRAP: the SetParameterValues that turns the CPE's STUN client on (TR-111 Part 2, TR-098/TR-181 ManagementServer). */
  provisioning(device: DeviceRecord, events: readonly string[]): AcsRequest | null {
    if (!this.opts.stunServerAddress || !events.includes('0 BOOTSTRAP')) return null;
    const ms = `${device.rootModel}.ManagementServer`;
    return {
      method: 'SetParameterValues',
      parameterList: [
        { name: `${ms}.STUNEnable`, value: 'true', type: 'xsd:boolean' },
        { name: `${ms}.STUNServerAddress`, value: this.opts.stunServerAddress, type: 'xsd:string' },
        { name: `${ms}.STUNServerPort`, value: String(this.opts.stunServerPort || this.stun.port), type: 'xsd:unsignedInt' },
        { name: `${ms}.STUNUsername`, value: device.deviceKey, type: 'xsd:string' },
        { name: `${ms}.STUNMinimumKeepAlivePeriod`, value: String(this.opts.keepAliveS), type: 'xsd:unsignedInt' },
        ...(this.opts.stunSecret ? [{ name: `${ms}.STUNPassword`, value: this.stunPassword(device.deviceKey), type: 'xsd:string' as const }] : []),
      ],
      parameterKey: '',
    };
  }
}
