/**
 * What the `usp` CLI prints and how it exits, from one response Msg: pure. The compact form is one
 * `path => value` line per result on stdout and one line per failure on stderr; the exit code says
 * whether anything failed (docs/usp-cli.md has the table).
 */
import type { Msg, ParameterError } from '../../usp/codec/record.js';

/** Exit codes of `cwmp-usp-proxy usp` (docs/usp-cli.md). */
export const EXIT = {
  ok: 0,
  /** A USP Error Msg: the whole request failed (TR-369 "Error" message). */
  uspError: 1,
  usage: 2,
  /** No answer: timeout, connection refused or closed. */
  noAnswer: 3,
  /** A response that carries a failure inside it: err_code on a requested path, oper_failure, param_errs, cmd_failure. */
  partialFailure: 4,
} as const;

export interface Summary {
  /** Results, one `path => value` (or bare path) a line. */
  lines: string[];
  /** Failures, one a line, each naming the path and the USP error code. */
  failures: string[];
  code: number;
}

const fail = (path: string | undefined, code: number | undefined, msg: string | undefined): string =>
  `${path || '(no path)'}: error ${code ?? 0}${msg ? `: ${msg}` : ''}`;

const paramErrs = (base: string, errs: ParameterError[]): string[] => errs.map((e) => fail(`${base}${e.param ?? ''}`, e.errCode, e.errMsg));

/**
 * Summarizes a response (or Error) Msg. `request` is what was sent: a Set whose operSuccess does not
 * list a requested parameter as updated (nor as a param_err) counts as a failure, since
 * TR-369 (SetResp) lists every parameter it updated.
 */
export function summarize(resp: Msg, request?: Msg): Summary {
  const lines: string[] = [];
  const failures: string[] = [];
  const err = resp.body.error;
  if (resp.header.msgType === 'ERROR' || resp.body.msgBody === 'error') {
    failures.push(`USP Error ${err?.errCode ?? 0}${err?.errMsg ? `: ${err.errMsg}` : ''}`);
    for (const p of err?.paramErrs ?? []) failures.push(fail(p.paramPath, p.errCode, p.errMsg));
    return { lines, failures, code: EXIT.uspError };
  }
  const r = resp.body.response;
  switch (r?.respType) {
    case 'getResp':
      for (const rp of r.getResp!.reqPathResults) {
        if (rp.errCode) failures.push(fail(rp.requestedPath, rp.errCode, rp.errMsg));
        for (const res of rp.resolvedPathResults) {
          const entries = Object.entries(res.resultParams);
          if (entries.length === 0) lines.push(res.resolvedPath ?? '');
          for (const [k, v] of entries) lines.push(`${res.resolvedPath ?? ''}${k} => ${v}`);
        }
      }
      break;
    case 'setResp': {
      const wanted = new Map<string, string[]>();
      for (const o of request?.body.request?.set?.updateObjs ?? []) {
        wanted.set(
          o.objPath ?? '',
          o.paramSettings.map((s) => s.param ?? ''),
        );
      }
      for (const o of r.setResp!.updatedObjResults) {
        const st = o.operStatus;
        if (st?.operFailure) {
          const f = st.operFailure;
          failures.push(fail(o.requestedPath, f.errCode, f.errMsg));
          for (const u of f.updatedInstFailures) failures.push(...paramErrs(u.affectedPath ?? '', u.paramErrs));
          continue;
        }
        for (const u of st?.operSuccess?.updatedInstResults ?? []) {
          const base = u.affectedPath ?? '';
          for (const [k, v] of Object.entries(u.updatedParams)) lines.push(`${base}${k} => ${v}`);
          failures.push(...paramErrs(base, u.paramErrs));
          const reported = new Set([...Object.keys(u.updatedParams), ...u.paramErrs.map((e) => e.param ?? '')]);
          for (const p of wanted.get(o.requestedPath ?? '') ?? []) {
            if (!reported.has(p)) failures.push(`${base}${p}: not reported as updated`);
          }
        }
      }
      break;
    }
    case 'addResp':
      for (const o of r.addResp!.createdObjResults) {
        const st = o.operStatus;
        if (st?.operFailure) {
          failures.push(fail(o.requestedPath, st.operFailure.errCode, st.operFailure.errMsg));
          continue;
        }
        const s = st?.operSuccess;
        if (!s) continue;
        lines.push(s.instantiatedPath ?? '');
        for (const [k, v] of Object.entries(s.uniqueKeys)) lines.push(`${s.instantiatedPath ?? ''}${k} => ${v}`);
        failures.push(...paramErrs(s.instantiatedPath ?? '', s.paramErrs));
      }
      break;
    case 'deleteResp':
      for (const o of r.deleteResp!.deletedObjResults) {
        const st = o.operStatus;
        if (st?.operFailure) {
          failures.push(fail(o.requestedPath, st.operFailure.errCode, st.operFailure.errMsg));
          continue;
        }
        for (const p of st?.operSuccess?.affectedPaths ?? []) lines.push(p);
        for (const u of st?.operSuccess?.unaffectedPathErrs ?? []) failures.push(fail(u.unaffectedPath, u.errCode, u.errMsg));
      }
      break;
    case 'operateResp':
      for (const o of r.operateResp!.operationResults) {
        const cmd = o.executedCommand ?? '';
        if (o.cmdFailure) failures.push(fail(cmd, o.cmdFailure.errCode, o.cmdFailure.errMsg));
        else if (o.reqObjPath !== undefined) lines.push(`${cmd} => ${o.reqObjPath}`);
        else {
          const args = Object.entries(o.reqOutputArgs?.outputArgs ?? {});
          if (args.length === 0) lines.push(cmd);
          for (const [k, v] of args) lines.push(`${cmd}.${k} => ${v}`);
        }
      }
      break;
    case 'getInstancesResp':
      for (const rp of r.getInstancesResp!.reqPathResults) {
        if (rp.errCode) failures.push(fail(rp.requestedPath, rp.errCode, rp.errMsg));
        for (const i of rp.currInsts) {
          const keys = Object.entries(i.uniqueKeys);
          if (keys.length === 0) lines.push(i.instantiatedObjPath ?? '');
          for (const [k, v] of keys) lines.push(`${i.instantiatedObjPath ?? ''}${k} => ${v}`);
        }
      }
      break;
    case 'getSupportedDmResp':
      for (const ro of r.getSupportedDmResp!.reqObjResults) {
        if (ro.errCode) failures.push(fail(ro.reqObjPath, ro.errCode, ro.errMsg));
        for (const o of ro.supportedObjs) {
          const p = o.supportedObjPath ?? '';
          lines.push(`${p} ${o.isMultiInstance ? 'multi-instance ' : ''}${short(o.access)}`.trimEnd());
          for (const x of o.supportedParams) lines.push(`${p}${x.paramName ?? ''} ${short(x.valueType)} ${short(x.access)}`.trimEnd());
          for (const x of o.supportedCommands) lines.push(`${p}${x.commandName ?? ''} ${short(x.commandType)}`.trimEnd());
          for (const x of o.supportedEvents) lines.push(`${p}${x.eventName ?? ''}`);
        }
      }
      break;
    case 'getSupportedProtocolResp':
      lines.push(r.getSupportedProtocolResp!.agentSupportedProtocolVersions ?? '');
      break;
    default:
      lines.push(`${resp.header.msgType}`);
  }
  return { lines, failures, code: failures.length ? EXIT.partialFailure : EXIT.ok };
}

/** PARAM_READ_WRITE -> read-write, OBJ_ADD_DELETE -> add-delete, CMD_ASYNC -> async. */
function short(x: string | undefined): string {
  if (!x) return '';
  return x
    .replace(/^(PARAM|OBJ|CMD|PARAM_TYPE|VALUE_CHANGE)_/, '')
    .replace(/^TYPE_/, '')
    .toLowerCase()
    .replace(/_/g, '-');
}

/** One line per Notify, naming the sending agent first (listen without --json). */
export function notifyLine(fromId: string, msg: Msg): string {
  const n = msg.body.request?.notify;
  const head = `${fromId} ${n?.subscriptionId ?? ''}`;
  switch (n?.notification) {
    case 'valueChange':
      return `${head} ValueChange ${n.valueChange?.paramPath ?? ''} => ${n.valueChange?.paramValue ?? ''}`;
    case 'event': {
      const args = Object.entries(n.event?.params ?? {}).map(([k, v]) => `${k}=${v}`);
      return `${head} Event ${n.event?.objPath ?? ''}${n.event?.eventName ?? ''}${args.length ? ` ${args.join(' ')}` : ''}`;
    }
    case 'objCreation':
      return `${head} ObjectCreation ${n.objCreation?.objPath ?? ''}`;
    case 'objDeletion':
      return `${head} ObjectDeletion ${n.objDeletion?.objPath ?? ''}`;
    case 'operComplete': {
      const o = n.operComplete;
      const what = o?.cmdFailure ? `error ${o.cmdFailure.errCode ?? 0}${o.cmdFailure.errMsg ? `: ${o.cmdFailure.errMsg}` : ''}` : 'ok';
      return `${head} OperationComplete ${o?.objPath ?? ''}${o?.commandName ?? ''} ${o?.commandKey ?? ''} ${what}`.replace(/ +/g, ' ');
    }
    case 'onBoardReq':
      return `${head} OnBoardRequest ${n.onBoardReq?.oui ?? ''}-${n.onBoardReq?.productClass ?? ''}-${n.onBoardReq?.serialNumber ?? ''}`;
    default:
      return `${head} ${msg.header.msgType}`;
  }
}
