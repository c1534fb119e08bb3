/**
 * Shorthands for writing a supported data model in code (the subtrees the proxy serves itself:
 * LocalAgent, MQTT, STOMP, BulkData), so each schema file reads like the TR-181 object list.
 */
import type { ObjectSchema, ParamSchema } from './types.js';

/** A read-only parameter (string unless typed). */
export const ro = (name: string, type: ParamSchema['type'] = 'string', extra: Partial<ParamSchema> = {}): ParamSchema => ({
  name,
  type,
  access: 'readOnly',
  ...extra,
});

/** A writable parameter (string unless typed). */
export const rw = (name: string, type: ParamSchema['type'] = 'string', extra: Partial<ParamSchema> = {}): ParamSchema => ({
  name,
  type,
  access: 'readWrite',
  ...extra,
});

/** An object; a path ending in `{i}.` is a table. */
export const obj = (path: string, params: ParamSchema[], extra: Partial<ObjectSchema> = {}): ObjectSchema => ({
  path,
  multiInstance: path.endsWith('{i}.'),
  access: 'readOnly',
  params,
  commands: [],
  events: [],
  uniqueKeys: [],
  ...extra,
});
