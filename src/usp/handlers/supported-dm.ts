/**
 * GetSupportedDM (TR-369 "The GetSupportedDM Message"): the supported model at and (unless
 * first_level_only) below each requested object path, in "{i}" notation, with parameters,
 * commands, events and unique key sets as asked. Paths may be given with instance numbers.
 * Permissions (R-GSP.0): what the controller may not read is absent (an object without Obj "r",
 * a parameter without Param "r", a command or event without CommandEvent "r"); a requested path it
 * may not read is not in the supported model (7026). Access shows what the controller may do:
 * Add needs Obj "w", Delete InstantiatedObj "w", a writable parameter Param "w". With "{i}" the
 * rights that hold for every instance count; with an instance number, that instance's.
 */
import type { ObjectSchema, ParamType } from '../dm/types.js';
import { isChildPath, modelView } from '../dm/router.js';
import type { Msg, ParamValueType, RequestedObjectResult, SupportedObjectResult } from '../codec/record.js';
import { parsePath } from '../path/index.js';
import { UspError } from '../errors.js';
import type { Op } from '../trust/permissions.js';
import { codeOf, may, type RequestScope, responseMsg } from './context.js';

/** The rights of this request on a supported object's elements, with the requested instance numbers put back. */
interface Rights {
  can(schemaPath: string, op: Op): boolean;
}

const VALUE_TYPE: Record<ParamType, ParamValueType> = {
  string: 'PARAM_STRING',
  base64: 'PARAM_BASE_64',
  hexBinary: 'PARAM_HEX_BINARY',
  dateTime: 'PARAM_DATE_TIME',
  decimal: 'PARAM_DECIMAL',
  int: 'PARAM_INT',
  long: 'PARAM_LONG',
  unsignedInt: 'PARAM_UNSIGNED_INT',
  unsignedLong: 'PARAM_UNSIGNED_LONG',
  boolean: 'PARAM_BOOLEAN',
};

export const DATA_MODEL_INST_URI = 'urn:broadband-forum-org:tr-181-2-19-0-usp';

export async function handleGetSupportedDM(ctx: RequestScope, msg: Msg): Promise<Msg> {
  const req = msg.body.request!.getSupportedDm!;
  const model = modelView(ctx.router, ctx.agentEid, ctx.scope);
  const reqObjResults: RequestedObjectResult[] = [];
  for (const reqObjPath of req.objPaths) {
    const notSupported = new UspError(7026, `${reqObjPath} is not in the supported data model`);
    try {
      // Supported Data Model paths ("...Controller.{i}.") are as valid here as instance paths (TR-369 GetSupportedDM).
      const ast = parsePath(reqObjPath.replace(/\.\{i\}(?=\.)/g, '.1'));
      if (ast.kind !== 'object') {
        // A parameter/command/event path: its object, with just that element (TP-469 1.99, 1.107).
        const dot = reqObjPath.lastIndexOf('.');
        const schemaObj = toSupported(reqObjPath.slice(0, dot + 1));
        const leaf = reqObjPath.slice(dot + 1);
        const o = (await model.exists(schemaObj + leaf)) ? (await model.subtree(schemaObj)).find((x) => x.path === schemaObj) : undefined;
        if (!o) throw notSupported;
        const rights = rightsFor(ctx, schemaObj, reqObjPath.slice(0, dot + 1));
        const right: Op = leaf.endsWith(')') || leaf.endsWith('!') ? 'CommandEvent.r' : 'Param.r';
        if (!rights.can(schemaObj, 'Obj.r') || !rights.can(schemaObj + leaf, right)) throw notSupported;
        const only: ObjectSchema = {
          ...o,
          params: o.params.filter((p) => p.name === leaf),
          commands: o.commands.filter((c) => c.name === leaf),
          events: o.events.filter((e) => e.name === leaf),
        };
        reqObjResults.push({ reqObjPath, dataModelInstUri: DATA_MODEL_INST_URI, supportedObjs: [describe(only, req, rights)] });
        continue;
      }
      const schemaPath = toSupported(reqObjPath);
      const rights = rightsFor(ctx, schemaPath, reqObjPath);
      // One look at the subtree finds the object (or a table's rows) and what lies below it.
      const below = await model.subtree(schemaPath);
      const root = below.find((o) => o.path === schemaPath) ?? below.find((o) => o.path === `${schemaPath}{i}.`);
      if (!root || !rights.can(schemaPath, 'Obj.r')) throw notSupported;
      const objs = below.filter(
        (o) =>
          (o.path === root.path || (o.path.startsWith(root.path) && (!req.firstLevelOnly || isChildPath(root.path, o.path)))) && rights.can(o.path, 'Obj.r'),
      );
      reqObjResults.push({ reqObjPath, dataModelInstUri: DATA_MODEL_INST_URI, supportedObjs: objs.map((o) => describe(o, req, rights)) });
    } catch (e) {
      const c = codeOf(e);
      reqObjResults.push({ reqObjPath, errCode: c.errCode, errMsg: c.errMsg, supportedObjs: [] });
    }
  }
  return responseMsg(msg, 'GET_SUPPORTED_DM_RESP', { respType: 'getSupportedDmResp', getSupportedDmResp: { reqObjResults } });
}

function toSupported(p: string): string {
  return p.replace(/\.\d+\./g, '.{i}.').replace(/\.\d+\./g, '.{i}.');
}

/**
 * Rights on supported paths below `schemaPath`, checked on the path as the controller wrote it:
 * "Device.WiFi.SSID.2." asks about row 2, "Device.WiFi.SSID.{i}." about every row.
 */
function rightsFor(ctx: RequestScope, schemaPath: string, requested: string): Rights {
  const concrete = requested.endsWith('.') ? requested : `${requested}.`;
  return {
    can: (p, op) => may(ctx, p.startsWith(schemaPath) ? concrete + p.slice(schemaPath.length) : p, op),
  };
}

function describe(
  o: ObjectSchema,
  req: { returnCommands?: boolean; returnEvents?: boolean; returnParams?: boolean; returnUniqueKeySets?: boolean },
  rights: Rights,
): SupportedObjectResult {
  // A table row path ("X.{i}."): Add is a right on the table, Delete on the rows.
  const table = o.multiInstance ? o.path.slice(0, -'{i}.'.length) : o.path;
  const add = (o.access === 'addDelete' || o.access === 'addOnly') && rights.can(table, 'Obj.w');
  const del = (o.access === 'addDelete' || o.access === 'deleteOnly') && rights.can(o.path, 'InstantiatedObj.w');
  const readable = (name: string, op: Op): boolean => rights.can(o.path + name, op);
  return {
    supportedObjPath: o.path,
    access: add && del ? 'OBJ_ADD_DELETE' : add ? 'OBJ_ADD_ONLY' : del ? 'OBJ_DELETE_ONLY' : 'OBJ_READ_ONLY',
    isMultiInstance: o.multiInstance,
    supportedCommands: req.returnCommands
      ? o.commands
          .filter((c) => readable(c.name, 'CommandEvent.r'))
          .map((c) => ({
            commandName: c.name,
            inputArgNames: c.input.map((a) => a.name),
            outputArgNames: c.output.map((a) => a.name),
            commandType: c.async ? 'CMD_ASYNC' : 'CMD_SYNC',
          }))
      : [],
    supportedEvents: req.returnEvents
      ? o.events.filter((e) => readable(e.name, 'CommandEvent.r')).map((e) => ({ eventName: e.name, argNames: e.args.map((a) => a.name) }))
      : [],
    supportedParams: req.returnParams
      ? o.params
          .filter((p) => readable(p.name, 'Param.r'))
          .map((p) => ({
            paramName: p.name,
            access:
              p.access !== 'readOnly' && !readable(p.name, 'Param.w')
                ? 'PARAM_READ_ONLY'
                : p.access === 'readWrite'
                  ? 'PARAM_READ_WRITE'
                  : p.access === 'writeOnly'
                    ? 'PARAM_WRITE_ONLY'
                    : 'PARAM_READ_ONLY',
            valueType: VALUE_TYPE[p.type],
            valueChange: p.valueChange === 'willIgnore' ? 'VALUE_CHANGE_WILL_IGNORE' : 'VALUE_CHANGE_ALLOWED',
          }))
      : [],
    divergentPaths: [],
    uniqueKeySets: req.returnUniqueKeySets ? o.uniqueKeys.map((k) => ({ keyNames: [...k] })) : [],
  };
}
