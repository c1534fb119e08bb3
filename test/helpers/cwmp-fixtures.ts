/** CWMP session-engine fixtures: a connection-request port that records calls, and Informs. */
import type { ConnectionRequestPort } from '../../src/cwmp/session.js';
import type { Inform } from '../../src/cwmp/types.js';
import { rawRequest, type RawConnection, type RawResponse } from './raw-http.js';

export class FakeConnReq implements ConnectionRequestPort {
  calls: string[] = [];
  cancels: string[] = [];
  result = { ok: true };
  async request(deviceKey: string): Promise<{ ok: boolean; reason?: string; detail?: string }> {
    this.calls.push(deviceKey);
    return this.result;
  }
  cancel(deviceKey: string): void {
    this.cancels.push(deviceKey);
  }
}

export function inform(serial: string, events: string[], root = 'Device'): Inform {
  return {
    method: 'Inform',
    deviceId: { manufacturer: 'Acme', oui: '00D09E', productClass: 'Box', serialNumber: serial },
    event: events.map((eventCode) => ({ eventCode, commandKey: '' })),
    maxEnvelopes: 1,
    currentTime: '2026-11-25T10:00:00Z',
    retryCount: 0,
    parameterList: [
      { name: `${root}.DeviceInfo.SoftwareVersion`, value: '1.0', type: 'xsd:string' },
      { name: `${root}.ManagementServer.ConnectionRequestURL`, value: `http://127.0.0.1:1/${serial}`, type: 'xsd:string' },
      { name: `${root}.ManagementServer.PeriodicInformInterval`, value: '300', type: 'xsd:unsignedInt' },
    ],
  };
}

/** One SOAP POST on a raw connection (extra header fields, any HTTP version) and the reply. */
export async function postSoap(conn: RawConnection, body: string, headers: Record<string, string> = {}, version: '1.0' | '1.1' = '1.1'): Promise<RawResponse> {
  const b = Buffer.from(body, 'utf8');
  conn.send(rawRequest({ version, headers: { 'Content-Type': 'text/xml; charset="utf-8"', 'Content-Length': b.length, ...headers }, body: b }));
  return conn.response();
}

/** "session=<id>" from a reply's Set-Cookie. */
export const sessionCookieOf = (r: RawResponse): string => /(session=[0-9a-f]+)/.exec(r.headers['set-cookie'] ?? '')![1]!;
/** The cwmp:ID of a SOAP reply. */
export const cwmpIdOf = (r: RawResponse): string => /<cwmp:ID[^>]*>([^<]*)<\/cwmp:ID>/.exec(r.body.toString('utf8'))![1]!;
