/**
 * Polls of ValueChange subscriptions the CPE does not serve: one timer per device, never two
 * polls of a device at once, and a fleet-wide budget of polled parameters (devices x parameters),
 * since every poll is a connection request and a CWMP session. No I/O of its own: a tick calls
 * back into the ValueWatch, which reads the device.
 */

interface Poll {
  names: number;
  intervalMs: number;
  timer: NodeJS.Timeout | null;
  running: boolean;
}

export class PollScheduler {
  private readonly polls = new Map<string, Poll>();
  private total = 0;
  private closed = false;

  constructor(
    /** interworking.valueChangePoll.maxParameters */
    private readonly maxParameters: number,
    /** One poll of the device (by Endpoint ID); the next is armed when it settles. */
    private readonly tick: (agentEid: string) => Promise<void>,
  ) {}

  /** Parameters polled now, summed over devices. */
  get used(): number {
    return this.total;
  }

  /**
   * The device polls `names` parameters every `intervalMs`: true when that fits the budget (the
   * device's own previous share counted out). When it does not, the device is not polled at all.
   */
  grant(agentEid: string, names: number, intervalMs: number): boolean {
    const cur = this.polls.get(agentEid);
    if (this.closed || this.total - (cur?.names ?? 0) + names > this.maxParameters) {
      this.release(agentEid);
      return false;
    }
    if (cur) {
      this.total += names - cur.names;
      cur.names = names;
      if (cur.intervalMs !== intervalMs) {
        cur.intervalMs = intervalMs;
        if (!cur.running) this.arm(agentEid, cur);
      } else if (!cur.timer && !cur.running) this.arm(agentEid, cur);
      return true;
    }
    const p: Poll = { names, intervalMs, timer: null, running: false };
    this.polls.set(agentEid, p);
    this.total += names;
    this.arm(agentEid, p);
    return true;
  }

  /** The device is not polled any more. */
  release(agentEid: string): void {
    const p = this.polls.get(agentEid);
    if (!p) return;
    if (p.timer) clearTimeout(p.timer);
    this.polls.delete(agentEid);
    this.total -= p.names;
  }

  close(): void {
    this.closed = true;
    for (const p of this.polls.values()) if (p.timer) clearTimeout(p.timer);
    this.polls.clear();
    this.total = 0;
  }

  private arm(agentEid: string, p: Poll): void {
    if (p.timer) clearTimeout(p.timer);
    // The proxy's listeners keep the process alive; a pending poll alone need not.
    p.timer = setTimeout(() => {
      p.timer = null;
      p.running = true;
      void this.tick(agentEid)
        .catch(() => undefined)
        .finally(() => {
          p.running = false;
          if (this.polls.get(agentEid) === p && !p.timer && !this.closed) this.arm(agentEid, p);
        });
    }, p.intervalMs);
    p.timer.unref();
  }
}
