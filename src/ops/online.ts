/**
 * Whether a device is online, as the admin API and the status page say it: from its last Inform
 * and the outcome of the last connection request sent to it (docs/operating.md "Device console").
 * A CPE that Informs periodically but cannot be woken is not "online" for an operator: what a
 * controller asks of it waits for its next periodic session (TR-069 3.2.2).
 */

export type OnlineState = 'online' | 'unreachable' | 'offline';

export interface ConnReqOutcome {
  ok: boolean;
  /** When the request ended (ms since the epoch). */
  atMs: number;
  /** Why it failed (reason: detail), for the page. */
  detail?: string;
}

export interface OnlineInput {
  lastInformMs: number | null;
  /** The device's PeriodicInformInterval (s), when known. */
  periodicInformIntervalS: number | null;
  /** acs.onlineWindowS: how long after its last Inform a device without a known interval is online. */
  onlineWindowS: number;
  /** The last connection request's outcome, if one was sent since the proxy started. */
  lastConnReq: ConnReqOutcome | null;
  now: number;
}

/** How long after its last Inform a device counts as online: two periodic intervals (at least 60 s), else the configured window. */
export function onlineWindowMs(periodicS: number | null, onlineWindowS: number): number {
  return (periodicS && periodicS > 0 ? Math.max(2 * periodicS, 60) : onlineWindowS) * 1000;
}

/**
 * online: informed within its window, and the last connection request (if any since) succeeded;
 * unreachable: informed within its window but a connection request sent after that Inform failed
 * (a session it opened later clears this: the failure is older than the Inform);
 * offline: never informed or silent beyond its window.
 */
export function onlineState(i: OnlineInput): OnlineState {
  if (i.lastInformMs === null || i.now - i.lastInformMs >= onlineWindowMs(i.periodicInformIntervalS, i.onlineWindowS)) return 'offline';
  if (i.lastConnReq && !i.lastConnReq.ok && i.lastConnReq.atMs >= i.lastInformMs) return 'unreachable';
  return 'online';
}

/** The last connection-request outcome per device, bounded (least recently noted dropped first). */
export class ConnReqOutcomes {
  private readonly last = new Map<string, ConnReqOutcome>();

  constructor(private readonly maxDevices = 100_000) {}

  note(deviceKey: string, outcome: ConnReqOutcome): void {
    this.last.delete(deviceKey);
    this.last.set(deviceKey, outcome);
    if (this.last.size > this.maxDevices) this.last.delete(this.last.keys().next().value as string);
  }

  get(deviceKey: string): ConnReqOutcome | null {
    return this.last.get(deviceKey) ?? null;
  }

  get size(): number {
    return this.last.size;
  }
}
