/**
 * One collection of a Bulk Data profile: its Parameter references read through the agent's data
 * model (the same router and backends a USP Get uses, so a CWMP device gets one batched
 * GetParameterValues of explicit names), turned into report values with their TR-106 types.
 */
import { type DmRouter, modelPaths } from '../usp/dm/router.js';
import type { ParamType } from '../usp/dm/types.js';
import { hasWildcardOrSearch, PathError, parsePath, resolvePath } from '../usp/path/index.js';
import type { Report, ReportValue } from './encode.js';

export interface ParameterRef {
  /** Parameter.{i}.Name: the name in the report ("" = the path itself). */
  name: string;
  /** Parameter.{i}.Reference: a parameter path, a partial (object) path, or either with wildcards. */
  reference: string;
}

/** Concrete paths a reference stands for; a wildcard that matches nothing gives none (TR-181 Parameter.{i}.Reference). */
async function concrete(
  router: DmRouter,
  agentEid: string,
  reference: string,
  maxResults: number,
  onUnresolved?: (reference: string, why: string) => void,
): Promise<string[]> {
  const ast = parsePath(reference);
  if (!hasWildcardOrSearch(ast)) return [reference];
  const { backend } = modelPaths(router, agentEid);
  try {
    return (await resolvePath(ast, backend, { maxResults })).map((r) => r.path);
  } catch (e) {
    // A path the device's model does not have (an empty table's children were never listed): it
    // matches nothing, like a wildcard over no instances; other failures (unreachable) fail the collection.
    if (e instanceof PathError) {
      onUnresolved?.(reference, e.message);
      return [];
    }
    throw e;
  }
}

/**
 * The name a collected path takes in the report: with Parameter.{i}.Name set, the Name replaces
 * the reference's part up to the wildcard-free prefix (TR-181 Parameter.{i}.Name: for a partial
 * path, Name is the prefix of the names below it).
 */
export function reportName(ref: ParameterRef, resolvedRef: string, path: string): string {
  if (ref.name === '') return path;
  if (!resolvedRef.endsWith('.')) return ref.name;
  return `${ref.name}.${path.slice(resolvedRef.length)}`;
}

/** Reads a profile's references now. Unknown references are left out (a status, not a failure). */
export async function collect(router: DmRouter, agentEid: string, refs: readonly ParameterRef[], now: number, maxValues: number): Promise<Report> {
  return (await collectMany(router, agentEid, [refs], now, maxValues))[0]!;
}

/**
 * Reads several profiles of one agent at once: the union of their paths in one Get through the
 * router, so that a CWMP device answers one batched GetParameterValues for all of them (issue 20:
 * the parameters of all profiles of a device merged), then one report per profile.
 */
export async function collectMany(
  router: DmRouter,
  agentEid: string,
  profiles: readonly (readonly ParameterRef[])[],
  now: number,
  maxValues: number,
  /** A wildcard reference that matched nothing because its path is not in the device's model. */
  onUnresolved?: (reference: string, why: string) => void,
): Promise<Report[]> {
  const wanted: { ref: ParameterRef; path: string }[][] = [];
  const union = new Set<string>();
  for (const refs of profiles) {
    const list: { ref: ParameterRef; path: string }[] = [];
    for (const ref of refs)
      for (const path of await concrete(router, agentEid, ref.reference, maxValues, onUnresolved)) {
        list.push({ ref, path });
        union.add(path);
      }
    wanted.push(list);
  }
  const values = await router.get(agentEid, [...union]);
  const types = await typesOf(router, agentEid, [...values.keys()]);
  return wanted.map((list) => {
    const out: ReportValue[] = [];
    const seen = new Set<string>();
    for (const { ref, path } of list) {
      const hits = path.endsWith('.') ? [...values.keys()].filter((k) => k.startsWith(path)) : values.has(path) ? [path] : [];
      for (const k of hits) {
        if (seen.has(k) || out.length >= maxValues) continue;
        seen.add(k);
        out.push({ name: reportName(ref, path, k), value: values.get(k)!, type: types.get(k) ?? 'string' });
      }
    }
    return { collectedAt: now, values: out };
  });
}

/** TR-106 types of collected parameters, from the supported model (string when unknown). */
async function typesOf(router: DmRouter, agentEid: string, paths: readonly string[]): Promise<Map<string, ParamType>> {
  const { model } = modelPaths(router, agentEid);
  const out = new Map<string, ParamType>();
  const byObject = new Map<string, string[]>();
  for (const p of paths) {
    const dot = p.lastIndexOf('.');
    const o = p.slice(0, dot + 1);
    const list = byObject.get(o) ?? [];
    list.push(p);
    byObject.set(o, list);
  }
  for (const [o, list] of byObject) {
    let schema: Awaited<ReturnType<typeof model.object>>;
    try {
      schema = await model.object(o);
    } catch {
      continue;
    }
    for (const p of list) {
      const t = schema?.params.find((q) => q.name === p.slice(o.length))?.type;
      if (t) out.set(p, t);
    }
  }
  return out;
}
