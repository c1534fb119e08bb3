/**
 * Per-device CPE credentials (acs.auth.perDevice; docs/security.md "CPE authentication"): the
 * ACS gives each device its own ManagementServer.Username/Password (TR-069 3.4.4: the CPE
 * authenticates to the ACS with them; TR-098 InternetGatewayDevice.ManagementServer. or TR-181
 * Device.ManagementServer.) in its first session under the shared bootstrap login, and from then
 * on only those open the device's sessions.
 *
 * Lockout safety: the new pair is stored as *pending* before the SetParameterValues leaves, and
 * the ACS front accepts the pending pair (promoting it) or the current one. So a device that
 * applied the pair while the proxy crashed before storing the answer still gets in.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { Logger } from '../app/log.js';
import type { DeviceRecord, QueuedRpc, Store } from '../store/types.js';
import type { RpcOutcome } from './session-types.js';

/** QueuedRpc.origin of the credentials RPC: no caller waits; the session stores the outcome. */
export const CPE_CREDENTIALS_ORIGIN = '#cpe-credentials';

/** A fresh random pair: the username is unique per device (the front finds the device by it, before any body is read). */
export function newCpeCredentials(): { username: string; password: string } {
  return { username: `cpe-${randomBytes(12).toString('hex')}`, password: randomBytes(24).toString('base64url') };
}

/** The session must give the device its pending pair: it has one and no current pair yet. */
export function wantsCpeCredentials(enabled: boolean, device: DeviceRecord): boolean {
  return enabled && !!device.cpePendingUsername && !device.cpeUsername;
}

/** The SetParameterValues of the device's pending pair. */
export function cpeCredentialsRpc(device: DeviceRecord, deadlineMs: number): QueuedRpc {
  const ms = `${device.rootModel}.ManagementServer`;
  return {
    id: randomUUID(),
    deviceKey: device.deviceKey,
    rpc: {
      method: 'SetParameterValues',
      parameterList: [
        { name: `${ms}.Username`, value: device.cpePendingUsername ?? '', type: 'xsd:string' },
        { name: `${ms}.Password`, value: device.cpePendingPassword ?? '', type: 'xsd:string' },
      ],
      parameterKey: '',
    },
    createdAt: new Date().toISOString(),
    deadline: Date.now() + deadlineMs,
    origin: CPE_CREDENTIALS_ORIGIN,
  };
}

/**
 * Pending becomes current: the device accepted the SetParameterValues, or authenticated with the
 * pending pair. From then on the shared login no longer opens this device's sessions.
 */
export async function promotePendingCpeCredentials(store: Store, deviceKey: string, username: string): Promise<boolean> {
  const device = await store.getDevice(deviceKey);
  if (!device || device.cpePendingUsername !== username) return false;
  device.cpeUsername = device.cpePendingUsername;
  device.cpePassword = device.cpePendingPassword ?? '';
  device.cpePendingUsername = null;
  device.cpePendingPassword = null;
  await store.upsertDevice(device);
  return true;
}

/** After the device's answer to the credentials RPC. A refusal leaves the pair pending (the shared login still works). */
export async function storeCpeCredentials(store: Store, q: QueuedRpc, outcome: RpcOutcome, log: Logger): Promise<void> {
  if (outcome.kind === 'fault') {
    log.warn({ faultCode: outcome.fault.faultCode }, 'the device refused its per-device ACS credentials');
    return;
  }
  if (q.rpc.method !== 'SetParameterValues') return;
  const username = q.rpc.parameterList[0]?.value ?? '';
  if (await promotePendingCpeCredentials(store, q.deviceKey, username)) log.info('per-device ACS credentials set');
}
