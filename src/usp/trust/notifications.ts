/**
 * Which rights a notification needs (TR-181 Permission.{i}: the "n" flag of Param for ValueChange,
 * Obj for ObjectCreation, InstantiatedObj for ObjectDeletion, CommandEvent for OperationComplete and
 * Event), and whether a Subscription may name a path at all. A Notify reveals what changed, so
 * the Recipient needs the matching read right as well as the notify right.
 */
import { parsePath, type UspPath } from '../path/index.js';
import type { Op } from './permissions.js';

export type NotifType = 'ValueChange' | 'ObjectCreation' | 'ObjectDeletion' | 'OperationComplete' | 'Event';

/** A check of one operation on one path: the RoleSet behind it is the caller's (pure or request-bound). */
export type Check = (path: string, op: Op) => boolean;

const NOTIFY_OPS: Record<NotifType, readonly Op[]> = {
  ValueChange: ['Param.r', 'Param.n'],
  ObjectCreation: ['Obj.r', 'Obj.n'],
  ObjectDeletion: ['InstantiatedObj.r', 'InstantiatedObj.n'],
  OperationComplete: ['CommandEvent.r', 'CommandEvent.n'],
  Event: ['CommandEvent.r', 'CommandEvent.n'],
};

/** May a Notify of this type about `path` (the parameter, the created/deleted row, the command or event) go to this Recipient? */
export function notificationAllowed(can: Check, type: NotifType, path: string): boolean {
  return NOTIFY_OPS[type].every((op) => can(path, op));
}

/**
 * May a Subscription of this type name `ref` (one ReferenceList entry)? The element named in full
 * needs the rights its notifications need; an object used as a filter (every parameter, command or
 * event below it) needs Obj read; a Search Path, its fixed part's Obj read: which instances it
 * matches is known only per event, where notificationAllowed() decides. Not a path: true (the
 * syntax is not this check's to judge).
 */
export function subscriptionAllowed(can: Check, type: NotifType, ref: string): boolean {
  let ast: UspPath;
  try {
    ast = parsePath(ref);
  } catch {
    return true;
  }
  const fixed = ast.segments.findIndex((s) => s.type === 'wildcard' || s.type === 'search' || (s.type === 'name' && s.ref !== undefined));
  if (fixed >= 0) {
    const prefix = ast.segments.slice(0, fixed).map((s) => (s.type === 'instance' ? String(s.instance) : s.type === 'name' ? s.name : ''));
    return can(['Device', ...prefix, ''].join('.'), 'Obj.r');
  }
  switch (ast.kind) {
    case 'object':
      if (type === 'ObjectCreation' || type === 'ObjectDeletion') return notificationAllowed(can, type, ref);
      return can(ref, 'Obj.r');
    case 'parameter':
      return type !== 'ValueChange' || notificationAllowed(can, type, ref);
    case 'command':
      return type !== 'OperationComplete' || notificationAllowed(can, type, ref);
    case 'event':
      return type !== 'Event' || notificationAllowed(can, type, ref);
  }
}
