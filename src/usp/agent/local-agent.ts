/**
 * Device.LocalAgent.* (and Device.MQTT/STOMP connection objects, Device.ScheduleTimer()) as
 * one data-model backend, per agent, served by the proxy itself (TR-181 Device.LocalAgent.).
 * Controller and MTP rows come from the configuration; Subscription rows are the
 * controllers' and are stored; Request rows track running async commands.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Config, ControllerConfig } from '../../app/config.js';
import type { Store, StoredRow } from '../../store/types.js';
import { MemoryModel, type AgentTree, type ChangeEvent, type Row } from '../dm/memory.js';
import type { OperateOutcome, ParamError, ParamSetting, RequestContext } from '../dm/types.js';
import { LOCAL_AGENT_PREFIXES, LOCAL_AGENT_SCHEMA } from './local-agent-schema.js';
import { type Coordination, SingleInstance } from './coordination.js';
import { compileRoles, FLAGS, permitted, type Role } from '../trust/permissions.js';
import { permissionOf, predefinedRoles, roleNames, targetProblem, splitTargets } from '../trust/roles.js';
import { type NotifType, subscriptionAllowed } from '../trust/notifications.js';
import { splitReferenceList } from '../path/index.js';

export const SUPPORTED_USP_VERSIONS = ['1.0', '1.1', '1.2', '1.3', '1.4'];
export const CONTROLLER_TABLE = 'Device.LocalAgent.Controller.';
export const SUBSCRIPTION_TABLE = 'Device.LocalAgent.Subscription.';
export const REQUEST_TABLE = 'Device.LocalAgent.Request.';
export const ROLE_TABLE = 'Device.LocalAgent.ControllerTrust.Role.';
const ROLE_REF = /^Device\.LocalAgent\.ControllerTrust\.Role\.(\d+)\.?$/;
const TRUST_ROW = /^Device\.LocalAgent\.ControllerTrust\.Role\.(\d+)\./;

export interface LocalAgentEvents {
  /** Every change of the proxy-served model (for ObjectCreation/Deletion and ValueChange Notify). */
  change: [ChangeEvent];
  /** Controller.{i}.SendOnBoardRequest() was called. */
  onBoardRequest: [{ agentEid: string; controllerEid: string }];
  /** The agent's rows were re-seeded from the store (another instance changed them); no change events fired. */
  reloaded: [{ agentEid: string }];
}

export interface MtpLiveStatus {
  websocket: boolean;
  mqtt: boolean;
  stomp: boolean;
}

export interface LocalAgentOptions {
  /** Live MTP state for the Status parameters (default: all up). */
  mtpStatus?: () => MtpLiveStatus;
  /** Several instances sharing one store (default: this one alone). */
  coordination?: Coordination;
  /**
   * Agents whose tree is as configured (no Subscription, Request or change) kept in memory; the
   * least recently used beyond are released and seeded again on next use (default 1,024).
   */
  maxIdleAgents?: number;
}

/** Default of LocalAgentOptions.maxIdleAgents: about 5 KiB each. */
export const DEFAULT_MAX_IDLE_AGENTS = 1024;

/** A TR-106 list value as its entries. */
function listOf(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

/** Distinct Role lists kept for sharing between agents (a handful in practice: one per configured controller role mix). */
const SHARED_ROLE_LISTS = 256;

export class LocalAgent extends EventEmitter<LocalAgentEvents> {
  readonly model: MemoryModel;
  private readonly started = Date.now();
  private readonly restored = new Map<string, StoredRow[]>();
  /** Role lists by content (sharedRoles). */
  private readonly roleLists = new Map<string, Role[]>();
  private readonly restoredRequests = new Map<string, StoredRow[]>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private holdDepth = 0;
  private held: ChangeEvent[] = [];
  private dropped = new Set<string>();
  private readonly mtpStatus: () => MtpLiveStatus;
  private readonly coordination: Coordination;
  /** Role.1.. of every agent: the built-in and configured Roles, read-only to controllers. */
  private readonly predefined: readonly Role[];

  constructor(
    private readonly config: Pick<Config, 'usp' | 'controllers' | 'controllerTrust'>,
    private readonly store: Store,
    private readonly softwareVersion: string,
    opts: LocalAgentOptions = {},
  ) {
    super();
    this.mtpStatus = opts.mtpStatus ?? (() => ({ websocket: true, mqtt: true, stomp: true }));
    this.coordination = opts.coordination ?? new SingleInstance();
    this.predefined = predefinedRoles(config.controllerTrust.roles);
    this.coordination.on('rowsChanged', ({ agentEid, subscriptions, requests }) => this.reload(agentEid, subscriptions, requests));
    this.model = new MemoryModel(
      LOCAL_AGENT_PREFIXES,
      LOCAL_AGENT_SCHEMA,
      {
        seed: (eid, tree) => this.seed(eid, tree),
        computed: (eid, objectPath, schemaPath, param) => this.computed(eid, objectPath, schemaPath, param),
        validate: (ctx, schemaPath, values, before, settings) => this.validate(ctx, schemaPath, values, before, settings),
        prepareAdd: (ctx, schemaPath, tablePath, values, tree) => this.prepareAdd(ctx, schemaPath, tablePath, values, tree),
        changed: (e) => this.onChange(e),
        allocate: (eid, tablePath, next) => this.coordination.allocateInstance(eid, tablePath, next),
        guard: (ctx, op, path) => this.guard(ctx, op, path),
        operate: (ctx, commandPath, schemaPath, input) => this.operate(ctx, commandPath, schemaPath, input),
      },
      { maxIdleTrees: opts.maxIdleAgents ?? DEFAULT_MAX_IDLE_AGENTS },
    );
  }

  /**
   * Loads stored subscriptions, Persistent=false ones too: those end when the agent reboots (TR-181
   * Subscription.Persistent), and the agent a controller talks to is the CWMP device, not this
   * process: they end on the device's reboot (deviceRebooted()), not on a proxy restart.
   */
  async restore(): Promise<number> {
    for (const r of await this.store.listAllRequests()) {
      const list = this.restoredRequests.get(r.agentEid) ?? [];
      list.push(r);
      this.restoredRequests.set(r.agentEid, list);
    }
    let n = 0;
    for (const s of await this.store.listAllSubscriptions()) {
      const list = this.restored.get(s.agentEid) ?? [];
      list.push(s);
      this.restored.set(s.agentEid, list);
      n++;
    }
    return n;
  }

  /**
   * Another instance changed this agent's stored Subscription or Request rows: the tree is
   * re-seeded from them, without change events (those fired there).
   */
  reload(agentEid: string, subscriptions: StoredRow[], requests: StoredRow[]): void {
    this.restored.set(agentEid, subscriptions);
    this.restoredRequests.set(agentEid, requests);
    this.model.forget(agentEid);
    this.model.tree(agentEid);
    this.emit('reloaded', { agentEid });
  }

  /** A write of the agent's stored rows: the other instances re-read them once it landed. */
  private written(agentEid: string, write: Promise<void>): Promise<void> {
    this.coordination.rowsWritten(agentEid, write);
    return write;
  }

  /** Agents that have stored subscriptions (their notifications must be armed at start). */
  agentsWithSubscriptions(): string[] {
    return [...this.restored.keys()];
  }

  /** The Controller row path ("Device.LocalAgent.Controller.2") of a controller for an agent, if configured. */
  controllerRow(agentEid: string, controllerEid: string): string | null {
    for (const [n, row] of this.model.rows(agentEid, CONTROLLER_TABLE)) if (row.EndpointID === controllerEid) return `${CONTROLLER_TABLE}${n}`;
    return null;
  }

  controllerEidOfRow(agentEid: string, rowPath: string): string | null {
    const m = /^Device\.LocalAgent\.Controller\.(\d+)\.?$/.exec(rowPath);
    if (!m) return null;
    return this.model.rows(agentEid, CONTROLLER_TABLE).get(Number(m[1]))?.EndpointID ?? null;
  }

  /** Values of one controller's row (retry parameters, PeriodicNotifInterval, BootParameters). */
  controllerValues(agentEid: string, controllerEid: string): Row | null {
    const row = this.controllerRow(agentEid, controllerEid);
    return row ? this.model.objectValues(agentEid, row + '.') : null;
  }

  /** Enabled BootParameter names of a controller (sent with Boot!, TR-181 Controller.{i}.BootParameter). */
  bootParameters(agentEid: string, controllerEid: string): string[] {
    const row = this.controllerRow(agentEid, controllerEid);
    if (!row) return [];
    return [...this.model.rows(agentEid, `${row}.BootParameter.`).values()].filter((r) => r.Enable === 'true' && r.ParameterName).map((r) => r.ParameterName!);
  }

  /**
   * The Roles a controller holds on this agent (TR-369 "A Controller's Role"): a trusted controller
   * its Controller row's AssignedRole and InheritedRole; one that is not trusted (not configured, not
   * authenticated, or its row disabled), or that holds no Role, the UntrustedRole. Disabled Roles
   * and Permissions count for nothing.
   */
  rolesOf(agentEid: string, controllerEid: string, trusted: boolean): Role[] {
    // Asked on every request: kept with the tree until its next change (MemoryModel drops `derived`).
    const tree = this.model.tree(agentEid);
    const key = `roles|${trusted ? controllerEid : ''}`;
    const known = tree.derived?.get(key) as Role[] | undefined;
    if (known) return known;
    const roles = this.sharedRoles(this.computeRoles(agentEid, controllerEid, trusted));
    (tree.derived ??= new Map()).set(key, roles);
    return roles;
  }

  /**
   * Equal Role lists are one list: agents configured alike share it, and with it the rights
   * compiled from it and their remembered answers (trust/access.ts keys them by the list), instead
   * of one copy per agent. Roles are read-only; at most SHARED_ROLE_LISTS lists are kept.
   */
  private sharedRoles(roles: Role[]): Role[] {
    const key = JSON.stringify(roles);
    const known = this.roleLists.get(key);
    if (known) return known;
    if (this.roleLists.size >= SHARED_ROLE_LISTS) this.roleLists.clear();
    this.roleLists.set(key, roles);
    return roles;
  }

  private computeRoles(agentEid: string, controllerEid: string, trusted: boolean): Role[] {
    let refs: string[] = [];
    if (trusted) {
      const values = this.controllerValues(agentEid, controllerEid);
      if (values && values.Enable !== 'false') refs = [...listOf(values.AssignedRole), ...listOf(values.InheritedRole)];
    }
    if (refs.length === 0) refs = listOf(this.untrustedRole());
    const out: Role[] = [];
    for (const n of new Set(refs.map((r) => Number(ROLE_REF.exec(r)?.[1] ?? 0)))) {
      const role = this.roleRow(agentEid, n);
      if (role) out.push(role);
    }
    return out;
  }

  private roleRow(agentEid: string, n: number): Role | null {
    const row = this.model.rows(agentEid, ROLE_TABLE).get(n);
    if (row?.Enable !== 'true') return null;
    const permissions = [...this.model.rows(agentEid, `${ROLE_TABLE}${n}.Permission.`).values()].filter((p) => p.Enable === 'true').map(permissionOf);
    return { name: row.Name ?? '', permissions };
  }

  /** The UntrustedRole reference ("" when controllerTrust.untrustedRole is unset: no rights at all). */
  private untrustedRole(): string {
    const name = this.config.controllerTrust.untrustedRole;
    return name ? this.roleRef(name) : '';
  }

  /** "Device.LocalAgent.ControllerTrust.Role.N" of a predefined Role's name. */
  private roleRef(name: string): string {
    const i = this.predefined.findIndex((r) => r.name === name);
    return i < 0 ? '' : `${ROLE_TABLE}${i + 1}`;
  }

  subscriptions(agentEid: string): { instance: number; values: Row }[] {
    return [...this.model.rows(agentEid, SUBSCRIPTION_TABLE)].map(([instance, values]) => ({
      instance,
      values: this.model.objectValues(agentEid, `${SUBSCRIPTION_TABLE}${instance}.`) ?? values,
    }));
  }

  /**
   * The CWMP device rebooted (an Inform with 1 BOOT): the agent's non-persistent state ends as it
   * would on a USP Agent's reboot (TR-181 Subscription.Persistent "false: removed when the Agent
   * reboots"). The rows just vanish: no ObjectDeletion Notify, as an agent that rebooted sends
   * none. The stored rows go too. Returns the removed Subscription paths.
   */
  async deviceRebooted(agentEid: string): Promise<string[]> {
    const gone = [...this.model.rows(agentEid, SUBSCRIPTION_TABLE)]
      .filter(([, values]) => values.Persistent !== 'true')
      .map(([n]) => `${SUBSCRIPTION_TABLE}${n}.`);
    if (gone.length === 0) return gone;
    this.hold();
    try {
      for (const path of gone) await this.model.delete({ agentEid, controllerEid: '' }, path);
    } finally {
      this.release(agentEid, gone);
    }
    return gone;
  }

  /** Removes a subscription (TimeToLive expiry). */
  async expireSubscription(agentEid: string, instance: number): Promise<void> {
    await this.model.delete({ agentEid, controllerEid: '' }, `${SUBSCRIPTION_TABLE}${instance}.`);
  }

  /** Request rows of async commands that were running when the proxy stopped (path + values), per agent. */
  requestsAfterRestart(): { agentEid: string; path: string; values: Row }[] {
    const out: { agentEid: string; path: string; values: Row }[] = [];
    for (const [agentEid, list] of [...this.restoredRequests]) {
      this.model.tree(agentEid); // seeds the rows into the agent's tree
      for (const r of list) out.push({ agentEid, path: `${REQUEST_TABLE}${r.instance}.`, values: r.values });
    }
    return out;
  }

  /** Request.{i} rows for async commands (TR-369 Operate: req_obj_path). */
  async createRequest(agentEid: string, originator: string, command: string, commandKey: string): Promise<string> {
    const tableOf = () => {
      const tree = this.model.tree(agentEid);
      let table = tree.tables.get(REQUEST_TABLE);
      if (!table) tree.tables.set(REQUEST_TABLE, (table = { next: 1, rows: new Map() }));
      return table;
    };
    let table = tableOf();
    let n = table.next;
    const reserved = this.coordination.allocateInstance(agentEid, REQUEST_TABLE, table.next);
    if (reserved !== undefined) {
      n = await reserved;
      table = tableOf(); // re-seeded meanwhile if another instance changed the agent's rows
    }
    table.next = Math.max(table.next, n + 1);
    const values: Row = { Alias: `cpe-${n}`, Originator: originator, Command: command, CommandKey: commandKey, Status: 'Active' };
    table.rows.set(n, values);
    this.model.pin(agentEid);
    const path = `${REQUEST_TABLE}${n}.`;
    this.written(agentEid, this.store.putRequest(agentEid, n, values)).catch(() => undefined);
    this.onChange({ kind: 'add', agentEid, path, schemaPath: 'Device.LocalAgent.Request.{i}.', values });
    return path;
  }

  finishRequest(agentEid: string, requestPath: string): void {
    const m = /(\d+)\.$/.exec(requestPath);
    if (!m) return;
    const rows = this.model.rows(agentEid, REQUEST_TABLE);
    const values = rows.get(Number(m[1]));
    if (!values) {
      // Not in this tree (e.g. a row taken over from another instance): the stored row still goes.
      this.written(agentEid, this.store.deleteRequest(agentEid, Number(m[1]))).catch(() => undefined);
      return;
    }
    rows.delete(Number(m[1]));
    this.written(agentEid, this.store.deleteRequest(agentEid, Number(m[1]))).catch(() => undefined);
    this.onChange({ kind: 'delete', agentEid, path: requestPath, schemaPath: 'Device.LocalAgent.Request.{i}.', values });
  }

  /**
   * Holds change events (ObjectCreation/Deletion, ValueChange) until release(): an Add with
   * allow_partial false that is rolled back must not notify objects that never existed.
   * Nested holds (concurrent requests) release when the last one ends.
   */
  hold(): void {
    this.holdDepth++;
  }

  /** Ends a hold; events of the given "agent|path" rolled-back objects are dropped. */
  release(agentEid: string, rolledBack: readonly string[] = []): void {
    for (const p of rolledBack) this.dropped.add(`${agentEid}|${p}`);
    if (--this.holdDepth > 0) return;
    this.holdDepth = 0;
    const events = this.held;
    const dropped = this.dropped;
    this.held = [];
    this.dropped = new Set();
    for (const e of events) if (!dropped.has(`${e.agentEid}|${e.path}`)) this.emit('change', e);
  }

  close(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  // ------------------------------------------------------------------ hooks

  private seed(agentEid: string, tree: AgentTree): void {
    const usp = this.config.usp;
    const mtps: Row[] = [];
    const mtpSub = new Map<number, [string, Row]>();
    if (usp.websocket.enabled) {
      mtps.push({ Alias: 'websocket', Enable: 'true', Protocol: 'WebSocket' });
      mtpSub.set(mtps.length, [
        'WebSocket',
        { Interfaces: '', Port: String(usp.websocket.port), Path: `${usp.websocket.path}/${agentEid}`, EnableEncryption: 'false' },
      ]);
    }
    if (usp.mqtt.url) {
      mtps.push({ Alias: 'mqtt', Enable: 'true', Protocol: 'MQTT' });
      mtpSub.set(mtps.length, [
        'MQTT',
        { Reference: 'Device.MQTT.Client.1', ResponseTopicConfigured: usp.mqtt.topic, ResponseTopicDiscovered: '', PublishQoS: '1' },
      ]);
    }
    if (usp.stomp.host) {
      mtps.push({ Alias: 'stomp', Enable: 'true', Protocol: 'STOMP' });
      mtpSub.set(mtps.length, ['STOMP', { Reference: 'Device.STOMP.Connection.1', Destination: usp.stomp.destination, DestinationFromServer: '' }]);
    }
    tree.tables.set('Device.LocalAgent.MTP.', { next: mtps.length + 1, rows: new Map(mtps.map((r, i) => [i + 1, r])) });
    for (const [n, [kind, row]] of mtpSub) tree.objects.set(`Device.LocalAgent.MTP.${n}.${kind}.`, row);

    const controllers = new Map<number, Row>();
    this.config.controllers.forEach((c: ControllerConfig, i) => {
      const n = i + 1;
      controllers.set(n, {
        Alias: `cpe-${n}`,
        EndpointID: c.endpointId,
        Enable: 'true',
        AssignedRole: roleNames(c.role)
          .map((r) => this.roleRef(r))
          .filter(Boolean)
          .join(','),
        ProvisioningCode: '',
        PeriodicNotifInterval: String(usp.periodicNotifIntervalS),
        PeriodicNotifTime: '0001-01-01T00:00:00Z',
        USPNotifRetryMinimumWaitInterval: String(usp.notifRetryMinWaitS),
        USPNotifRetryIntervalMultiplier: String(usp.notifRetryMultiplier),
      });
      const cm: Row[] = [];
      if (c.websocket.url) {
        cm.push({ Alias: 'websocket', Enable: 'true', Protocol: 'WebSocket' });
        let host = '';
        let port = '';
        let p = '';
        try {
          const u = new URL(c.websocket.url);
          host = u.hostname;
          port = u.port || (u.protocol === 'wss:' ? '443' : '80');
          p = u.pathname;
        } catch {
          // reported at config load by the WebSocket MTP
        }
        tree.objects.set(`${CONTROLLER_TABLE}${n}.MTP.${cm.length}.WebSocket.`, {
          Host: host,
          Port: port,
          Path: p,
          EnableEncryption: String(c.websocket.url.startsWith('wss:')),
        });
      }
      if (c.mqtt.topic) {
        cm.push({ Alias: 'mqtt', Enable: 'true', Protocol: 'MQTT' });
        tree.objects.set(`${CONTROLLER_TABLE}${n}.MTP.${cm.length}.MQTT.`, { Reference: 'Device.MQTT.Client.1', Topic: c.mqtt.topic });
      }
      if (c.stomp.destination) {
        cm.push({ Alias: 'stomp', Enable: 'true', Protocol: 'STOMP' });
        tree.objects.set(`${CONTROLLER_TABLE}${n}.MTP.${cm.length}.STOMP.`, { Reference: 'Device.STOMP.Connection.1', Destination: c.stomp.destination });
      }
      tree.tables.set(`${CONTROLLER_TABLE}${n}.MTP.`, { next: cm.length + 1, rows: new Map(cm.map((r, j) => [j + 1, r])) });
      tree.tables.set(`${CONTROLLER_TABLE}${n}.BootParameter.`, { next: 1, rows: new Map() });
    });
    tree.tables.set(CONTROLLER_TABLE, { next: controllers.size + 1, rows: controllers });

    // The predefined Roles, Role.1.. (TR-369 "Role Definition"); controllers may add more.
    const roles = new Map<number, Row>();
    this.predefined.forEach((role, i) => {
      roles.set(i + 1, { Alias: `cpe-${i + 1}`, Enable: 'true', Name: role.name });
      const perms = new Map<number, Row>();
      role.permissions.forEach((p, j) => {
        perms.set(j + 1, {
          Alias: `cpe-${j + 1}`,
          Enable: 'true',
          Order: String(p.order),
          Targets: p.targets.join(','),
          Param: p.param,
          Obj: p.obj,
          InstantiatedObj: p.instantiatedObj,
          CommandEvent: p.commandEvent,
        });
      });
      tree.tables.set(`${ROLE_TABLE}${i + 1}.Permission.`, { next: perms.size + 1, rows: perms });
    });
    tree.tables.set(ROLE_TABLE, { next: roles.size + 1, rows: roles });
    tree.tables.set('Device.LocalAgent.ControllerTrust.Credential.', { next: 1, rows: new Map() });

    const subs = new Map<number, Row>();
    let next = 1;
    for (const s of this.restored.get(agentEid) ?? []) {
      subs.set(s.instance, { ...s.values });
      next = Math.max(next, s.instance + 1);
    }
    this.restored.delete(agentEid);
    tree.tables.set(SUBSCRIPTION_TABLE, { next, rows: subs });
    const reqs = new Map<number, Row>();
    let nextReq = 1;
    for (const r of this.restoredRequests.get(agentEid) ?? []) {
      reqs.set(r.instance, { ...r.values });
      nextReq = Math.max(nextReq, r.instance + 1);
    }
    this.restoredRequests.delete(agentEid);
    tree.tables.set(REQUEST_TABLE, { next: nextReq, rows: reqs });
    // Stored rows are consumed here: a tree holding them cannot be seeded again, so it is kept.
    if (subs.size > 0 || reqs.size > 0) tree.pinned = true;

    const mqtt = usp.mqtt;
    const mqttRows = new Map<number, Row>();
    if (mqtt.url) {
      let host = '';
      let port = '1883';
      try {
        const u = new URL(mqtt.url);
        host = u.hostname;
        port = u.port || (u.protocol === 'mqtts:' ? '8883' : '1883');
      } catch {
        // reported by the MQTT MTP
      }
      mqttRows.set(1, {
        Alias: 'cpe-1',
        Enable: 'true',
        BrokerAddress: host,
        BrokerPort: port,
        ProtocolVersion: mqtt.protocolVersion === 5 ? '5.0' : '3.1.1',
        ClientID: mqtt.clientId,
        KeepAliveTime: String(mqtt.keepaliveS),
      });
    }
    tree.tables.set('Device.MQTT.Client.', { next: mqttRows.size + 1, rows: mqttRows });
    const st = usp.stomp;
    const stompRows = new Map<number, Row>();
    if (st.host) {
      stompRows.set(1, {
        Alias: 'cpe-1',
        Enable: 'true',
        Host: st.host,
        Port: String(st.port),
        Username: st.login,
        VirtualHost: st.vhost,
        EnableHeartbeats: String(st.heartbeatMs > 0),
        OutgoingHeartbeat: String(st.heartbeatMs),
        IncomingHeartbeat: String(st.heartbeatMs),
        ServerRetryInitialInterval: String(usp.reconnectBaseMs),
        ServerRetryMaxInterval: String(usp.reconnectMaxMs),
      });
    }
    tree.tables.set('Device.STOMP.Connection.', { next: stompRows.size + 1, rows: stompRows });
  }

  private computed(agentEid: string, objectPath: string, schemaPath: string, param: string): string | undefined {
    if (schemaPath === 'Device.LocalAgent.') {
      switch (param) {
        case 'EndpointID':
          return agentEid;
        case 'SoftwareVersion':
          return this.softwareVersion;
        case 'UpTime':
          return String(Math.floor((Date.now() - this.started) / 1000));
        case 'SupportedProtocols':
          return [this.config.usp.websocket.enabled && 'WebSocket', this.config.usp.mqtt.url && 'MQTT', this.config.usp.stomp.host && 'STOMP']
            .filter(Boolean)
            .join(',');
      }
    }
    if (
      param === 'Status' &&
      (schemaPath === 'Device.LocalAgent.MTP.{i}.' || schemaPath === 'Device.MQTT.Client.{i}.' || schemaPath === 'Device.STOMP.Connection.{i}.')
    ) {
      const live = this.mtpStatus();
      if (schemaPath === 'Device.MQTT.Client.{i}.') return live.mqtt ? 'Connected' : 'Disconnected';
      if (schemaPath === 'Device.STOMP.Connection.{i}.') return live.stomp ? 'Enabled' : 'Error';
      const proto = this.model.rows(agentEid, 'Device.LocalAgent.MTP.').get(Number(/(\d+)\.$/.exec(objectPath)?.[1]))?.Protocol;
      const up = proto === 'WebSocket' ? live.websocket : proto === 'MQTT' ? live.mqtt : proto === 'STOMP' ? live.stomp : false;
      return up ? 'Up' : 'Down';
    }
    if (schemaPath === 'Device.LocalAgent.ControllerTrust.') {
      if (param === 'UntrustedRole') return this.untrustedRole();
      // No Role sees secured values: the proxy never passes them on (TR-369 "Special Roles").
      if (param === 'SecuredRoles') return '';
    }
    return undefined;
  }

  private validate(ctx: RequestContext, schemaPath: string, values: Row, before: Row | null, settings: readonly ParamSetting[]): ParamError[] {
    const errs: ParamError[] = [];
    const given = new Set(settings.map((s) => s.param));
    if ('Alias' in values && given.has('Alias') && /^\d/.test(values.Alias ?? '')) {
      // TR-181 Alias: "MUST NOT start with a digit" (so it cannot be mistaken for an instance number).
      errs.push({ param: 'Alias', errCode: 7012, errMsg: `Alias "${values.Alias}" must not start with a digit` });
    }
    if (schemaPath === 'Device.LocalAgent.ControllerTrust.Role.{i}.Permission.{i}.') {
      for (const k of ['Param', 'Obj', 'InstantiatedObj', 'CommandEvent']) {
        if (given.has(k) && !FLAGS.test(values[k] ?? ''))
          errs.push({ param: k, errCode: 7012, errMsg: `${k} must be 4 characters rwxn with "-" for a missing right (got "${values[k]}")` });
      }
      if (given.has('Targets')) {
        const bad = splitTargets(values.Targets ?? '')
          .map(targetProblem)
          .find((p) => p !== null);
        if (bad) errs.push({ param: 'Targets', errCode: 7012, errMsg: `Targets: ${bad}` });
      }
    }
    if (schemaPath === 'Device.LocalAgent.Controller.{i}.' && given.has('AssignedRole')) {
      const roles = this.model.rows(ctx.agentEid, ROLE_TABLE);
      const bad = listOf(values.AssignedRole).find((r) => !roles.has(Number(ROLE_REF.exec(r)?.[1] ?? 0)));
      if (bad !== undefined) errs.push({ param: 'AssignedRole', errCode: 7012, errMsg: `AssignedRole: ${bad} is not a ${ROLE_TABLE}{i} of this agent` });
    }
    if (schemaPath === 'Device.LocalAgent.Subscription.{i}.') {
      const recipient = values.Recipient ? this.controllerEidOfRow(ctx.agentEid, values.Recipient) : null;
      if (values.Recipient && recipient === null) {
        errs.push({ param: 'Recipient', errCode: 7012, errMsg: `Recipient ${values.Recipient} is not a Device.LocalAgent.Controller.{i} of this agent` });
      }
      // TR-369 R-SEC.1: a Subscription asks to be told about its paths; the Recipient's Roles must allow that.
      const watched = ['Enable', 'ReferenceList', 'NotifType', 'Recipient'].some((k) => given.has(k)) || before === null;
      if (recipient !== null && watched && values.Enable === 'true' && values.NotifType) {
        const set = compileRoles(this.rolesOf(ctx.agentEid, recipient, true));
        const denied = splitReferenceList(values.ReferenceList ?? '')
          .filter(Boolean)
          .find((ref) => !subscriptionAllowed((p, op) => permitted(set, p, op), values.NotifType as NotifType, ref));
        if (denied !== undefined)
          errs.push({
            param: 'ReferenceList',
            errCode: 7006,
            errMsg: `permission denied: the Roles of ${values.Recipient} (${set.names.join(', ') || 'none'}) do not allow ${values.NotifType} notifications on ${denied}`,
          });
      }
      if (before && given.has('ID') && before.ID !== values.ID) errs.push({ param: 'ID', errCode: 7013, errMsg: 'Subscription ID cannot be changed once set' });
      if (given.has('ID') && values.ID === '') errs.push({ param: 'ID', errCode: 7012, errMsg: 'Subscription ID must not be empty' });
    }
    return errs;
  }

  private prepareAdd(ctx: RequestContext, schemaPath: string, tablePath: string, values: Row, tree: AgentTree): void {
    const table = tree.tables.get(tablePath);
    const n = table?.next ?? 1;
    if (!values.Alias) values.Alias = `cpe-${n}`;
    if (schemaPath === 'Device.LocalAgent.Subscription.{i}.') {
      if (!values.ID) values.ID = `${n}-${randomBytes(4).toString('hex')}`;
      if (!values.Recipient) values.Recipient = this.controllerRow(ctx.agentEid, ctx.controllerEid) ?? '';
      values.CreationDate = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    }
  }

  /** Predefined Roles and their Permissions are the configuration's: no controller changes them. */
  private guard(ctx: RequestContext, _op: 'set' | 'add' | 'delete', path: string): { errCode: number; errMsg: string } | null {
    if (ctx.controllerEid === '') return null; // the agent's own housekeeping
    const m = TRUST_ROW.exec(path);
    if (!m || Number(m[1]) > this.predefined.length) return null;
    return {
      errCode: 7006,
      errMsg: `permission denied: ${ROLE_TABLE}${m[1]} ("${this.predefined[Number(m[1]) - 1]!.name}") is predefined by the proxy's configuration and read-only`,
    };
  }

  private onChange(e: ChangeEvent): void {
    if (e.kind === 'delete' && e.schemaPath === 'Device.LocalAgent.ControllerTrust.Role.{i}.') {
      // AssignedRole is a strong reference (TR-181 pathRef): a deleted Role leaves every list.
      const gone = e.path.slice(0, -1);
      for (const [n, c] of [...this.model.rows(e.agentEid, CONTROLLER_TABLE)]) {
        const list = listOf(c.AssignedRole);
        if (list.includes(gone))
          void this.model.set({ agentEid: e.agentEid, controllerEid: '' }, `${CONTROLLER_TABLE}${n}.`, [
            { param: 'AssignedRole', value: list.filter((r) => r !== gone).join(','), required: true },
          ]);
      }
    }
    if (e.schemaPath === 'Device.LocalAgent.Subscription.{i}.') {
      const instance = Number(/(\d+)\.$/.exec(e.path)![1]);
      const p =
        e.kind === 'delete'
          ? this.store.deleteSubscription(e.agentEid, instance)
          : this.store.putSubscription(e.agentEid, instance, this.storedSubscription(e.agentEid, instance));
      this.written(e.agentEid, p).catch(() => undefined);
    }
    if (e.kind === 'delete' && e.schemaPath === 'Device.LocalAgent.Controller.{i}.') {
      // Deleting a Controller deletes the Subscriptions whose Recipient it was (TR-181 Subscription.Recipient).
      const row = e.path.slice(0, -1);
      for (const [n, s] of [...this.model.rows(e.agentEid, SUBSCRIPTION_TABLE)]) {
        if (s.Recipient === row) void this.model.delete({ agentEid: e.agentEid, controllerEid: '' }, `${SUBSCRIPTION_TABLE}${n}.`);
      }
    }
    if (this.holdDepth > 0) this.held.push(e);
    else this.emit('change', e);
  }

  private storedSubscription(agentEid: string, instance: number): Row {
    return { ...(this.model.rows(agentEid, SUBSCRIPTION_TABLE).get(instance) ?? {}) };
  }

  private async operate(ctx: RequestContext, commandPath: string, schemaPath: string, input: Record<string, string>): Promise<OperateOutcome> {
    switch (schemaPath) {
      case 'Device.ScheduleTimer()': {
        const raw = input.DelaySeconds;
        if (raw === undefined) return { kind: 'error', errCode: 7027, errMsg: 'ScheduleTimer() needs the DelaySeconds input argument' };
        if (!/^\d+$/.test(raw) || Number(raw) > 4294967295)
          return { kind: 'error', errCode: 7027, errMsg: `DelaySeconds must be an unsignedInt (got "${raw}")` };
        const ms = Number(raw) * 1000;
        return {
          kind: 'async',
          completion: new Promise((resolve) => {
            const t = setTimeout(() => {
              this.timers.delete(t);
              resolve({ output: {} });
            }, ms);
            this.timers.add(t);
          }),
        };
      }
      case 'Device.LocalAgent.Controller.{i}.SendOnBoardRequest()': {
        const row = commandPath.slice(0, commandPath.lastIndexOf('.'));
        const eid = this.controllerEidOfRow(ctx.agentEid, row);
        if (!eid) return { kind: 'error', errCode: 7026, errMsg: `no controller at ${row}` };
        this.emit('onBoardRequest', { agentEid: ctx.agentEid, controllerEid: eid });
        return { kind: 'sync', output: {} };
      }
      case 'Device.LocalAgent.Request.{i}.Cancel()':
        return { kind: 'error', errCode: 7022, errMsg: 'this request cannot be canceled: the CWMP operation behind it is already running on the device' };
      default:
        return { kind: 'error', errCode: 7026, errMsg: `unsupported command ${commandPath}` };
    }
  }
}
