/**
 * The vocabulary shared by the CWMP session machine (session-machine.ts), its state port
 * (session-state.ts) and the engine (session.ts): what a caller gets back for an ACS RPC, what
 * the HTTP front writes back, and the options. No behaviour here.
 */
import type { AcsRequest, CpeResponse, Fault, SoapEnvelope } from './types.js';

/** The CPE's answer to an ACS RPC: its response, or its cwmp Fault (a fault from a peer is data). */
export type RpcOutcome = { kind: 'response'; response: CpeResponse } | { kind: 'fault'; fault: Fault };

/**
 * 'outcome-unknown': the RPC had been sent when the proxy stopped without its answer (a crash); it is
 * not sent again, as the CPE may have carried it out (at-most-once).
 */
export type RpcErrorReason = 'unreachable' | 'session-timeout' | 'session-ended' | 'unknown-device' | 'cancelled' | 'shutdown' | 'outcome-unknown';

/**
 * How an RPC that had been sent to the CPE was lost (RpcError.detail). A caller may resend an
 * RPC that is safe to repeat after 'connection-closed' or 'new-session': the CPE went away or
 * started over, which is not the same as a CPE that never answers ('timeout').
 */
export type InFlightLoss = 'connection-closed' | 'new-session' | 'empty-post' | 'timeout' | 'shutdown';

export interface RpcErrorDetail {
  lost: InFlightLoss;
  /** The ACS RPC that was in flight. */
  method: AcsRequest['method'];
}

/** Why an RPC could not be carried out (as opposed to a cwmp Fault, which is an outcome). */
export class RpcError extends Error {
  constructor(
    readonly reason: RpcErrorReason,
    message: string,
    /** Set when the RPC had been sent: how it was lost. */
    readonly detail?: RpcErrorDetail,
  ) {
    super(message);
    this.name = 'RpcError';
  }
}

/** A device the registry will not take (its Endpoint ID belongs to another device): HTTP 403, never 500. */
export class DeviceRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DeviceRefused';
  }
}

/** What the HTTP front writes back. */
export interface CwmpReply {
  status: number;
  body: string;
  contentType?: string;
  /** Set-Cookie value for a new session. */
  cookie?: string;
  headers?: Record<string, string>;
  /** The session ended with this reply (the front may forget the connection binding). */
  ended?: boolean;
}

export function plain(status: number, message: string): CwmpReply {
  return { status, body: message + '\n', contentType: 'text/plain; charset=utf-8' };
}

export interface ConnReqOutcome {
  ok: boolean;
  reason?: string;
  detail?: string;
}

/** What the engine needs from connreq.ts (kept narrow so tests can stub it). */
export interface ConnectionRequestPort {
  request(deviceKey: string, url: string, creds: { username: string; password: string } | null): Promise<ConnReqOutcome>;
  cancel(deviceKey: string): void;
}

export interface SessionEngineOptions {
  sessionTimeoutMs: number;
  rpcDeadlineMs: number;
  holdRequests: boolean;
  setConnectionRequestCredentials: boolean;
  /** acs.auth.perDevice: give a device holding a pending pair its own ManagementServer.Username/Password (cpe-credentials.ts). */
  perDeviceCredentials?: boolean;
  maxSessions: number;
  endpointIdScheme: 'os' | 'ops';
  /**
   * A new device whose os:: Endpoint ID another device (same OUI and serial, another ProductClass)
   * holds: 'ops' registers it as ops::OUI-ProductClass-Serial (TR-369 R-ARC.2a), 'refuse' answers
   * its Informs 403 (default 'ops').
   */
  endpointIdCollision?: 'ops' | 'refuse';
  /** See EnqueueOptions.linger (ms; 0 disables). */
  lingerMs?: number;
  /** See SessionEngine.connectionClosed (ms; 0 or absent: wait for the session timeout). */
  droppedConnectionGraceMs?: number;
}

export interface IncomingPost {
  /** null for an empty POST. */
  envelope: SoapEnvelope | null;
  /** Session id from the cookie, if the CPE sent one. */
  sessionId: string | null;
  /** The TCP connection (CPEs that drop the cookie but keep the connection still match). */
  connection: object;
}

export interface EnqueueOptions {
  /** Fail as "device unreachable" if not sent within this many ms (default rpcDeadlineMs). */
  deadlineMs?: number;
  /**
   * The caller may follow up with more RPCs once this one is answered (a USP request that needs
   * GetParameterNames, then GetParameterValues): when the queue is empty after its answer, the
   * session waits up to `lingerMs` for the next RPC instead of ending with 204 — so one USP
   * request takes one connection request and one session.
   */
  linger?: boolean;
  /**
   * Aborted when nobody waits for the answer any more (the controller that asked is gone): an RPC
   * still queued is dropped (RpcError 'cancelled'); one already sent runs to its end.
   */
  signal?: AbortSignal;
  /**
   * false: send no connection request; the RPC waits in the queue for a session the CPE opens on
   * its own (a periodic Inform, TR-069 3.2) and fails as unreachable at its deadline otherwise.
   * Queued RPCs go out in any session (docs/bulkdata.md: collection in periodic Informs).
   */
  wake?: boolean;
}
