/**
 * The atomic Set of both device backends (TR-069 A.3.2.1: one SetParameterValues is all or
 * nothing). Settings that fail before anything is sent (unknown or read-only parameters, values the
 * mapping refuses) and per-parameter faults of the CPE are sorted by the USP "required" flag
 * (TR-369 R-SET.2): a failed required parameter fails the whole Set; failed optional ones are
 * dropped and the rest is sent again, once.
 */
import type { Fault, SetParameterValuesFaultStruct } from '../cwmp/types.js';
import type { AtomicSetOutcome, DeleteOutcome, ParamError, ParamSetting, SetOutcome } from '../usp/dm/types.js';
import { describeFault, uspCodeOfCwmpFault } from './faults.js';

/** A DeleteObject's result as the USP Delete handler takes it (both device backends). */
export function deleteOutcome(r: 'deleted' | 'absent' | Fault, nativePath: string): DeleteOutcome {
  if (r === 'deleted') return { ok: true };
  if (r === 'absent') return { ok: true, deleted: false };
  return { ok: false, errCode: 7024, errMsg: `DeleteObject ${nativePath} refused: ${describeFault(r)}` };
}

/** set() of one object as a one-object atomic set (both device backends). */
export function setOutcomeOf(r: AtomicSetOutcome): SetOutcome {
  if (r.ok) return { ok: true, updated: r.results[0]?.updated ?? {}, paramErrs: r.results[0]?.paramErrs ?? [] };
  return { ok: false, errCode: r.errCode, errMsg: r.errMsg, paramErrs: r.failures.flatMap((f) => f.paramErrs) };
}

/** One USP setting with what it becomes on the device (one or more native parameters). */
export interface PlannedSetting {
  objectPath: string;
  setting: ParamSetting;
  natives: readonly { name: string; value: string }[];
}

export interface SetRejection {
  objectPath: string;
  setting: ParamSetting;
  error: ParamError;
}

/** The CPE's answer to one SetParameterValues. */
export type SpvResult = { ok: true } | { ok: false; errCode: number; errMsg: string; perParam: readonly SetParameterValuesFaultStruct[] };

/**
 * Runs the plan: `send` sends one SetParameterValues of the natives given and reports the outcome.
 * Returns the AtomicSetOutcome for the USP Set handler.
 */
export async function runAtomicSet(
  objects: readonly { objectPath: string }[],
  planned: readonly PlannedSetting[],
  rejected: readonly SetRejection[],
  send: (natives: { name: string; value: string }[]) => Promise<SpvResult>,
): Promise<AtomicSetOutcome> {
  const errs = rejected.map((r) => ({ obj: r.objectPath, required: r.setting.required, e: r.error }));
  const failures = (list: typeof errs) => {
    const by = new Map<string, ParamError[]>();
    for (const x of list) by.set(x.obj, [...(by.get(x.obj) ?? []), x.e]);
    return [...by].map(([objectPath, paramErrs]) => ({ objectPath, paramErrs }));
  };
  if (errs.some((x) => x.required))
    return { ok: false, errCode: 7021, errMsg: 'failed to set required parameters', failures: failures(errs.filter((x) => x.required)) };
  let todo = [...planned];
  for (let attempt = 0; attempt < 2 && todo.length > 0; attempt++) {
    const out = await send(todo.flatMap((t) => t.natives.map((n) => ({ name: n.name, value: n.value }))));
    if (out.ok) break;
    if (out.perParam.length === 0) return { ok: false, errCode: out.errCode, errMsg: out.errMsg, failures: [] };
    const failed = new Set<PlannedSetting>();
    for (const pf of out.perParam) {
      const t = todo.find((x) => x.natives.some((n) => n.name === pf.parameterName));
      const e: ParamError = {
        param: t?.setting.param ?? pf.parameterName,
        errCode: uspCodeOfCwmpFault(pf.faultCode),
        errMsg: `${describeFault({ faultCode: pf.faultCode, faultString: pf.faultString })} on ${pf.parameterName}`,
      };
      errs.push({ obj: t?.objectPath ?? objects[0]?.objectPath ?? '', required: t?.setting.required ?? true, e });
      if (t) failed.add(t);
    }
    if (errs.some((x) => x.required))
      return { ok: false, errCode: 7021, errMsg: 'failed to set required parameters', failures: failures(errs.filter((x) => x.required)) };
    // Only optional parameters failed: send the rest again without them.
    todo = todo.filter((t) => !failed.has(t));
    if (attempt === 1 && todo.length > 0) return { ok: false, errCode: 7021, errMsg: 'the device kept refusing parameters', failures: failures(errs) };
  }
  return {
    ok: true,
    results: objects.map(({ objectPath }) => ({
      objectPath,
      updated: Object.fromEntries(todo.filter((t) => t.objectPath === objectPath).map((t) => [t.setting.param, t.setting.value])),
      paramErrs: errs.filter((x) => x.obj === objectPath).map((x) => x.e),
    })),
  };
}
