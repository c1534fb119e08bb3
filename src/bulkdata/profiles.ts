/**
 * Device.BulkData. of every agent as one data-model backend served by the proxy (TR-181
 * BulkData): Profile rows the controllers create, validated as the data model says, kept in the
 * store (one document per agent, learned kind 'bulkdata') so that they survive a restart.
 */
import { EventEmitter } from 'node:events';
import type { Config } from '../app/config.js';
import type { Store } from '../store/types.js';
import { type AgentTree, type ChangeEvent, MemoryModel, type Row } from '../usp/dm/memory.js';
import type { ParamError, ParamSetting, RequestContext } from '../usp/dm/types.js';
import { BULKDATA_PREFIXES, BULKDATA_SCHEMA, PROFILE_SCHEMA, PROFILE_TABLE } from './schema.js';
import type { Coordination } from '../usp/agent/coordination.js';

const PARAMETER_SCHEMA = 'Device.BulkData.Profile.{i}.Parameter.{i}.';
const HTTP_SCHEMA = 'Device.BulkData.Profile.{i}.HTTP.';

/** The stored form of an agent's tree. */
interface StoredTree {
  tables: Record<string, { next: number; rows: Record<string, Row> }>;
  objects: Record<string, Row>;
}

export interface BulkDataEvents {
  /** A Device.BulkData. row changed (the scheduler re-arms the agent's profiles). */
  change: [ChangeEvent];
  /** Another instance changed the agent's rows: they were read again (no change events). */
  reloaded: [{ agentEid: string }];
  /** Profile.{i}.ForceCollection() was called. */
  forceCollection: [{ agentEid: string; instance: number }];
}

/** A profile as the scheduler needs it. */
export interface ProfileView {
  instance: number;
  path: string;
  values: Row;
  parameters: { name: string; reference: string }[];
  json: Row;
  csv: Row;
  http: Row;
  /** HTTP.RequestURIParameter.{i}: URI query parameters whose values are read at each delivery. */
  uriParameters: { name: string; reference: string }[];
}

export type BulkDataLimits = Pick<Config['bulkData'], 'minReportingIntervalS' | 'maxProfiles' | 'maxParameterReferences'>;

export class BulkData extends EventEmitter<BulkDataEvents> {
  readonly model: MemoryModel;
  private readonly restored = new Map<string, StoredTree>();
  /** Agents whose rows changed since their document was last written. */
  private readonly dirty = new Set<string>();
  private readonly writing = new Set<Promise<void>>();

  constructor(
    private readonly limits: BulkDataLimits,
    private readonly store: Store,
    private readonly log: { warn(o: object, msg: string): void } = { warn: () => undefined },
    /** Several instances on one store (src/cluster/): instance numbers and changed rows are shared. */
    private readonly coordination?: Coordination,
    /** Why an HTTP.URL is refused at Set time (http-delivery.ts collectorUrlProblem), or null. */
    private readonly urlProblem: (url: string) => string | null = () => null,
  ) {
    super();
    coordination?.on('rowsChanged', ({ agentEid }) => void this.reload(agentEid));
    this.model = new MemoryModel(BULKDATA_PREFIXES, BULKDATA_SCHEMA, {
      seed: (eid, tree) => this.seed(eid, tree),
      computed: (eid, objectPath, schemaPath, param) => this.computed(eid, objectPath, schemaPath, param),
      validate: (ctx, schemaPath, values, before, settings) => this.validate(ctx, schemaPath, values, before, settings),
      prepareAdd: (_ctx, schemaPath, tablePath, values, tree) => {
        if (schemaPath === PROFILE_SCHEMA && !values.Alias) values.Alias = `cpe-${tree.tables.get(tablePath)?.next ?? 1}`;
      },
      changed: (e) => this.changed(e),
      allocate: (eid, tablePath, next) => this.coordination?.allocateInstance(eid, tablePath, next),
      operate: async (ctx, commandPath) => {
        const m = /^Device\.BulkData\.Profile\.(\d+)\.ForceCollection\(\)$/.exec(commandPath);
        if (!m) return { kind: 'error', errCode: 7026, errMsg: `unsupported command ${commandPath}` };
        this.emit('forceCollection', { agentEid: ctx.agentEid, instance: Number(m[1]) });
        return { kind: 'sync', output: {} };
      },
    });
  }

  /** Reads the stored rows of these agents; returns the agents that have profiles. */
  async restore(agentEids: readonly string[]): Promise<string[]> {
    const out: string[] = [];
    for (const eid of agentEids) {
      let raw: string | null = null;
      try {
        raw = await this.store.getLearned('bulkdata', eid);
      } catch (e) {
        this.log.warn({ agent: eid, err: (e as Error).message }, 'bulk data profiles could not be read from the store');
      }
      if (!raw) continue;
      try {
        this.restored.set(eid, JSON.parse(raw) as StoredTree);
        this.model.forget(eid);
        out.push(eid);
      } catch {
        this.log.warn({ agent: eid }, 'stored bulk data profiles are not JSON; ignored');
      }
    }
    return out;
  }

  /** Another instance changed the agent's rows (or its other stored rows): read them again. */
  private async reload(agentEid: string): Promise<void> {
    let raw: string | null;
    try {
      raw = await this.store.getLearned('bulkdata', agentEid);
    } catch (e) {
      this.log.warn({ agent: agentEid, err: (e as Error).message }, 'bulk data profiles could not be read again from the store');
      return;
    }
    let doc: StoredTree = { tables: {}, objects: {} };
    try {
      if (raw) doc = JSON.parse(raw) as StoredTree;
    } catch {
      this.log.warn({ agent: agentEid }, 'stored bulk data profiles are not JSON; ignored');
    }
    this.restored.set(agentEid, doc);
    this.model.forget(agentEid);
    this.emit('reloaded', { agentEid });
  }

  /** The agent's profiles, with their parameters and encoding/HTTP settings. */
  profiles(agentEid: string): ProfileView[] {
    const out: ProfileView[] = [];
    for (const n of [...this.model.rows(agentEid, PROFILE_TABLE).keys()].sort((a, b) => a - b)) {
      const path = `${PROFILE_TABLE}${n}.`;
      const values = this.model.objectValues(agentEid, path);
      if (!values) continue;
      const parameters = [...this.model.rows(agentEid, `${path}Parameter.`)]
        .sort(([a], [b]) => a - b)
        .map(([, r]) => ({ name: r.Name ?? '', reference: r.Reference ?? '', exclude: r.Exclude === 'true' }))
        .filter((p) => p.reference !== '' && !p.exclude)
        .map(({ name, reference }) => ({ name, reference }));
      const http = { ...(this.model.objectValues(agentEid, `${path}HTTP.`) ?? {}) };
      // The secret is read from the stored row: objectValues blanks writeOnly parameters.
      http.Password = this.model.tree(agentEid).objects.get(`${path}HTTP.`)?.Password ?? '';
      out.push({
        instance: n,
        path,
        values,
        parameters,
        json: this.model.objectValues(agentEid, `${path}JSONEncoding.`) ?? {},
        csv: this.model.objectValues(agentEid, `${path}CSVEncoding.`) ?? {},
        http,
        uriParameters: [...this.model.rows(agentEid, `${path}HTTP.RequestURIParameter.`)]
          .sort(([a], [b]) => a - b)
          .map(([, r]) => ({ name: r.Name ?? '', reference: r.Reference ?? '' }))
          .filter((u) => u.name !== '' && u.reference !== ''),
      });
    }
    return out;
  }

  /** The agent's Profile rows alone (what the timers need), without their parameter lists. */
  timers(agentEid: string): { instance: number; values: Row }[] {
    const out: { instance: number; values: Row }[] = [];
    for (const n of this.model.rows(agentEid, PROFILE_TABLE).keys()) {
      const values = this.model.objectValues(agentEid, `${PROFILE_TABLE}${n}.`);
      if (values) out.push({ instance: n, values });
    }
    return out;
  }

  /** Device.BulkData.Enable of the agent. */
  enabled(agentEid: string): boolean {
    return this.model.objectValues(agentEid, 'Device.BulkData.')?.Enable !== 'false';
  }

  private seed(agentEid: string, tree: AgentTree): void {
    const s = this.restored.get(agentEid);
    if (!s) return;
    this.restored.delete(agentEid);
    for (const [path, t] of Object.entries(s.tables ?? {}))
      tree.tables.set(path, { next: t.next, rows: new Map(Object.entries(t.rows).map(([n, r]) => [Number(n), { ...r }])) });
    for (const [path, r] of Object.entries(s.objects ?? {})) tree.objects.set(path, { ...r });
  }

  private computed(agentEid: string, _objectPath: string, schemaPath: string, param: string): string | undefined {
    if (schemaPath === 'Device.BulkData.') {
      switch (param) {
        case 'Status':
          // The stored row, not objectValues (which would compute Status again).
          return this.model.tree(agentEid).objects.get('Device.BulkData.')?.Enable === 'false' ? 'Disabled' : 'Enabled';
        case 'MinReportingInterval':
          return String(this.limits.minReportingIntervalS);
        case 'Protocols':
          return 'HTTP,USPEventNotif';
        case 'EncodingTypes':
          return 'JSON,CSV';
        case 'ParameterWildCardSupported':
          return 'true';
        case 'MaxNumberOfProfiles':
          return String(this.limits.maxProfiles);
        case 'MaxNumberOfParameterReferences':
          return String(this.limits.maxParameterReferences);
      }
    }
    if (schemaPath === 'Device.BulkData.Profile.{i}.HTTP.') {
      if (param === 'CompressionsSupported') return 'GZIP';
      if (param === 'MethodsSupported') return 'POST,PUT';
    }
    return undefined;
  }

  private validate(ctx: RequestContext, schemaPath: string, values: Row, before: Row | null, _settings: readonly ParamSetting[]): ParamError[] {
    const errs: ParamError[] = [];
    if (schemaPath === PROFILE_SCHEMA) {
      if (before === null && this.model.rows(ctx.agentEid, PROFILE_TABLE).size >= this.limits.maxProfiles)
        errs.push({ param: 'Alias', errCode: 7005, errMsg: `Device.BulkData.MaxNumberOfProfiles (${this.limits.maxProfiles}) reached` });
      const interval = Number(values.ReportingInterval);
      // TR-181 Profile.{i}.ReportingInterval: "MUST NOT be less than MinReportingInterval".
      if (interval < this.limits.minReportingIntervalS)
        errs.push({
          param: 'ReportingInterval',
          errCode: 7012,
          errMsg: `ReportingInterval ${interval} is below Device.BulkData.MinReportingInterval (${this.limits.minReportingIntervalS})`,
        });
    }
    if (schemaPath === HTTP_SCHEMA && values.URL !== before?.URL) {
      // The extension: the collector is the controller's choice; the proxy's network is not (same guard as connection requests).
      const problem = this.urlProblem(values.URL ?? '');
      if (problem) errs.push({ param: 'URL', errCode: 7012, errMsg: problem });
    }
    if (schemaPath === PARAMETER_SCHEMA) {
      if (before === null && this.parameterReferences(ctx.agentEid) >= this.limits.maxParameterReferences)
        errs.push({
          param: 'Reference',
          errCode: 7005,
          errMsg: `Device.BulkData.MaxNumberOfParameterReferences (${this.limits.maxParameterReferences}) reached`,
        });
      const ref = values.Reference ?? '';
      if (ref !== '' && !/^Device\.([A-Za-z_][\w-]*|\d+|\*)(\.([A-Za-z_][\w-]*|\d+|\*))*\.?$/.test(ref))
        errs.push({ param: 'Reference', errCode: 7012, errMsg: `Reference "${ref}" is not a parameter, object or wildcard path of Device.` });
    }
    return errs;
  }

  private parameterReferences(agentEid: string): number {
    let n = 0;
    for (const p of this.model.rows(agentEid, PROFILE_TABLE).keys()) n += this.model.rows(agentEid, `${PROFILE_TABLE}${p}.Parameter.`).size;
    return n;
  }

  private changed(e: ChangeEvent): void {
    // One write per agent for all the rows a message changed (an Add of N Parameter rows is one
    // document write, not N growing ones): the write is made once the message's work is done.
    if (!this.dirty.has(e.agentEid)) {
      this.dirty.add(e.agentEid);
      if (this.dirty.size === 1) setImmediate(() => this.writeDirty());
    }
    this.emit('change', e);
  }

  /** Stores the document of every agent changed since the last write. */
  private writeDirty(): void {
    const agents = [...this.dirty];
    this.dirty.clear();
    for (const agentEid of agents) {
      const write = this.write(agentEid);
      const settled = write.catch((err: Error) => this.log.warn({ agent: agentEid, err: err.message }, 'bulk data profiles could not be stored'));
      this.writing.add(settled);
      void settled.finally(() => this.writing.delete(settled));
      // The other instances re-read the agent's rows once stored (Coordination.rowsWritten).
      this.coordination?.rowsWritten(agentEid, write);
    }
  }

  private write(agentEid: string): Promise<void> {
    const tree = this.model.tree(agentEid);
    const doc: StoredTree = { tables: {}, objects: {} };
    for (const [path, t] of tree.tables) doc.tables[path] = { next: t.next, rows: Object.fromEntries(t.rows) };
    for (const [path, r] of tree.objects) doc.objects[path] = r;
    const empty = (tree.tables.get(PROFILE_TABLE)?.rows.size ?? 0) === 0 && [...tree.objects.values()].every((r) => Object.keys(r).length === 0);
    return empty ? this.store.deleteLearned('bulkdata', agentEid) : this.store.putLearned('bulkdata', agentEid, JSON.stringify(doc));
  }

  /** Resolves when every change made so far is stored (the proxy waits for it before closing the store). */
  async flushed(): Promise<void> {
    if (this.dirty.size > 0) this.writeDirty();
    await Promise.all([...this.writing]);
  }
}
