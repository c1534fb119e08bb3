/**
 * The CWMP session engine for several instances behind one load balancer (README "Scaling out"):
 * the same engine and session machine as one instance (src/cwmp/session.ts), on the Redis
 * SessionState (redis-session-state.ts), so that any instance can serve any POST:
 *
 * - enqueue() on the instance that took the USP request (the origin) puts the RPC in the device's
 *   Redis queue. When the device is in session, the instance named by its lease (the one that
 *   wrote its latest step, possibly lingering for this very RPC) is poked; otherwise one instance
 *   sends the connection request (a short Redis lock coalesces them).
 * - Whichever instance serves the POST that carries the answer publishes the outcome to the
 *   origin (or settles it in place when it is the origin).
 * - The origin owns the deadline: an RPC still queued at its deadline is removed and failed as
 *   unreachable; one already claimed by a session is waited for up to two session timeouts.
 * - The instance that wrote a session's latest step owns its timeout; a later step elsewhere
 *   makes that timer a no-op (the machine ignores a timeout armed at an older seq).
 * - Device events that commands on other instances wait for are relayed to them.
 */
import type { Logger } from '../app/log.js';
import { SessionEngine, type ConnectionRequestPort, type SessionEngineOptions } from '../cwmp/session.js';
import type { AutonomousTransferComplete, EventStruct, FaultStruct, Inform, TransferComplete } from '../cwmp/types.js';
import type { ClusterBus } from './bus.js';
import { RedisSessionState } from './redis-session-state.js';
import type { ClusterStore } from './types.js';

export type { RpcResultMessage } from '../cwmp/session-state.js';

/** Events that other instances' waiting commands care about (Reboot, Download, diagnostics). */
const QUIET_EVENTS = new Set(['2 PERIODIC', '6 CONNECTION REQUEST', '4 VALUE CHANGE']);

/** A device event relayed to the other instances (their CwmpCommandRunner may wait for it). */
export interface RemoteDeviceEvent {
  from: string;
  deviceKey: string;
  inform?: Pick<Inform, 'event'> & { parameterList: [] };
  transferComplete?: TransferComplete | AutonomousTransferComplete;
}

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const eventOf = (x: unknown): EventStruct | null =>
  isObj(x) && typeof x.eventCode === 'string' && typeof x.commandKey === 'string' ? { eventCode: x.eventCode, commandKey: x.commandKey } : null;
const faultOf = (x: unknown): FaultStruct | null =>
  isObj(x) && typeof x.faultCode === 'number' && typeof x.faultString === 'string' ? { faultCode: x.faultCode, faultString: x.faultString } : null;

/** A relayed TransferComplete or AutonomousTransferComplete rebuilt field by field, or null. */
function transferCompleteOf(x: unknown): TransferComplete | AutonomousTransferComplete | null {
  if (!isObj(x)) return null;
  const fault = faultOf(x.fault);
  const { startTime, completeTime } = x;
  if (!fault || typeof startTime !== 'string' || typeof completeTime !== 'string') return null;
  if (x.method === 'TransferComplete' && typeof x.commandKey === 'string') {
    return { method: 'TransferComplete', commandKey: x.commandKey, fault, startTime, completeTime };
  }
  const { announceURL, transferURL, isDownload, fileType, fileSize, targetFileName } = x;
  if (
    x.method !== 'AutonomousTransferComplete' ||
    typeof announceURL !== 'string' ||
    typeof transferURL !== 'string' ||
    typeof isDownload !== 'boolean' ||
    typeof fileType !== 'string' ||
    typeof fileSize !== 'number' ||
    typeof targetFileName !== 'string'
  ) {
    return null;
  }
  return { method: 'AutonomousTransferComplete', announceURL, transferURL, isDownload, fileType, fileSize, targetFileName, fault, startTime, completeTime };
}

/**
 * A device event relayed over the bus, rebuilt from the fields the waiting commands read (event
 * codes, TransferComplete's CommandKey and FaultStruct); any other shape is null and dropped.
 * Another instance wrote it, but what comes out of Redis is a network input like any other.
 */
export function remoteDeviceEventOf(m: Record<string, unknown>): RemoteDeviceEvent | null {
  if (typeof m.from !== 'string' || typeof m.deviceKey !== 'string') return null;
  if (m.inform !== undefined) {
    const inform = m.inform;
    if (!isObj(inform) || !Array.isArray(inform.event) || inform.event.length > 64) return null;
    const event: EventStruct[] = [];
    for (const e of inform.event) {
      const ev = eventOf(e);
      if (!ev) return null;
      event.push(ev);
    }
    return { from: m.from, deviceKey: m.deviceKey, inform: { event, parameterList: [] } };
  }
  const transferComplete = transferCompleteOf(m.transferComplete);
  return transferComplete ? { from: m.from, deviceKey: m.deviceKey, transferComplete } : null;
}

export class ClusterSessionEngine extends SessionEngine {
  /** The sessions this instance serves (forward.ts asks which). */
  readonly sessions: RedisSessionState;

  constructor(
    cstore: ClusterStore,
    connReq: ConnectionRequestPort,
    opts: SessionEngineOptions,
    log: Logger,
    bus: ClusterBus,
    readonly instanceId: string,
  ) {
    const sessions = new RedisSessionState(cstore, bus, instanceId, opts.sessionTimeoutMs, opts.holdRequests);
    super(cstore, connReq, opts, log, sessions);
    this.sessions = sessions;
    const channel = cstore.key('ch', 'dev');
    this.on('inform', ({ device, inform }) => {
      if (!inform.event.some((e) => !QUIET_EVENTS.has(e.eventCode))) return;
      const m: RemoteDeviceEvent = { from: instanceId, deviceKey: device.deviceKey, inform: { event: inform.event, parameterList: [] } };
      bus.publish(channel, m);
    });
    this.on('transferComplete', ({ device, message }) => {
      const m: RemoteDeviceEvent = { from: instanceId, deviceKey: device.deviceKey, transferComplete: message };
      bus.publish(channel, m);
    });
  }

  /** In session anywhere in the cluster (asks Redis). */
  async inSession(deviceKey: string): Promise<boolean> {
    return (await this.deviceState(deviceKey)).inSession;
  }
}
