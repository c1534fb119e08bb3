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
import type { AutonomousTransferComplete, Inform, TransferComplete } from '../cwmp/types.js';
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

export class ClusterSessionEngine extends SessionEngine {
  constructor(
    cstore: ClusterStore,
    connReq: ConnectionRequestPort,
    opts: SessionEngineOptions,
    log: Logger,
    bus: ClusterBus,
    readonly instanceId: string,
  ) {
    super(cstore, connReq, opts, log, new RedisSessionState(cstore, bus, instanceId, opts.sessionTimeoutMs, opts.holdRequests));
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
