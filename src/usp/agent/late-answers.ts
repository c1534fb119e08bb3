/**
 * Answers that could not be delivered because their controller had gone (its WebSocket closed,
 * its broker connection dropped) while the request was served: kept for that controller and sent
 * when it reconnects, so that it learns the outcome of a Set/Add/Delete/Operate it made (TR-369
 * R-MTP.3 leaves retransmission to the MTP; the agent keeps what it owes). Bounded like pending
 * Notify messages: by count per agent and controller, by total count and bytes, and by age; the
 * oldest go first. In memory only: a restart loses them (the controller's request timed out anyway).
 */

export interface LateAnswerLimits {
  /** Per agent and controller. */
  maxPerPeer: number;
  maxTotal: number;
  maxBytes: number;
  maxAgeMs: number;
}

export const DEFAULT_LATE_ANSWER_LIMITS: LateAnswerLimits = { maxPerPeer: 32, maxTotal: 10_000, maxBytes: 16 * 1024 * 1024, maxAgeMs: 10 * 60_000 };

export interface LateAnswer {
  agentEid: string;
  controllerEid: string;
  msgId: string;
  msgType: string;
  /** The encoded Record, sent as is. */
  bytes: Uint8Array;
  at: number;
}

export class LateAnswers {
  /** Insertion order = age order, per "agent|controller". */
  private readonly byPeer = new Map<string, LateAnswer[]>();
  private count = 0;
  private bytes = 0;

  constructor(
    private readonly limits: LateAnswerLimits = DEFAULT_LATE_ANSWER_LIMITS,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.count;
  }

  /** Keeps an answer (`at`: when it was first kept, for one kept again); false when it is too big to keep at all. */
  keep(a: Omit<LateAnswer, 'at'> & { at?: number }): boolean {
    if (a.bytes.length > this.limits.maxBytes || this.limits.maxPerPeer <= 0) return false;
    const key = `${a.agentEid}|${a.controllerEid}`;
    let list = this.byPeer.get(key);
    if (!list) this.byPeer.set(key, (list = []));
    list.push({ ...a, at: a.at ?? this.now() });
    this.count++;
    this.bytes += a.bytes.length;
    if (list.length > this.limits.maxPerPeer) this.remove(key, 1);
    while (this.count > this.limits.maxTotal || this.bytes > this.limits.maxBytes) this.dropOldest();
    return true;
  }

  /** The answers still owed to a controller by an agent (none older than maxAgeMs), oldest first; they are forgotten. */
  take(agentEid: string, controllerEid: string): LateAnswer[] {
    const key = `${agentEid}|${controllerEid}`;
    const list = [...(this.byPeer.get(key) ?? [])];
    this.remove(key, list.length);
    const fresh = this.now() - this.limits.maxAgeMs;
    return list.filter((a) => a.at >= fresh);
  }

  /** The agents that owe this controller answers. */
  agentsOwing(controllerEid: string): string[] {
    const out: string[] = [];
    for (const list of this.byPeer.values()) if (list[0]?.controllerEid === controllerEid) out.push(list[0].agentEid);
    return out;
  }

  /** Drops expired answers (called now and then; take() never returns them either). */
  sweep(): void {
    const fresh = this.now() - this.limits.maxAgeMs;
    for (const [key, list] of [...this.byPeer]) {
      let n = 0;
      while (n < list.length && list[n]!.at < fresh) n++;
      if (n) this.remove(key, n);
    }
  }

  private remove(key: string, n: number): void {
    const list = this.byPeer.get(key);
    if (!list) return;
    for (const a of list.splice(0, n)) {
      this.count--;
      this.bytes -= a.bytes.length;
    }
    if (list.length === 0) this.byPeer.delete(key);
  }

  private dropOldest(): void {
    let oldest: string | null = null;
    let at = Infinity;
    for (const [key, list] of this.byPeer) if (list[0] && list[0].at < at) (at = list[0].at), (oldest = key);
    if (oldest === null) return;
    this.remove(oldest, 1);
  }
}
