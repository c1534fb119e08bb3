/**
 * Set (TR-369 "The Set Message"). allow_partial false: any failure of a required parameter
 * (or of an object) fails the whole message with an Error and nothing changes (R-SET.2a);
 * allow_partial true: each UpdateObject succeeds or fails on its own (oper_failure 7021 with
 * updated_inst_failures). Non-required failures are reported in param_errs of a success.
 * A search path matching nothing is an empty success (R-SET.2b).
 * Permissions: each parameter needs Param write on its own path (TR-181 Permission.{i}.Param "w");
 * a denied one fails with 7006 like any other failed setting (required: the object fails; not
 * required: reported in param_errs, the rest applied); updated_params shows only what the
 * controller may read (R-SET.3).
 */
import { resolvePath } from '../path/index.js';
import type { Msg, UpdatedInstanceFailure, UpdatedInstanceResult, UpdatedObjectResult } from '../codec/record.js';
import type { ParamError, ParamSetting } from '../dm/types.js';
import { codeOf, deniedMsg, errorParamErrs, may, paramErrsCode, pathBackendOf, requestContext, responseMsg, type RequestScope } from './context.js';
import { errorMsg } from '../codec/record.js';

/** One object of an UpdateObject: the settings the controller may write, and those it may not. */
interface Target {
  path: string;
  settings: ParamSetting[];
  denied: (ParamError & { required: boolean })[];
}

export async function handleSet(ctx: RequestScope, msg: Msg): Promise<Msg> {
  const req = msg.body.request!.set!;
  const { backend } = await pathBackendOf(
    ctx,
    req.updateObjs.map((u) => u.objPath ?? ''),
  );
  const allowPartial = req.allowPartial ?? false;

  // Resolve and validate everything first so that allow_partial=false changes nothing on error.
  const plans: { requestedPath: string; objects: Target[]; error?: { errCode: number; errMsg: string }; failures?: UpdatedInstanceFailure[] }[] = [];
  const deniedRequired: { paramPath: string; errCode: number; errMsg: string }[] = [];
  for (const u of req.updateObjs) {
    const requestedPath = u.objPath ?? '';
    const settings = u.paramSettings.map((s) => ({ param: s.param ?? '', value: s.value ?? '', required: s.required ?? false }));
    try {
      if (!requestedPath.endsWith('.')) throw new Error(`obj_path ${requestedPath} must be an object path`);
      const resolved = await resolvePath(requestedPath, backend, { onMissing: 'error' });
      const objects = resolved.filter((r) => r.kind === 'object').map((r) => targetOf(ctx, r.path, settings));
      const refused = objects.flatMap((o) => o.denied.filter((d) => d.required).map((d) => ({ paramPath: o.path + d.param, errCode: 7006, errMsg: d.errMsg })));
      if (refused.length && allowPartial) {
        // This UpdateObject fails as a whole, nothing of it applied (R-SET.2a).
        const failures = objects.filter((o) => o.denied.some((d) => d.required)).map((o) => ({ affectedPath: o.path, paramErrs: o.denied.map(paramErr) }));
        plans.push({ requestedPath, objects: [], error: { errCode: 7006, errMsg: refused[0]!.errMsg }, failures });
        continue;
      }
      deniedRequired.push(...refused);
      plans.push({ requestedPath, objects });
    } catch (e) {
      const c = e instanceof Error && !('code' in e) ? { errCode: 7026, errMsg: e.message } : codeOf(e);
      if (!allowPartial) return errorMsg(msg.header.msgId, c.errCode, c.errMsg, errorParamErrs(e, requestedPath));
      plans.push({ requestedPath, objects: [], error: c });
    }
  }
  // allow_partial false: a required setting the controller may not write fails the whole Set, nothing changed.
  if (deniedRequired.length) return errorMsg(msg.header.msgId, 7006, deniedRequired[0]!.errMsg, deniedRequired);

  // A backend with an atomic multi-object set (the CWMP device: one SetParameterValues, which
  // CWMP applies all-or-nothing) serves the whole message (allow_partial false) in one change.
  const rctx = requestContext(ctx);
  const ownerOf = (objs: Target[]) => {
    const owners = new Set(objs.map((o) => ctx.router.backendFor(o.path)));
    return owners.size === 1 ? ([...owners][0] ?? null) : null;
  };
  // What a success shows: the values the controller may read (R-SET.3), the refused settings among param_errs.
  const success = (o: Target, updated: Record<string, string>, paramErrs: readonly ParamError[]): UpdatedInstanceResult => ({
    affectedPath: o.path,
    updatedParams: Object.fromEntries(Object.entries(updated).filter(([k]) => may(ctx, o.path + k, 'Param.r'))),
    paramErrs: [...paramErrs, ...o.denied].map(paramErr),
  });
  const successOf = (objs: Target[], results: Map<string, { updated: Record<string, string>; paramErrs: ParamError[] }>): UpdatedInstanceResult[] =>
    objs.map((o) => success(o, results.get(o.path)?.updated ?? {}, results.get(o.path)?.paramErrs ?? []));
  if (!allowPartial) {
    const all = plans.flatMap((p) => p.objects);
    const owner = all.length ? ownerOf(all) : null;
    if (owner?.setAtomic) {
      const r = await owner.setAtomic(
        rctx,
        all.map((o) => ({ objectPath: o.path, settings: o.settings })),
      );
      if (!r.ok) {
        const pe = r.failures.flatMap((f) => f.paramErrs.map((e) => ({ paramPath: f.objectPath + e.param, errCode: e.errCode, errMsg: e.errMsg })));
        // No parameter named: the objects of the message failed as a whole (TR-369 "Error Fields").
        const named = pe.length ? pe : all.map((o) => ({ paramPath: o.path, errCode: r.errCode, errMsg: r.errMsg }));
        return errorMsg(msg.header.msgId, pe.length ? paramErrsCode(pe, 7004) : r.errCode, r.errMsg, named);
      }
      const results = new Map(r.results.map((x) => [x.objectPath, x]));
      return responseMsg(msg, 'SET_RESP', {
        respType: 'setResp',
        setResp: {
          updatedObjResults: plans.map((p) => ({
            requestedPath: p.requestedPath,
            operStatus: { operSuccess: { updatedInstResults: successOf(p.objects, results) } },
          })),
        },
      });
    }
  }

  if (!allowPartial) {
    // Dry run: a required failure anywhere means an Error and no change at all.
    for (const p of plans) {
      for (const o of p.objects) {
        const problems = await dryRun(ctx, o.path, o.settings);
        if (problems.length > 0) {
          const pe = problems.map((e) => ({ paramPath: o.path + e.param, errCode: e.errCode, errMsg: e.errMsg }));
          const code = paramErrsCode(pe, 7004);
          return errorMsg(msg.header.msgId, code, code === 7006 ? pe[0]!.errMsg : `failed to set required parameters of ${o.path}`, pe);
        }
      }
    }
  }

  const updatedObjResults: UpdatedObjectResult[] = [];
  // Undo log: an UpdateObject (R-SET.2a), or with allow_partial false the whole message (R-SET.1),
  // is all-or-nothing even when an object fails only at apply time (e.g. a unique key clash
  // between two matched objects, which no per-object dry run can see).
  const undoAll: Undo[] = [];
  for (const p of plans) {
    if (p.error) {
      updatedObjResults.push({
        requestedPath: p.requestedPath,
        operStatus: { operFailure: { errCode: p.error.errCode, errMsg: p.error.errMsg, updatedInstFailures: p.failures ?? [] } },
      });
      continue;
    }
    const successes: UpdatedInstanceResult[] = [];
    const failures: UpdatedInstanceFailure[] = [];
    const atomicOwner = allowPartial && p.objects.length ? ownerOf(p.objects) : null;
    if (atomicOwner?.setAtomic) {
      // One all-or-nothing change per UpdateObject (R-SET.2a): one SetParameterValues.
      const r = await atomicOwner.setAtomic(
        rctx,
        p.objects.map((o) => ({ objectPath: o.path, settings: o.settings })),
      );
      if (r.ok) {
        updatedObjResults.push({
          requestedPath: p.requestedPath,
          operStatus: { operSuccess: { updatedInstResults: successOf(p.objects, new Map(r.results.map((x) => [x.objectPath, x]))) } },
        });
      } else {
        const updatedInstFailures = r.failures.map((f) => ({ affectedPath: f.objectPath, paramErrs: f.paramErrs.map(paramErr) }));
        updatedObjResults.push({
          requestedPath: p.requestedPath,
          operStatus: { operFailure: { errCode: r.failures.length ? 7021 : r.errCode, errMsg: r.errMsg, updatedInstFailures } },
        });
      }
      continue;
    }
    if (allowPartial) {
      // Nothing of this obj_path is applied when a matched object would fail (R-SET.2a).
      for (const o of p.objects) {
        const problems = await dryRun(ctx, o.path, o.settings);
        if (problems.length) failures.push({ affectedPath: o.path, paramErrs: problems.map(paramErr) });
      }
    }
    const undo: Undo[] = [];
    for (const o of failures.length ? [] : p.objects) {
      const obj = o.path;
      const backendOf = ctx.router.backendFor(obj);
      const before = backendOf
        ? await ctx.router.get(
            ctx.agentEid,
            o.settings.map((s) => obj + s.param),
            undefined,
            ctx.scope,
          )
        : new Map<string, string>();
      const r = backendOf ? await backendOf.set(rctx, obj, o.settings) : { ok: false as const, errCode: 7026, errMsg: `no backend for ${obj}`, paramErrs: [] };
      if (r.ok) {
        undo.push({
          obj,
          values: Object.keys(r.updated)
            .filter((k) => before.has(obj + k))
            .map((k) => ({ param: k, value: before.get(obj + k)!, required: false })),
        });
        successes.push(success(o, r.updated, r.paramErrs));
      } else {
        failures.push({ affectedPath: obj, paramErrs: r.paramErrs.map(paramErr) });
        if (!allowPartial) {
          await rollback(ctx, [...undoAll, ...undo]);
          const pe = r.paramErrs.map((e) => ({ paramPath: obj + e.param, errCode: e.errCode, errMsg: e.errMsg }));
          const named = pe.length ? pe : [{ paramPath: obj, errCode: r.errCode, errMsg: r.errMsg }];
          return errorMsg(msg.header.msgId, pe.length ? paramErrsCode(pe, 7004) : r.errCode, r.errMsg, named);
        }
        break;
      }
    }
    if (failures.length > 0) {
      await rollback(ctx, undo);
      const permission = failures.every((f) => f.paramErrs.length > 0 && f.paramErrs.every((e) => e.errCode === 7006));
      updatedObjResults.push({
        requestedPath: p.requestedPath,
        operStatus: {
          operFailure: {
            errCode: permission ? 7006 : 7021,
            errMsg: permission ? 'permission denied' : 'failed to set required parameters',
            updatedInstFailures: failures,
          },
        },
      });
    } else {
      undoAll.push(...undo);
      updatedObjResults.push({ requestedPath: p.requestedPath, operStatus: { operSuccess: { updatedInstResults: successes } } });
    }
  }
  return responseMsg(msg, 'SET_RESP', { respType: 'setResp', setResp: { updatedObjResults } });
}

/** An object's settings split by the controller's Param write right on each (TR-369 R-SEC.1). */
function targetOf(ctx: RequestScope, path: string, settings: readonly ParamSetting[]): Target {
  const t: Target = { path, settings: [], denied: [] };
  for (const s of settings) {
    if (may(ctx, path + s.param, 'Param.w')) t.settings.push(s);
    else t.denied.push({ param: s.param, errCode: 7006, errMsg: deniedMsg(ctx, 'writing', path + s.param), required: s.required });
  }
  return t;
}

function paramErr(e: { param: string; errCode: number; errMsg: string }): { param: string; errCode: number; errMsg: string } {
  return { param: e.param, errCode: e.errCode, errMsg: e.errMsg };
}

interface Undo {
  obj: string;
  values: ParamSetting[];
}

/** Puts back the values an aborted Set had already changed, newest first. */
async function rollback(ctx: RequestScope, undo: Undo[]): Promise<void> {
  for (const u of [...undo].reverse()) {
    if (u.values.length) await ctx.router.backendFor(u.obj)?.set(requestContext(ctx), u.obj, u.values);
  }
}

/** Required settings that would fail on this object (backends validate without applying via a snapshot). */
async function dryRun(ctx: RequestScope, obj: string, settings: ParamSetting[]): Promise<{ param: string; errCode: number; errMsg: string }[]> {
  const b = ctx.router.backendFor(obj);
  if (!b) return [{ param: '', errCode: 7026, errMsg: `no backend for ${obj}` }];
  if (!b.validateSet) return [];
  const errs = await b.validateSet(requestContext(ctx), obj, settings);
  return errs.filter((e) => settings.find((s) => s.param === e.param)?.required !== false);
}
