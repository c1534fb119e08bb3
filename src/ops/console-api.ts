/**
 * The device console's admin endpoints (docs/operating.md "Device console"; openapi.yaml), mounted
 * under /api by admin.ts behind its bearer token:
 *   GET  /api/devices/{key}/parameters?path=Device.X.   one object of the Device:2 tree as the
 *        device's USP Agent serves it (its DmRouter: the interworking backend, the proxy's own
 *        subtrees), lazily: parameters with values, types and writability, child objects, table
 *        instances; for a TR-098 device the native name beside each mapped parameter.
 *   POST /api/devices/{key}/parameters {path, value}   a Set through the same backend a USP Set
 *        reaches (the tree is the controller's view; the NBI set task takes native CWMP names).
 *   GET  /api/devices/{key}/trace                      the translation trace (src/ops/trace.ts).
 * Reads and the Set run in a request scope of their own, so the CWMP RPCs they cause are traced
 * under the from_id "admin-console" like a controller's.
 */
import express, { type Request, type Response, type NextFunction } from 'express';
import type { DeviceRecord } from '../store/types.js';
import type { DmRouter } from '../usp/dm/router.js';
import { isChildPath, modelView } from '../usp/dm/router.js';
import { toSchemaPath } from '../usp/dm/memory.js';
import type { ParamSchema } from '../usp/dm/types.js';
import { type CallScope, endRequest } from '../usp/request-scope.js';
import type { TranslationTrace } from './trace.js';

/** The from_id of the console's own work in the trace and the backends' RequestContext. */
export const CONSOLE_ID = 'admin-console';

const MAX_PATH = 512;
const MAX_VALUE = 65_536;
/** Parameters listed per object (a TR-181 object has far fewer; a hostile or odd model is cut). */
const MAX_PARAMS = 500;
/** Concrete Device:2 paths: names and instance numbers, no wildcards, search expressions or aliases. */
const OBJECT_PATH = /^Device\.(?:(?:[A-Za-z_][A-Za-z0-9_-]*|[1-9]\d{0,9})\.)*$/;
const PARAM_PATH = /^Device\.(?:(?:[A-Za-z_][A-Za-z0-9_-]*|[1-9]\d{0,9})\.)*[A-Za-z_][A-Za-z0-9_-]*$/;

export interface ConsolePorts {
  /** The agents' data-model router (the one USP requests go through). */
  router: DmRouter;
  trace: TranslationTrace;
  /** A TR-098 device's native names of Device:2 parameter paths (the mapping engine's toNative). */
  nativePaths?(d: DeviceRecord, uspPaths: readonly string[], scope?: CallScope): Promise<string[]>;
}

export interface ConsoleRouteDeps extends ConsolePorts {
  findDevice(key: unknown): Promise<DeviceRecord>;
  audit(req: Request, action: string, fields: Record<string, unknown>): void;
}

/** A 4xx answered as {"error"} by admin.ts's error handler. */
class ClientError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface ParamRow {
  path: string;
  type: ParamSchema['type'];
  access: ParamSchema['access'];
  writable: boolean;
  /** Absent when the device did not report it; empty for secured parameters (their null value). */
  value?: string;
  /** TR-098 devices: the native parameter(s) this one is mapped from. */
  native?: string[];
}

export interface ObjectView {
  path: string;
  table: boolean;
  /** Tables: the instances' object paths; objects: child objects and tables. */
  children: { path: string; table: boolean }[];
  params: ParamRow[];
  paramsNotListed: number;
}

/** Child object and table paths of a concrete object from its children's supported paths. */
export function childPaths(concrete: string, schemaPath: string, childSchemas: readonly string[]): { path: string; table: boolean }[] {
  const out: { path: string; table: boolean }[] = [];
  for (const c of childSchemas) {
    if (!isChildPath(schemaPath, c)) continue;
    const rest = c.slice(schemaPath.length);
    const table = rest.endsWith('.{i}.');
    out.push({ path: concrete + (table ? rest.slice(0, -'{i}.'.length) : rest), table });
  }
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** Runs console work as a request of its own (RPC linger, trace attribution: src/usp/request-scope.ts), then its end hooks. */
async function scoped<T>(fn: (scope: CallScope) => Promise<T>): Promise<T> {
  const scope: CallScope = { ends: [] };
  try {
    return await fn(scope);
  } finally {
    // an end hook only releases a session linger; its failure changes no answer
    endRequest(scope, () => undefined);
  }
}

const errText = (e: unknown): string => (e instanceof Error ? e.message : String(e)).slice(0, 300);

export function consoleRoutes(deps: ConsoleRouteDeps): express.Router {
  const r = express.Router();
  const wrap =
    (fn: (req: Request, res: Response) => Promise<void>) =>
    (req: Request, res: Response, next: NextFunction): void => {
      fn(req, res).catch(next);
    };

  r.get(
    '/devices/:key/parameters',
    wrap(async (req, res) => {
      const d = await deps.findDevice(req.params.key);
      const raw = req.query.path ?? '';
      const path = raw === '' ? 'Device.' : raw;
      if (typeof path !== 'string' || path.length > MAX_PATH || !OBJECT_PATH.test(path))
        throw new ClientError(400, 'path must be a Device:2 object path ending in "." (names and instance numbers; no wildcards or search expressions)');
      res.json(await scoped((scope) => readObject(deps, d, path, scope)));
    }),
  );

  r.post(
    '/devices/:key/parameters',
    wrap(async (req, res) => {
      const d = await deps.findDevice(req.params.key);
      const body = req.body as { path?: unknown; value?: unknown } | undefined;
      const path = body?.path;
      const value = body?.value;
      if (typeof path !== 'string' || path.length > MAX_PATH || !PARAM_PATH.test(path))
        throw new ClientError(400, 'body.path must be a Device:2 parameter path (names and instance numbers)');
      if (typeof value !== 'string' || value.length > MAX_VALUE) throw new ClientError(400, `body.value must be a string of at most ${MAX_VALUE} characters`);
      const dot = path.lastIndexOf('.');
      const objectPath = path.slice(0, dot + 1);
      const param = path.slice(dot + 1);
      // Names only: the value may be a secret (docs/security.md).
      deps.audit(req, 'set parameter', { deviceKey: d.deviceKey, path });
      const started = performance.now();
      const out = await scoped(async (scope) => {
        const schema = (await modelView(deps.router, d.endpointId, scope).object(objectPath))?.params.find((p) => p.name === param);
        let result: { ok: true } | { ok: false; errCode: number; errMsg: string };
        if (!schema) result = { ok: false, errCode: 7026, errMsg: `${path} is not a parameter of this device` };
        else if (schema.access === 'readOnly') result = { ok: false, errCode: 7200, errMsg: `${path} is read-only` };
        else {
          const backend = deps.router.backendFor(objectPath);
          try {
            const o = backend
              ? await backend.set({ agentEid: d.endpointId, controllerEid: CONSOLE_ID, scope }, objectPath, [{ param, value, required: true }])
              : { ok: false as const, errCode: 7026, errMsg: `no backend serves ${objectPath}`, paramErrs: [] };
            const pe = o.paramErrs[0];
            result =
              o.ok && !pe
                ? { ok: true }
                : pe
                  ? { ok: false, errCode: pe.errCode, errMsg: pe.errMsg }
                  : { ok: false, errCode: o.ok ? 7000 : o.errCode, errMsg: o.ok ? 'not set' : o.errMsg };
          } catch (e) {
            result = {
              ok: false,
              errCode: (e as { code?: unknown }).code === undefined ? 7002 : Number((e as { code?: unknown }).code) || 7002,
              errMsg: errText(e),
            };
          }
        }
        deps.trace.add(d.endpointId, scope, {
          fromId: CONSOLE_ID,
          msgType: 'SET',
          msgId: '',
          paths: [path],
          pathCount: 1,
          outcome: result.ok ? 'ok' : `error ${result.errCode}`,
          errCodes: result.ok ? [] : [result.errCode],
          ms: Math.round(performance.now() - started),
        });
        return result;
      });
      if (!out.ok) {
        res.status(422).json({ error: out.errMsg, errCode: out.errCode, path });
        return;
      }
      res.json({ path, set: true });
    }),
  );

  r.get(
    '/devices/:key/trace',
    wrap(async (req, res) => {
      const d = await deps.findDevice(req.params.key);
      res.json({ endpointId: d.endpointId, entries: deps.trace.forAgent(d.endpointId) });
    }),
  );
  return r;
}

/** One object (or table) of the agent's tree: its schema through a request view, its values through the router. */
async function readObject(deps: ConsolePorts, d: DeviceRecord, path: string, scope: CallScope): Promise<ObjectView> {
  const eid = d.endpointId;
  const view = modelView(deps.router, eid, scope);
  const started = performance.now();
  const traced = (outcome: string, errCodes: number[]): void =>
    void deps.trace.add(
      eid,
      scope,
      { fromId: CONSOLE_ID, msgType: 'GET', msgId: '', paths: [path], pathCount: 1, outcome, errCodes, ms: Math.round(performance.now() - started) },
      { onlyWithRpcs: true },
    );
  try {
    if (path !== 'Device.' && (await view.isTable(path))) {
      const instances = (await deps.router.instances(eid, path, scope)) ?? [];
      traced('ok', []);
      return { path, table: true, children: instances.map((i) => ({ path: `${path}${i}.`, table: false })), params: [], paramsNotListed: 0 };
    }
    const schemaPath = toSchemaPath(path);
    const obj = await view.object(path);
    if (!obj) throw new ClientError(404, `${path} is not an object of this device's Device:2 model`);
    const children = childPaths(
      path,
      schemaPath,
      (await view.children(schemaPath)).map((o) => o.path),
    );
    const schemas = obj.params.slice(0, MAX_PARAMS);
    const values = schemas.length
      ? await deps.router.get(
          eid,
          schemas.map((p) => path + p.name),
          undefined,
          scope,
        )
      : new Map<string, string>();
    const tr098 = d.rootModel === 'InternetGatewayDevice' && deps.nativePaths;
    const params: ParamRow[] = [];
    for (const p of schemas) {
      const full = path + p.name;
      const row: ParamRow = { path: full, type: p.type, access: p.access, writable: p.access !== 'readOnly' };
      const v = values.get(full);
      if (v !== undefined) row.value = v;
      if (tr098 && !full.startsWith('Device.LocalAgent.') && !full.startsWith('Device.BulkData.')) row.native = await deps.nativePaths!(d, [full], scope);
      params.push(row);
    }
    traced('ok', []);
    return { path, table: false, children, params, paramsNotListed: obj.params.length - schemas.length };
  } catch (e) {
    if (e instanceof ClientError) throw e;
    const code = Number((e as { code?: unknown; errCode?: unknown }).code ?? (e as { errCode?: unknown }).errCode) || 7002;
    traced(`error ${code}`, [code]);
    throw new ClientError(502, `reading ${path} failed (USP error ${code}): ${errText(e)}`);
  }
}
