/**
 * The ports the interworking layer is built with: the CWMP session engine's enqueue() (every RPC
 * of a USP request goes through it) and the device registry. Tests drive the translation with a
 * scripted RpcPort and no socket.
 */
import type { RpcOutcome } from '../cwmp/session.js';
import type { AcsRequest } from '../cwmp/types.js';
import type { DeviceRecord } from '../store/types.js';
import type { CallScope } from '../usp/request-scope.js';

export type { RpcOutcome } from '../cwmp/session.js';

export interface RpcOptions {
  signal?: AbortSignal;
  scope?: CallScope;
}

/** What the backends need from the CWMP side. */
export interface RpcPort {
  /**
   * Resolves with the CPE's response or cwmp Fault; rejects with RpcError when it cannot be
   * delivered. `signal`: nobody waits any more (an RPC still queued is dropped, 'cancelled').
   * `scope`: what the RPC is made for (src/usp/request-scope.ts: the USP request it lingers and is
   * traced for, a Bulk Data collection's ride); absent: neither.
   */
  enqueue(deviceKey: string, rpc: AcsRequest, opts?: RpcOptions): Promise<RpcOutcome>;
}

export interface DeviceLookup {
  deviceByEndpointId(endpointId: string): Promise<DeviceRecord | null>;
}
