/**
 * The translation trace (docs/operating.md "Translation trace"): for the last N USP requests to
 * each agent, what was asked (message type, paths, from_id), the CWMP RPCs it caused (method,
 * names count, timing, cwmp Fault code or delivery failure) and how it was answered (outcome and
 * USP error codes). No values at all, in either direction: a Set or Add may carry a secured
 * parameter and a fault string may echo one (TR-181 "secured" parameters; docs/security.md).
 *
 * Fed by two hooks: the RPC port of the interworking layer (each enqueue made inside a request
 * scope, src/usp/request-scope.ts, is attributed to that request) and the endpoint's `request`
 * event when the request was answered. Memory is bounded: a ring of `perAgent` entries per agent,
 * `maxAgents` agents (least recently traced dropped first), `maxRpcs` RPCs named per request.
 */
import { type RequestLogFields, requestLogFields, visitErrCodes } from '../usp/agent/request-log.js';
import type { Msg } from '../usp/codec/record.js';

export interface TraceRpc {
  method: string;
  /** Parameter names (or structs) the RPC carried; never the names' values. */
  names: number;
  startedAt: string;
  /** Queued to settled; null while running. */
  ms: number | null;
  status: 'running' | 'ok' | 'fault' | 'failed';
  /** The CPE's cwmp Fault code (TR-069 A.5); the fault string is not kept (it may echo a value). */
  fault?: number;
  /** Why the RPC could not be carried out (RpcError reason: unreachable, session-timeout, ...). */
  error?: string;
}

export interface TraceEntry {
  time: string;
  fromId: string;
  msgType: string;
  msgId: string;
  /** At most 8 paths, each cut at 256 characters; pathCount says how many there were. */
  paths: string[];
  pathCount: number;
  /** ok | error <code> | partial (<n> errors) */
  outcome: string;
  /** The USP error codes of the answer (the Error Msg's, then each err_code), at most 16. */
  errCodes: number[];
  ms: number;
  rpcs: TraceRpc[];
  /** RPCs caused beyond maxRpcs (counted, not listed). */
  rpcsNotListed: number;
}

export interface TraceOptions {
  /** Entries kept per agent (newest kept). */
  perAgent: number;
  /** Agents traced at once (least recently traced dropped first). */
  maxAgents: number;
  /** RPCs listed per request. */
  maxRpcs: number;
}

export const DEFAULT_TRACE_OPTIONS: TraceOptions = { perAgent: 50, maxAgents: 1000, maxRpcs: 64 };

const MAX_ERR_CODES = 16;

/** The answered request, as the endpoint reports it. */
export interface TracedRequest {
  /** The request scope it was served in: the key its RPCs were noted under. */
  scope: object;
  fromId: string;
  toId: string;
  msg: Msg;
  resp: Msg;
  ms: number;
  /** The request's summary when the endpoint made it already (its info line). */
  fields?: RequestLogFields;
}

/**
 * An entry as kept: its time as a number, formatted when read (one entry per answered request is
 * kept for a while, so it is kept small: empty lists are shared, nothing is copied that need not be).
 */
export type StoredTraceEntry = Omit<TraceEntry, 'time'> & { readonly at: number };

/**
 * An entry that caused no CWMP RPC (an agent's own parameters, a refusal), kept as one JSON string
 * of its fields in Packed order: nothing in it changes later. With many agents an entry outlives
 * the young generation (50 per agent, 1,000 agents: seconds), and a flat string is one object
 * without pointers for the collector to promote and mark instead of five or more (bench:usp,
 * 1,000 agents: the object form cost about 15 us of CPU per Get, docs/benchmarks.md).
 */
type Packed = [at: number, fromId: string, msgType: string, msgId: string, paths: string[], pathCount: number, outcome: string, errCodes: number[], ms: number];

function unpack(json: string): StoredTraceEntry {
  const [at, fromId, msgType, msgId, paths, pathCount, outcome, errCodes, ms] = JSON.parse(json) as Packed;
  return { at, fromId, msgType, msgId, paths, pathCount, outcome, errCodes, ms, rpcs: NONE, rpcsNotListed: 0 };
}

/** An agent's entries: in order until full, then a ring whose oldest entry is at `next`. */
interface Ring {
  entries: Array<StoredTraceEntry | string>;
  next: number;
  /** Traced since the bound last passed over it (second chance, see add()). */
  used: boolean;
}

/** Shared by every entry without RPCs or error codes (never mutated: RPCs are noted in a fresh list). */
const NONE: never[] = [];
Object.freeze(NONE);

interface RpcNote {
  rpcs: TraceRpc[];
  notListed: number;
}

/** USP error codes in an answer: the Error Msg's code and its param_errs, or every non-zero err_code of a response (bounded walk). */
export function errCodesOf(resp: Msg): number[] {
  let out: number[] = NONE;
  const keep = (code: number): void => {
    if (out === NONE) out = [];
    if (out.length < MAX_ERR_CODES) out.push(code);
  };
  if (resp.body.msgBody === 'error' && resp.body.error?.errCode) keep(resp.body.error.errCode);
  visitErrCodes(resp.body.response, keep);
  visitErrCodes(resp.body.error?.paramErrs, keep);
  return out;
}

export class TranslationTrace {
  private readonly opts: TraceOptions;
  /** Agent Endpoint ID -> its entries; Map order: first traced first, a second chance moves to the end. */
  private readonly rings = new Map<string, Ring>();
  /** RPCs noted per request scope until the request is answered (a scope never answered is collected with it). */
  private readonly pending = new WeakMap<object, RpcNote>();

  constructor(opts: Partial<TraceOptions> = {}) {
    this.opts = { ...DEFAULT_TRACE_OPTIONS, ...opts };
    if (this.opts.perAgent < 1 || this.opts.maxAgents < 1) throw new Error('trace: perAgent and maxAgents must be at least 1');
  }

  /**
   * Runs one RPC enqueue and notes it under `scope` (the request it is made for; undefined: none,
   * e.g. shared learning or an event, and it is run untraced). Returns run()'s promise unchanged.
   */
  rpc<T extends { kind: string; fault?: { faultCode: number } }>(
    scope: object | undefined,
    what: { method: string; names: number },
    run: () => Promise<T>,
  ): Promise<T> {
    if (!scope) return run();
    let note = this.pending.get(scope);
    if (!note) this.pending.set(scope, (note = { rpcs: [], notListed: 0 }));
    if (note.rpcs.length >= this.opts.maxRpcs) {
      note.notListed++;
      return run();
    }
    const started = performance.now();
    const r: TraceRpc = { method: what.method, names: what.names, startedAt: new Date().toISOString(), ms: null, status: 'running' };
    note.rpcs.push(r);
    const p = run();
    p.then(
      (o) => {
        r.ms = Math.round(performance.now() - started);
        if (o.kind === 'fault') {
          r.status = 'fault';
          if (o.fault) r.fault = o.fault.faultCode;
        } else r.status = 'ok';
      },
      (e: unknown) => {
        r.ms = Math.round(performance.now() - started);
        r.status = 'failed';
        r.error = String((e as { reason?: unknown })?.reason ?? (e as Error)?.message ?? e).slice(0, 200);
      },
    );
    return p;
  }

  /** An answered USP request (the endpoint's `request` event); returns its entry. */
  request(e: TracedRequest): StoredTraceEntry {
    const f = e.fields ?? requestLogFields(e.fromId, e.toId, e.msg, e.resp, e.ms);
    return this.add(e.toId, e.scope, {
      fromId: f.controller.slice(0, 256),
      msgType: f.msgType,
      msgId: f.msgId,
      paths: f.paths,
      pathCount: f.pathCount,
      outcome: f.outcome,
      // 'ok' is an answer without any err_code (requestLogFields walked it): nothing to walk again.
      errCodes: f.outcome === 'ok' ? NONE : errCodesOf(e.resp),
      ms: f.ms,
    });
  }

  /** An entry not made from a USP Msg (the console's own work): same shape, same bounds; onlyWithRpcs: kept only if it caused CWMP RPCs. */
  add(
    agentEid: string,
    scope: object | undefined,
    e: Omit<TraceEntry, 'time' | 'rpcs' | 'rpcsNotListed'>,
    opts: { onlyWithRpcs: true },
  ): StoredTraceEntry | null;
  add(agentEid: string, scope: object | undefined, e: Omit<TraceEntry, 'time' | 'rpcs' | 'rpcsNotListed'>): StoredTraceEntry;
  add(
    agentEid: string,
    scope: object | undefined,
    e: Omit<TraceEntry, 'time' | 'rpcs' | 'rpcsNotListed'>,
    opts: { onlyWithRpcs?: boolean } = {},
  ): StoredTraceEntry | null {
    const note = scope ? this.pending.get(scope) : undefined;
    if (note) this.pending.delete(scope!);
    if (opts.onlyWithRpcs && !note) return null;
    const entry: StoredTraceEntry = {
      at: Date.now(),
      fromId: e.fromId,
      msgType: e.msgType,
      msgId: e.msgId,
      paths: e.paths.length <= 8 && e.paths.every((p) => p.length <= 256) ? e.paths : e.paths.slice(0, 8).map((p) => p.slice(0, 256)),
      pathCount: e.pathCount,
      outcome: e.outcome,
      errCodes: e.errCodes.length <= MAX_ERR_CODES ? e.errCodes : e.errCodes.slice(0, MAX_ERR_CODES),
      ms: e.ms,
      rpcs: note?.rpcs ?? NONE,
      rpcsNotListed: note?.notListed ?? 0,
    };
    let ring = this.rings.get(agentEid);
    // Marked, not moved (a Map delete + insert per request was measurable on the Get path): past
    // maxAgents, the oldest ring goes unless it was traced since (or is this new one), then it moves
    // to the end unmarked.
    if (ring) ring.used = true;
    else {
      ring = { entries: [], next: 0, used: false };
      this.rings.set(agentEid, ring);
      while (this.rings.size > this.opts.maxAgents) {
        const [eid, r] = this.rings.entries().next().value as [string, Ring];
        this.rings.delete(eid);
        if (r.used || r === ring) {
          r.used = false;
          this.rings.set(eid, r);
        }
      }
    }
    const kept =
      entry.rpcs === NONE
        ? JSON.stringify([
            entry.at,
            entry.fromId,
            entry.msgType,
            entry.msgId,
            entry.paths,
            entry.pathCount,
            entry.outcome,
            entry.errCodes,
            entry.ms,
          ] satisfies Packed)
        : entry;
    // Full: the oldest slot is overwritten (no array shifting per request).
    if (ring.entries.length < this.opts.perAgent) ring.entries.push(kept);
    else {
      ring.entries[ring.next] = kept;
      ring.next = (ring.next + 1) % ring.entries.length;
    }
    return entry;
  }

  /** The agent's entries, newest first (copies: RPCs still running show as such). */
  forAgent(agentEid: string): TraceEntry[] {
    const ring = this.rings.get(agentEid);
    if (!ring) return [];
    const oldestFirst = [...ring.entries.slice(ring.next), ...ring.entries.slice(0, ring.next)].map((e) => (typeof e === 'string' ? unpack(e) : e));
    return oldestFirst.map(({ at, ...x }) => ({ time: new Date(at).toISOString(), ...x, rpcs: x.rpcs.map((r) => ({ ...r })) })).reverse();
  }

  /** A failed or partly failed request in one line for the status page's recent errors (no values). */
  static summary(agentEid: string, e: Omit<TraceEntry, 'time'>): string {
    const paths = e.paths.length ? ` ${e.paths[0]}${e.pathCount > 1 ? ` (+${e.pathCount - 1})` : ''}` : '';
    const rpcs = e.rpcs
      .filter((r) => r.status === 'fault' || r.status === 'failed')
      .map((r) => (r.status === 'fault' ? `${r.method} cwmp Fault ${r.fault ?? '?'}` : `${r.method} ${r.error ?? 'failed'}`));
    return `${e.msgType}${paths} to ${agentEid}: ${e.outcome}${rpcs.length ? ` (${rpcs.slice(0, 3).join(', ')})` : ''}`;
  }

  /** Forgets an agent (its device was deleted). */
  forget(agentEid: string): void {
    this.rings.delete(agentEid);
  }

  get agents(): number {
    return this.rings.size;
  }
}
