/**
 * GetSupportedDM (TR-369 "The GetSupportedDM Message"): the supported model at and (unless
 * first_level_only) below each requested object path, in "{i}" notation, with parameters,
 * commands, events and unique key sets as asked. Paths may be given with instance numbers.
 */
import type { ObjectSchema, ParamType } from '../dm/types.js';
import { isChildPath, modelView } from '../dm/router.js';
import type { Msg, ParamValueType, RequestedObjectResult, SupportedObjectResult } from '../codec/record.js';
import { parsePath } from '../path/index.js';
import { UspError } from '../errors.js';
import { codeOf, responseMsg, type HandlerContext } from './context.js';

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

export async function handleGetSupportedDM(ctx: HandlerContext, msg: Msg): Promise<Msg> {
  const req = msg.body.request!.getSupportedDm!;
  const model = modelView(ctx.router, ctx.agentEid);
  const reqObjResults: RequestedObjectResult[] = [];
  for (const reqObjPath of req.objPaths) {
    try {
      // Supported Data Model paths ("...Controller.{i}.") are as valid here as instance paths (TR-369 GetSupportedDM).
      const ast = parsePath(reqObjPath.replace(/\.\{i\}(?=\.)/g, '.1'));
      if (ast.kind !== 'object') {
        // A parameter/command/event path: its object, with just that element (TP-469 1.99, 1.107).
        const dot = reqObjPath.lastIndexOf('.');
        const schemaObj = toSupported(reqObjPath.slice(0, dot + 1));
        const leaf = reqObjPath.slice(dot + 1);
        const o = (await model.exists(schemaObj + leaf)) ? (await model.subtree(schemaObj)).find((x) => x.path === schemaObj) : undefined;
        if (!o) throw new UspError(7026, `${reqObjPath} is not in the supported data model`);
        const only: ObjectSchema = {
          ...o,
          params: o.params.filter((p) => p.name === leaf),
          commands: o.commands.filter((c) => c.name === leaf),
          events: o.events.filter((e) => e.name === leaf),
        };
        reqObjResults.push({ reqObjPath, dataModelInstUri: DATA_MODEL_INST_URI, supportedObjs: [describe(only, req, true)] });
        continue;
      }
      const schemaPath = toSupported(reqObjPath);
      // One look at the subtree finds the object (or a table's rows) and what lies below it.
      const below = await model.subtree(schemaPath);
      const root = below.find((o) => o.path === schemaPath) ?? below.find((o) => o.path === `${schemaPath}{i}.`);
      if (!root) throw new UspError(7026, `${reqObjPath} is not in the supported data model`);
      const objs = below.filter((o) => o.path === root.path || (o.path.startsWith(root.path) && (!req.firstLevelOnly || isChildPath(root.path, o.path))));
      reqObjResults.push({ reqObjPath, dataModelInstUri: DATA_MODEL_INST_URI, supportedObjs: objs.map((o) => describe(o, req, true)) });
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

function describe(
  o: ObjectSchema,
  req: { returnCommands?: boolean; returnEvents?: boolean; returnParams?: boolean; returnUniqueKeySets?: boolean },
  _top: boolean,
): SupportedObjectResult {
  return {
    supportedObjPath: o.path,
    access:
      o.access === 'addDelete' ? 'OBJ_ADD_DELETE' : o.access === 'addOnly' ? 'OBJ_ADD_ONLY' : o.access === 'deleteOnly' ? 'OBJ_DELETE_ONLY' : 'OBJ_READ_ONLY',
    isMultiInstance: o.multiInstance,
    supportedCommands: req.returnCommands
      ? o.commands.map((c) => ({
          commandName: c.name,
          inputArgNames: c.input.map((a) => a.name),
          outputArgNames: c.output.map((a) => a.name),
          commandType: c.async ? 'CMD_ASYNC' : 'CMD_SYNC',
        }))
      : [],
    supportedEvents: req.returnEvents ? o.events.map((e) => ({ eventName: e.name, argNames: e.args.map((a) => a.name) })) : [],
    supportedParams: req.returnParams
      ? o.params.map((p) => ({
          paramName: p.name,
          access: p.access === 'readWrite' ? 'PARAM_READ_WRITE' : p.access === 'writeOnly' ? 'PARAM_WRITE_ONLY' : 'PARAM_READ_ONLY',
          valueType: VALUE_TYPE[p.type],
          valueChange: p.valueChange === 'willIgnore' ? 'VALUE_CHANGE_WILL_IGNORE' : 'VALUE_CHANGE_ALLOWED',
        }))
      : [],
    divergentPaths: [],
    uniqueKeySets: req.returnUniqueKeySets ? o.uniqueKeys.map((k) => ({ keyNames: [...k] })) : [],
  };
}
