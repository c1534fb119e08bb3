/**
 * GetInstances (TR-369 "The GetInstances Message"): the instances of the addressed tables and,
 * unless first_level_only, of every table below them, each with its unique keys. The unique keys of
 * all instances are read with one Get (a CWMP device: one GetParameterValues of explicit names).
 * Permissions: instances the controller may not read (InstantiatedObj "r") are absent, and so are
 * those a search matched on parameters it may not read (R-GIN.0); unique keys it may not read are
 * left out (R-GIN.1).
 */
import type { CurrInstance, GetInstancesRequestedPathResult, Msg } from '../codec/record.js';
import type { ModelView } from '../dm/router.js';
import { UspError } from '../errors.js';
import { resolvePath } from '../path/index.js';
import { codeOf, may, pathBackendOf, type RequestScope, responseMsg } from './context.js';

export async function handleGetInstances(ctx: RequestScope, msg: Msg): Promise<Msg> {
  const req = msg.body.request!.getInstances!;
  const { backend, model } = await pathBackendOf(ctx, req.objPaths);
  const results: GetInstancesRequestedPathResult[] = [];
  for (const requestedPath of req.objPaths) {
    try {
      if (!requestedPath.endsWith('.')) throw new UspError(7026, `${requestedPath} is not an object path`);
      const resolved = await resolvePath(requestedPath, backend, { onMissing: 'error' });
      const instances: string[] = [];
      for (const r of resolved) {
        // A table path lists its rows; an instance or single object lists the tables below it.
        if (await model.isTable(r.path)) await collect(ctx, model, r.path, !req.firstLevelOnly, instances);
        else if (/\.\d+\.$/.test(r.path)) {
          instances.push(r.path);
          if (!req.firstLevelOnly) await below(ctx, model, r.path, instances);
        } else if (!req.firstLevelOnly) await below(ctx, model, r.path, instances);
        else throw new UspError(7018, `${r.path} is not a table`);
      }
      const visible = instances.filter((inst) => may(ctx, inst, 'InstantiatedObj.r'));
      results.push({ requestedPath, currInsts: await withUniqueKeys(ctx, model, visible) });
    } catch (e) {
      const c = codeOf(e);
      results.push({ requestedPath, errCode: c.errCode, errMsg: c.errMsg, currInsts: [] });
    }
  }
  return responseMsg(msg, 'GET_INSTANCES_RESP', { respType: 'getInstancesResp', getInstancesResp: { reqPathResults: results } });
}

/** Each instance with the values of its unique keys, all read in one Get. */
async function withUniqueKeys(ctx: RequestScope, model: ModelView, instances: readonly string[]): Promise<CurrInstance[]> {
  const keysOf = new Map<string, string[]>();
  for (const inst of instances)
    keysOf.set(
      inst,
      [...new Set(((await model.object(inst))?.uniqueKeys ?? []).flat())].filter((k) => may(ctx, inst + k, 'Param.r')),
    );
  const paths = instances.flatMap((inst) => keysOf.get(inst)!.map((k) => inst + k));
  const values = paths.length ? await ctx.router.get(ctx.agentEid, paths, undefined, ctx.scope) : new Map<string, string>();
  return instances.map((inst) => {
    const uniqueKeys: Record<string, string> = {};
    for (const k of keysOf.get(inst)!) {
      const v = values.get(inst + k);
      if (v !== undefined) uniqueKeys[k] = v;
    }
    return { instantiatedObjPath: inst, uniqueKeys };
  });
}

async function collect(ctx: RequestScope, model: ModelView, tablePath: string, deep: boolean, out: string[]): Promise<void> {
  for (const n of (await ctx.router.instances(ctx.agentEid, tablePath, ctx.scope)) ?? []) {
    const inst = `${tablePath}${n}.`;
    out.push(inst);
    if (deep) await below(ctx, model, inst, out);
  }
}

/** Tables anywhere below a concrete object path. */
async function below(ctx: RequestScope, model: ModelView, objectPath: string, out: string[]): Promise<void> {
  const schemaPath = objectPath.replace(/\.\d+(?=\.)/g, '.{i}');
  for (const child of await model.children(schemaPath)) {
    const rest = child.path.slice(schemaPath.length);
    const name = rest.slice(0, rest.indexOf('.'));
    if (child.multiInstance) await collect(ctx, model, `${objectPath}${name}.`, true, out);
    else await below(ctx, model, `${objectPath}${name}.`, out);
  }
}
