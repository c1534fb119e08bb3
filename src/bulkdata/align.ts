/**
 * bulkdata.alignPeriodicInform: one SetParameterValues that makes a device's periodic Informs come
 * at its shortest ReportingInterval (TR-069 ManagementServer.PeriodicInformEnable,
 * PeriodicInformInterval, and PeriodicInformTime from the profile's TimeReference when set), so
 * that its collections ride those sessions instead of costing a connection request each.
 */
import type { RootModel } from '../store/types.js';
import type { CallScope } from '../usp/request-scope.js';

/** The narrow view of the device registry and of the interworking layer this needs. */
export interface AlignPorts {
  deviceByEndpointId(eid: string): Promise<{ rootModel: RootModel } | null>;
  /** `scope`: how the RPC goes out (rpc-scope.ts: riding the periodic Inform). */
  setParameterValues(eid: string, list: { name: string; value: string }[], scope?: CallScope): Promise<{ ok: boolean; errMsg?: string }>;
}

const UNSET_TIME = '0001-01-01T00:00:00Z';

/** The SetParameterValues list for a device of this root model. */
export function alignmentParameters(root: RootModel, intervalS: number, timeReference: string): { name: string; value: string }[] {
  const ms = `${root}.ManagementServer.`;
  const list = [
    { name: `${ms}PeriodicInformEnable`, value: 'true' },
    { name: `${ms}PeriodicInformInterval`, value: String(intervalS) },
  ];
  if (timeReference && timeReference !== UNSET_TIME && Number.isFinite(Date.parse(timeReference)))
    list.push({ name: `${ms}PeriodicInformTime`, value: timeReference });
  return list;
}

export async function alignPeriodicInform(ports: AlignPorts, agentEid: string, intervalS: number, timeReference: string, scope?: CallScope): Promise<void> {
  const d = await ports.deviceByEndpointId(agentEid);
  if (!d) throw new Error(`no device for agent ${agentEid}`);
  const r = await ports.setParameterValues(agentEid, alignmentParameters(d.rootModel, intervalS, timeReference), scope);
  if (!r.ok) throw new Error(r.errMsg ?? 'SetParameterValues refused');
}
