/**
 * Get (TR-369 "The Get Message"): one req_path_result per requested path; for each resolved
 * object one resolved_path_result whose result_params are relative to it (R-GET.2); an object
 * path returns the object and every sub-object down to max_depth (0 = all, R-GET.5); a bad path
 * errors alone (R-GET.0); a search that matches nothing is an empty success (R-GET.1a).
 */
import { resolvePath } from '../path/index.js';
import type { GetRequestedPathResult, GetResolvedPathResult, Msg } from '../codec/record.js';
import { codeOf, pathBackendOf, responseMsg, type HandlerContext } from './context.js';

export async function handleGet(ctx: HandlerContext, msg: Msg): Promise<Msg> {
  const get = msg.body.request!.get!;
  const maxDepth = get.maxDepth ?? 0;
  const { backend } = await pathBackendOf(ctx, get.paramPaths);
  const results: GetRequestedPathResult[] = [];
  for (const requestedPath of get.paramPaths) {
    try {
      const resolved = await resolvePath(requestedPath, backend, { onMissing: 'error' });
      const byObject = new Map<string, Record<string, string>>();
      const paths = resolved.filter((r) => r.kind === 'object' || r.kind === 'parameter').map((r) => r.path);
      const values = await ctx.router.get(ctx.agentEid, paths);
      for (const r of resolved) {
        if (r.kind === 'parameter') {
          const v = values.get(r.path);
          if (v === undefined) continue;
          const params = byObject.get(r.object) ?? {};
          params[r.leaf!] = v;
          byObject.set(r.object, params);
        } else if (r.kind === 'object') {
          const base = depthOf(r.path);
          for (const [p, v] of values) {
            if (!p.startsWith(r.path)) continue;
            const dot = p.lastIndexOf('.');
            const obj = p.slice(0, dot + 1);
            // depth 1 = the object itself, 2 = its sub-objects, ... (R-GET.5); a table and its
            // instances are one level ("TemperatureStatus.TemperatureSensor.{i}." is level 2).
            if (maxDepth > 0 && depthOf(obj) - base >= maxDepth) continue;
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
    } catch (e) {
      const { errCode, errMsg } = codeOf(e);
      results.push({ requestedPath, errCode, errMsg, resolvedPathResults: [] });
    }
  }
  return responseMsg(msg, 'GET_RESP', { respType: 'getResp', getResp: { reqPathResults: results } });
}

/** Object levels of a path: its names, not counting instance numbers. */
function depthOf(path: string): number {
  return path.split('.').filter((s) => s !== '' && !/^\d+$/.test(s)).length;
}
