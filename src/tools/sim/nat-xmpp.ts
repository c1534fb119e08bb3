/**
 * A simulated CPE reached by XMPP connection requests (TR-069 Annex K): it logs in to the XMPP
 * server as <serial, lower case>@domain/cwmp, reports that JID in ManagementServer.ConnReqJabberID
 * (active notification: a VALUE CHANGE session), and answers the ACS's connectionRequest IQ:
 * a result and a session when the credentials match its ConnectionRequestUsername/Password,
 * not-authorized otherwise.
 */
import { client, xml, type XmppClient } from '@xmpp/client';
import { XMPP_CONNREQ_NS } from '../../cwmp/connreq-xmpp.js';
import type { SimDevice } from './device.js';

export interface SimXmppServer {
  /** xmpp://host:port */
  service: string;
  domain: string;
  /** Every device's account password ({serial} allowed). */
  password: string;
  /**
   * SASL PLAIN rather than SCRAM-SHA-1 (a test server on loopback): SCRAM's key derivation runs
   * on the simulator's one thread, which makes logging in thousands of devices take minutes.
   */
  plain?: boolean;
}

export class SimNatXmpp {
  private xmpp: XmppClient | null = null;
  readonly stats = { connectionRequests: 0, refused: 0 };

  constructor(
    private readonly device: SimDevice,
    private readonly server: SimXmppServer,
    private readonly log?: (msg: string, extra?: object) => void,
  ) {}

  /** The account name: the serial number in lower case (JID local parts compare case-insensitively). */
  get username(): string {
    return this.device.serial.toLowerCase();
  }

  async start(): Promise<void> {
    const username = this.username;
    const password = this.server.password.replaceAll('{serial}', this.device.serial);
    const x = client({
      service: this.server.service,
      domain: this.server.domain,
      username,
      password,
      resource: 'cwmp',
      ...(this.server.plain ? { credentials: (authenticate) => authenticate({ username, password }, 'PLAIN') } : {}),
    });
    this.xmpp = x;
    x.on('error', (e: Error) => this.log?.('sim XMPP error', { serial: this.device.serial, error: e.message }));
    x.iqCallee.get(XMPP_CONNREQ_NS, 'connectionRequest', (ctx) => {
      const { username, password } = this.device.connReqCredentials;
      if (ctx.element.getChildText('username') !== username || ctx.element.getChildText('password') !== password) {
        this.stats.refused++;
        return xml('error', { type: 'auth' }, xml('not-authorized', { xmlns: 'urn:ietf:params:xml:ns:xmpp-stanzas' }));
      }
      if (!this.device.connectionRequest())
        return xml('error', { type: 'cancel' }, xml('service-unavailable', { xmlns: 'urn:ietf:params:xml:ns:xmpp-stanzas' }));
      this.stats.connectionRequests++;
      return true;
    });
    await x.start();
    this.device.setValue(`${this.device.model.root}ManagementServer.ConnReqJabberID`, x.jid?.toString() ?? '');
  }

  async stop(): Promise<void> {
    const x = this.xmpp;
    this.xmpp = null;
    await x?.stop().catch(() => undefined);
  }
}
