/**
 * One collection of a Bulk Data profile: its Parameter references read through the agent's data
 * model (the same router and backends a USP Get uses, so a CWMP device gets one batched
 * GetParameterValues of explicit names), turned into report values with their TR-106 types.
 */
import { type DmRouter, modelPaths } from '../usp/dm/router.js';
import type { CallScope } from '../usp/request-scope.js';
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
  onUnresolved: ((reference: string, why: string) => void) | undefined,
  scope: CallScope | undefined,
): Promise<string[]> {
  const ast = parsePath(reference);
  if (!hasWildcardOrSearch(ast)) return [reference];
  const { backend } = modelPaths(router, agentEid, scope);
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
export async function collect(
  router: DmRouter,
  agentEid: string,
  refs: readonly ParameterRef[],
  now: number,
  maxValues: number,
  scope?: CallScope,
): Promise<Report> {
  return (await collectMany(router, agentEid, [refs], now, maxValues, undefined, undefined, scope))[0]!;
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
  /** A reference that matched nothing because its path is not in the device's model. */
  onUnresolved?: (reference: string, why: string) => void,
  /** Values of a report left out beyond maxValues. */
  onDropped?: (n: number) => void,
  /** How the collection's RPCs go out (rpc-scope.ts). */
  scope?: CallScope,
): Promise<Report[]> {
  const wanted: { ref: ParameterRef; path: string }[][] = [];
  const union = new Set<string>();
  for (const refs of profiles) {
    const list: { ref: ParameterRef; path: string }[] = [];
    for (const ref of refs)
      for (const path of await concrete(router, agentEid, ref.reference, maxValues, onUnresolved, scope)) {
        list.push({ ref, path });
        union.add(path);
      }
    wanted.push(list);
  }
  // A parameter name the device's supported model does not have is left out before any RPC (the
  // extension: the report is a filter over the instantiated data model; validation is against the
  // supported one): 33,000 such names would otherwise cost the device a GetParameterValues fault
  // and a bisection per collection.
  const explicit = [...union].filter((p) => !p.endsWith('.'));
  const types = await typesOf(router, agentEid, explicit, scope, true);
  for (const p of explicit)
    if (!types.has(p)) {
      union.delete(p);
      onUnresolved?.(p, 'not a parameter of the device');
    }
  const values = union.size > 0 ? await router.get(agentEid, [...union], undefined, scope) : new Map<string, string>();
  const below = [...values.keys()].filter((k) => !types.has(k));
  if (below.length > 0) for (const [k, t] of await typesOf(router, agentEid, below, scope)) types.set(k, t);
  let dropped = 0;
  const reports = wanted.map((list) => {
    const out: ReportValue[] = [];
    const seen = new Set<string>();
    for (const { ref, path } of list) {
      const hits = path.endsWith('.') ? [...values.keys()].filter((k) => k.startsWith(path)) : values.has(path) ? [path] : [];
      for (const k of hits) {
        if (seen.has(k)) continue;
        seen.add(k);
        if (out.length >= maxValues) {
          dropped++;
          continue;
        }
        out.push({ name: reportName(ref, path, k), value: values.get(k)!, type: types.get(k) ?? 'string' });
      }
    }
    return { collectedAt: now, values: out };
  });
  if (dropped > 0) onDropped?.(dropped);
  return reports;
}

/**
 * TR-106 types of parameters, from the supported model; a path absent from the result is not a
 * parameter the model has. `strict`: a model that cannot be learned (device unreachable) fails
 * the call instead of leaving its paths out.
 */
async function typesOf(
  router: DmRouter,
  agentEid: string,
  paths: readonly string[],
  scope: CallScope | undefined,
  strict = false,
): Promise<Map<string, ParamType>> {
  const { model } = modelPaths(router, agentEid, scope);
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
    } catch (e) {
      if (strict && !(e instanceof PathError)) throw e;
      continue;
    }
    for (const p of list) {
      const t = schema?.params.find((q) => q.name === p.slice(o.length))?.type;
      if (t) out.set(p, t);
    }
  }
  return out;
}
