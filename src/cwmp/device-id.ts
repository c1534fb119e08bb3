/**
 * Identities derived from an Inform's DeviceId: the registry key and the USP Endpoint ID.
 */
import type { DeviceIdStruct } from './types.js';

/**
 * %-encodes everything but the unreserved characters of RFC 3986 (TR-369 R-ARC.5: the
 * instance-id of an Endpoint ID may only hold unreserved characters, others %-encoded).
 */
export function encodeUnreserved(s: string): string {
  let out = '';
  for (const byte of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9\-._~]/.test(c) ? c : '%' + byte.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

/** Registry key "<OUI>-<ProductClass>-<SerialNumber>", each part %-encoded so the key is unambiguous. */
export function deviceKeyOf(id: DeviceIdStruct): string {
  return [id.oui, id.productClass, id.serialNumber].map(encodeUnreserved).join('-');
}

/**
 * USP Endpoint ID (TR-369 R-ARC.2a): "os::<OUI>-<SerialNumber>" or
 * "ops::<OUI>-<ProductClass>-<SerialNumber>". The instance part is limited to 50 characters
 * (R-ARC.5 via the 64-character Endpoint ID limit); longer ones are cut, which only happens
 * with absurd serial numbers and is still unique enough to route but is logged by the caller.
 */
export function endpointIdOf(id: DeviceIdStruct, scheme: 'os' | 'ops'): string {
  const parts = scheme === 'ops' ? [id.oui, id.productClass, id.serialNumber] : [id.oui, id.serialNumber];
  const instance = parts.map(encodeUnreserved).join('-');
  return `${scheme}::${instance.slice(0, 50)}`;
}

/** Data model root from the parameter names a device sends (TR-181 Device. vs TR-098 InternetGatewayDevice.). */
export function rootModelOf(names: Iterable<string>): 'Device' | 'InternetGatewayDevice' | null {
  for (const n of names) {
    if (n.startsWith('InternetGatewayDevice.')) return 'InternetGatewayDevice';
    if (n.startsWith('Device.')) return 'Device';
  }
  return null;
}
