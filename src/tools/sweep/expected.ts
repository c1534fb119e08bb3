/**
 * What a USP controller should see of one simulated device model, computed without the proxy:
 * a TR-181 model as it is (Device:2 pass-through), a TR-098 model through the mapping engine
 * run on the model's own parameters. Values are the device's (the CSV, plus the few identity
 * values the simulator writes per device: serial number, ACS and connection-request URLs, WAN
 * address), read before the sweep changes anything.
 */
import { DeviceMapping, type NativeParamInfo } from '../../mapping/engine.js';
import type { MappingRules } from '../../mapping/load.js';
import type { SimDevice } from '../sim/device.js';
import { baseType } from '../sim/rpc.js';

/** A table to Add a row to and Delete it from. */
export interface WritableTable {
  /** Concrete Device:2 table path, "Device.NAT.PortMapping." or "Device.IP.Interface.1.IPv4Address." */
  usp: string;
  /** The native table(s) an AddObject for it may name, for messages. */
  native: string;
  /** Whether an AddObject of this native table is the right one. */
  accepts(nativeTable: string): boolean;
}

export interface ExpectedModel {
  readonly root: string;
  /** Concrete instance paths ("Device.IP.Interface.1.") at and below a Device:2 table; null when the model has no such table. */
  instances(table: string): string[] | null;
  /** Device:2 parameters matching a path with `*` wildcards (a trailing "." = everything below), with their values. */
  values(pattern: string): Map<string, string>;
  /** The native parameter behind a Device:2 parameter (null: not mapped). */
  nativeParam(usp: string): string | null;
  /** The native SetParameterValues entries a Set of a Device:2 parameter must produce. */
  nativeSet(usp: string, value: string): Array<{ path: string; value: string }>;
  /** A table the controller may Add to and Delete from, NAT.PortMapping when there is one. */
  writableTable(): WritableTable | null;
}

const PREFERRED_TABLE = 'Device.NAT.PortMapping.';

/** A USP path pattern ("Device.WiFi.SSID.*.SSID", "Device.Hosts.Host.*.") as a RegExp over concrete paths. */
export function patternRegex(pattern: string): RegExp {
  const body = pattern
    .split('*')
    .map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
    .join('\\d+');
  return new RegExp(`^${body}${pattern.endsWith('.') ? '.*' : ''}$`);
}

/** USP values of booleans are "true"/"false" (TR-369 data types); the CWMP side may say 1/0. */
function uspValue(type: string, v: string): string {
  if (baseType(type) !== 'boolean') return v;
  const t = v.trim().toLowerCase();
  return t === '1' || t === 'true' ? 'true' : t === '0' || t === 'false' ? 'false' : v;
}

const isInstance = (p: string): boolean => /\.\d+\.$/.test(p);

/** The expectations for a device: Device:2 models directly, TR-098 models through `rules`. */
export function expectedModel(dev: SimDevice, rules: MappingRules): ExpectedModel {
  return dev.model.root === 'Device.' ? new Tr181Expected(dev) : new MappedExpected(dev, rules);
}

class Tr181Expected implements ExpectedModel {
  readonly root = 'Device.';
  private readonly vals = new Map<string, string>();
  private readonly objects: string[] = [];

  constructor(private readonly dev: SimDevice) {
    for (const p of dev.model.walk('Device.')) {
      if (p.endsWith('.')) this.objects.push(p);
      else this.vals.set(p, uspValue(dev.model.node(p)!.type, dev.getValue(p) ?? ''));
    }
  }

  instances(table: string): string[] | null {
    if (!this.dev.model.has(table)) return null;
    return this.objects.filter((o) => o.startsWith(table) && isInstance(o));
  }

  values(pattern: string): Map<string, string> {
    const re = patternRegex(pattern);
    return new Map([...this.vals].filter(([p]) => re.test(p)));
  }

  nativeParam(usp: string): string | null {
    return this.vals.has(usp) ? usp : null;
  }

  nativeSet(usp: string, value: string): Array<{ path: string; value: string }> {
    return [{ path: usp, value }];
  }

  writableTable(): WritableTable | null {
    const m = this.dev.model;
    // Top-level tables first, then nested ones under an existing row.
    const depth = (o: string): number => o.split('.').filter((s) => /^\d+$/.test(s)).length;
    const tables = this.objects.filter((o) => !isInstance(o) && m.node(o)?.writable && m.isTable(o)).sort((a, b) => depth(a) - depth(b));
    const t = tables.includes(PREFERRED_TABLE) ? PREFERRED_TABLE : tables[0];
    return t ? { usp: t, native: t, accepts: (n) => n === t } : null;
  }
}

class MappedExpected implements ExpectedModel {
  readonly root: string;
  private readonly mapping: DeviceMapping;
  private readonly native = new Map<string, string>();

  constructor(
    private readonly dev: SimDevice,
    rules: MappingRules,
  ) {
    this.root = dev.model.root;
    const params: NativeParamInfo[] = [];
    for (const p of dev.model.walk(dev.model.root)) {
      const n = dev.model.node(p)!;
      params.push({ name: p, writable: n.writable, type: n.object ? undefined : n.type });
      if (!n.object) this.native.set(p, dev.getValue(p) ?? '');
    }
    // The values that decide rows (radio bands, DNS lists, DHCP hosts) are known, as the proxy reads them.
    this.mapping = new DeviceMapping(rules, { deviceKey: dev.serial, params, values: this.native });
  }

  instances(table: string): string[] | null {
    if (this.mapping.uspInstances(table) === null) return null;
    return this.mapping.objectsUnder(table).filter(isInstance);
  }

  values(pattern: string): Map<string, string> {
    const re = patternRegex(pattern);
    const prefix = pattern.slice(0, pattern.indexOf('*') < 0 ? pattern.length : pattern.indexOf('*'));
    const out = new Map<string, string>();
    for (const p of this.mapping.paramsUnder(prefix.slice(0, prefix.lastIndexOf('.') + 1))) {
      if (!re.test(p)) continue;
      const v = this.mapping.nativeToUspValue(p, this.native);
      if (v !== null) out.set(p, v);
    }
    return out;
  }

  nativeParam(usp: string): string | null {
    return this.mapping.toNative(usp)?.[0] ?? null;
  }

  nativeSet(usp: string, value: string): Array<{ path: string; value: string }> {
    return this.mapping.uspToNativeValue(usp, value).map((s) => ({ path: s.path, value: s.value }));
  }

  writableTable(): WritableTable | null {
    // Writable: one writable native table behind it, or (a flattened table such as NAT.PortMapping
    // from every WAN*Connection) rows whose native table is writable on the device.
    const nativeTableWritable = (usp: string): boolean =>
      (this.mapping.uspInstances(usp.slice(0, -'{i}.'.length)) ?? []).some((n) => {
        const native = this.mapping.toNative(`${usp.slice(0, -'{i}.'.length)}${n}.`)?.[0];
        return !!native && this.dev.model.node(native.replace(/\d+\.$/, ''))?.writable === true;
      });
    const rules = this.mapping
      .supportedModel()
      .filter((o) => o.multiInstance && (o.writable || (!o.path.slice(0, -4).includes('{i}') && nativeTableWritable(o.path))))
      .map((o) => o.path)
      .sort((a, b) => a.split('{i}').length - b.split('{i}').length);
    const ordered = rules.includes(`${PREFERRED_TABLE}{i}.`) ? [`${PREFERRED_TABLE}{i}.`, ...rules] : rules;
    for (const rule of ordered) {
      const table = this.concreteTable(rule.slice(0, -'{i}.'.length));
      if (!table) continue;
      const rows = this.mapping.objectsUnder(table).filter((o) => /^\d+\.$/.test(o.slice(table.length)));
      const nativeTables = new Set(rows.map((r) => this.mapping.toNative(r)?.[0]?.replace(/\d+\.$/, '')).filter((t): t is string => !!t));
      if (nativeTables.size > 0) return { usp: table, native: [...nativeTables].join(' or '), accepts: (n) => nativeTables.has(n) };
      // No row to learn the native table from: under the native object of the enclosing row, if any.
      const k = table.slice(0, -1).lastIndexOf('.');
      const parent = /\.\d+\.$/.test(table.slice(0, k + 1)) ? (this.mapping.toNative(table.slice(0, k + 1))?.[0] ?? null) : null;
      const under = parent ?? this.root;
      return { usp: table, native: `a table under ${under}`, accepts: (n) => n.startsWith(under) && n.endsWith('.') };
    }
    return null;
  }

  /** "Device.IP.Interface.{i}.IPv4Address." -> "Device.IP.Interface.1.IPv4Address." (the first existing row), or null. */
  private concreteTable(pattern: string): string | null {
    const k = pattern.lastIndexOf('{i}.');
    if (k < 0) return this.mapping.uspInstances(pattern) === null ? null : pattern;
    const parentRe = patternRegex(pattern.slice(0, k).replaceAll('{i}', '*') + '*.');
    const parents = this.mapping.objectsUnder(pattern.slice(0, pattern.indexOf('{i}'))).filter((o) => parentRe.test(o) && !o.slice(0, -1).includes('..'));
    const exact = parents.filter((o) => o.split('.').length === pattern.slice(0, k + 4).split('.').length);
    exact.sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
    const table = exact[0] ? exact[0] + pattern.slice(k + 4) : null;
    return table && this.mapping.uspInstances(table) !== null ? table : null;
  }
}
