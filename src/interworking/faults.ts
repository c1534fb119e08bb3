/**
 * CWMP fault -> USP error, one table (TR-069 A.5.1 -> TR-369 "Error Codes"). Faults from the device are data: the
 * translation turns them into the USP error code of the response, with the CWMP code and text
 * kept in the message so an operator can see what the device said.
 */
import { RpcError } from '../cwmp/session.js';
import type { FaultStruct } from '../cwmp/types.js';
import { UspError } from '../usp/errors.js';

/** TR-069 A.5.1 fault codes to TR-369 error codes. */
export const CWMP_TO_USP: Readonly<Record<number, number>> = {
  9000: 7001, // Method not supported -> Message not supported
  9001: 7002, // Request denied -> Request denied
  9002: 7003, // Internal error
  9003: 7004, // Invalid arguments
  9004: 7005, // Resources exceeded
  9005: 7026, // Invalid parameter name -> Invalid path
  9006: 7011, // Invalid parameter type -> Invalid type
  9007: 7012, // Invalid parameter value -> Invalid value
  9008: 7013, // Attempt to set a non-writable parameter -> not writable
  9009: 7009, // Notification request rejected -> Parameter action failed
  9010: 7022, // Download failure -> Command failure
  9011: 7022, // Upload failure -> Command failure
  9012: 7022, // File transfer server authentication failure
  9013: 7022, // Unsupported protocol for file transfer
  9014: 7022, // Download failure: unable to join multicast group
  9015: 7022, // Download failure: unable to contact file server
  9016: 7022, // Download failure: unable to access file
  9017: 7022, // Download failure: unable to complete download
  9018: 7022, // Download failure: file corrupted
  9019: 7022, // Download failure: file authentication failure
};

export function uspCodeOfCwmpFault(code: number): number {
  if (CWMP_TO_USP[code] !== undefined) return CWMP_TO_USP[code]!;
  if (code >= 9800 && code <= 9899) return 7003; // vendor faults: internal error of the device
  return 7000;
}

/** "CWMP fault 9005 (Invalid parameter name)" style text for err_msg. */
export function describeFault(f: FaultStruct): string {
  return `CWMP fault ${f.faultCode}${f.faultString ? ` (${f.faultString})` : ''}`;
}

/** Faults that mean "too much at once" rather than "wrong name": ask again in smaller pieces. */
export function isChokeFault(code: number): boolean {
  return code === 9004 || code === 9002;
}

/** An RpcError (the RPC could not be carried out) as the interworking layer reads it. */
export interface RpcFailure {
  reason: string;
  /** The CPE dropped the connection or started a new session with the RPC in flight. */
  dropped: boolean;
  /** The CPE choked on the RPC (dropped it or never answered), as opposed to being unreachable. */
  choke?: boolean;
}

export function rpcErrorOf(e: unknown): RpcFailure | null {
  if (!(e instanceof RpcError)) return null;
  // RpcError.detail.lost says how a sent RPC was lost; an engine that does not say is read by reason.
  const lost = e.detail?.lost;
  const dropped = lost ? lost === 'connection-closed' || lost === 'new-session' : e.reason === 'session-ended';
  const choke = lost ? lost !== 'shutdown' : dropped || e.reason === 'session-timeout';
  return { reason: e.message, dropped, choke };
}

/** A delivery failure as a USP error: 7002 when the device cannot be reached, 7003 when it did not answer. */
export function uspErrorOfRpc(e: unknown): { errCode: number; errMsg: string } {
  if (e instanceof UspError) return { errCode: e.code, errMsg: e.message };
  if (e instanceof RpcError) {
    switch (e.reason) {
      case 'unreachable':
      case 'unknown-device':
        return { errCode: 7002, errMsg: `device unreachable: ${e.message}` };
      case 'session-timeout':
      case 'session-ended':
        return { errCode: 7003, errMsg: `the device did not answer: ${e.message}` };
      case 'outcome-unknown':
        // TR-369 7022 Command failure: the request may or may not have been carried out.
        return { errCode: 7022, errMsg: `outcome unknown: ${e.message}` };
      default:
        return { errCode: 7003, errMsg: e.message };
    }
  }
  return { errCode: 7003, errMsg: `internal error: ${(e as Error)?.message ?? String(e)}` };
}

/** Any error as a UspError (delivery failures translated, UspErrors kept). */
export function toUspError(e: unknown): UspError {
  if (e instanceof UspError) return e;
  const c = uspErrorOfRpc(e);
  return new UspError(c.errCode, c.errMsg);
}
