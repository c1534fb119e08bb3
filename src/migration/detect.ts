/**
 * Detection of a dual-stack CPE: a TR-181 device whose CWMP data model holds its own USP Agent
 * (TR-181 Device.LocalAgent. with an EndpointID, Device.LocalAgent.MTP.{i}., Device.MQTT.Client.{i}.).
 * Pure: the caller reads the parameters (DETECTION_PARAMS, the names the device lists) over CWMP.
 */
import type { RootModel } from '../store/types.js';

/** What is read to decide (only the names the device lists are asked). */
export const DETECTION_PARAMS: readonly string[] = [
  'Device.LocalAgent.EndpointID',
  'Device.LocalAgent.SupportedProtocols',
  // The name the TP-Link EX220 firmware uses instead of TR-181's SupportedProtocols.
  'Device.LocalAgent.SupportProtocols',
  'Device.LocalAgent.MTPNumberOfEntries',
  'Device.LocalAgent.ControllerNumberOfEntries',
  'Device.MQTT.ClientNumberOfEntries',
];

export interface UspAgentDetection {
  /** The device has a USP Agent of its own: an EndpointID and at least one MTP or MQTT client. */
  dualStack: boolean;
  /** Device.LocalAgent.EndpointID as the device reports it; null when it has none. */
  endpointId: string | null;
  /** Device.LocalAgent.SupportedProtocols (TR-181: CoAP, MQTT, STOMP, WebSocket, UDS). */
  protocols: string[];
  mtps: number;
  mqttClients: number;
  controllers: number;
  /** Why the device is (not) dual-stack, for the admin API. */
  reason: string;
  checkedAt: string;
}

/** The decision from what the device answered (`values`: name -> value of the names it has). */
export function detectUspAgent(rootModel: RootModel, values: Readonly<Record<string, string>>, at: Date): UspAgentDetection {
  const n = (k: string): number => {
    const v = Number(values[k] ?? '0');
    return Number.isFinite(v) && v > 0 ? Math.floor(v) : 0;
  };
  const endpointId = values['Device.LocalAgent.EndpointID']?.trim() || null;
  const protocols = (values['Device.LocalAgent.SupportedProtocols'] ?? values['Device.LocalAgent.SupportProtocols'] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const mtps = n('Device.LocalAgent.MTPNumberOfEntries');
  const mqttClients = n('Device.MQTT.ClientNumberOfEntries');
  const controllers = n('Device.LocalAgent.ControllerNumberOfEntries');
  const base = { endpointId, protocols, mtps, mqttClients, controllers, checkedAt: at.toISOString() };
  if (rootModel !== 'Device') return { ...base, dualStack: false, reason: 'a TR-098 device has no TR-181 LocalAgent' };
  if (!('Device.LocalAgent.EndpointID' in values)) return { ...base, dualStack: false, reason: 'the device lists no Device.LocalAgent.EndpointID' };
  if (!endpointId) return { ...base, dualStack: false, reason: 'Device.LocalAgent.EndpointID is empty' };
  if (mtps === 0 && mqttClients === 0) return { ...base, dualStack: false, reason: 'the device has no LocalAgent.MTP and no MQTT.Client' };
  return { ...base, dualStack: true, reason: `own USP Agent ${endpointId} (${protocols.join(', ') || 'protocols not stated'})` };
}
