/**
 * A simulated CPE behind NAT (TR-069 Annex G, TR-111 Part 2): HTTP connection requests cannot
 * reach it; its STUN client keeps a UDP binding open toward the ACS's STUN server with Binding
 * Requests (USERNAME = ManagementServer.STUNUsername, CONNECTION-REQUEST-BINDING), reports the
 * binding in ManagementServer.UDPConnectionRequestAddress, and takes UDP connection requests on
 * that socket (sig checked with the ConnectionRequestPassword, repeated ids ignored).
 * rebind() plays a NAT that changed the binding: a new socket, and BINDING-CHANGE in the next request.
 */
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { parseUdpConnReq, verifyUdpConnReq } from '../../cwmp/connreq-udp-message.js';
import { BINDING_SUCCESS, decodeStun, encodeBindingRequest, newTransactionId } from '../../cwmp/stun/codec.js';
import type { ModelRow, ModelTemplate } from './model.js';
import type { SimDevice } from './device.js';

/** The ManagementServer STUN and XMPP parameters (TR-181 / TR-098), added to the model of a device behind NAT. */
export function withNatParameters(t: ModelTemplate): ModelTemplate {
  const ms = `${t.root}ManagementServer.`;
  const row = (name: string, value: string, type: string, writable = true, notification = 0): ModelRow => ({
    name: ms + name,
    object: false,
    writable,
    value,
    type,
    notification,
    accessList: [],
  });
  return t.withRows([
    row('UDPConnectionRequestAddress', '', 'xsd:string', false),
    row('STUNEnable', 'false', 'xsd:boolean'),
    row('STUNServerAddress', '', 'xsd:string'),
    row('STUNServerPort', '3478', 'xsd:unsignedInt'),
    row('STUNUsername', '', 'xsd:string'),
    row('STUNPassword', '', 'xsd:string'),
    row('STUNMaximumKeepAlivePeriod', '-1', 'xsd:int'),
    row('STUNMinimumKeepAlivePeriod', '30', 'xsd:unsignedInt'),
    row('NATDetected', 'false', 'xsd:boolean', false),
    // TR-181: activeNotify forceDefaultEnabled, so the ACS learns the JID from a VALUE CHANGE.
    row('ConnReqJabberID', '', 'xsd:string', false, 2),
    row('ConnReqAllowedJabberIDs', '', 'xsd:string'),
  ]);
}

export interface SimNatStats {
  bindingRequests: number;
  bindingResponses: number;
  udpConnectionRequests: number;
  udpRejected: number;
}

export class SimNatUdp {
  private socket: dgram.Socket | null = null;
  private timer: NodeJS.Timeout | null = null;
  private changed = false;
  private stopped = false;
  private readonly seenIds: number[] = [];
  private lastTs = 0;
  readonly stats: SimNatStats = { bindingRequests: 0, bindingResponses: 0, udpConnectionRequests: 0, udpRejected: 0 };

  constructor(
    private readonly device: SimDevice,
    private readonly host = '127.0.0.1',
    private readonly log?: (msg: string, extra?: object) => void,
  ) {
    // New STUN settings from the ACS take effect at once (TR-111 Part 2, 2.2.1).
    device.on('rpc', (msg) => {
      if (msg.method === 'SetParameterValues') setImmediate(() => this.keepAlive());
    });
  }

  /** The local port: the NAT binding as the ACS sees it (on loopback there is no translation). */
  get port(): number {
    return this.socket ? this.socket.address().port : 0;
  }

  private param(name: string): string {
    return this.device.getValue(`${this.device.model.root}ManagementServer.${name}`) ?? '';
  }

  async start(): Promise<void> {
    await this.open();
    this.keepAlive();
  }

  /** The NAT gave the device a new binding: a new socket, and BINDING-CHANGE in the next Binding Request (sent now). */
  async rebind(): Promise<void> {
    this.socket?.close();
    this.socket = null;
    await this.open();
    this.changed = true;
    this.keepAlive();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.socket?.close();
    this.socket = null;
  }

  private async open(): Promise<void> {
    const s = dgram.createSocket(this.host.includes(':') ? 'udp6' : 'udp4');
    s.on('message', (m, r) => this.onMessage(m, r));
    s.on('error', (e) => this.log?.('sim STUN socket error', { serial: this.device.serial, error: e.message }));
    await new Promise<void>((resolve) => s.bind(0, this.host, resolve));
    this.socket = s;
  }

  /** Sends a Binding Request now and schedules the next one (STUNMinimumKeepAlivePeriod). */
  private keepAlive(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.stopped || this.param('STUNEnable') !== 'true') return;
    const server = this.param('STUNServerAddress');
    const port = Number(this.param('STUNServerPort') || 3478);
    if (server && this.socket) {
      const req = encodeBindingRequest({
        transactionId: newTransactionId(randomBytes),
        username: this.param('STUNUsername') || undefined,
        connectionRequestBinding: true,
        bindingChange: this.changed,
        password: this.param('STUNPassword') || undefined,
      });
      this.stats.bindingRequests++;
      this.socket.send(req, port, server);
    }
    const period = Math.max(1, Number(this.param('STUNMinimumKeepAlivePeriod')) || 30);
    this.timer = setTimeout(() => this.keepAlive(), period * 1000);
    this.timer.unref();
  }

  private onMessage(msg: Buffer, from: dgram.RemoteInfo): void {
    const stun = decodeStun(msg);
    if (stun.ok) {
      if (stun.message.type !== BINDING_SUCCESS || !stun.message.mappedAddress) return;
      this.stats.bindingResponses++;
      this.changed = false;
      const a = stun.message.mappedAddress;
      const value = a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
      const ms = `${this.device.model.root}ManagementServer.`;
      this.device.model.set(`${ms}UDPConnectionRequestAddress`, value);
      // NAT is detected when the mapped address differs from the local one (TR-111 Part 2, 2.2.1); on loopback the port tells.
      this.device.model.set(`${ms}NATDetected`, 'true');
      return;
    }
    const cr = parseUdpConnReq(msg);
    const { username, password } = this.device.connReqCredentials;
    if (!cr.ok || cr.fields.un !== username || !verifyUdpConnReq(cr.fields, cr.sig, password)) {
      this.stats.udpRejected++;
      this.log?.('UDP connection request refused', { serial: this.device.serial, from: from.address });
      return;
    }
    // Annex G.2.2: a copy of a request already seen (same id), or an older ts, is ignored.
    if (this.seenIds.includes(cr.fields.id) || cr.fields.ts < this.lastTs) return;
    this.seenIds.push(cr.fields.id);
    if (this.seenIds.length > 16) this.seenIds.shift();
    this.lastTs = cr.fields.ts;
    this.stats.udpConnectionRequests++;
    this.device.connectionRequest();
  }
}
