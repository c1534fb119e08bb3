/**
 * The vendor-extension object that mirrors a device's native tree (TR-106 3.3 "Vendor-specific
 * Parameters": X_<VENDOR>_Name, VENDOR an OUI or a domain name with '.' written '-').
 *
 * - TR-098 device: `Device.X_<VENDOR>_Native.` is `InternetGatewayDevice.` as the device has it,
 *   so every native parameter, placed in Device:2 by the mapping or not, stays reachable.
 * - Device:2 device: it holds the device's own subtrees that the proxy shadows with objects it
 *   serves itself (Device.LocalAgent., Device.MQTT., ...): `Device.X_<VENDOR>_Native.LocalAgent.`
 *   is the device's `Device.LocalAgent.`.
 *
 * Pure path arithmetic: the backend is extension-backend.ts.
 */
import type { RootModel } from '../store/types.js';

export const DEFAULT_EXTENSION_VENDOR = 'CWMP-USP-PROXY';

/** TR-106 vendor token: an OUI (6 hex digits) or a domain name in upper case, '.' as '-'. */
export const EXTENSION_VENDOR_RE = /^[A-Z0-9](?:[A-Z0-9-]{0,62}[A-Z0-9])?$/;

export class NativeExtension {
  /** "Device.X_<VENDOR>_Native." */
  readonly prefix: string;
  /** Object prefixes of Device:2 the proxy serves itself ("Device.LocalAgent."): commands left out. */
  readonly shadowed: readonly string[];

  constructor(vendor: string, shadowed: readonly string[]) {
    if (!EXTENSION_VENDOR_RE.test(vendor)) throw new Error(`extension vendor ${JSON.stringify(vendor)} is not a TR-106 vendor token (OUI or DOMAIN-NAME)`);
    this.prefix = `Device.X_${vendor}_Native.`;
    this.shadowed = shadowed.filter((p) => p.endsWith('.'));
  }

  static nativeRoot(root: RootModel): string {
    return `${root}.`;
  }

  /** Whether a native path (object, parameter, "{i}" form) is exposed under the extension object. */
  exposes(root: RootModel, native: string): boolean {
    if (root === 'InternetGatewayDevice') return native.startsWith('InternetGatewayDevice.');
    return native === 'Device.' || this.shadowed.some((s) => native.startsWith(s) || native === s.slice(0, -1));
  }

  /** Whether a native path lies in a subtree the proxy shadows (Device:2 devices only). */
  isShadowed(root: RootModel, native: string): boolean {
    return root === 'Device' && this.shadowed.some((s) => native.startsWith(s));
  }

  /** An extension path as the native path it mirrors; null when the path is not under the extension object or not exposed. */
  toNative(root: RootModel, path: string): string | null {
    if (path === this.prefix.slice(0, -1)) path = this.prefix;
    if (!path.startsWith(this.prefix)) return null;
    const native = NativeExtension.nativeRoot(root) + path.slice(this.prefix.length);
    return this.exposes(root, native) ? native : null;
  }

  /** A native path as its extension path; null when the extension object does not expose it. */
  toUsp(root: RootModel, native: string): string | null {
    const r = NativeExtension.nativeRoot(root);
    if (!native.startsWith(r) || !this.exposes(root, native)) return null;
    return this.prefix + native.slice(r.length);
  }
}
