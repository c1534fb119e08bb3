/**
 * Get (TR-369 "The Get Message"): one req_path_result per requested path; for each resolved
 * object one resolved_path_result whose result_params are relative to it (R-GET.2); an object
 * path returns the object and every sub-object down to max_depth (0 = all, R-GET.5); a bad path
 * errors alone (R-GET.0); a search that matches nothing is an empty success (R-GET.1a).
 *
 * Permissions: an object or parameter the controller may not read is absent (R-GET.1): named in
 * full, the path is invalid (7026, in the words used for a path that does not exist); matched by a
 * search, it is left out. A parameter it may not read is left out of a readable object (R-GET.4).
 *
 * Bounded work: every distinct requested path is resolved and assembled once and the values of
 * all of them are read at once (a CWMP device: each name asked once). The response carries at most
 * usp.maxGetParams parameters and stays below the MTP's Record size: requested paths are answered
 * in order while both hold; one that would cross either answers 7005 naming the bound.
 */
import { type ResolvedPath, resolvePath } from '../path/index.js';
import { errorMsg, type GetRequestedPathResult, type GetResolvedPathResult, type Msg } from '../codec/record.js';
import { withinDepth } from '../dm/depth.js';
import { codeOf, DEFAULT_GET_LIMITS, type GetLimits, pathBackendOf, type RequestScope, responseMsg } from './context.js';

interface Plan {
  resolved?: ResolvedPath[];
  error?: { errCode: number; errMsg: string };
}

/** One requested path's answer with its weight in the response. */
interface Built {
  result: GetRequestedPathResult;
  params: number;
  bytes: number;
}

/** A requested path that names objects or parameters through "*", "[...]" or "+": what it cannot see is left out. */
const SEARCH = /[*[+]/;

export async function handleGet(ctx: RequestScope, msg: Msg): Promise<Msg> {
  const get = msg.body.request!.get!;
  const maxDepth = get.maxDepth ?? 0;
  const limits = ctx.limits ?? DEFAULT_GET_LIMITS;
  const { backend } = pathBackendOf(ctx, get.paramPaths);
  const canRead = readability(ctx);

  const plans = new Map<string, Plan>();
  for (const requestedPath of get.paramPaths) {
    if (plans.has(requestedPath)) continue;
    try {
      const resolved = await resolvePath(requestedPath, backend, { onMissing: 'error' });
      const visible = resolved.filter((r) => canRead.resolved(r));
      if (visible.length < resolved.length && !SEARCH.test(requestedPath)) {
        plans.set(requestedPath, { error: { errCode: 7026, errMsg: `invalid path: ${requestedPath} is not in the supported data model` } });
      } else plans.set(requestedPath, { resolved: visible });
    } catch (e) {
      plans.set(requestedPath, { error: codeOf(e) });
    }
  }

  const values = await readAll(ctx, [...plans.values()], maxDepth);
  const index = new ValueIndex(values);
  const built = new Map<string, Built | TooBig>();
  const results: GetRequestedPathResult[] = [];
  let params = 0;
  let bytes = 0;
  for (const requestedPath of get.paramPaths) {
    let b = built.get(requestedPath);
    if (b === undefined) {
      b = build(requestedPath, plans.get(requestedPath)!, values, index, maxDepth, canRead, limits.maxParams - params, limits.maxBytes - bytes);
      built.set(requestedPath, b);
    }
    if ('result' in b && params + b.params <= limits.maxParams && bytes + b.bytes <= limits.maxBytes) {
      results.push(b.result);
      params += b.params;
      bytes += b.bytes;
      continue;
    }
    const refused = tooBig(requestedPath, limits, 'over' in b ? b.over === 'params' : params + b.params > limits.maxParams);
    // Even the refusals do not fit (a Record full of paths): one Error for the whole Get.
    if (bytes + refused.bytes > limits.maxBytes)
      return errorMsg(
        msg.header.msgId,
        7005,
        `resources exceeded: the GetResp to ${get.paramPaths.length} requested paths would exceed ${limits.maxBytes} bytes`,
      );
    results.push(refused.result);
    bytes += refused.bytes;
  }
  return responseMsg(msg, 'GET_RESP', { respType: 'getResp', getResp: { reqPathResults: results } });
}

/** Read rights of this request, remembered per object (a Get of a table asks about each row once). */
function readability(ctx: RequestScope) {
  const objects = new Map<string, boolean>();
  const object = (path: string): boolean => {
    let ok = objects.get(path);
    if (ok === undefined) objects.set(path, (ok = ctx.access.permitted(path, 'Obj.r')));
    return ok;
  };
  return {
    object,
    /** A parameter of the response: readable itself, in a readable object. */
    param: (path: string): boolean => object(path.slice(0, path.lastIndexOf('.') + 1)) && ctx.access.permitted(path, 'Param.r'),
    resolved: (r: ResolvedPath): boolean =>
      r.kind === 'object' ? object(r.path) : r.kind === 'parameter' ? object(r.object) && ctx.access.permitted(r.path, 'Param.r') : true,
  };
}

/** Values of every resolved object and parameter of all plans, read at once; a failure is retried plan by plan. */
function readAll(ctx: RequestScope, plans: Plan[], maxDepth: number): Promise<Map<string, string>> {
  const wanted = new Set<string>();
  for (const p of plans) for (const r of p.resolved ?? []) if (r.kind === 'object' || r.kind === 'parameter') wanted.add(r.path);
  // A promise chain, not an async function: one promise fewer per Get.
  return ctx.router
    .get(ctx.agentEid, maxDepth > 0 ? [...wanted] : mergeOverlapping([...wanted]), { maxDepth }, ctx.scope)
    .catch((e: unknown) => readEach(ctx, plans, maxDepth, e));
}

/** After a failed read of everything: path by path, so that one part (a subtree the device cannot list) does not fail the others. */
async function readEach(ctx: RequestScope, plans: Plan[], maxDepth: number, e: unknown): Promise<Map<string, string>> {
  // A failure of one part (a subtree the device cannot list) must not fail the others: path by path.
  const values = new Map<string, string>();
  const reading = plans.filter((p) => p.resolved && p.resolved.length > 0);
  if (reading.length === 1) reading[0]!.error = codeOf(e);
  else
    for (const p of reading) {
      try {
        const paths = p.resolved!.filter((r) => r.kind === 'object' || r.kind === 'parameter').map((r) => r.path);
        for (const [k, v] of await ctx.router.get(ctx.agentEid, paths, { maxDepth }, ctx.scope)) values.set(k, v);
      } catch (e) {
        p.error = codeOf(e);
      }
    }
  return values;
}

/** A requested path whose answer outgrew what was left of the response, by parameters or by bytes. */
interface TooBig {
  over: 'params' | 'bytes';
}

/** One requested path's result, or TooBig as soon as it outgrows what is left of the response. */
function build(
  requestedPath: string,
  plan: Plan,
  values: Map<string, string>,
  index: ValueIndex,
  maxDepth: number,
  canRead: ReturnType<typeof readability>,
  paramsLeft: number,
  bytesLeft: number,
): Built | TooBig {
  const { resolved, error } = plan;
  if (error || !resolved) return errorResult(requestedPath, error?.errCode ?? 7003, error?.errMsg ?? 'internal error');
  // One parameter named in full that the device turned out not to have (its model has it,
  // this instance does not): an invalid path like any other (R-GET.0).
  if (resolved.length === 1 && resolved[0]!.kind === 'parameter' && !values.has(resolved[0]!.path) && !SEARCH.test(requestedPath)) {
    return errorResult(requestedPath, 7026, `invalid path: ${requestedPath} is not in the instantiated data model of this device`);
  }
  let params = 0;
  let bytes = utf8(requestedPath) + 16;
  const byObject = new Map<string, Record<string, string>>();
  const put = (obj: string, name: string, v: string): TooBig | null => {
    let p = byObject.get(obj);
    if (!p) {
      byObject.set(obj, (p = {}));
      bytes += utf8(obj) + 8;
    }
    if (name in p) return null;
    p[name] = v;
    params++;
    bytes += utf8(name) + utf8(v) + 12;
    return params > paramsLeft ? { over: 'params' } : bytes > bytesLeft ? { over: 'bytes' } : null;
  };
  for (const r of resolved) {
    if (r.kind === 'parameter') {
      const v = values.get(r.path);
      const over = v === undefined ? null : put(r.object, r.leaf!, v);
      if (over) return over;
    } else if (r.kind === 'object') {
      for (const [p, v] of index.under(r.path)) {
        if (!withinDepth(r.path, p, maxDepth) || !canRead.param(p)) continue;
        const dot = p.lastIndexOf('.');
        const over = put(p.slice(0, dot + 1), p.slice(dot + 1), v);
        if (over) return over;
      }
    }
  }
  // Objects without parameters of their own (tables, empty containers) carry no result (R-GET.2).
  const resolvedPathResults: GetResolvedPathResult[] = [...byObject]
    .filter(([, p]) => Object.keys(p).length > 0)
    .map(([resolvedPath, resultParams]) => ({ resolvedPath, resultParams }));
  return { result: { requestedPath, resolvedPathResults }, params, bytes };
}

function errorResult(requestedPath: string, errCode: number, errMsg: string): Built {
  return { result: { requestedPath, errCode, errMsg, resolvedPathResults: [] }, params: 0, bytes: utf8(requestedPath) + utf8(errMsg) + 24 };
}

/** TR-369 7005 Resources Exceeded for a requested path that would take the response over a bound. */
function tooBig(requestedPath: string, limits: GetLimits, byParams: boolean): Built {
  const bound = byParams
    ? `${limits.maxParams} parameters (usp.maxGetParams)`
    : `${limits.maxBytes} bytes (the largest response a Record of usp.maxRecordBytes carries)`;
  return errorResult(requestedPath, 7005, `resources exceeded: answering ${requestedPath} would take the GetResp over ${bound}; ask for less per Get`);
}

function utf8(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

/** Paths covered by an object path in the same list are dropped ("Device." covers everything). */
function mergeOverlapping(paths: string[]): string[] {
  const objects = paths.filter((p) => p.endsWith('.')).sort((a, b) => a.length - b.length);
  const keep: string[] = [];
  for (const o of objects) if (!keep.some((k) => o.startsWith(k))) keep.push(o);
  return [...keep, ...paths.filter((p) => !p.endsWith('.') && !keep.some((k) => p.startsWith(k)))];
}

/**
 * The values under an object path, in the order the backend gave them, found by binary search in
 * the sorted names: a search path resolving to many rows does not scan every value per row.
 */
class ValueIndex {
  private readonly entries: [string, string][];
  private readonly sorted: number[];

  constructor(values: Map<string, string>) {
    this.entries = [...values];
    this.sorted = this.entries.map((_, i) => i).sort((a, b) => (this.entries[a]![0] < this.entries[b]![0] ? -1 : 1));
  }

  under(prefix: string): [string, string][] {
    let lo = 0;
    let hi = this.sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.entries[this.sorted[mid]!]![0] < prefix) lo = mid + 1;
      else hi = mid;
    }
    const hits: number[] = [];
    for (let i = lo; i < this.sorted.length && this.entries[this.sorted[i]!]![0].startsWith(prefix); i++) hits.push(this.sorted[i]!);
    return hits.sort((a, b) => a - b).map((i) => this.entries[i]!);
  }
}
