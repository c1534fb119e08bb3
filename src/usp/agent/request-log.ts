/**
 * The audit line of one answered USP request: who asked which agent what, and how it ended. Pure.
 * Paths only, never values: a Set or Add may carry secrets (TR-181 passwords and keys).
 */
import type { Msg } from '../codec/record.js';

/** A request's paths, at most this many named in its line (the count is always there). */
const MAX_PATHS = 8;

export interface RequestLogFields {
  controller: string;
  agent: string;
  msgType: string;
  msgId: string;
  paths: string[];
  pathCount: number;
  /** ok | error <code> (a USP Error Msg) | partial (a response carrying err_codes) */
  outcome: string;
  ms: number;
}

function requestPaths(req: Msg): string[] {
  const r = req.body.request;
  switch (r?.reqType) {
    case 'get':
      return r.get?.paramPaths ?? [];
    case 'set':
      return (r.set?.updateObjs ?? []).map((o) => o.objPath ?? '');
    case 'add':
      return (r.add?.createObjs ?? []).map((o) => o.objPath ?? '');
    case 'delete':
      return r.delete?.objPaths ?? [];
    case 'operate':
      return [r.operate?.command ?? ''];
    case 'getInstances':
      return r.getInstances?.objPaths ?? [];
    case 'getSupportedDm':
      return r.getSupportedDm?.objPaths ?? [];
    default:
      return [];
  }
}

/** Fields of a response that map names to strings (parameter values, unique keys): no err_code inside. */
const STRING_MAPS: ReadonlySet<string> = new Set(['resultParams', 'uniqueKeys', 'updatedParams', 'outputArgs']);

/**
 * Visits the non-zero err_code fields of a response body, depth first, in field order (bounded
 * depth). Runs once per answered request: for-in without arrays, string maps skipped.
 */
export function visitErrCodes(x: unknown, visit: (code: number) => void, depth = 0): void {
  if (depth > 12 || x === null || typeof x !== 'object') return;
  if (Array.isArray(x)) {
    for (const v of x) if (typeof v === 'object') visitErrCodes(v, visit, depth + 1);
    return;
  }
  const o = x as Record<string, unknown>;
  for (const k in o) {
    const v = o[k];
    if (k === 'errCode') {
      if (typeof v === 'number' && v !== 0) visit(v);
    } else if (typeof v === 'object' && !STRING_MAPS.has(k)) visitErrCodes(v, visit, depth + 1);
  }
}

function errCodes(x: unknown): number {
  let n = 0;
  visitErrCodes(x, () => void n++);
  return n;
}

export function requestLogFields(controller: string, agent: string, req: Msg, resp: Msg, ms: number): RequestLogFields {
  const paths = requestPaths(req);
  let outcome = 'ok';
  if (resp.body.msgBody === 'error' || resp.header.msgType === 'ERROR') outcome = `error ${resp.body.error?.errCode ?? 0}`;
  else {
    const n = errCodes(resp.body.response);
    if (n > 0) outcome = `partial (${n} error${n === 1 ? '' : 's'})`;
  }
  return {
    controller,
    agent,
    msgType: req.header.msgType,
    msgId: req.header.msgId.slice(0, 64),
    paths: paths.slice(0, MAX_PATHS).map((p) => p.slice(0, 256)),
    pathCount: paths.length,
    outcome,
    ms: Math.round(ms),
  };
}
