/**
 * Retained failed reports (TR-181 Profile.{i}.NumberOfRetainedFailedReports; the extension's
 * "Use of the Retained Failed Reports"): the HTTP reports a collector did not accept, per profile,
 * oldest first, sent ahead of the next report. Kept in memory and, when a port is given, in the
 * store per agent so that they survive a restart; what is stored is bounded in bytes per agent
 * (the oldest reports are dropped first).
 */
import type { Report } from './encode.js';

export interface RetainedPort {
  load(agentEid: string): Promise<string | null>;
  /** null: nothing retained any more for the agent. */
  save(agentEid: string, json: string | null): Promise<void>;
}

export interface RetainedLog {
  warn(o: object, msg: string): void;
}

/** Stored bytes per agent at most (JSON); beyond, the oldest reports are not stored. */
export const MAX_STORED_BYTES = 1 << 20;

export class RetainedReports {
  /** "agent|instance" -> reports, oldest first. */
  private readonly byProfile = new Map<string, Report[]>();
  /** One write per agent at a time, the latest state last. */
  private readonly writing = new Map<string, Promise<void>>();

  constructor(
    private readonly port?: RetainedPort,
    private readonly log?: RetainedLog,
    private readonly maxBytes = MAX_STORED_BYTES,
  ) {}

  get(agentEid: string, instance: number): Report[] {
    return this.byProfile.get(`${agentEid}|${instance}`) ?? [];
  }

  set(agentEid: string, instance: number, reports: Report[]): void {
    const key = `${agentEid}|${instance}`;
    if (reports.length === 0) {
      if (!this.byProfile.delete(key)) return;
    } else this.byProfile.set(key, reports);
    this.persist(agentEid);
  }

  delete(agentEid: string, instance: number): void {
    this.set(agentEid, instance, []);
  }

  /** Reads the stored reports of these agents (decoded defensively: a bad document is dropped with a log line). */
  async load(agentEids: readonly string[]): Promise<void> {
    if (!this.port) return;
    for (const eid of agentEids) {
      let raw: string | null;
      try {
        raw = await this.port.load(eid);
      } catch (e) {
        this.log?.warn({ agent: eid, err: (e as Error).message }, 'retained bulk data reports could not be read');
        continue;
      }
      if (!raw) continue;
      try {
        const doc = JSON.parse(raw) as Record<string, unknown>;
        for (const [instance, list] of Object.entries(doc)) {
          if (!/^\d+$/.test(instance) || !Array.isArray(list)) continue;
          const reports = list.filter(isReport);
          if (reports.length) this.byProfile.set(`${eid}|${instance}`, reports);
        }
      } catch (e) {
        this.log?.warn({ agent: eid, err: (e as Error).message }, 'retained bulk data reports are not JSON; dropped');
      }
    }
  }

  /** Resolves when the writes under way are done (tests, shutdown). */
  async flushed(): Promise<void> {
    await Promise.all([...this.writing.values()]);
  }

  private persist(agentEid: string): void {
    if (!this.port) return;
    const prev = this.writing.get(agentEid) ?? Promise.resolve();
    const next = prev.then(async () => {
      try {
        await this.port!.save(agentEid, this.document(agentEid));
      } catch (e) {
        this.log?.warn({ agent: agentEid, err: (e as Error).message }, 'retained bulk data reports could not be stored');
      }
    });
    this.writing.set(agentEid, next);
    void next.then(() => {
      if (this.writing.get(agentEid) === next) this.writing.delete(agentEid);
    });
  }

  /** The agent's reports as stored now: newest kept first when over maxBytes. */
  private document(agentEid: string): string | null {
    const prefix = `${agentEid}|`;
    const lists: [string, Report[]][] = [];
    for (const [k, v] of this.byProfile) if (k.startsWith(prefix)) lists.push([k.slice(prefix.length), v]);
    if (lists.length === 0) return null;
    const doc: Record<string, Report[]> = {};
    let bytes = 2;
    // Newest first, across profiles, until the budget is spent.
    const all = lists.flatMap(([instance, list]) => list.map((r, i) => ({ instance, r, age: list.length - i })));
    all.sort((a, b) => a.age - b.age);
    for (const { instance, r } of all) {
      const size = JSON.stringify(r).length + instance.length + 8;
      if (bytes + size > this.maxBytes) break;
      bytes += size;
      (doc[instance] ??= []).unshift(r);
    }
    return JSON.stringify(doc);
  }
}

function isReport(x: unknown): x is Report {
  const r = x as Report;
  return (
    typeof r === 'object' &&
    r !== null &&
    typeof r.collectedAt === 'number' &&
    Array.isArray(r.values) &&
    r.values.every((v) => typeof v?.name === 'string' && typeof v.value === 'string' && typeof v.type === 'string')
  );
}
