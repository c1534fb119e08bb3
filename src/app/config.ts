/**
 * One typed options table with defaults, environment overrides and a clear error naming
 * any bad key. Precedence: CLI > environment > file > defaults.
 *
 * Environment names are derived from the key path: `CUP_` + each segment in UPPER_SNAKE,
 * joined by `__`. Example: acs.connectionRequest.timeoutMs -> CUP_ACS__CONNECTION_REQUEST__TIMEOUT_MS.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { splitTargets, trustConfigProblem } from '../usp/trust/roles.js';
import { parseCidr } from '../util/cidr.js';
import { lazyRequire } from '../util/lazy-require.js';

/** Only a YAML config file or a list given as text needs the parser: the default start does without. */
const yaml = lazyRequire<typeof import('yaml')>('yaml');

/**
 * The schema is the single declaration of every key: its type, default, bounds and meaning.
 * `Config` and the named sub-types below are inferred from it.
 */
interface StringLeaf<T extends string = string> {
  kind: 'string';
  def: T;
  enum?: readonly T[];
  /** Never shown in errors or --help. */
  secret?: boolean;
}
interface IntLeaf {
  kind: 'int';
  def: number;
  min: number;
  max: number;
}
interface BoolLeaf {
  kind: 'bool';
  def: boolean;
}
/** A list of strings: a YAML list, or one comma-separated string (environment, command line). */
interface StringsLeaf {
  kind: 'strings';
  def: string[];
}
interface ListLeaf<S extends Schema = Schema> {
  kind: 'list';
  def: unknown[];
  item: S;
  required: readonly string[];
}
type Leaf = StringLeaf | IntLeaf | BoolLeaf | StringsLeaf | ListLeaf;
type Schema = { [key: string]: Leaf | Schema };

/** The value type a schema node declares. */
type Infer<S> =
  S extends StringLeaf<infer T>
    ? T
    : S extends IntLeaf
      ? number
      : S extends BoolLeaf
        ? boolean
        : S extends StringsLeaf
          ? string[]
          : S extends ListLeaf<infer I>
            ? Infer<I>[]
            : { [K in keyof S]: Infer<S[K]> };

const str = (def: string, opts: { secret?: boolean } = {}): StringLeaf => ({ kind: 'string', def, ...opts });
const oneOf = <const T extends string>(values: readonly T[], def: NoInfer<T>): StringLeaf<T> => ({ kind: 'string', def, enum: values });
const int = (def: number, min: number, max: number): IntLeaf => ({ kind: 'int', def, min, max });
const bool = (def: boolean): BoolLeaf => ({ kind: 'bool', def });
const strings = (): StringsLeaf => ({ kind: 'strings', def: [] });
const list = <S extends Schema>(item: S, required: readonly (keyof S & string)[]): ListLeaf<S> => ({ kind: 'list', def: [], item, required });

const MAX_MS = 7 * 24 * 3600 * 1000;

/** PEM file paths for a TLS server (cert '' = TLS off); ca: trusted CA for client certificates. */
const tlsServer = () => ({ cert: str(''), key: str(''), ca: str('') });
/** TLS as a client: ca to trust (besides the system's), optional client cert/key. */
const tlsClient = () => ({
  ca: str(''),
  cert: str(''),
  key: str(''),
  /** Skip certificate verification (labs only; logged as a warning). */
  insecure: bool(false),
});

const SCHEMA = {
  dataDir: str('./data'),
  acs: {
    host: str('0.0.0.0'),
    port: int(7547, 0, 65535),
    /** Largest CPE request body accepted (bytes); larger gets 413. */
    maxBodyBytes: int(8 * 1024 * 1024, 1024, 512 * 1024 * 1024),
    /**
     * Largest body of a request not yet authenticated (no credentials checked from its headers,
     * not in an authenticated session): an Inform that opens a session under auth none.
     */
    preAuthMaxBodyBytes: int(64 * 1024, 1024, 512 * 1024 * 1024),
    /**
     * Reverse proxies / balancers in front of the ACS (CIDR list): their X-Forwarded-For gives the
     * client address, and a POST through them joins a session only by its cookie.
     */
    trustedProxies: strings(),
    /**
     * A known device whose TLS certificate identity or ConnectionRequestURL host changed:
     * refuse (403) or log a security event and go on.
     */
    identityPolicy: oneOf(['refuse', 'log'], 'log'),
    /** An idle CWMP session ends after this (ms); its in-flight RPC fails. */
    sessionTimeoutMs: int(30_000, 10, MAX_MS),
    /**
     * Bodies of this size and larger are decoded on a worker thread, so other sessions do not stall.
     * 0 (default): every body. The event loop, not the CPU, caps the ACS under load; the XML parse
     * is its largest single cost (issue 22 item 5, docs/benchmarks.md).
     */
    workerThresholdBytes: int(0, 0, 512 * 1024 * 1024),
    /**
     * While the main thread's event loop is busy less than inlineDecodeBusyPercent of the time,
     * bodies up to this size are parsed inline instead: a worker round trip adds 0.1-0.2 ms to
     * every RPC of a session, and an idle main thread has the time. 0: workerThresholdBytes alone.
     */
    inlineDecodeBytes: int(8192, 0, 1024 * 1024),
    inlineDecodeBusyPercent: int(75, 1, 100),
    /** Worker threads for decoding (0 disables: everything is decoded inline). */
    parseWorkers: int(1, 0, 64),
    /**
     * Bodies this size and larger are decoded on a worker of their own, so that a big answer's
     * 20-30 ms parse does not hold up the small bodies of other sessions (0: no such worker).
     */
    bulkParseBytes: int(65_536, 0, 512 * 1024 * 1024),
    /**
     * The nice value of that worker's thread (Linux; 0: as the proxy). Where cores are few, a big
     * answer's parse then yields the CPU to the main thread and the other sessions, which a 30 ms
     * parse at equal priority delays by 10-30 ms (bench:informs, big-response stall).
     */
    bulkParseNice: int(10, 0, 19),
    /** No CWMP body at all for this long (ms; the big-body worker: no big body): a decode worker stops and frees its memory; the next body starts one (0: never). */
    parseWorkerIdleMs: int(10_000, 0, MAX_MS),
    /** Send cwmp:HoldRequests=true while the ACS has queued RPCs (TR-069 3.7.1.4): ACS RPCs run first. */
    holdRequests: bool(false),
    /** Set random per-device ConnectionRequestUsername/Password on BOOTSTRAP (and when none is known). */
    setConnectionRequestCredentials: bool(true),
    /** A device whose last Inform is older than this many seconds is listed as offline. */
    onlineWindowS: int(3600, 1, 365 * 24 * 3600),
    /** Concurrent CWMP sessions above which new Informs get 503 + Retry-After (load shedding). */
    maxSessions: int(20_000, 1, 10_000_000),
    /** After answering an RPC of a USP request, a session waits this long (ms) for its follow-up RPC before 204. */
    lingerMs: int(300, 0, 60_000),
    /** Read-only RPCs (Get*) reach the store only when still queued this long (ms; 0: at once). docs/reliability.md */
    persistReadOnlyAfterMs: int(100, 0, 60_000),
    /**
     * A CPE that closes its TCP connection with an RPC in flight and neither posts again nor sends a
     * new Inform within this many ms: the RPC fails at once, not at the session timeout (0 disables).
     */
    droppedConnectionGraceMs: int(3000, 0, MAX_MS),
    /** HTTPS for the ACS URL: PEM files; cert '' = plain HTTP. */
    tls: {
      ...tlsServer(),
      /** Same as clientCert: require (kept for existing configurations). */
      requestClientCert: bool(false),
      /**
       * CPE certificates (signed by ca) as device identity, bound to the device at first use:
       * request (optional) or require (the TLS handshake fails without one).
       */
      clientCert: oneOf(['off', 'request', 'require'], 'off'),
    },
    auth: {
      mode: oneOf(['none', 'basic', 'digest'], 'none'),
      realm: str('cwmp-usp-proxy'),
      /** Shared pair; a device's own credentials in the store take precedence. */
      username: str(''),
      password: str('', { secret: true }),
      /**
       * Per-device credentials: the shared pair only bootstraps a device that has none; its first
       * session gives it a random ManagementServer.Username/Password, which alone opens its sessions.
       */
      perDevice: bool(false),
      /** A Digest nonce expires after this (ms); a request with an expired one gets stale=true. */
      nonceMaxAgeMs: int(300_000, 1000, MAX_MS),
    },
    /** What one peer may cost the ACS (docs/security.md "Limits per peer"). */
    limits: {
      /** Budget of one request body's decode; over it the request gets 413. */
      parse: {
        /** Elements in one body (a real 8 MB GetParameterValuesResponse has ~225,000). */
        maxElements: int(500_000, 100, 100_000_000),
        /** Attributes in one body (one xsi:type per Value in real bodies). */
        maxAttributes: int(250_000, 100, 100_000_000),
        /** Wall time of one decode (ms). */
        maxMs: int(5_000, 10, 600_000),
      },
      /** Decode warnings logged per request; the rest are summed up in one line. */
      maxLogLinesPerRequest: int(20, 0, 10_000),
      /** Per source address on the ACS listener (TCP peer address: behind a reverse proxy, the proxy's). */
      perAddress: {
        /** Open connections from one address; beyond, new ones are closed at once (0 = no limit). */
        maxConnections: int(256, 0, 10_000_000),
        /** Requests that open a new CWMP session, per address and minute (token bucket; 0 = no limit); beyond, 503 + Retry-After. */
        newSessionsPerMinute: int(600, 0, 100_000_000),
        /** Loopback addresses (127.0.0.0/8, ::1) are not limited: labs run whole fleets there, and a reverse proxy on the host connects from them. */
        exemptLoopback: bool(true),
      },
    },
    connectionRequest: {
      /** One connection request attempt (ms). */
      timeoutMs: int(5000, 10, MAX_MS),
      /** Default deadline of an enqueued RPC (ms): not sent by then, it fails as "device unreachable". */
      deadlineMs: int(30_000, 10, MAX_MS),
      retries: int(2, 0, 100),
      retryDelayMs: int(1000, 0, MAX_MS),
      maxDelayMs: int(10_000, 0, MAX_MS),
      maxConcurrent: int(200, 1, 100_000),
      /**
       * CIDR blocks a ConnectionRequestURL's (resolved) address must be in; empty: every address.
       * Link-local, multicast and unspecified addresses and the proxy's own ports are never targets.
       */
      allow: strings(),
      /** Ports a ConnectionRequestURL may name; empty: any. */
      ports: strings(),
      /** Answer a CPE's Basic challenge (credentials in clear); Digest only otherwise. */
      allowBasic: bool(false),
      /** Connection requests per second to one target address (more wait their turn). */
      perAddressPerSecond: int(200, 1, 1_000_000),
      /** Transports tried in order (http, udp, xmpp); empty = http, udp, xmpp. A device is tried first over the one that last reached it. */
      order: strings(),
      /** UDP connection requests through the proxy's STUN server, for CPEs behind NAT (TR-069 Annex G, TR-111; docs/nat.md). */
      udp: {
        enabled: bool(false),
        /** STUN server listen address and UDP port; connection requests leave from it too (0 = any free port). */
        host: str('0.0.0.0'),
        port: int(3478, 0, 65535),
        /** Binding Requests answered per source address per second (burst twice that). */
        ratePerSecond: int(10, 1, 1_000_000),
        /** STUNServerAddress set on CPEs on BOOTSTRAP ('' = leave the CPE's STUN settings alone). */
        stunServerAddress: str(''),
        /** STUNServerPort set on CPEs (0 = the listen port). */
        stunServerPort: int(0, 0, 65535),
        /** STUNMinimumKeepAlivePeriod set on CPEs (s). */
        keepAliveS: int(30, 1, 86_400),
        /** Secret from which each CPE's STUNPassword is derived (set on BOOTSTRAP); Binding Requests must then carry MESSAGE-INTEGRITY. '' = none. */
        stunSecret: str('', { secret: true }),
        /** How long a UDP connection request waits for the CPE's session (ms). */
        timeoutMs: int(10_000, 10, MAX_MS),
        /** Copies after the first, the first repeat after retransmitMs, doubling. */
        retransmissions: int(4, 0, 20),
        retransmitMs: int(500, 1, MAX_MS),
      },
      /** XMPP connection requests (TR-069 Annex K): the proxy logs in to the operator's XMPP server (docs/nat.md). */
      xmpp: {
        enabled: bool(false),
        /** xmpp://host:5222 (STARTTLS when offered) or xmpps://host:5223. */
        service: str('xmpp://127.0.0.1:5222'),
        /** The XMPP domain ('' = the service's host). */
        domain: str(''),
        username: str('acs'),
        password: str('', { secret: true }),
        resource: str('cwmp-usp-proxy'),
        /** Wait for the CPE's IQ answer (ms). */
        timeoutMs: int(5000, 10, MAX_MS),
      },
    },
  },
  usp: {
    /** Endpoint ID authority scheme for the agents (TR-369 R-ARC.2a): os::OUI-Serial or ops::OUI-ProductClass-Serial. */
    endpointIdScheme: oneOf(['os', 'ops'], 'os'),
    /** A new device whose os:: ID another ProductClass holds (same OUI and serial): 'ops' registers it as ops::, 'refuse' answers 403. */
    endpointIdCollision: oneOf(['ops', 'refuse'], 'ops'),
    /** The proxy's own identity on shared broker connections (MQTT usp-endpoint-id, STOMP endpoint-id). */
    proxyEndpointId: str('proto::cwmp-usp-proxy'),
    /** Records larger than this are dropped (WebSocket: closed with 1009). */
    maxRecordBytes: int(5 * 1024 * 1024, 1024, 256 * 1024 * 1024),
    /** Requests one controller may have in progress at once; beyond, USP Error 7005 (flood guard). */
    maxRequestsInFlightPerController: int(256, 1, 1_000_000),
    /** Parameters one GetResp may carry; a requested path beyond it answers 7005 (its bytes stay below maxRecordBytes too). */
    maxGetParams: int(20_000, 1, 10_000_000),
    /**
     * Requests per second one controller may send on average (token bucket, burst below); beyond,
     * USP Error 7002 naming the limit. Untrusted controllers share one bucket.
     */
    requestRatePerController: int(100, 1, 1_000_000),
    /** Requests a controller may send at once before the rate above applies. */
    requestBurstPerController: int(200, 1, 1_000_000),
    /**
     * A controller that fails authentication (wrong or missing WebSocket secret or certificate for a
     * configured Endpoint ID, MQTT Record off its bound topic) is answered as untrusted (USP Error
     * 7006) instead of refused (WebSocket 401) or dropped. Controllers that are not configured are
     * always answered as untrusted.
     */
    allowUntrusted: bool(false),
    websocket: {
      enabled: bool(true),
      host: str('0.0.0.0'),
      port: int(8080, 0, 65535),
      path: str('/usp'),
      pingIntervalMs: int(30_000, 10, MAX_MS),
      /**
       * false (default): a configured controller that has a credential (websocket.secret or
       * secretFile, tls.fingerprint) must present it, one without is trusted on its stated
       * Endpoint ID (labs). true: every controller must prove its Endpoint ID (a secret, a pinned
       * certificate, or a certificate from tls.ca naming it in subjectAltName).
       */
      requireAuth: bool(false),
      /** A connection that has not completed its WebSocket handshake by then is closed (ms). */
      handshakeTimeoutMs: int(10_000, 100, 600_000),
      /** A connection of an untrusted controller that sends no USP Record for this long is closed with 1008 (ms; 0 = never). */
      untrustedIdleTimeoutMs: int(60_000, 0, MAX_MS),
      /** Open connections of untrusted controllers (not configured, or failed authentication) at once. */
      maxUntrustedConnections: int(64, 0, 1_000_000),
      /** The same, per remote address. */
      maxUntrustedConnectionsPerAddress: int(8, 0, 1_000_000),
      tls: tlsServer(),
      /** CA to trust when dialing controllers over wss:// (besides the system's). */
      clientCa: str(''),
    },
    mqtt: {
      /** Broker URL; '' = MQTT off. */
      url: str(''),
      topic: str('/usp/endpoint'),
      protocolVersion: int(5, 4, 5),
      clientId: str(''),
      username: str(''),
      password: str('', { secret: true }),
      keepaliveS: int(60, 0, 65535),
      tls: tlsClient(),
    },
    stomp: {
      /** Broker host; '' = STOMP off. */
      host: str(''),
      port: int(61613, 1, 65535),
      vhost: str('/'),
      login: str('guest'),
      passcode: str('guest', { secret: true }),
      destination: str('/queue/usp.agent'),
      heartbeatMs: int(10_000, 0, MAX_MS),
      tls: { enabled: bool(false), ...tlsClient() },
    },
    /** Notify retry (TR-369 "Notify retry"): m seconds and k/1000 multiplier, per controller. */
    notifRetryMinWaitS: int(5, 0, 65535),
    notifRetryMultiplier: int(2000, 1000, 65535),
    /** Device.LocalAgent.Controller.{i}.PeriodicNotifInterval default (s). */
    periodicNotifIntervalS: int(86_400, 1, 4_294_967_295),
    /** Reconnect backoff of MTP connections (ms). */
    reconnectBaseMs: int(1000, 1, MAX_MS),
    reconnectMaxMs: int(60_000, 1, MAX_MS),
  },
  /** Device.BulkData. served by the proxy for every agent (TR-181 BulkData, docs/bulkdata.md). */
  bulkData: {
    /** Device.BulkData.MinReportingInterval (s): a Profile.{i}.ReportingInterval below it is refused (7012). */
    minReportingIntervalS: int(60, 1, 4_294_967_295),
    /** Device.BulkData.MaxNumberOfProfiles per agent. */
    maxProfiles: int(16, 0, 10_000),
    /** Device.BulkData.MaxNumberOfParameterReferences per agent (all profiles' Parameter rows). */
    maxParameterReferences: int(256, 1, 100_000),
    /** Connection requests per second, fleet-wide, that collections may cause (those riding periodic Informs need none). */
    connectionRequestsPerSecond: int(20, 1, 100_000),
    /** How late an expected periodic Inform may come before its collection wakes the device instead (ms). */
    periodicInformGraceMs: int(30_000, 0, MAX_MS),
    /** Set each device's PeriodicInformInterval/PeriodicInformTime to its shortest profile (SPV), so collections ride periodic Informs. */
    alignPeriodicInform: bool(false),
  },
  interworking: {
    /** How long a device may take to report back from Reboot/Download/diagnostics (ms); then 7022. */
    operationTimeoutMs: int(600_000, 10, MAX_MS),
    /**
     * Parameter names per GetParameterValues (full names only, never partial paths). A device model
     * that faults or chokes on long lists gets smaller batches, learned and remembered.
     */
    gpvBatchSize: int(32, 1, 10_000),
    /**
     * Names learned with GetParameterNames are trusted this long (ms), then learned again before use;
     * a BOOT, an Add/Delete through the proxy or a VALUE CHANGE of a NumberOfEntries refreshes sooner.
     */
    namesTtlMs: int(300_000, 0, MAX_MS),
    /**
     * Devices whose learned name tree stays in memory (LRU). A request for a device beyond them reads
     * and parses its tree from the store (bench:e2e: every idle Get of 1,000 devices did at 512).
     * Size it to the devices active at once; a tree's size grows with the device's model.
     */
    deviceTreeCache: int(512, 1, 1_000_000),
    /**
     * never: GetParameterValues carries full names only. probe: a whole object may go as one partial
     * path to a device model until one faults, drops or answers it wrong (then never again for it).
     */
    partialPaths: oneOf(['never', 'probe'], 'never'),
    /**
     * TR-106 vendor token (an OUI, or a domain name in upper case with '.' written '-') of the
     * extension object Device.X_<token>_Native.: a TR-098 device's native tree, and a Device:2
     * device's own LocalAgent./MQTT./STOMP. that the proxy's own objects shadow (docs/mapping.md).
     */
    extensionVendor: str('CWMP-USP-PROXY'),
    /**
     * ValueChange subscriptions the CPE does not serve (it refuses SetParameterAttributes or never
     * sends 4 VALUE CHANGE) are read in the device's periodic Inform sessions. Polling reads them
     * in between too, waking the device every interval: off by default, as on a large fleet every
     * poll is a connection request and a session.
     */
    valueChangePoll: {
      enabled: bool(false),
      /** Interval (s) for every such subscription; 0 = only subscriptions given one through the admin API. */
      intervalS: int(0, 0, 7 * 24 * 3600),
      /** No subscription is polled more often than this (s). */
      minIntervalS: int(60, 1, 7 * 24 * 3600),
      /** Parameters polled at once, summed over every device (bounds the poll work: devices x parameters). */
      maxParameters: int(10_000, 1, 10_000_000),
    },
  },
  /**
   * Migration of dual-stack CPEs to their native USP Agent (docs/migration.md): what is written on
   * the device (its MQTT client and LocalAgent.Controller.1), how the proxy checks the agent, and
   * the fleet rollout's defaults. Migrations need brokerHost, controllerEndpointId and controllerTopic.
   */
  migration: {
    /** Read Device.LocalAgent. on every BOOTSTRAP/BOOT Inform of a Device:2 device (one GetParameterValues each). */
    detectOnInform: bool(false),
    /** The operator's broker as the devices reach it (Device.MQTT.Client.1.BrokerAddress/Port). */
    brokerHost: str(''),
    brokerPort: int(1883, 1, 65535),
    /** TransportProtocol TLS instead of TCP/IP on the device. */
    brokerTls: bool(false),
    brokerUsername: str(''),
    brokerPassword: str('', { secret: true }),
    /** The broker as the proxy reaches it to check the native agent ('' = mqtt(s)://brokerHost:brokerPort). */
    proxyBrokerUrl: str(''),
    /** The device's ResponseTopicConfigured is this prefix + its Endpoint ID. */
    agentTopicPrefix: str('/usp/agent/'),
    /** The operator's controller (LocalAgent.Controller.1.EndpointID and MTP.1.MQTT.Topic). */
    controllerEndpointId: str(''),
    controllerTopic: str(''),
    /** How long the native agent has to answer after it was enabled (ms). */
    appearTimeoutMs: int(120_000, 10, MAX_MS),
    /** Between two Gets while waiting for it (ms). */
    pollIntervalMs: int(2000, 1, MAX_MS),
    /** Deadline of one USP Get to the native agent (ms). */
    requestTimeoutMs: int(10_000, 10, MAX_MS),
    /** Values compared through the native agent and over CWMP before the handover. */
    verifyPaths: strings(),
    /** After the handover the CWMP side stays (true) or its Periodic Inform is switched off (false). */
    keepCwmpFallback: bool(true),
    /** Fleet rollout defaults (a rollout request may give its own). */
    rollout: {
      waveSize: int(10, 1, 100_000),
      /** Migrations started per minute at most. */
      perMinute: int(60, 1, 1_000_000),
      /** Migrations running at once. */
      concurrency: int(4, 1, 1000),
      /** Stop when failed / finished exceeds this percentage (after the first wave). */
      maxFailurePercent: int(20, 0, 100),
    },
  },
  /**
   * TR-369 Controller Trust: Roles beyond the built-in "full" and "read-only" (a Role of the same
   * name replaces the built-in one), and the Role of controllers that are not trusted ('' = none:
   * their requests answer 7006). Served as Device.LocalAgent.ControllerTrust. (docs/controller-trust.md).
   */
  controllerTrust: {
    untrustedRole: str(''),
    roles: list(
      {
        name: str(''),
        permissions: list(
          {
            /** Larger wins where Targets overlap within the Role (TR-181 Permission.{i}.Order). */
            order: int(1, 0, 4_294_967_295),
            /** Path expressions: partial paths cover their subtree; "*" any instance. */
            targets: strings(),
            param: str('----'),
            obj: str('----'),
            instantiatedObj: str('----'),
            commandEvent: str('----'),
          },
          [],
        ),
      },
      ['name'],
    ),
  },
  controllers: list(
    {
      endpointId: str(''),
      /** Role names, comma-separated: the built-in "full" or "read-only", or a controllerTrust.roles name. */
      role: str('full'),
      mqtt: {
        /** Where the agents send to this controller; answers always go here, whatever the Record's Response Topic. */
        topic: str(''),
        /**
         * A topic only this controller may publish to (a broker ACL grants it): the proxy
         * subscribes to it too, and Records from this controller are trusted only when they
         * arrive there.
         */
        agentTopic: str(''),
      },
      stomp: {
        /** Where the agents send to this controller; answers always go here, whatever the Record's reply-to-dest. */
        destination: str(''),
      },
      websocket: {
        url: str(''),
        /** Shared secret the controller presents as `Authorization: Bearer <secret>` in its WebSocket handshake. */
        secret: str('', { secret: true }),
        /** The same, read from this file (surrounding whitespace ignored). */
        secretFile: str(''),
      },
      tls: {
        /** SHA-256 fingerprint(s) of the controller's client certificate (hex, colons optional, comma-separated). */
        fingerprint: str(''),
      },
    },
    ['endpointId'],
  ),
  store: {
    /** SQLite file; '' = <dataDir>/proxy.db. */
    path: str(''),
    /** A shared Redis store for several instances; url '' = SQLite at path. The url may carry a password. */
    redis: { url: str('', { secret: true }), prefix: str('cup:') },
    /**
     * File holding the key (32 bytes, base64) that seals per-device secrets at rest with AES-256-GCM
     * ('' = none; docs/security.md "Secrets at rest"). The environment variable
     * CWMP_USP_PROXY_SECRET_KEY carries the key itself instead.
     */
    secretKeyFile: str(''),
    /** The key itself (base64); set from CWMP_USP_PROXY_SECRET_KEY. Prefer secretKeyFile or that variable to a config file. */
    secretKey: str('', { secret: true }),
  },
  /** Several instances on one Redis store; active when store.redis.url is set. */
  cluster: {
    /** This instance's name in Redis ('' = <hostname>-<pid>-<random>). Unique per running instance. */
    instanceId: str(''),
    /** How often an instance renews its liveness key (ms). */
    heartbeatMs: int(1000, 50, MAX_MS),
    /** An instance whose liveness key is this old is dead; its work is taken over (ms). */
    instanceTtlMs: int(5000, 150, MAX_MS),
    /** MQTT 5 shared subscription group ($share/<group>/...) so one instance takes each USP Record. */
    shareGroup: str('cwmp-usp-proxy'),
    /**
     * Where the other instances reach this instance's ACS to relay a POST of a session served here
     * (docs/scaling.md): '' = http://<acs.host>:<port> when acs.host is one address and acs.tls is
     * off, else none; 'none' = no relay (such a POST moves the session instead).
     */
    acsUrl: str(''),
  },
  log: {
    level: oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], 'info'),
    /** Human-readable lines (pino-pretty) instead of JSON: auto = when stdout is a terminal. */
    pretty: oneOf(['auto', 'on', 'off'], 'auto'),
  },
  admin: {
    enabled: bool(true),
    host: str('127.0.0.1'),
    port: int(7557, 0, 65535),
    /** Bearer token for /api/* (and the status page's data). '' = a random one is generated and logged at start. */
    token: str('', { secret: true }),
    /** How long running CWMP sessions may take to end on SIGTERM/SIGINT (ms). */
    shutdownGraceMs: int(10_000, 0, MAX_MS),
    /**
     * Host header values (names or addresses, no port) the admin side answers; others get 403
     * (DNS rebinding). Empty: the bound address, localhost names, loopback addresses, the machine's
     * hostname (and, bound to a wildcard address, the machine's interface addresses). "*" = any.
     */
    allowedHosts: strings(),
    /** Serve /metrics without the bearer token (a Prometheus without credentials). */
    metricsPublic: bool(false),
    /** Northbound tasks (POST /api/devices/{key}/tasks, docs/nbi.md): kept in memory only. */
    tasks: {
      /** Tasks kept at most; with this many unfinished, new ones get 429. */
      max: int(10_000, 1, 1_000_000),
      /** A finished task is forgotten this long after it finished (s). */
      keepS: int(86_400, 1, 30 * 86_400),
      /** A task's RPC not sent within this long (the device never came back) fails as unreachable (s). */
      deadlineS: int(86_400, 1, 30 * 86_400),
    },
    /** The translation trace of the device console (GET /api/devices/{key}/trace, src/ops/trace.ts): in memory only. */
    trace: {
      /** USP requests kept per device (newest kept). */
      perDevice: int(50, 1, 1000),
      /** Devices traced at once (least recently traced dropped first). */
      maxDevices: int(1000, 1, 1_000_000),
    },
  },
} satisfies Schema;

export type Config = Infer<typeof SCHEMA>;
export type AuthMode = Config['acs']['auth']['mode'];
export type LogLevel = Config['log']['level'];
export type TlsServerConfig = Config['usp']['websocket']['tls'];
export type TlsClientConfig = Config['usp']['mqtt']['tls'];
export type ControllerConfig = Config['controllers'][number];

/** The environment variable that carries the key sealing per-device secrets (base64, 32 bytes). */
export const SECRET_KEY_ENV = 'CWMP_USP_PROXY_SECRET_KEY';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

const isLeaf = (s: Leaf | Schema): s is Leaf => typeof (s as Leaf).kind === 'string' && 'def' in s;

const snake = (k: string): string => k.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
export const envName = (keyPath: string): string => 'CUP_' + keyPath.split('.').map(snake).join('__');

function defaults(schema: Schema): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, s] of Object.entries(schema)) out[k] = isLeaf(s) ? s.def : defaults(s);
  return out;
}

function coerce(leaf: Leaf, raw: unknown, key: string, source: string): unknown {
  const where = `${source}: ${key}`;
  switch (leaf.kind) {
    case 'strings': {
      if (typeof raw === 'string') return splitTargets(raw);
      if (!Array.isArray(raw) || raw.some((x) => typeof x !== 'string' && typeof x !== 'number')) throw new ConfigError(`${where} must be a list of strings`);
      return raw.map(String);
    }
    case 'list': {
      let data = raw;
      if (typeof raw === 'string') {
        try {
          data = yaml().parse(raw);
        } catch (e) {
          throw new ConfigError(`${where} is not valid YAML/JSON: ${(e as Error).message}`);
        }
      }
      if (!Array.isArray(data)) throw new ConfigError(`${where} must be a list`);
      return data.map((item, i) => {
        const out = defaults(leaf.item);
        mergeFile(out, leaf.item, item, `${key}[${i}]`, source);
        for (const r of leaf.required) if (!out[r]) throw new ConfigError(`${source}: ${key}[${i}].${r} is required`);
        return out;
      });
    }
    case 'string': {
      if (typeof raw !== 'string' && typeof raw !== 'number') throw new ConfigError(`${where} must be a string`);
      const v = String(raw);
      if (leaf.enum && !leaf.enum.includes(v)) {
        throw new ConfigError(`${where} must be one of ${leaf.enum.join(', ')} (got "${leaf.secret ? '***' : v}")`);
      }
      return v;
    }
    case 'int': {
      const n = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : raw;
      if (typeof n !== 'number' || !Number.isInteger(n)) throw new ConfigError(`${where} must be an integer (got ${JSON.stringify(raw)})`);
      if (n < leaf.min || n > leaf.max) throw new ConfigError(`${where} must be between ${leaf.min} and ${leaf.max} (got ${n})`);
      return n;
    }
    case 'bool': {
      if (typeof raw === 'boolean') return raw;
      if (raw === 'true' || raw === '1') return true;
      if (raw === 'false' || raw === '0') return false;
      throw new ConfigError(`${where} must be true or false (got ${JSON.stringify(raw)})`);
    }
  }
}

function mergeFile(target: Record<string, unknown>, schema: Schema, data: unknown, prefix: string, source: string): void {
  if (data === null || data === undefined) return;
  if (typeof data !== 'object' || Array.isArray(data)) {
    throw new ConfigError(`${source}: ${prefix || '(top level)'} must be a mapping`);
  }
  for (const [k, v] of Object.entries(data as Record<string, unknown>)) {
    const key = prefix ? `${prefix}.${k}` : k;
    const s = Object.hasOwn(schema, k) ? schema[k] : undefined;
    if (!s) {
      const known = Object.keys(schema).join(', ');
      throw new ConfigError(`${source}: unknown key "${key}" (known keys here: ${known})`);
    }
    if (isLeaf(s)) target[k] = coerce(s, v, key, source);
    else mergeFile(target[k] as Record<string, unknown>, s, v, key, source);
  }
}

function mergeEnv(target: Record<string, unknown>, schema: Schema, env: NodeJS.ProcessEnv, prefix: string): void {
  for (const [k, s] of Object.entries(schema)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (isLeaf(s)) {
      const name = envName(key);
      const raw = env[name];
      if (raw !== undefined) target[k] = coerce(s, raw, key, `environment ${name}`);
    } else mergeEnv(target[k] as Record<string, unknown>, s, env, key);
  }
}

/** Every leaf key with its env name and default, for --help and the README. */
export function describeConfig(): { key: string; env: string; def: unknown }[] {
  const out: { key: string; env: string; def: unknown }[] = [];
  const walk = (schema: Schema, prefix: string): void => {
    for (const [k, s] of Object.entries(schema)) {
      const key = prefix ? `${prefix}.${k}` : k;
      if (isLeaf(s)) out.push({ key, env: envName(key), def: s.kind === 'string' && s.secret ? '' : s.def });
      else walk(s, key);
    }
  };
  walk(SCHEMA, '');
  return out;
}

export interface LoadOptions {
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** CLI overrides as key paths, e.g. { 'log.level': 'debug' }. */
  overrides?: Record<string, unknown>;
}

/** Builds the effective configuration; throws ConfigError naming the file and key on any problem. */
export function loadConfig(opts: LoadOptions = {}): Config {
  const cfg = defaults(SCHEMA);
  if (opts.file) {
    let text: string;
    try {
      text = readFileSync(opts.file, 'utf8');
    } catch (e) {
      throw new ConfigError(`cannot read config file ${opts.file}: ${(e as Error).message}`);
    }
    let data: unknown;
    try {
      data = opts.file.endsWith('.json') ? JSON.parse(text) : yaml().parse(text);
    } catch (e) {
      throw new ConfigError(`config file ${opts.file} is not valid ${opts.file.endsWith('.json') ? 'JSON' : 'YAML'}: ${(e as Error).message}`);
    }
    mergeFile(cfg, SCHEMA, data, '', `config file ${opts.file}`);
  }
  const env = opts.env ?? process.env;
  mergeEnv(cfg, SCHEMA, env, '');
  // The documented name of the secret key's variable (docs/security.md), besides CUP_STORE__SECRET_KEY.
  const envKey = env[SECRET_KEY_ENV];
  if (envKey !== undefined && envKey !== '') (cfg.store as Record<string, unknown>).secretKey = envKey;
  for (const [key, raw] of Object.entries(opts.overrides ?? {})) {
    const parts = key.split('.');
    let schema: Schema = SCHEMA;
    let target = cfg;
    for (const [i, p] of parts.entries()) {
      const s = schema[p];
      if (!s) throw new ConfigError(`command line: unknown key "${key}"`);
      if (isLeaf(s)) {
        if (i !== parts.length - 1) throw new ConfigError(`command line: unknown key "${key}"`);
        target[p] = coerce(s, raw, key, 'command line');
      } else {
        schema = s;
        target = target[p] as Record<string, unknown>;
      }
    }
  }
  const config = cfg as Config;
  if (!config.store.path) config.store.path = path.join(config.dataDir, 'proxy.db');
  const redisUrl = config.store.redis.url;
  if (redisUrl && !/^rediss?:\/\/[^\s]+$/i.test(redisUrl))
    throw new ConfigError('store.redis.url: expected redis://[user:password@]host:port[/db] or rediss://...');
  if (config.acs.auth.perDevice && (config.acs.auth.mode === 'none' || !config.acs.auth.username)) {
    throw new ConfigError('acs.auth.perDevice needs acs.auth.mode basic or digest and the shared bootstrap login (acs.auth.username/password)');
  }
  for (const c of config.acs.trustedProxies) {
    try {
      parseCidr(c);
    } catch (e) {
      throw new ConfigError(`acs.trustedProxies: ${(e as Error).message}`);
    }
  }
  for (const p of config.acs.connectionRequest.ports) {
    if (!/^\d+$/.test(p) || Number(p) < 1 || Number(p) > 65535) throw new ConfigError(`acs.connectionRequest.ports: not a port: ${JSON.stringify(p)}`);
  }
  if (config.store.secretKey && config.store.secretKeyFile)
    throw new ConfigError(`store.secretKeyFile and ${SECRET_KEY_ENV} (store.secretKey) are both set: set one`);
  const trust = trustConfigProblem(config);
  if (trust) throw new ConfigError(trust);
  checkControllers(config.controllers, config.usp.mqtt.topic);
  const transport = config.acs.connectionRequest.order.find((t) => t !== 'http' && t !== 'udp' && t !== 'xmpp');
  if (transport !== undefined) throw new ConfigError(`acs.connectionRequest.order: unknown transport "${transport}" (known: http, udp, xmpp)`);
  // TR-106 3.3: the vendor token of X_<VENDOR>_ names is an OUI or an upper-case domain name, '.' as '-'.
  if (!/^[A-Z0-9](?:[A-Z0-9-]{0,62}[A-Z0-9])?$/.test(config.interworking.extensionVendor))
    throw new ConfigError(
      `interworking.extensionVendor: "${config.interworking.extensionVendor}" is not a TR-106 vendor token (OUI or DOMAIN-NAME, upper case)`,
    );
  if (config.cluster.heartbeatMs * 2 > config.cluster.instanceTtlMs) {
    throw new ConfigError(
      `cluster.instanceTtlMs (${config.cluster.instanceTtlMs}) must be at least twice cluster.heartbeatMs (${config.cluster.heartbeatMs}), or a busy instance is declared dead`,
    );
  }
  return config;
}

/** SHA-256 fingerprint as node's X509Certificate.fingerprint256 prints it ("AB:CD:..."), or null when malformed. */
export function normalizeFingerprint(s: string): string | null {
  const hex = s.trim().replace(/:/g, '').toUpperCase();
  if (!/^[0-9A-F]{64}$/.test(hex)) return null;
  return hex.match(/../g)!.join(':');
}

/** Per-controller keys that only make sense together, checked once so that a typo fails start-up. */
function checkControllers(list: readonly ControllerConfig[], sharedMqttTopic: string): void {
  const eids = new Set<string>();
  const agentTopics = new Map<string, string>();
  for (const [i, c] of list.entries()) {
    const at = `controllers[${i}]`;
    if (eids.has(c.endpointId)) throw new ConfigError(`${at}.endpointId: ${c.endpointId} is configured twice`);
    eids.add(c.endpointId);
    if (c.websocket.secret && c.websocket.secretFile) throw new ConfigError(`${at}.websocket: set secret or secretFile, not both`);
    for (const f of c.tls.fingerprint.split(',').filter((x) => x.trim() !== '')) {
      if (!normalizeFingerprint(f))
        throw new ConfigError(`${at}.tls.fingerprint: expected SHA-256 fingerprints (64 hex digits, colons optional), got "${f.trim()}"`);
    }
    const t = c.mqtt.agentTopic;
    if (t) {
      if (/[+#]/.test(t)) throw new ConfigError(`${at}.mqtt.agentTopic: a topic, not a filter (no + or #): ${t}`);
      if (t === sharedMqttTopic) throw new ConfigError(`${at}.mqtt.agentTopic: ${t} is usp.mqtt.topic, which every controller shares; bind a topic of its own`);
      const other = agentTopics.get(t);
      if (other) throw new ConfigError(`${at}.mqtt.agentTopic: ${t} is already bound to ${other}`);
      agentTopics.set(t, c.endpointId);
    }
  }
}
