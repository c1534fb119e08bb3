/**
 * The USP Agent side, wired from the configuration: MTPs, the endpoint (routing and trust),
 * the data-model router with the proxy's own Device.LocalAgent. backend, and the agent
 * directory kept in step with the device registry. Depends only on the store and on the
 * registry's "a device registered" signal, not on CWMP internals.
 */
import { readFileSync } from 'node:fs';
import type { Config } from '../../app/config.js';
import type { Logger } from '../../app/log.js';
import type { Store } from '../../store/types.js';
import path from 'node:path';
import { projectRoot } from '../../util/assets.js';
import { DmRouter } from '../dm/router.js';
import type { DmBackend } from '../dm/types.js';
import { AgentDirectory, UspEndpoint } from './endpoint.js';
import { LocalAgent, SUPPORTED_USP_VERSIONS } from './local-agent.js';
import type { Mtp } from '../mtp/types.js';
import { WebSocketMtp } from '../mtp/websocket.js';
import { MqttMtp } from '../mtp/mqtt.js';
import { StompMtp } from '../mtp/stomp.js';
import { type DeviceIdentity, Notifier, type NotifierOptions } from './notify.js';
import { type Coordination, SingleInstance } from './coordination.js';
import { loadClientTls, loadServerTls, readPem, withSystemRoots } from '../../util/tls.js';
import { getLimits } from '../handlers/context.js';
import { ControllerIdentities } from './controller-identity.js';

/** Addresses that only this machine can reach. */
const isLoopback = (host: string): boolean => host === 'localhost' || host === '::1' || /^127\./.test(host);

export function proxyVersion(): string {
  try {
    return (JSON.parse(readFileSync(path.join(projectRoot(), 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
}

export interface AgentSideOptions {
  config: Config;
  store: Store;
  log: Logger;
  /** The devices' own data models, after Device.LocalAgent. (served here). */
  deviceBackends?: DmBackend[];
  /** Several instances sharing one store (default: this one alone). */
  coordination?: Coordination;
  /** The device behind an agent, for OnBoardRequest. */
  deviceIdentity?: (agentEid: string) => Promise<DeviceIdentity | null>;
  /** Notifications an agent does not send (NotifierOptions.quiet). */
  quiet?: NotifierOptions['quiet'];
}

export class AgentSide {
  readonly agents = new AgentDirectory();
  readonly localAgent: LocalAgent;
  readonly router: DmRouter;
  readonly endpoint: UspEndpoint;
  readonly notifier: Notifier;
  readonly mtps: Mtp[] = [];
  readonly ws: WebSocketMtp | null = null;
  private readonly store: Store;
  private readonly log: Logger;
  private readonly coordination: Coordination;

  constructor(opts: AgentSideOptions) {
    const { config, store, log } = opts;
    this.store = store;
    this.log = log;
    this.coordination = opts.coordination ?? new SingleInstance();
    const usp = config.usp;
    const mtpLog = (level: 'debug' | 'info' | 'warn', msg: string, extra?: object): void => log[level]({ ...extra }, msg);
    const backoff = { baseMs: usp.reconnectBaseMs, maxMs: usp.reconnectMaxMs };
    // Who is speaking: read once (secret files too), shared by the WebSocket handshake and the endpoint.
    const identities = new ControllerIdentities(config.controllers, { requireWsAuth: usp.websocket.requireAuth, allowUntrusted: usp.allowUntrusted });
    const wsControllers = config.controllers.filter((c) => c.websocket.url).map((c) => ({ endpointId: c.endpointId, url: c.websocket.url }));
    // TLS material is read once, here: a bad path fails start-up naming the config key and the file.
    const insecure = (key: string): void => log.warn(`${key}.insecure is set: the broker's certificate is NOT verified (labs only)`);
    if (usp.websocket.enabled || wsControllers.length > 0) {
      const serverTls = usp.websocket.enabled ? loadServerTls('usp.websocket.tls', usp.websocket.tls) : null;
      const clientTls = usp.websocket.clientCa ? { ca: withSystemRoots(readPem('usp.websocket.clientCa', usp.websocket.clientCa)) } : null;
      this.ws = new WebSocketMtp({
        server: usp.websocket.enabled
          ? {
              host: usp.websocket.host,
              port: usp.websocket.port,
              path: usp.websocket.path,
              maxRecordBytes: usp.maxRecordBytes,
              pingIntervalMs: usp.websocket.pingIntervalMs,
              tls: serverTls,
              authenticate: (facts) => identities.decideWs(facts),
              handshakeTimeoutMs: usp.websocket.handshakeTimeoutMs,
              maxUntrustedConnections: usp.websocket.maxUntrustedConnections,
              maxUntrustedConnectionsPerAddress: usp.websocket.maxUntrustedConnectionsPerAddress,
              untrustedIdleTimeoutMs: usp.websocket.untrustedIdleTimeoutMs,
            }
          : null,
        client: wsControllers.length
          ? { controllers: wsControllers, pingIntervalMs: usp.websocket.pingIntervalMs, backoff, maxRecordBytes: usp.maxRecordBytes, tls: clientTls }
          : null,
        isAgent: (eid) => this.agents.has(eid),
        log: mtpLog,
      });
      this.mtps.push(this.ws);
      if (usp.websocket.enabled) warnOpenWebSocket(config, identities, log);
    }
    if (usp.mqtt.url) {
      const mqttTls = /^(mqtts|wss):/i.test(usp.mqtt.url) ? loadClientTls('usp.mqtt.tls', usp.mqtt.tls) : null;
      if (mqttTls?.insecure) insecure('usp.mqtt.tls');
      this.mtps.push(
        new MqttMtp({
          url: usp.mqtt.url,
          protocolVersion: usp.mqtt.protocolVersion === 4 ? 4 : 5,
          clientId: usp.mqtt.clientId || undefined,
          username: usp.mqtt.username || undefined,
          password: usp.mqtt.password || undefined,
          keepaliveS: usp.mqtt.keepaliveS,
          agentTopic: usp.mqtt.topic,
          boundTopics: config.controllers.map((c) => c.mqtt.agentTopic).filter((t) => t !== ''),
          // Several instances: each Record to one of them (MQTT 5 shared subscription).
          shareGroup: config.store.redis.url ? config.cluster.shareGroup : undefined,
          connectEndpointId: usp.proxyEndpointId,
          maxRecordBytes: usp.maxRecordBytes,
          backoff,
          log: mtpLog,
          tls: mqttTls,
        }),
      );
    }
    if (usp.stomp.host) {
      const stompTls = usp.stomp.tls.enabled ? loadClientTls('usp.stomp.tls', usp.stomp.tls) : null;
      if (stompTls?.insecure) insecure('usp.stomp.tls');
      this.mtps.push(
        new StompMtp({
          host: usp.stomp.host,
          port: usp.stomp.port,
          vhost: usp.stomp.vhost,
          login: usp.stomp.login,
          passcode: usp.stomp.passcode,
          endpointId: usp.proxyEndpointId,
          destination: usp.stomp.destination,
          heartbeatMs: { outgoing: usp.stomp.heartbeatMs, incoming: usp.stomp.heartbeatMs },
          maxRecordBytes: usp.maxRecordBytes,
          backoff,
          log: mtpLog,
          tls: stompTls,
        }),
      );
    }
    const connected = (kind: Mtp['kind']): boolean => this.mtps.find((m) => m.kind === kind)?.status().connected ?? false;
    this.localAgent = new LocalAgent(config, store, proxyVersion(), {
      mtpStatus: () => ({ websocket: connected('websocket'), mqtt: connected('mqtt'), stomp: connected('stomp') }),
      coordination: this.coordination,
    });
    this.router = new DmRouter([this.localAgent.model, ...(opts.deviceBackends ?? [])]);
    // The handlers report OperationComplete and NotifyResp to the notifier, which sends through
    // the endpoint: the closures below reach the notifier built right after the endpoint.
    let notifier: Notifier | null = null;
    this.endpoint = new UspEndpoint({
      agents: this.agents,
      controllers: config.controllers,
      mtps: this.mtps,
      context: {
        router: this.router,
        localAgent: this.localAgent,
        versions: SUPPORTED_USP_VERSIONS,
        limits: getLimits(usp),
        operationComplete: (agentEid, n, requestPath) => notifier?.operationComplete(agentEid, n, requestPath),
        notifyResp: (agentEid, controllerEid, msgId) => notifier?.acknowledged(agentEid, controllerEid, msgId),
      },
      log: log.child({ module: 'usp' }),
      identities,
      maxInFlightPerController: usp.maxRequestsInFlightPerController,
      requestRatePerController: usp.requestRatePerController,
      requestBurstPerController: usp.requestBurstPerController,
      agentAddresses: { mqtt: usp.mqtt.topic, stomp: usp.stomp.destination },
      coordination: this.coordination,
    });
    notifier = new Notifier({
      localAgent: this.localAgent,
      router: this.router,
      endpoint: this.endpoint,
      usp,
      log: log.child({ module: 'notify' }),
      store,
      coordination: this.coordination,
      deviceIdentity: opts.deviceIdentity,
      quiet: opts.quiet,
    });
    this.notifier = notifier;
  }

  async start(): Promise<void> {
    // Non-persistent subscriptions too: they end with the device's reboot, not this process.
    await this.localAgent.restore();
    for (const d of await this.store.listDevices()) this.agents.add(d.endpointId);
    await this.endpoint.start();
    await this.notifier.start(this.localAgent.agentsWithSubscriptions());
    this.log.info({ agents: this.agents.size, mtps: this.mtps.map((m) => m.status().detail) }, 'USP agents up');
  }

  /** A device registered (or informed): its agent exists here, and on the other instances too. */
  deviceSeen(endpointId: string): void {
    if (this.agents.has(endpointId)) return;
    this.endpoint.addAgent(endpointId);
    this.coordination.announceAgent(endpointId);
  }

  async stop(): Promise<void> {
    this.notifier.stop();
    this.localAgent.close();
    await this.endpoint.stop();
  }
}

/**
 * A WebSocket listener reachable beyond this machine where controllers are trusted on the
 * Endpoint ID they state: anyone who can reach the port may speak as them. Said once at start.
 */
function warnOpenWebSocket(config: Config, identities: ControllerIdentities, log: Logger): void {
  const ws = config.usp.websocket;
  if (isLoopback(ws.host)) return;
  const viaCa = ws.tls.cert !== '' && ws.tls.ca !== '';
  if (ws.requireAuth) {
    if (!identities.anyWsCredential && !viaCa)
      log.warn(
        { host: ws.host, port: ws.port },
        'usp.websocket.requireAuth is set but no controller has a credential (websocket.secretFile, tls.fingerprint) and usp.websocket.tls.ca is empty: every WebSocket controller will be refused',
      );
    return;
  }
  const open = identities.withoutWsCredential();
  if (open.length === 0) return;
  log.warn(
    { host: ws.host, port: ws.port, controllers: open },
    `the USP WebSocket listener is reachable beyond loopback and ${open.length === config.controllers.length ? 'no controller has a credential' : 'these controllers have no credential'}: anyone reaching it can speak as them. Give each controller websocket.secretFile or tls.fingerprint (or use usp.websocket.tls.ca certificates), and set usp.websocket.requireAuth`,
  );
}
