/**
 * When each device's next periodic Inform is expected (TR-069 3.2: the CPE opens a session every
 * PeriodicInformInterval), learned from the Informs the proxy sees: the time of the last
 * "2 PERIODIC" and the interval, from the Inform's own ManagementServer.PeriodicInformInterval when
 * it carries one, else the gap between two periodic Informs, or the value the proxy set itself
 * (bulkdata.alignPeriodicInform). Bounded: the most recently informed `maxDevices` devices, in a
 * Map kept in the order of their last Inform (lru-cache preallocates its slots: 28 MiB for
 * 1,000,000 devices whatever the fleet; a Map costs only the devices seen).
 */

interface Seen {
  /** ms since epoch of the last periodic Inform (or of the SPV that re-armed the CPE's timer). */
  last: number;
  /** ms; 0 = not known yet. */
  intervalMs: number;
}

export interface InformSeen {
  events: readonly string[];
  parameters: readonly { name: string; value: string }[];
  at: number;
}

export class PeriodicInforms {
  private readonly seen = new Map<string, Seen>();

  constructor(private readonly maxDevices = 1_000_000) {}

  private set(agentEid: string, s: Seen): void {
    // Re-inserted: the Map's order is the order of the last Inform, the oldest first.
    this.seen.delete(agentEid);
    this.seen.set(agentEid, s);
    if (this.seen.size > this.maxDevices) this.seen.delete(this.seen.keys().next().value!);
  }

  /** An Inform of this agent's device. */
  inform(agentEid: string, i: InformSeen): void {
    const prev = this.seen.get(agentEid);
    const reported = i.parameters.find((p) => p.name.endsWith('.ManagementServer.PeriodicInformInterval'));
    let intervalMs = reported && Number(reported.value) > 0 ? Number(reported.value) * 1000 : (prev?.intervalMs ?? 0);
    if (!i.events.includes('2 PERIODIC')) {
      if (reported && prev) prev.intervalMs = intervalMs;
      return;
    }
    // The gap between two periodic Informs is the interval, unless one was missed (a multiple of a known one).
    if (!reported && prev && i.at > prev.last) {
      // PeriodicInformInterval is whole seconds (TR-069 ManagementServer): the gap, rounded.
      const gap = Math.max(1000, Math.round((i.at - prev.last) / 1000) * 1000);
      if (intervalMs === 0 || gap < intervalMs * 0.9) intervalMs = gap;
    }
    this.set(agentEid, { last: i.at, intervalMs });
  }

  /** The proxy set PeriodicInformInterval (and so re-armed the CPE's timer) at `at`. */
  aligned(agentEid: string, intervalS: number, at: number): void {
    this.set(agentEid, { last: at, intervalMs: intervalS * 1000 });
  }

  /** The interval known for the device (ms), or 0. */
  intervalMs(agentEid: string): number {
    return this.seen.get(agentEid)?.intervalMs ?? 0;
  }

  /** The first periodic Inform expected at or after `now` (ms since epoch), or null when not known. */
  next(agentEid: string, now: number): number | null {
    const s = this.seen.get(agentEid);
    if (!s || s.intervalMs <= 0) return null;
    if (s.last >= now) return s.last;
    return s.last + Math.ceil((now - s.last) / s.intervalMs) * s.intervalMs;
  }

  forget(agentEid: string): void {
    this.seen.delete(agentEid);
  }
}
