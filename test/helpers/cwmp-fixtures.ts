/** CWMP session-engine fixtures: a connection-request port that records calls, and Informs. */
import type { ConnectionRequestPort } from '../../src/cwmp/session.js';
import type { Inform } from '../../src/cwmp/types.js';

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
