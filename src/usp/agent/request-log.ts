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

/** Counts non-zero err_code fields in a response body (bounded by the response the agent built). */
function errCodes(x: unknown, depth = 0): number {
  if (depth > 12 || x === null || typeof x !== 'object') return 0;
  let n = 0;
  for (const [k, v] of Object.entries(x as Record<string, unknown>)) {
    if (k === 'errCode' && typeof v === 'number' && v !== 0) n++;
    else if (typeof v === 'object') n += errCodes(v, depth + 1);
  }
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
