/**
 * Identities derived from an Inform's DeviceId: the registry key and the USP Endpoint ID.
 */
import type { DeviceIdStruct } from './types.js';

const UNRESERVED = /^[A-Za-z0-9\-._~]*$/;

/**
 * %-encodes everything but the unreserved characters of RFC 3986 (TR-369 R-ARC.5: the
 * instance-id of an Endpoint ID may only hold unreserved characters, others %-encoded).
 */
export function encodeUnreserved(s: string): string {
  // The common case (OUI, serial numbers): nothing to encode; this runs several times per session.
  if (UNRESERVED.test(s)) return s;
  let out = '';
  for (const byte of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9\-._~]/.test(c) ? c : '%' + byte.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

/**
 * A part that a "-" follows (OUI, ProductClass): "-" is %-encoded too (R-ARC.5 allows pct-encoded
 * anywhere), so the first "-" ends the OUI and the second the ProductClass and no two DeviceIds
 * join to the same text: ("IGD", "X-123") and ("IGD-X", "123") differ. The last part
 * (SerialNumber) keeps its "-", so the usual Endpoint IDs (os::00D09E-SN-0001) do not change.
 */
function encodeLeading(s: string): string {
  return encodeUnreserved(s).replaceAll('-', '%2D');
}

/** Registry key "<OUI>-<ProductClass>-<SerialNumber>", each part %-encoded so the key is unambiguous. */
export function deviceKeyOf(id: DeviceIdStruct): string {
  return `${encodeLeading(id.oui)}-${encodeLeading(id.productClass)}-${encodeUnreserved(id.serialNumber)}`;
}

/**
 * The key of a device model's learned xsi:types: "<OUI>-<ProductClass>-<SoftwareVersion>", encoded
 * as deviceKeyOf (a model key formed before had "-" unescaped; such types are learned again).
 */
export function modelTypesKeyOf(id: DeviceIdStruct, softwareVersion: string | null): string {
  return `${encodeLeading(id.oui)}-${encodeLeading(id.productClass)}-${encodeUnreserved(softwareVersion ?? '')}`;
}

/**
 * The key deviceKeyOf formed before store migration 8, where "-" inside the OUI or ProductClass
 * was left as is; kept only to migrate stored keys.
 */
export function legacyDeviceKeyOf(id: DeviceIdStruct): string {
  return [id.oui, id.productClass, id.serialNumber].map(encodeUnreserved).join('-');
}

/**
 * USP Endpoint ID (TR-369 R-ARC.2a): "os::<OUI>-<SerialNumber>" or
 * "ops::<OUI>-<ProductClass>-<SerialNumber>", parts encoded as in deviceKeyOf. Never cut:
 * R-ARC.6 limits the instance-id to 50 characters, but a cut ID can name two devices
 * (a non-unique Endpoint ID "will result in unpredictable behavior", TR-369 2.2); the caller
 * logs the rare ID that is longer (instanceIdTooLong).
 */
export function endpointIdOf(id: DeviceIdStruct, scheme: 'os' | 'ops'): string {
  const instance =
    scheme === 'ops'
      ? `${encodeLeading(id.oui)}-${encodeLeading(id.productClass)}-${encodeUnreserved(id.serialNumber)}`
      : `${encodeLeading(id.oui)}-${encodeUnreserved(id.serialNumber)}`;
  return `${scheme}::${instance}`;
}

/** TR-369 R-ARC.6: an instance-id holds at most 50 characters. */
export function instanceIdTooLong(endpointId: string): boolean {
  return endpointId.length - endpointId.indexOf('::') - 2 > 50;
}

/** Data model root from the parameter names a device sends (TR-181 Device. vs TR-098 InternetGatewayDevice.). */
export function rootModelOf(names: Iterable<string>): 'Device' | 'InternetGatewayDevice' | null {
  for (const n of names) {
    if (n.startsWith('InternetGatewayDevice.')) return 'InternetGatewayDevice';
    if (n.startsWith('Device.')) return 'Device';
  }
  return null;
}
