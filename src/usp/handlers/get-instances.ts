/**
 * GetInstances (TR-369 "The GetInstances Message"): the instances of the addressed tables and,
 * unless first_level_only, of every table below them, each with its unique keys.
 */
import { resolvePath } from '../path/index.js';
import type { SupportedModel } from '../dm/router.js';
import type { CurrInstance, GetInstancesRequestedPathResult, Msg } from '../codec/record.js';
import { UspError } from '../errors.js';
import { codeOf, pathBackendOf, responseMsg, type HandlerContext } from './context.js';

export async function handleGetInstances(ctx: HandlerContext, msg: Msg): Promise<Msg> {
  const req = msg.body.request!.getInstances!;
  const { backend, model } = await pathBackendOf(ctx, req.objPaths);
  const results: GetInstancesRequestedPathResult[] = [];
  for (const requestedPath of req.objPaths) {
    try {
      if (!requestedPath.endsWith('.')) throw new UspError(7026, `${requestedPath} is not an object path`);
      const resolved = await resolvePath(requestedPath, backend, { onMissing: 'error' });
      const currInsts: CurrInstance[] = [];
      for (const r of resolved) {
        // A table path lists its rows; an instance or single object lists the tables below it.
        if (model.isTable(r.path)) await collect(ctx, model, r.path, !req.firstLevelOnly, currInsts);
        else if (/\.\d+\.$/.test(r.path)) {
          await pushInstance(ctx, model, r.path, currInsts);
          if (!req.firstLevelOnly) await below(ctx, model, r.path, currInsts);
        } else if (!req.firstLevelOnly) await below(ctx, model, r.path, currInsts);
        else throw new UspError(7018, `${r.path} is not a table`);
      }
      results.push({ requestedPath, currInsts });
    } catch (e) {
      const c = codeOf(e);
      results.push({ requestedPath, errCode: c.errCode, errMsg: c.errMsg, currInsts: [] });
    }
  }
  return responseMsg(msg, 'GET_INSTANCES_RESP', { respType: 'getInstancesResp', getInstancesResp: { reqPathResults: results } });
}

async function pushInstance(ctx: HandlerContext, model: SupportedModel, instancePath: string, out: CurrInstance[]): Promise<void> {
  const schema = model.object(instancePath);
  const keys = new Set((schema?.uniqueKeys ?? []).flat());
  const uniqueKeys: Record<string, string> = {};
  if (keys.size) {
    const values = await ctx.router.get(
      ctx.agentEid,
      [...keys].map((k) => instancePath + k),
    );
    for (const k of keys) {
      const v = values.get(instancePath + k);
      if (v !== undefined) uniqueKeys[k] = v;
    }
  }
  out.push({ instantiatedObjPath: instancePath, uniqueKeys });
}

async function collect(ctx: HandlerContext, model: SupportedModel, tablePath: string, deep: boolean, out: CurrInstance[]): Promise<void> {
  for (const n of (await ctx.router.instances(ctx.agentEid, tablePath)) ?? []) {
    const inst = `${tablePath}${n}.`;
    await pushInstance(ctx, model, inst, out);
    if (deep) await below(ctx, model, inst, out);
  }
}

/** Tables anywhere below a concrete object path. */
async function below(ctx: HandlerContext, model: SupportedModel, objectPath: string, out: CurrInstance[]): Promise<void> {
  const schemaPath = objectPath.replace(/\.\d+\./g, '.{i}.').replace(/\.\d+\./g, '.{i}.');
  for (const child of model.children(schemaPath)) {
    const rest = child.path.slice(schemaPath.length);
    const name = rest.slice(0, rest.indexOf('.'));
    if (child.multiInstance) await collect(ctx, model, `${objectPath}${name}.`, true, out);
    else await below(ctx, model, `${objectPath}${name}.`, out);
  }
}
