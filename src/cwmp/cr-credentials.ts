/**
 * Per-device connection request credentials (TR-069 3.2.2): on BOOTSTRAP, or when none is known,
 * the ACS sets a random ConnectionRequestUsername/Password on the device as the first RPC of the
 * session and, once the device has accepted them, stores them for its connection requests. The
 * one place for this step; both session engines use it.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { Logger } from '../app/log.js';
import type { DeviceRecord, QueuedRpc, Store } from '../store/types.js';
import type { RpcOutcome } from './session-types.js';

/** QueuedRpc.origin of the credentials RPC: no caller waits; whoever gets the answer stores them. */
export const CR_CREDENTIALS_ORIGIN = '#cr-credentials';

export function wantsConnectionRequestCredentials(enabled: boolean, events: readonly string[], device: DeviceRecord): boolean {
  return enabled && (events.includes('0 BOOTSTRAP') || !device.connReqUsername);
}

/** The SetParameterValues of fresh random credentials, to run first in the session. */
export function connectionRequestCredentialsRpc(device: DeviceRecord, deadlineMs: number): QueuedRpc {
  const root = device.rootModel;
  return {
    id: randomUUID(),
    deviceKey: device.deviceKey,
    rpc: {
      method: 'SetParameterValues',
      parameterList: [
        { name: `${root}.ManagementServer.ConnectionRequestUsername`, value: `cr-${randomBytes(6).toString('hex')}`, type: 'xsd:string' },
        { name: `${root}.ManagementServer.ConnectionRequestPassword`, value: randomBytes(18).toString('base64url'), type: 'xsd:string' },
      ],
      parameterKey: '',
    },
    createdAt: new Date().toISOString(),
    deadline: Date.now() + deadlineMs,
    origin: CR_CREDENTIALS_ORIGIN,
  };
}

/** After the device's answer to the credentials RPC: stores them if it accepted. */
export async function storeConnectionRequestCredentials(store: Store, q: QueuedRpc, outcome: RpcOutcome, log: Logger): Promise<void> {
  if (outcome.kind === 'fault') {
    log.warn({ faultCode: outcome.fault.faultCode }, 'the device refused connection request credentials');
    return;
  }
  if (q.rpc.method !== 'SetParameterValues' || q.rpc.parameterList.length !== 2) return;
  const device = await store.getDevice(q.deviceKey);
  if (!device) return;
  device.connReqUsername = q.rpc.parameterList[0]!.value;
  device.connReqPassword = q.rpc.parameterList[1]!.value;
  await store.upsertDevice(device);
  log.info('connection request credentials set');
}
