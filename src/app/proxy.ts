/**
 * The proxy object: builds every part in its constructor and hands each its dependencies there
 * (store, session engine, connection requests, ACS front, the USP agent side, the interworking
 * backends, metrics; on a shared Redis store the cluster's coordination and membership).
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, SECRET_KEY_ENV, type Config } from './config.js';
import type { Logger } from './log.js';
import { logCwmpRpcs, namesCount } from './rpc-log.js';
import { TranslationTrace } from '../ops/trace.js';
import { ConnReqOutcomes } from '../ops/online.js';
import { loadSecretKey, openStore } from '../store/index.js';
import { type ModeFix, secureDataDir } from '../store/files.js';
import { StoreHealth, trackWrites } from '../store/health.js';
import { secretCodec } from '../store/secrets.js';
import type { Store } from '../store/types.js';
import { SessionEngine, type SessionEngineOptions } from '../cwmp/session.js';
import { ClusterBus } from '../cluster/bus.js';
import { Cluster, instanceIdOf, sharedNonceSecret } from '../cluster/cluster.js';
import { RedisCoordination } from '../cluster/coordination.js';
import { ClusterSessionEngine } from '../cluster/session-engine.js';
import { type SessionForwarder, startForwarding } from '../cluster/forward.js';
import { type ClusterStore, isClusterStore } from '../cluster/types.js';
import { ConnectionRequester } from '../cwmp/connreq.js';
import { ConnReqTargetGuard } from '../cwmp/connreq-target.js';
import { ConnReqDispatcher, type ConnReqTransport } from '../cwmp/connreq-dispatch.js';
import { NatReach } from '../cwmp/nat.js';
import { XmppConnectionRequester } from '../cwmp/connreq-xmpp.js';
import { DecodePool } from '../cwmp/decode-pool.js';
import { AcsServer } from '../cwmp/acs-server.js';
import { RedisNonceTracker } from '../cluster/redis-nonce-tracker.js';
import { AgentSide } from '../usp/agent/agent-side.js';
import { type Coordination, SingleInstance } from '../usp/agent/coordination.js';
import type { CwmpCommandRunner } from '../interworking/commands.js';
import { EventBridge } from '../interworking/events.js';
import { Interworking } from '../interworking/index.js';
import type { RpcOptions } from '../interworking/rpc-port.js';
import { loadDefaultMapping } from '../mapping/load.js';
import { ProxyMetrics } from '../ops/metrics.js';
import { AdminServer, type AdminPorts } from '../ops/admin.js';
import { LOCAL_AGENT_PREFIXES } from '../usp/agent/local-agent-schema.js';
import { atRequestEnd, isRequest } from '../usp/request-scope.js';
import { BulkData } from '../bulkdata/profiles.js';
import { BulkDataScheduler } from '../bulkdata/scheduler.js';
import { BULKDATA_PREFIXES } from '../bulkdata/schema.js';
import { buildMigration, type Migration } from '../migration/wiring.js';
import { HttpDelivery, collectorUrlProblem } from '../bulkdata/http-delivery.js';
import { collectionRpcOptions } from '../bulkdata/rpc-scope.js';
import { alignPeriodicInform } from '../bulkdata/align.js';
import { bulkDataApiPorts } from '../bulkdata/api-ports.js';

/** Subtrees the proxy serves itself for every agent; a device's own objects there are shadowed. */
const PROXY_SERVED_PREFIXES = [...LOCAL_AGENT_PREFIXES, ...BULKDATA_PREFIXES];

/** The parts that exist only when several instances share a Redis store. */
interface Shared {
  store: ClusterStore;
  bus: ClusterBus;
  coordination: RedisCoordination;
}

export class CwmpUspProxy {
  readonly store: Store;
  readonly engine: SessionEngine;
  /** Connection requests over HTTP, or UDP through the STUN binding of a CPE behind NAT (nat). */
  readonly connReq: ConnReqDispatcher;
  readonly nat: NatReach | null;
  readonly xmpp: XmppConnectionRequester | null;
  readonly decoder: DecodePool;
  readonly acs: AcsServer;
  readonly usp: AgentSide;
  /** Device.BulkData. of every agent (src/bulkdata/) and the timers running its profiles. */
  readonly bulkData: BulkData;
  readonly bulkDataScheduler: BulkDataScheduler;
  readonly interworking: Interworking;
  readonly commands: CwmpCommandRunner;
  readonly events: EventBridge;
  /** Migrations of dual-stack devices to their native USP Agents (src/migration/). */
  readonly migration: Migration;
  acsPort = 0;
  readonly metrics = new ProxyMetrics();
  /** The last USP requests per agent and the CWMP RPCs each caused (device console). */
  readonly trace: TranslationTrace;
  /** The last connection-request outcome per device (online state). */
  readonly connReqOutcomes = new ConnReqOutcomes();
  admin: AdminServer | null = null;
  adminPort = 0;
  /** Whether store writes succeed (for /readyz). */
  readonly storeHealth: StoreHealth;
  /** Set when the store is shared (store.redis.url): this instance is one of several. */
  readonly cluster: Cluster | null = null;
  private readonly shared: Shared | null = null;
  /** Several instances: relays POSTs of sessions other instances serve (src/cluster/forward.ts). */
  private forwarder: SessionForwarder | null = null;

  constructor(
    readonly config: Config,
    readonly log: Logger,
  ) {
    const modeFix = (f: ModeFix): void =>
      log.warn({ path: f.path, from: f.from, to: f.to }, 'store: tightened the permissions of a file or folder holding secrets');
    const sqlite = config.store.redis.url === '' && config.store.path !== ':memory:';
    // The data folder holds the store and the admin token: its owner only (docs/security.md).
    if (sqlite && isInside(config.store.path, config.dataDir)) {
      const fixes: ModeFix[] = [];
      secureDataDir(config.dataDir, 'dataDir', fixes);
      fixes.forEach(modeFix);
    }
    this.trace = new TranslationTrace({ perAgent: config.admin.trace.perDevice, maxAgents: config.admin.trace.maxDevices });
    const instanceId = instanceIdOf(config.cluster);
    const secrets = secretCodec(loadSecretKey(config.store, SECRET_KEY_ENV));
    const keyFile = config.store.secretKeyFile;
    if (keyFile && (statSync(keyFile).mode & 0o077) !== 0)
      log.warn({ path: keyFile, mode: `0${(statSync(keyFile).mode & 0o777).toString(8)}` }, 'store.secretKeyFile is readable by other users: chmod 400 it');
    const store = openStore({ path: config.store.path, redis: config.store.redis, owner: instanceId, secrets, onModeFix: modeFix });
    const storeLog = log.child({ module: 'store' });
    this.storeHealth = new StoreHealth(store, {
      onChange: (failing, detail) => (failing ? storeLog.error({ err: detail }, 'store writes failing: CPEs get 503, /readyz fails') : storeLog.info(detail)),
    });
    this.store = trackWrites(store, this.storeHealth);
    if (secrets.keyId) log.info({ keyId: secrets.keyId }, 'store: per-device secrets sealed at rest (AES-256-GCM)');
    const clusterLog = log.child({ module: 'cluster', instanceId });
    if (isClusterStore(this.store)) {
      const bus = new ClusterBus(this.store.redis, clusterLog);
      this.shared = { store: this.store, bus, coordination: new RedisCoordination(this.store, bus, clusterLog) };
    }
    const shared = this.shared;
    const coordination: Coordination = shared?.coordination ?? new SingleInstance();
    const cr = config.acs.connectionRequest;
    let guard: ConnReqTargetGuard;
    try {
      guard = new ConnReqTargetGuard({
        allow: cr.allow,
        ports: cr.ports.map(Number),
        ownPorts: () => [this.acsPort, this.usp?.ws?.serverAddress()?.port ?? 0, this.adminPort].filter((p) => p > 0),
        perAddressPerSecond: cr.perAddressPerSecond,
      });
    } catch (e) {
      throw new ConfigError(`acs.connectionRequest.allow: ${(e as Error).message}`);
    }
    const http = new ConnectionRequester({
      timeoutMs: cr.timeoutMs,
      retries: cr.retries,
      retryDelayMs: cr.retryDelayMs,
      maxDelayMs: cr.maxDelayMs,
      maxInFlight: cr.maxConcurrent,
      guard,
      allowBasic: cr.allowBasic,
    });
    this.nat = cr.udp.enabled ? new NatReach(cr.udp, this.store, log.child({ module: 'nat' }), guard) : null;
    const x = cr.xmpp;
    this.xmpp = x.enabled ? new XmppConnectionRequester({ ...x, domain: x.domain || new URL(x.service).hostname }, log.child({ module: 'xmpp' })) : null;
    const order = (cr.order.length ? cr.order : ['http', 'udp', 'xmpp']) as ConnReqTransport[];
    this.connReq = new ConnReqDispatcher(order, { http, udp: this.nat?.udp, xmpp: this.xmpp ?? undefined });
    const engineOptions: SessionEngineOptions = {
      sessionTimeoutMs: config.acs.sessionTimeoutMs,
      rpcDeadlineMs: cr.deadlineMs,
      holdRequests: config.acs.holdRequests,
      setConnectionRequestCredentials: config.acs.setConnectionRequestCredentials,
      maxSessions: config.acs.maxSessions,
      endpointIdScheme: config.usp.endpointIdScheme,
      endpointIdCollision: config.usp.endpointIdCollision,
      lingerMs: config.acs.lingerMs,
      persistReadOnlyAfterMs: config.acs.persistReadOnlyAfterMs,
      droppedConnectionGraceMs: config.acs.droppedConnectionGraceMs,
      perDeviceCredentials: config.acs.auth.perDevice,
    };
    this.engine = shared
      ? new ClusterSessionEngine(shared.store, this.connReq, engineOptions, log.child({ module: 'cwmp' }), shared.bus, instanceId)
      : new SessionEngine(this.store, this.connReq, engineOptions, log.child({ module: 'cwmp' }));
    this.decoder = new DecodePool(
      config.acs.parseWorkers,
      config.acs.workerThresholdBytes,
      { budget: config.acs.limits.parse, maxWarnings: config.acs.limits.maxLogLinesPerRequest },
      { inlineBytes: config.acs.inlineDecodeBytes, busyUtilization: config.acs.inlineDecodeBusyPercent / 100 },
      { bulkBytes: config.acs.bulkParseBytes, bulkNice: config.acs.bulkParseNice, idleMs: config.acs.parseWorkerIdleMs },
    );
    this.acs = new AcsServer(
      this.engine,
      this.decoder,
      this.store,
      {
        host: config.acs.host,
        port: config.acs.port,
        maxBodyBytes: config.acs.maxBodyBytes,
        auth: config.acs.auth,
        tls: config.acs.tls,
        route: shared ? instanceId : undefined,
        forward: shared ? (req, res) => this.forwarder?.forward(req, res) ?? false : undefined,
        sharedNonceSecret: shared ? () => sharedNonceSecret(shared.store) : undefined,
        // Several instances: a nonce's nc is tracked in Redis, so a replay to another instance fails too.
        nonceTracker: shared ? new RedisNonceTracker(shared.store.redis, (...parts) => shared.store.key(...parts)) : undefined,
        preAuthMaxBodyBytes: config.acs.preAuthMaxBodyBytes,
        trustedProxies: config.acs.trustedProxies,
        identityPolicy: config.acs.identityPolicy,
        limits: config.acs.limits,
      },
      log.child({ module: 'acs' }),
    );
    // The CWMP device as a data-model backend of its USP Agent (src/interworking/).
    // RPCs of USP requests linger: a follow-up RPC of the same request rides the same session.
    // While a USP request is being served its device's session lingers for the next RPC; when the
    // request's handler is done the linger ends at once (acs.lingerMs is the maximum), so the CPE's
    // session slot is not held for nothing.
    // `opts.scope`: what the RPC is made for (src/usp/request-scope.ts), passed down by the backends.
    const enqueue = (deviceKey: string, rpc: Parameters<SessionEngine['enqueue']>[1], opts?: RpcOptions) => {
      const scope = opts?.scope;
      const request = isRequest(scope);
      if (request) atRequestEnd(scope, this.engine.beginRequest(deviceKey));
      // The translation trace notes each RPC under the USP request it is made for (src/ops/trace.ts).
      // A Bulk Data collection may ride the device's periodic Inform session (src/bulkdata/rpc-scope.ts).
      return this.trace.rpc(request ? scope : undefined, { method: rpc.method, names: namesCount(rpc) }, () =>
        this.engine.enqueue(deviceKey, rpc, { linger: true, signal: opts?.signal, ...collectionRpcOptions(scope) }),
      );
    };
    const byEid = (eid: string) => this.store.getDeviceByEndpointId(eid);
    const engine = this.engine;
    this.interworking = new Interworking(
      {
        port: { enqueue },
        store: this.store,
        rules: loadDefaultMapping(),
        log: log.child({ module: 'interworking' }),
        // Reads that ride a device's periodic session must find it open (several instances: asked of Redis).
        inSession: (deviceKey) => (engine instanceof ClusterSessionEngine ? engine.inSession(deviceKey) : engine.isInSession(deviceKey)),
      },
      {
        operationTimeoutMs: config.interworking.operationTimeoutMs,
        excludedPrefixes: PROXY_SERVED_PREFIXES,
        gpvBatchSize: config.interworking.gpvBatchSize,
        namesTtlMs: config.interworking.namesTtlMs,
        partialPaths: config.interworking.partialPaths,
        extensionVendor: config.interworking.extensionVendor,
        deviceTreeCache: config.interworking.deviceTreeCache,
      },
    );
    this.commands = this.interworking.commands;
    this.migration = buildMigration(config, {
      store: this.store,
      log: log.child({ module: 'migration' }),
      open: (d) => this.interworking.open(d),
      announce: (agentEid, objPath, eventName, params) => this.usp.notifier.event(agentEid, objPath, eventName, params),
    });
    this.bulkData = new BulkData(config.bulkData, this.store, log.child({ module: 'bulkdata' }), coordination, (url) =>
      collectorUrlProblem(url, (address, port) => guard.checkAddress(address, port)),
    );
    this.usp = new AgentSide({
      config,
      store: this.store,
      log,
      deviceBackends: [this.bulkData.model, ...this.interworking.backends, this.migration.command],
      coordination,
      // A device handed over to its native agent: its proxied agent sends no ValueChange or Periodic! (docs/migration.md).
      quiet: (eid, type, path) => this.migration.service.isHandedOver(eid) && (type === 'ValueChange' || path === 'Device.LocalAgent.Periodic!'),
      deviceIdentity: async (eid) => {
        const d = await this.store.getDeviceByEndpointId(eid);
        return d ? { oui: d.deviceId.oui, productClass: d.deviceId.productClass, serialNumber: d.deviceId.serialNumber } : null;
      },
    });
    const objectChange = ({
      kind,
      agentEid,
      path,
      uniqueKeys,
    }: {
      kind: 'add' | 'delete';
      agentEid: string;
      path: string;
      uniqueKeys: Record<string, string>;
    }) => (kind === 'add' ? this.usp.notifier.objectCreation(agentEid, path, uniqueKeys) : this.usp.notifier.objectDeletion(agentEid, path));
    this.bulkDataScheduler = new BulkDataScheduler({
      bulkData: this.bulkData,
      router: this.usp.router,
      events: this.usp.notifier,
      log: log.child({ module: 'bulkdata' }),
      // A collector URL is a controller's choice: the connection-request target guard applies.
      http: new HttpDelivery({ check: (host, port) => guard.check(host, port), timeoutMs: cr.timeoutMs }),
      claim: shared ? (key, ttlMs) => coordination.claimOnce(key, ttlMs) : undefined,
      connectionRequestsPerSecond: config.bulkData.connectionRequestsPerSecond,
      deviceId: async (eid) => (await byEid(eid))?.deviceId ?? null,
      // Beside the agent's rows, under its own key (src/bulkdata/retained.ts bounds the bytes).
      retainedStore: {
        load: (eid) => this.store.getLearned('bulkdata', `retained:${eid}`),
        save: (eid, json) =>
          json === null ? this.store.deleteLearned('bulkdata', `retained:${eid}`) : this.store.putLearned('bulkdata', `retained:${eid}`, json),
      },
      periodicInformGraceMs: config.bulkData.periodicInformGraceMs,
      alignPeriodicInform: config.bulkData.alignPeriodicInform
        ? (eid, s, t, scope) =>
            alignPeriodicInform(
              {
                deviceByEndpointId: byEid,
                setParameterValues: async (e, list, sc) => {
                  const d = await this.store.getDeviceByEndpointId(e);
                  return d ? (await this.interworking.open(d, sc)).setParameterValues(list) : { ok: false, errMsg: 'unknown device' };
                },
              },
              eid,
              s,
              t,
              scope,
            )
        : undefined,
    });
    // ObjectCreation/ObjectDeletion of the proxy-served Device.BulkData. rows, as for the device's own.
    this.bulkData.on('change', (e) => {
      const uniqueKeys: Record<string, string> = e.schemaPath === 'Device.BulkData.Profile.{i}.' ? { Alias: e.values.Alias ?? '' } : {};
      if (e.kind !== 'set') objectChange({ kind: e.kind, agentEid: e.agentEid, path: e.path, uniqueKeys });
    });
    this.interworking.device2.on('objectChange', objectChange);
    this.interworking.tr098.on('objectChange', objectChange);
    this.interworking.extension.on('objectChange', objectChange);
    const tr098 = this.interworking.tr098;
    const interworking = this.interworking;
    this.events = new EventBridge(
      {
        localAgent: this.usp.localAgent,
        notifier: this.usp.notifier,
        controllers: () => config.controllers.map((c) => c.endpointId),
        deviceByEndpointId: byEid,
        readValues: (d, names) => interworking.readValues(d, names),
        mapped: { valueChanges: (d, params) => tr098.uspValueChanges(d, params), toNative: (d, paths) => tr098.nativePaths(d, paths) },
        access: (d, how) => (how === 'ride' ? interworking.openInSession(d) : interworking.open(d)),
        extension: interworking.nativeExtension,
        saveModel: (m) => interworking.knowledge.saveModel(m),
        store: this.store,
        log: log.child({ module: 'interworking' }),
      },
      { excludedPrefixes: PROXY_SERVED_PREFIXES, poll: config.interworking.valueChangePoll },
    );
    this.engine.on('inform', ({ device, inform }) => {
      // Every registered device is presented as a USP Agent.
      this.usp.deviceSeen(device.endpointId);
      this.bulkDataScheduler.informSeen(
        device.endpointId,
        inform.event.map((e) => e.eventCode),
        inform.parameterList,
      );
      void this.interworking
        .inform(device, inform)
        .catch((e: Error) => log.warn({ endpointId: device.endpointId, err: e.message }, 'learning from an Inform failed'));
      this.events.inform(device, inform);
      this.migration.service.inform(
        device,
        inform.event.map((e) => e.eventCode),
      );
      // Behind NAT (TR-069 Annex G): the reported UDP binding, and the CPE's STUN settings on BOOTSTRAP.
      this.nat?.inform(device, inform);
      const jid = inform.parameterList.find((p) => p.name.endsWith('.ManagementServer.ConnReqJabberID'))?.value;
      if (jid) this.xmpp?.learn(device.deviceKey, jid);
      const stun = this.nat?.provisioning(
        device,
        inform.event.map((e) => e.eventCode),
      );
      if (stun)
        void this.engine
          .enqueue(device.deviceKey, stun)
          .catch((e: Error) => log.warn({ endpointId: device.endpointId, err: e.message }, 'setting STUN parameters failed'));
    });
    this.engine.on('transferComplete', ({ device, message }) => {
      this.commands.deviceEvent({ kind: 'transferComplete', deviceKey: device.deviceKey, message });
      this.events.transferComplete(device, message);
    });
    if (shared) {
      this.cluster = new Cluster(shared.store, config.cluster, clusterLog, shared.bus, {
        coordination: shared.coordination,
        endpoint: this.usp.endpoint,
        notifier: this.usp.notifier,
        deviceEvent: (e) => this.commands.deviceEvent(e),
        finishOrphanRequests: (rows) => this.finishOrphanRequests(rows),
      });
    }
    logCwmpRpcs(this.engine, log.child({ module: 'cwmp' }));
    this.usp.endpoint.on('request', (e) => {
      const entry = this.trace.request(e);
      if (entry.outcome !== 'ok') this.metrics.error(TranslationTrace.summary(e.toId, entry), { device: e.toId, fromId: e.fromId });
    });
    this.connReq.on('result', ({ deviceKey, result: r }) => {
      if (r.ok || r.reason !== 'cancelled')
        this.connReqOutcomes.note(deviceKey, { ok: r.ok, atMs: Date.now(), ...(r.ok ? {} : { detail: `${r.reason}: ${r.detail}`.slice(0, 200) }) });
    });
    this.migration.attachMetrics(this.metrics.registry);
    // Prometheus metrics: attached before start so that restored work and first records count.
    this.metrics.attach({
      engine: this.engine,
      connectionRequests: this.connReq,
      endpoint: this.usp.endpoint,
      mtps: () => this.usp.mtps.map((m) => m.status()),
      controllers: config.controllers,
      listDevices: () => this.store.listDevices(),
      bulkDataReports: () => this.bulkDataScheduler.counts,
      bulkData: this.bulkDataScheduler,
      acs: this.acs,
      refusals: () => ({
        'parse-budget': this.acs.parseBudgetRefusals,
        connections: this.acs.peerLimits.counts.connectionsRefused,
        'new-sessions': this.acs.peerLimits.counts.sessionsRefused,
      }),
    });
  }

  async start(): Promise<void> {
    await this.store.ready?.();
    if (this.engine instanceof ClusterSessionEngine) await this.engine.start();
    const restored = await this.engine.restoreQueue();
    await this.usp.start();
    await this.bulkDataScheduler.start(await this.bulkData.restore((await this.store.listDevices()).map((d) => d.endpointId)));
    await this.events.start();
    await this.migration.service.restore(await this.store.listDevices({ limit: 100_000 }));
    if (this.cluster) await this.cluster.start();
    else await this.finishOrphanRequests(this.usp.localAgent.requestsAfterRestart());
    await this.nat?.start();
    this.xmpp?.start();
    this.acsPort = await this.acs.listen();
    if (this.cluster && this.engine instanceof ClusterSessionEngine)
      this.forwarder = startForwarding(this.config, this.acsPort, this.cluster, this.engine, this.log);
    const store = this.cluster ? `redis (instance ${this.cluster.instanceId})` : this.config.store.path;
    this.log.info({ port: this.acsPort, restoredRpcs: restored, store }, 'ACS listening');
    if (this.config.acs.auth.mode === 'none' && !isLoopbackHost(this.config.acs.host)) {
      // docs/security.md "CPE authentication": anyone reaching the port can register or impersonate devices.
      this.log.warn(
        { host: this.config.acs.host, port: this.acsPort },
        'ACS listens beyond loopback with acs.auth.mode none: any peer can impersonate any device; set acs.auth (digest, perDevice) in production',
      );
    }
  }

  /**
   * Async commands that were running when the proxy stopped (their Request rows are stored):
   * a Reboot/FactoryReset completes when the device boots; anything else cannot be followed any
   * more and finishes with 7022 saying so — the controller always gets its OperationComplete.
   */
  private async finishOrphanRequests(rows: { agentEid: string; path: string; values: Record<string, string> }[]): Promise<void> {
    for (const r of rows) {
      const command = r.values.Command ?? '';
      const dot = command.lastIndexOf('.');
      const objPath = command.slice(0, dot + 1);
      const commandName = command.slice(dot + 1);
      const commandKey = r.values.CommandKey ?? '';
      const finish = (ok: boolean, errMsg = ''): void => {
        this.usp.localAgent.finishRequest(r.agentEid, r.path);
        this.usp.notifier.operationComplete(
          r.agentEid,
          ok
            ? { objPath, commandName, commandKey, reqOutputArgs: { outputArgs: {} } }
            : { objPath, commandName, commandKey, cmdFailure: { errCode: 7022, errMsg } },
          r.path,
        );
      };
      const device = await this.store.getDeviceByEndpointId(r.agentEid);
      if (device && (command === 'Device.Reboot()' || command === 'Device.FactoryReset()')) {
        void this.commands
          .awaitBoot(device.deviceKey)
          .then((ok) => finish(ok, ok ? '' : `${command}: the device did not report back after the proxy restarted`));
      } else {
        finish(false, `the proxy restarted while ${command} was running; its outcome is unknown`);
      }
    }
  }

  /**
   * The admin side (admin API, status page, /metrics, /healthz, /readyz) on admin.port. Started
   * by `cwmp-usp-proxy start`; library users and tests start it when they want it.
   */
  async startAdmin(): Promise<number> {
    const admin = this.config.admin;
    {
      if (!admin.enabled) return 0;
      let token = admin.token;
      if (!token) {
        // Never log a secret: a generated token goes to a file only the proxy's user can read.
        token = randomBytes(24).toString('base64url');
        const file = path.join(this.config.dataDir, 'admin-token');
        secureDataDir(this.config.dataDir, 'dataDir', []);
        writeFileSync(file, token + '\n', { mode: 0o600 });
        chmodSync(file, 0o600); // a file left by an older version may be looser
        this.log.info({ file }, 'admin.token not configured: generated one and wrote it to this file');
      }
      this.admin = new AdminServer(this.adminPorts(), {
        host: admin.host,
        port: admin.port,
        token,
        allowedHosts: admin.allowedHosts,
        metricsPublic: admin.metricsPublic,
        tasks: { maxTasks: admin.tasks.max, keepMs: admin.tasks.keepS * 1000, deadlineMs: admin.tasks.deadlineS * 1000 },
      });
      this.adminPort = await this.admin.start();
      this.log.info({ port: this.adminPort }, 'admin API, status page, /metrics, /healthz and /readyz listening');
    }
    return this.adminPort;
  }

  /** What the admin side reads and does (an AdminServer of one's own, e.g. in tests). */
  adminPorts(): AdminPorts {
    return {
      store: this.store,
      storeWrites: () => this.storeHealth.check(),
      engine: this.engine,
      connectionRequest: (deviceKey, url, creds) => this.connReq.request(deviceKey, url, creds),
      acsPort: () => (this.acs.server.listening ? this.acsPort : 0),
      mtps: () => this.usp.mtps.map((m) => m.status()),
      controllers: this.config.controllers,
      onlineWindowS: this.config.acs.onlineWindowS,
      metrics: this.metrics,
      log: this.log,
      learned: async (d) => {
        const [capabilities, valueChange] = await Promise.all([this.interworking.capabilities(d), this.events.watch.describe(d)]);
        return { capabilities, valueChange };
      },
      setPollInterval: (d, instance, seconds) => this.events.watch.setPollInterval(d, instance, seconds),
      endpointIdScheme: this.config.usp.endpointIdScheme,
      lastConnectionRequest: (deviceKey) => this.connReqOutcomes.get(deviceKey),
      console: { router: this.usp.router, trace: this.trace, nativePaths: (d, paths, scope) => this.interworking.tr098.nativePaths(d, paths, scope) },
      migration: this.migration.api,
      tasks: {
        enqueue: (deviceKey, rpc, opts) => this.engine.enqueue(deviceKey, rpc, opts),
        inSession: async (deviceKey) => (await this.engine.deviceState(deviceKey)).inSession,
        read: async (deviceKey, what) => {
          const d = await this.store.getDevice(deviceKey);
          if (!d) throw new Error(`no device ${deviceKey}`);
          const a = await this.interworking.open(d);
          if ('names' in what) return a.gpv(what.names);
          // A refresh learns the subtree's names again (instances may have come and gone).
          a.tree.markStale(what.object);
          await a.learnSubtree(what.object);
          return a.gpv(a.tree.paramsUnder(what.object));
        },
        onInform: (listener) => this.engine.on('inform', (e) => listener(e.device.deviceKey)),
        connectionRequest: async (deviceKey) => {
          const d = await this.store.getDevice(deviceKey);
          if (!d) return { ok: false, detail: 'no such device' };
          const creds = d.connReqUsername ? { username: d.connReqUsername, password: d.connReqPassword ?? '' } : null;
          const r = await this.connReq.request(deviceKey, d.connectionRequestUrl ?? '', creds);
          return r.ok ? { ok: true } : { ok: false, detail: r.detail };
        },
      },
      reach: (d) => {
        const b = this.nat?.bindings.get(d.deviceKey);
        return {
          transports: this.connReq.plan(d.deviceKey, d.connectionRequestUrl),
          udpConnectionRequestAddress: b ? `${b.host.includes(':') ? `[${b.host}]` : b.host}:${b.port}` : null,
          jabberId: this.xmpp?.jids.get(d.deviceKey) ?? null,
        };
      },
      bulkData: bulkDataApiPorts(this.bulkData, this.bulkDataScheduler),
    };
  }

  /** Stops accepting, ends sessions (queued RPCs stay in the store), closes the store. */
  async stop(): Promise<void> {
    await this.admin?.stop();
    await this.migration.stop();
    this.events.close();
    this.bulkDataScheduler.stop();
    await this.bulkDataScheduler.flushed();
    await this.bulkData.flushed();
    await this.usp.stop();
    await this.acs.close();
    this.forwarder?.close();
    this.connReq.close();
    await this.nat?.stop();
    await this.xmpp?.stop();
    await this.engine.close();
    await this.cluster?.stop();
    await this.shared?.bus.close();
    await this.decoder.close();
    await this.store.close();
  }
}

/** 127.0.0.0/8, ::1 and localhost: the ACS is reachable from this machine only. */
export function isLoopbackHost(host: string): boolean {
  const h = host
    .trim()
    .toLowerCase()
    .replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h) || h === '::ffff:127.0.0.1';
}

/** Whether `file` lies inside `dir` (both resolved). */
function isInside(file: string, dir: string): boolean {
  const rel = path.relative(path.resolve(dir), path.resolve(file));
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}
