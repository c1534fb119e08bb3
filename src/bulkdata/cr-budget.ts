/**
 * The fleet-wide budget of connection requests Bulk Data collections may cause
 * (bulkdata.connectionRequestsPerSecond): grants are spaced 1/rate apart, so a fleet whose
 * profiles fall due together wakes its devices at a bounded pace (TR-069 3.2.2 asks an ACS to
 * bound the connection requests it sends). A caller that would not get a grant before its
 * deadline gets false at once, and its collection is reported missed.
 */
export class ConnectionRequestBudget {
  private nextAt = 0;
  private readonly spacingMs: number;

  constructor(
    perSecond: number,
    private readonly now: () => number = Date.now,
  ) {
    this.spacingMs = 1000 / Math.max(perSecond, 1e-6);
  }

  /** Resolves true at the caller's turn, or false at once if that turn would come after `deadlineAt`. */
  async take(deadlineAt: number): Promise<boolean> {
    const now = this.now();
    const at = Math.max(now, this.nextAt);
    if (at > deadlineAt) return false;
    this.nextAt = at + this.spacingMs;
    if (at > now) await new Promise((r) => setTimeout(r, at - now).unref?.());
    return true;
  }
}
