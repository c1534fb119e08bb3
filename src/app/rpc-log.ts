/**
 * One debug line per CWMP RPC the session engine settled: device, method, how many parameter names
 * it carried, the cwmp Fault or delivery failure, and the time from queued to settled. Names and
 * values are not logged (values may be secrets); only their count.
 */
import type { Logger } from './log.js';
import type { SessionEngine } from '../cwmp/session.js';
import type { AcsRequest } from '../cwmp/types.js';

/** Parameter names (or structs) an RPC carries; 1 for a single path or object. */
export function namesCount(rpc: AcsRequest): number {
  switch (rpc.method) {
    case 'GetParameterValues':
    case 'GetParameterAttributes':
      return rpc.parameterNames.length;
    case 'SetParameterValues':
    case 'SetParameterAttributes':
      return rpc.parameterList.length;
    case 'GetParameterNames':
    case 'AddObject':
    case 'DeleteObject':
      return 1;
    default:
      return 0;
  }
}

/** Subscribes to the engine; returns the unsubscribe function. */
export function logCwmpRpcs(engine: SessionEngine, log: Logger): () => void {
  // 'rpcResult' carries the RPC (for its names count) and is emitted just before 'rpcSettled' for
  // the same RPC (cwmp/session.ts), which carries the time.
  let last: { deviceKey: string; rpc: AcsRequest } | null = null;
  const onResult = ({ deviceKey, rpc }: { deviceKey: string; rpc: AcsRequest }): void => {
    last = { deviceKey, rpc };
  };
  const onSettled = (e: {
    deviceKey: string;
    method: AcsRequest['method'];
    outcome?: { kind: string; fault?: { faultCode: number; faultString: string } };
    error?: Error & { reason?: string };
    ms: number;
  }): void => {
    if (!log.isLevelEnabled('debug')) return;
    const rpc = last && last.deviceKey === e.deviceKey && last.rpc.method === e.method ? last.rpc : null;
    last = null;
    // The code only: a CPE's fault string may echo the value it refused.
    const fault = e.outcome?.kind === 'fault' && e.outcome.fault ? e.outcome.fault.faultCode : undefined;
    log.debug(
      {
        device: e.deviceKey,
        method: e.method,
        ...(rpc ? { names: namesCount(rpc) } : {}),
        ...(fault !== undefined ? { fault } : {}),
        ...(e.error ? { failed: e.error.reason ?? e.error.message } : {}),
        ms: e.ms,
      },
      'CWMP RPC',
    );
  };
  engine.on('rpcResult', onResult);
  engine.on('rpcSettled', onSettled);
  return () => {
    engine.off('rpcResult', onResult);
    engine.off('rpcSettled', onSettled);
  };
}
