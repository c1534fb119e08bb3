/** Store rows for store tests (SQLite's own tests and the SQLite/Redis contract suite). */
import type { DeviceRecord, QueuedRpc } from '../../src/store/types.js';

export function device(serial: string, over: Partial<DeviceRecord> = {}): DeviceRecord {
  return {
    deviceKey: `00D09E-HGW-${serial}`,
    endpointId: `os::00D09E-${serial}`,
    deviceId: { manufacturer: 'Acme', oui: '00D09E', productClass: 'HGW', serialNumber: serial },
    rootModel: 'InternetGatewayDevice',
    softwareVersion: '1.2.3',
    connectionRequestUrl: `http://10.0.0.1:7547/cr/${serial}`,
    connReqUsername: 'cr-user',
    connReqPassword: 'cr-pass',
    cpeUsername: null,
    cpePassword: null,
    periodicInformInterval: 300,
    lastInform: null,
    lastInformEvents: [],
    registeredAt: '2024-01-01T00:00:00.000Z',
    ...over,
  };
}

export function rpc(id: string, deviceKey: string, n = 0): QueuedRpc {
  return {
    id,
    deviceKey,
    rpc: { method: 'GetParameterValues', parameterNames: [`Device.X.${n}`] },
    createdAt: new Date(1_700_000_000_000 + n).toISOString(),
    deadline: 1_700_000_030_000 + n,
  };
}
