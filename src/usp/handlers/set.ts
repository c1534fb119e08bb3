/**
 * Set (TR-369 "The Set Message"). allow_partial false: any failure of a required parameter
 * (or of an object) fails the whole message with an Error and nothing changes (R-SET.2a);
 * allow_partial true: each UpdateObject succeeds or fails on its own (oper_failure 7021 with
 * updated_inst_failures). Non-required failures are reported in param_errs of a success.
 * A search path matching nothing is an empty success (R-SET.2b).
 */
import { resolvePath } from '../path/index.js';
import type { Msg, UpdatedInstanceFailure, UpdatedInstanceResult, UpdatedObjectResult } from '../codec/record.js';
import type { ParamSetting } from '../dm/types.js';
import { codeOf, pathBackendOf, responseMsg, type HandlerContext } from './context.js';
import { errorMsg } from '../codec/record.js';

export async function handleSet(ctx: HandlerContext, msg: Msg): Promise<Msg> {
  const req = msg.body.request!.set!;
  const { backend } = await pathBackendOf(
    ctx,
    req.updateObjs.map((u) => u.objPath ?? ''),
  );
  const allowPartial = req.allowPartial ?? false;

  // Resolve and validate everything first so that allow_partial=false changes nothing on error.
  const plans: { requestedPath: string; objects: string[]; settings: ParamSetting[]; error?: { errCode: number; errMsg: string } }[] = [];
  for (const u of req.updateObjs) {
    const requestedPath = u.objPath ?? '';
    const settings = u.paramSettings.map((s) => ({ param: s.param ?? '', value: s.value ?? '', required: s.required ?? false }));
    try {
      if (!requestedPath.endsWith('.')) throw new Error(`obj_path ${requestedPath} must be an object path`);
      const resolved = await resolvePath(requestedPath, backend, { onMissing: 'error' });
      plans.push({ requestedPath, objects: resolved.filter((r) => r.kind === 'object').map((r) => r.path), settings });
    } catch (e) {
      const c = e instanceof Error && !('code' in e) ? { errCode: 7026, errMsg: e.message } : codeOf(e);
      if (!allowPartial) return errorMsg(msg.header.msgId, c.errCode, c.errMsg);
      plans.push({ requestedPath, objects: [], settings, error: c });
    }
  }

  // A backend with an atomic multi-object set (the CWMP device: one SetParameterValues, which
  // CWMP applies all-or-nothing) serves the whole message (allow_partial false) in one change.
  const rctx = { agentEid: ctx.agentEid, controllerEid: ctx.controllerEid };
  const ownerOf = (objs: string[]) => {
    const owners = new Set(objs.map((o) => ctx.router.backendFor(o)));
    return owners.size === 1 ? ([...owners][0] ?? null) : null;
  };
  const successOf = (
    objs: string[],
    results: Map<string, { updated: Record<string, string>; paramErrs: { param: string; errCode: number; errMsg: string }[] }>,
  ): UpdatedInstanceResult[] =>
    objs.map((o) => ({
      affectedPath: o,
      updatedParams: results.get(o)?.updated ?? {},
      paramErrs: (results.get(o)?.paramErrs ?? []).map((e) => ({ param: e.param, errCode: e.errCode, errMsg: e.errMsg })),
    }));
  if (!allowPartial) {
    const all = plans.flatMap((p) => p.objects.map((o) => ({ objectPath: o, settings: p.settings })));
    const owner = all.length ? ownerOf(all.map((a) => a.objectPath)) : null;
    if (owner?.setAtomic) {
      const r = await owner.setAtomic(rctx, all);
      if (!r.ok) {
        const pe = r.failures.flatMap((f) => f.paramErrs.map((e) => ({ paramPath: f.objectPath + e.param, errCode: e.errCode, errMsg: e.errMsg })));
        return errorMsg(msg.header.msgId, pe.length ? 7004 : r.errCode, r.errMsg, pe);
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
      for (const obj of p.objects) {
        const problems = await dryRun(ctx, obj, p.settings);
        if (problems.length > 0) {
          return errorMsg(
            msg.header.msgId,
            7004,
            `failed to set required parameters of ${obj}`,
            problems.map((e) => ({ paramPath: obj + e.param, errCode: e.errCode, errMsg: e.errMsg })),
          );
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
        operStatus: { operFailure: { errCode: p.error.errCode, errMsg: p.error.errMsg, updatedInstFailures: [] } },
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
        p.objects.map((o) => ({ objectPath: o, settings: p.settings })),
      );
      if (r.ok) {
        updatedObjResults.push({
          requestedPath: p.requestedPath,
          operStatus: { operSuccess: { updatedInstResults: successOf(p.objects, new Map(r.results.map((x) => [x.objectPath, x]))) } },
        });
      } else {
        const updatedInstFailures = r.failures.map((f) => ({
          affectedPath: f.objectPath,
          paramErrs: f.paramErrs.map((e) => ({ param: e.param, errCode: e.errCode, errMsg: e.errMsg })),
        }));
        updatedObjResults.push({
          requestedPath: p.requestedPath,
          operStatus: { operFailure: { errCode: r.failures.length ? 7021 : r.errCode, errMsg: r.errMsg, updatedInstFailures } },
        });
      }
      continue;
    }
    if (allowPartial) {
      // Nothing of this obj_path is applied when a matched object would fail (R-SET.2a).
      for (const obj of p.objects) {
        const problems = await dryRun(ctx, obj, p.settings);
        if (problems.length) failures.push({ affectedPath: obj, paramErrs: problems.map((e) => ({ param: e.param, errCode: e.errCode, errMsg: e.errMsg })) });
      }
    }
    const undo: Undo[] = [];
    for (const obj of failures.length ? [] : p.objects) {
      const backendOf = ctx.router.backendFor(obj);
      const before = backendOf
        ? await ctx.router.get(
            ctx.agentEid,
            p.settings.map((s) => obj + s.param),
          )
        : new Map<string, string>();
      const r = backendOf
        ? await backendOf.set({ agentEid: ctx.agentEid, controllerEid: ctx.controllerEid }, obj, p.settings)
        : { ok: false as const, errCode: 7026, errMsg: `no backend for ${obj}`, paramErrs: [] };
      if (r.ok) {
        undo.push({
          obj,
          values: Object.keys(r.updated)
            .filter((k) => before.has(obj + k))
            .map((k) => ({ param: k, value: before.get(obj + k)!, required: false })),
        });
        successes.push({
          affectedPath: obj,
          updatedParams: r.updated,
          paramErrs: r.paramErrs.map((e) => ({ param: e.param, errCode: e.errCode, errMsg: e.errMsg })),
        });
      } else {
        failures.push({ affectedPath: obj, paramErrs: r.paramErrs.map((e) => ({ param: e.param, errCode: e.errCode, errMsg: e.errMsg })) });
        if (!allowPartial) {
          await rollback(ctx, [...undoAll, ...undo]);
          return errorMsg(
            msg.header.msgId,
            r.paramErrs.length ? 7004 : r.errCode,
            r.errMsg,
            r.paramErrs.map((e) => ({ paramPath: obj + e.param, errCode: e.errCode, errMsg: e.errMsg })),
          );
        }
        break;
      }
    }
    if (failures.length > 0) {
      await rollback(ctx, undo);
      updatedObjResults.push({
        requestedPath: p.requestedPath,
        operStatus: { operFailure: { errCode: 7021, errMsg: 'failed to set required parameters', updatedInstFailures: failures } },
      });
    } else {
      undoAll.push(...undo);
      updatedObjResults.push({ requestedPath: p.requestedPath, operStatus: { operSuccess: { updatedInstResults: successes } } });
    }
  }
  return responseMsg(msg, 'SET_RESP', { respType: 'setResp', setResp: { updatedObjResults } });
}

interface Undo {
  obj: string;
  values: ParamSetting[];
}

/** Puts back the values an aborted Set had already changed, newest first. */
async function rollback(ctx: HandlerContext, undo: Undo[]): Promise<void> {
  for (const u of [...undo].reverse()) {
    if (u.values.length) await ctx.router.backendFor(u.obj)?.set({ agentEid: ctx.agentEid, controllerEid: ctx.controllerEid }, u.obj, u.values);
  }
}

/** Required settings that would fail on this object (backends validate without applying via a snapshot). */
async function dryRun(ctx: HandlerContext, obj: string, settings: ParamSetting[]): Promise<{ param: string; errCode: number; errMsg: string }[]> {
  const b = ctx.router.backendFor(obj);
  if (!b) return [{ param: '', errCode: 7026, errMsg: `no backend for ${obj}` }];
  if (!b.validateSet) return [];
  const errs = await b.validateSet({ agentEid: ctx.agentEid, controllerEid: ctx.controllerEid }, obj, settings);
  return errs.filter((e) => settings.find((s) => s.param === e.param)?.required !== false);
}
