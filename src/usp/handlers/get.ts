/**
 * Get (TR-369 "The Get Message"): one req_path_result per requested path; for each resolved
 * object one resolved_path_result whose result_params are relative to it (R-GET.2); an object
 * path returns the object and every sub-object down to max_depth (0 = all, R-GET.5); a bad path
 * errors alone (R-GET.0); a search that matches nothing is an empty success (R-GET.1a).
 */
import { type ResolvedPath, resolvePath } from '../path/index.js';
import type { GetRequestedPathResult, GetResolvedPathResult, Msg } from '../codec/record.js';
import { withinDepth } from '../dm/depth.js';
import { codeOf, pathBackendOf, responseMsg, type HandlerContext } from './context.js';

export async function handleGet(ctx: HandlerContext, msg: Msg): Promise<Msg> {
  const get = msg.body.request!.get!;
  const maxDepth = get.maxDepth ?? 0;
  const { backend } = await pathBackendOf(ctx, get.paramPaths);
  // Resolve every requested path first, then read all their values at once: a CWMP device gets
  // one set of batched GetParameterValues for the whole message, each name asked once.
  const plans: { requestedPath: string; resolved?: ResolvedPath[]; error?: { errCode: number; errMsg: string } }[] = [];
  for (const requestedPath of get.paramPaths) {
    try {
      plans.push({ requestedPath, resolved: await resolvePath(requestedPath, backend, { onMissing: 'error' }) });
    } catch (e) {
      plans.push({ requestedPath, error: codeOf(e) });
    }
  }
  const wanted = new Set<string>();
  for (const p of plans) for (const r of p.resolved ?? []) if (r.kind === 'object' || r.kind === 'parameter') wanted.add(r.path);
  let values = new Map<string, string>();
  try {
    values = await ctx.router.get(ctx.agentEid, maxDepth > 0 ? [...wanted] : mergeOverlapping([...wanted]), { maxDepth });
  } catch (e) {
    // A failure of one part (a subtree the device cannot list) must not fail the others: path by path.
    const reading = plans.filter((p) => p.resolved && p.resolved.length > 0);
    if (reading.length === 1) reading[0]!.error = codeOf(e);
    else
      for (const p of reading) {
        if (!p.resolved) continue;
        try {
          const paths = p.resolved.filter((r) => r.kind === 'object' || r.kind === 'parameter').map((r) => r.path);
          for (const [k, v] of await ctx.router.get(ctx.agentEid, paths, { maxDepth })) values.set(k, v);
        } catch (e) {
          p.error = codeOf(e);
        }
      }
  }
  const results: GetRequestedPathResult[] = [];
  for (const { requestedPath, resolved, error: failed } of plans) {
    if (failed || !resolved) {
      results.push({ requestedPath, errCode: failed?.errCode ?? 7003, errMsg: failed?.errMsg ?? 'internal error', resolvedPathResults: [] });
      continue;
    }
    // One parameter named in full that the device turned out not to have (its model has it,
    // this instance does not): an invalid path like any other (R-GET.0).
    if (resolved.length === 1 && resolved[0]!.kind === 'parameter' && !values.has(resolved[0]!.path) && !/[*[]/.test(requestedPath)) {
      results.push({
        requestedPath,
        errCode: 7026,
        errMsg: `invalid path: ${requestedPath} is not in the instantiated data model of this device`,
        resolvedPathResults: [],
      });
      continue;
    }
    const byObject = new Map<string, Record<string, string>>();
    for (const r of resolved) {
      if (r.kind === 'parameter') {
        const v = values.get(r.path);
        if (v === undefined) continue;
        const params = byObject.get(r.object) ?? {};
        params[r.leaf!] = v;
        byObject.set(r.object, params);
      } else if (r.kind === 'object') {
        for (const [p, v] of values) {
          if (!p.startsWith(r.path) || !withinDepth(r.path, p, maxDepth)) continue;
          const dot = p.lastIndexOf('.');
          const obj = p.slice(0, dot + 1);
          const params = byObject.get(obj) ?? {};
          params[p.slice(dot + 1)] = v;
          byObject.set(obj, params);
        }
      }
    }
    // Objects without parameters of their own (tables, empty containers) carry no result (R-GET.2).
    const resolvedPathResults: GetResolvedPathResult[] = [...byObject]
      .filter(([, params]) => Object.keys(params).length > 0)
      .map(([resolvedPath, resultParams]) => ({ resolvedPath, resultParams }));
    results.push({ requestedPath, resolvedPathResults });
  }
  return responseMsg(msg, 'GET_RESP', { respType: 'getResp', getResp: { reqPathResults: results } });
}

/** Paths covered by an object path in the same list are dropped ("Device." covers everything). */
function mergeOverlapping(paths: string[]): string[] {
  const objects = paths.filter((p) => p.endsWith('.')).sort((a, b) => a.length - b.length);
  const keep: string[] = [];
  for (const o of objects) if (!keep.some((k) => o.startsWith(k))) keep.push(o);
  return [...keep, ...paths.filter((p) => !p.endsWith('.') && !keep.some((k) => p.startsWith(k)))];
}
