/**
 * What a migration writes on the device over CWMP (pure): the TR-181 settings of the device's own
 * USP Agent for the operator's MQTT broker and controller (Device.MQTT.Client.{i}.,
 * Device.LocalAgent.MTP.{i}., Device.LocalAgent.Controller.{i}.), then the Enable switches.
 * Instance 1 of each table: dual-stack CPEs ship one of each (the EX220 dump has exactly one).
 */

export interface MigrationTarget {
  /** Broker as the device reaches it. */
  brokerHost: string;
  brokerPort: number;
  brokerTls: boolean;
  brokerUsername: string;
  brokerPassword: string;
  /** The device's MQTT Response Topic is this prefix + its native Endpoint ID. */
  agentTopicPrefix: string;
  controllerEndpointId: string;
  controllerTopic: string;
}

const CLIENT = 'Device.MQTT.Client.1.';
const MTP = 'Device.LocalAgent.MTP.1.';
const CTRL = 'Device.LocalAgent.Controller.1.';

/** The Enable switches, written after the settings (TR-181: a client connects when enabled). */
export const ENABLE_PARAMS: readonly string[] = [`${CLIENT}Enable`, `${MTP}Enable`, `${CTRL}MTP.1.Enable`, `${CTRL}Enable`];

/** Parameters a device must list to be migrated (the rest are written when it lists them). */
export const REQUIRED_PARAMS: readonly string[] = [
  `${CLIENT}BrokerAddress`,
  `${CLIENT}BrokerPort`,
  `${CTRL}EndpointID`,
  `${CTRL}MTP.1.MQTT.Topic`,
  `${CLIENT}Enable`,
  `${MTP}Enable`,
  `${CTRL}Enable`,
];

/** TR-181 "secured": read back empty over CWMP, so never saved for rollback. */
export const SECURED_PARAMS: readonly string[] = [`${CLIENT}Password`];

/** An MQTT ClientID from the Endpoint ID (MQTT 5 3.1.3.1: 0-9a-zA-Z are always accepted). */
export function clientIdOf(nativeEndpointId: string): string {
  return nativeEndpointId.replace(/[^0-9A-Za-z-]/g, '-').slice(0, 64);
}

/** The settings to write (before the Enable switches). */
export function settingsFor(t: MigrationTarget, nativeEndpointId: string): Record<string, string> {
  const s: Record<string, string> = {
    [`${CLIENT}BrokerAddress`]: t.brokerHost,
    [`${CLIENT}BrokerPort`]: String(t.brokerPort),
    [`${CLIENT}TransportProtocol`]: t.brokerTls ? 'TLS' : 'TCP/IP',
    [`${CLIENT}ProtocolVersion`]: '5.0',
    [`${CLIENT}ClientID`]: clientIdOf(nativeEndpointId),
    [`${CLIENT}Username`]: t.brokerUsername,
    [`${MTP}Protocol`]: 'MQTT',
    [`${MTP}MQTT.Reference`]: 'Device.MQTT.Client.1',
    [`${MTP}MQTT.ResponseTopicConfigured`]: t.agentTopicPrefix + nativeEndpointId,
    [`${CTRL}EndpointID`]: t.controllerEndpointId,
    [`${CTRL}MTP.1.Protocol`]: 'MQTT',
    [`${CTRL}MTP.1.MQTT.Reference`]: 'Device.MQTT.Client.1',
    [`${CTRL}MTP.1.MQTT.Topic`]: t.controllerTopic,
  };
  if (t.brokerPassword) s[`${CLIENT}Password`] = t.brokerPassword;
  return s;
}

/** Every name whose current value is saved for rollback (secured ones excepted). */
export function namesToSave(t: MigrationTarget, nativeEndpointId: string): string[] {
  return [...Object.keys(settingsFor(t, nativeEndpointId)), ...ENABLE_PARAMS].filter((n) => !SECURED_PARAMS.includes(n));
}

/** Keeps the names the device lists; null with the missing required names when it cannot be migrated. */
export function restrictTo(values: Record<string, string>, listed: ReadonlySet<string>): { values: Record<string, string> } | { missing: string[] } {
  const missing = REQUIRED_PARAMS.filter((n) => !listed.has(n));
  if (missing.length > 0) return { missing };
  return { values: Object.fromEntries(Object.entries(values).filter(([n]) => listed.has(n))) };
}
