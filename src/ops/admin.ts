/**
 * The admin side on its own port (admin.port, default 7557): /healthz and /readyz without a
 * token; /metrics with the token unless admin.metricsPublic; the JSON admin API under /api/ with
 * `Authorization: Bearer <token>`; the static status page (assets/status/) at /, which holds no
 * data and reads /api with the token its user enters. Every response carries a strict
 * Content-Security-Policy, X-Frame-Options, nosniff and Referrer-Policy, and a request whose Host
 * is not an allowed name of this server is refused (DNS rebinding; docs/security.md "Admin
 * interface"). Described in openapi.yaml at the repository root.
 */
import { existsSync, readFileSync } from 'node:fs';
import type http from 'node:http';
import { type AddressInfo, isIP } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { assetPath, projectRoot } from '../util/assets.js';
import { timingSafeEqual, createHash } from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { ControllerConfig } from '../app/config.js';
import type { Logger } from '../app/log.js';
import type { ConnReqCredentials, ConnReqResult } from '../cwmp/connreq.js';
import type { DispatchResult } from '../cwmp/connreq-dispatch.js';
import type { DeviceRecord, QueuedRpc, Store } from '../store/types.js';
import type { LearnedCapabilities } from '../interworking/capabilities.js';
import { WatchRequestError } from '../interworking/value-watch.js';
import type { SubscriptionServing } from '../interworking/watch-state.js';
import type { MtpStatus } from '../usp/mtp/types.js';
import type { ProxyMetrics } from './metrics.js';
import { ImportError, MAX_TAGS, TAG, importRows, parseCsv } from './device-import.js';
import { deviceKeyOf, endpointIdOf } from '../cwmp/device-id.js';
import { consoleRoutes, type ConsolePorts } from './console-api.js';
import { onlineState, type ConnReqOutcome } from './online.js';
import { type MigrationApiPorts, migrationRoutes } from './migration-api.js';
import { TaskList, TaskListFull, TaskRequestError, parseTask, type TaskListOptions, type TaskPorts } from './tasks.js';
import { type BulkDataApiPorts, bulkDataRoutes } from './bulkdata-api.js';

export interface AdminServerOptions {
  host: string;
  port: number;
  /** Bearer token for /api/* (must not be empty). */
  token: string;
  /** Host header values answered (names or addresses, no port; "*" = any); empty: hostsFor(host). */
  allowedHosts?: readonly string[];
  /** Serve /metrics without the token. */
  metricsPublic?: boolean;
  /** Bounds of the northbound task list (admin.tasks; docs/nbi.md). */
  tasks?: Partial<TaskListOptions>;
}

/** What the admin side reads and does: a narrow view of the proxy's parts, not the proxy. */
export interface AdminPorts {
  store: Pick<
    Store,
    | 'countDevices'
    | 'listDevices'
    | 'getDevice'
    | 'getDeviceByEndpointId'
    | 'getTags'
    | 'setTags'
    | 'devicesWithTag'
    | 'listQueuedRpcs'
    | 'getParameterTypes'
    | 'upsertDevice'
    | 'deleteDevice'
    | 'getDeviceByCpeUsername'
  >;
  /** Whether store writes succeed (src/store/health.ts); absent: not checked. */
  storeWrites?: () => Promise<{ ok: boolean; detail: string }>;
  engine: {
    /** Drops a queued RPC not sent yet. */
    cancel(id: string): Promise<boolean>;
    deviceState(deviceKey: string): Promise<{ inSession: boolean; queuedRpcs: number }>;
    readonly activeSessions: number;
  };
  /** Wakes a device now (ConnectionRequester.request). */
  connectionRequest(deviceKey: string, url: string, creds: ConnReqCredentials | null): Promise<ConnReqResult | DispatchResult>;
  /** The ACS's port while it listens, else 0. */
  acsPort(): number;
  /** Each MTP's state. */
  mtps(): MtpStatus[];
  controllers: readonly ControllerConfig[];
  /** acs.onlineWindowS: a device without a known Periodic Inform interval is online this long after its last Inform. */
  onlineWindowS: number;
  metrics: ProxyMetrics;
  log: Logger;
  /** What was learned of the device's model, and how each ValueChange subscription of its agent is served. */
  learned(device: DeviceRecord): Promise<DeviceLearned>;
  /** A poll interval (s; 0: none) for one ValueChange subscription; throws WatchRequestError when refused. */
  setPollInterval(device: DeviceRecord, subscriptionInstance: number, seconds: number): Promise<SubscriptionServing>;
  /** How a connection request would reach the device: transports in the order tried, its NAT binding, its JID (docs/nat.md). */
  reach?(device: DeviceRecord): { transports: string[]; udpConnectionRequestAddress: string | null; jabberId: string | null };
  /** usp.endpointIdScheme: the Endpoint ID an imported device gets (default os). */
  endpointIdScheme?: 'os' | 'ops';
  /** How northbound tasks reach a device (docs/nbi.md); absent: POST .../tasks answers 501. */
  tasks?: TaskPorts;
  /** The device console's tree, Set and translation trace (src/ops/console-api.ts); absent: those endpoints answer 404. */
  console?: ConsolePorts;
  /** The last connection request's outcome for a device (src/ops/online.ts); absent: online from Informs only. */
  lastConnectionRequest?(deviceKey: string): ConnReqOutcome | null;
  /** Migrations to the devices' native USP Agents (docs/migration.md); absent: no /api/migration routes. */
  migration?: MigrationApiPorts;
  /** The device's Bulk Data profiles (GET /api/devices/{key}/bulkdata, docs/bulkdata.md). */
  bulkData?: BulkDataApiPorts;
}

/** Per device in the admin API (and `devices --json`): the model's learned capabilities and its ValueChange subscriptions. */
export interface DeviceLearned {
  capabilities: LearnedCapabilities;
  valueChange: SubscriptionServing[];
}

const ROOT = projectRoot();
const STATUS_DIR = assetPath('status');
/** The status page's import map points here; only these files are served. */
const VENDOR: Record<string, string> = {
  'preact/preact.mjs': 'node_modules/preact/dist/preact.mjs',
  'preact/hooks.mjs': 'node_modules/preact/hooks/dist/hooks.mjs',
  'htm/htm.module.js': 'node_modules/htm/dist/htm.module.js',
};

const MAX_LIMIT = 1000;

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/**
 * The status page's policy: its own scripts, styles and API only; its one inline script (the
 * import map) allowed by hash, read from the page so that an edit keeps working (CSP3 'sha256-').
 */
function contentSecurityPolicy(): string {
  const scripts = ["'self'"];
  const index = path.join(STATUS_DIR, 'index.html');
  if (existsSync(index)) {
    for (const m of readFileSync(index, 'utf8').matchAll(/<script\b[^>]*>([\s\S]*?)<\/script>/gi)) {
      if (m[1]!.trim() !== '') scripts.push(`'sha256-${createHash('sha256').update(m[1]!, 'utf8').digest('base64')}'`);
    }
  }
  return [
    "default-src 'none'",
    `script-src ${scripts.join(' ')}`,
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '::1'];
const WILDCARDS = new Set(['', '0.0.0.0', '::', '[::]']);

/**
 * The Host header values answered by default when bound to `host`: the bound address, localhost
 * names, loopback addresses, this machine's hostname and, bound to a wildcard address, every
 * address of its interfaces (what a client reaching it by address sends).
 */
export function hostsFor(host: string): Set<string> {
  const out = new Set<string>(LOOPBACK_NAMES);
  const h = os.hostname().toLowerCase();
  if (h) {
    out.add(h);
    out.add(h.split('.')[0]!);
  }
  if (WILDCARDS.has(host)) {
    for (const addrs of Object.values(os.networkInterfaces())) for (const a of addrs ?? []) out.add(a.address.toLowerCase().replace(/%.*$/, ''));
  } else out.add(host.toLowerCase().replace(/^\[|\]$/g, ''));
  return out;
}

/** The name or address of a Host header, lower case, without port, brackets or a final dot; null when malformed. */
export function hostName(header: string | undefined): string | null {
  if (!header || header.length > 255) return null;
  const h = header.trim().toLowerCase();
  let name: string;
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    if (end < 0) return null;
    name = h.slice(1, end);
    if (isIP(name) !== 6) return null;
  } else {
    const colon = h.indexOf(':');
    name = colon < 0 ? h : h.slice(0, colon);
  }
  name = name.replace(/\.$/, '');
  return /^[a-z0-9._:-]+$/.test(name) ? name : null;
}

export class AdminServer {
  private server: http.Server | null = null;
  private readonly tokenDigest: Buffer;
  readonly app: express.Express;

  private readonly metrics: ProxyMetrics;
  /** Host header names answered; null = any. */
  private readonly allowedHosts: ReadonlySet<string> | null;
  private readonly csp: string;
  private readonly tasks: TaskList | null;

  constructor(
    private readonly ports: AdminPorts,
    private readonly opts: AdminServerOptions,
  ) {
    if (!opts.token) throw new Error('admin token must not be empty');
    this.metrics = ports.metrics;
    this.tokenDigest = digest(opts.token);
    const allowed = (opts.allowedHosts ?? []).map((x) => x.trim().toLowerCase()).filter((x) => x !== '');
    this.allowedHosts = allowed.includes('*') ? null : allowed.length > 0 ? new Set(allowed.map((x) => hostName(x) ?? x)) : hostsFor(opts.host);
    this.csp = contentSecurityPolicy();
    this.tasks = ports.tasks ? new TaskList(ports.tasks, opts.tasks) : null;
    this.app = this.build();
  }

  async start(): Promise<number> {
    const server = await new Promise<http.Server>((resolve, reject) => {
      const s = this.app.listen(this.opts.port, this.opts.host, (err?: Error) => (err ? reject(err) : resolve(s)));
      s.once('error', reject);
    });
    server.keepAliveTimeout = 5_000;
    server.headersTimeout = 10_000;
    server.requestTimeout = 30_000;
    this.server = server;
    return (server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (!s) return;
    await new Promise<void>((resolve) => {
      s.close(() => resolve());
      s.closeIdleConnections();
      setTimeout(() => s.closeAllConnections(), 1000).unref();
    });
  }

  get port(): number {
    return this.server ? (this.server.address() as AddressInfo).port : 0;
  }

  private authorized(req: Request): boolean {
    const h = req.headers.authorization;
    if (typeof h !== 'string') return false;
    const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
    if (!m) return false;
    // Compare fixed-length digests so neither content nor length leaks through timing.
    return timingSafeEqual(digest(m[1]!), this.tokenDigest);
  }

  private build(): express.Express {
    const app = express();
    app.disable('x-powered-by');
    app.set('etag', false);
    app.set('query parser', 'simple');
    const wrap =
      (fn: (req: Request, res: Response) => Promise<void> | void) =>
      (req: Request, res: Response, next: NextFunction): void => {
        Promise.resolve()
          .then(() => fn(req, res))
          .catch(next);
      };

    app.use((req, res, next) => {
      res.set({
        'Content-Security-Policy': this.csp,
        'X-Frame-Options': 'DENY',
        'X-Content-Type-Options': 'nosniff',
        'Referrer-Policy': 'no-referrer',
        'Cross-Origin-Resource-Policy': 'same-origin',
      });
      // DNS rebinding: a page of another site whose name now resolves here sends its own name as Host.
      if (this.allowedHosts) {
        const name = hostName(req.headers.host);
        if (name === null || !this.allowedHosts.has(name)) {
          res.status(403).json({ error: 'Host header is not an allowed name of this server (admin.allowedHosts)' });
          return;
        }
      }
      next();
    });
    app.get('/healthz', (_req, res) => {
      res.json({ status: 'ok', uptimeS: Math.round(process.uptime()) });
    });
    app.get(
      '/readyz',
      wrap(async (_req, res) => {
        const checks = await this.readiness();
        const ready = Object.values(checks).every((c) => c.ok);
        res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not ready', checks });
      }),
    );
    app.get(
      '/metrics',
      wrap(async (req, res) => {
        if (!this.opts.metricsPublic && !this.authorized(req)) {
          res.set('WWW-Authenticate', 'Bearer realm="cwmp-usp-proxy"');
          res.status(401).json({ error: 'missing or invalid bearer token (or set admin.metricsPublic)' });
          return;
        }
        const text = await this.metrics.metricsText();
        res.set('Content-Type', this.metrics.contentType).send(text);
      }),
    );

    const api = express.Router();
    api.use((req, res, next) => {
      res.set('Cache-Control', 'no-store');
      if (this.authorized(req)) return next();
      res.set('WWW-Authenticate', 'Bearer realm="cwmp-usp-proxy"');
      res.status(401).json({ error: 'missing or invalid bearer token' });
    });
    api.use('/devices/import', express.json({ limit: '2mb' }));
    api.use(express.json({ limit: '64kb' }));
    api.get(
      '/devices',
      wrap((req, res) => this.listDevices(req, res)),
    );
    api.get(
      '/devices/:key',
      wrap((req, res) => this.deviceDetails(req, res)),
    );
    api.delete(
      '/devices/:key',
      wrap((req, res) => this.deleteDevice(req, res)),
    );
    api.post(
      '/devices/import',
      express.text({ type: ['text/csv', 'text/plain'], limit: '2mb' }),
      wrap((req, res) => this.importDevices(req, res)),
    );
    api.post(
      '/devices/:key/connection-request',
      wrap((req, res) => this.connectionRequest(req, res)),
    );
    api.post(
      '/devices/:key/tasks',
      wrap((req, res) => this.createTask(req, res)),
    );
    api.get(
      '/devices/:key/tasks',
      wrap(async (req, res) => {
        const d = await this.findDevice(req.params.key);
        res.json({ tasks: await this.taskList().forDevice(d.deviceKey) });
      }),
    );
    api.get(
      '/tasks/:id',
      wrap(async (req, res) => {
        const id = String(req.params.id ?? '');
        const t = id.length <= 64 ? await this.taskList().get(id) : null;
        if (!t) throw new HttpError(404, `no task ${id} (unknown, or finished longer ago than admin.tasks.keepS)`);
        res.json(t);
      }),
    );
    if (this.ports.bulkData) api.use(bulkDataRoutes(this.ports.bulkData, (key) => this.findDevice(key)));
    api.put(
      '/devices/:key/tags',
      wrap(async (req, res) => {
        const d = await this.findDevice(req.params.key);
        const tags = tagList((req.body as { tags?: unknown } | undefined)?.tags);
        await this.ports.store.setTags(d.deviceKey, tags);
        this.audit(req, 'set tags', { deviceKey: d.deviceKey, tags });
        res.json({ deviceKey: d.deviceKey, tags: await this.ports.store.getTags(d.deviceKey) });
      }),
    );
    api.put(
      '/devices/:key/cpe-credentials',
      wrap((req, res) => this.setCpeCredentials(req, res)),
    );
    api.delete(
      '/devices/:key/cpe-credentials',
      wrap((req, res) => this.resetCpeCredentials(req, res)),
    );
    api.put(
      '/devices/:key/value-change/:instance',
      wrap((req, res) => this.setPollInterval(req, res)),
    );
    api.delete(
      '/queue/:id',
      wrap(async (req, res) => {
        const id = String(req.params.id ?? '');
        if (!id || id.length > 200) throw new HttpError(400, 'bad queue id');
        const ok = await this.ports.engine.cancel(id);
        if (!ok) throw new HttpError(404, `no queued RPC ${id}`);
        this.audit(req, 'cancel queued RPC', { queued: id });
        res.status(204).end();
      }),
    );
    api.get(
      '/controllers',
      wrap((_req, res) => {
        res.json({ controllers: this.controllers() });
      }),
    );
    api.get(
      '/summary',
      wrap((_req, res) => this.summary(res)),
    );
    if (this.ports.console)
      api.use(consoleRoutes({ ...this.ports.console, findDevice: (k) => this.findDevice(k), audit: (req, action, fields) => this.audit(req, action, fields) }));
    if (this.ports.migration)
      api.use(
        migrationRoutes(
          this.ports.migration,
          (k) => this.findDevice(k),
          (req, a, f) => this.audit(req, a, f),
        ),
      );
    api.use((_req, _res) => {
      throw new HttpError(404, 'no such API endpoint');
    });
    app.use('/api', api);

    for (const [name, file] of Object.entries(VENDOR)) {
      const abs = path.join(ROOT, file);
      app.get(`/vendor/${name}`, (_req, res, next) => {
        if (!existsSync(abs)) return next();
        res.type('text/javascript').sendFile(abs);
      });
    }
    if (existsSync(STATUS_DIR)) app.use('/', express.static(STATUS_DIR, { index: 'index.html', dotfiles: 'ignore', fallthrough: true }));

    app.use((_req: Request, res: Response) => {
      res.status(404).json({ error: 'not found' });
    });
    // Express error handler (4 arguments): JSON errors, never the stack.
    app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
      if (res.headersSent) return;
      if (err instanceof HttpError) return void res.status(err.status).json({ error: err.message });
      const e = err as { status?: number; statusCode?: number; type?: string; message?: string };
      const status = e.status ?? e.statusCode;
      if (status && status >= 400 && status < 500)
        return void res.status(status).json({ error: e.type === 'entity.parse.failed' ? 'request body is not valid JSON' : (e.message ?? 'bad request') });
      this.ports.log.error({ err }, 'admin API request failed');
      res.status(500).json({ error: 'internal error' });
    });
    return app;
  }

  private async readiness(): Promise<Record<string, { ok: boolean; detail: string }>> {
    const checks: Record<string, { ok: boolean; detail: string }> = {};
    try {
      const n = await this.ports.store.countDevices();
      checks.store = { ok: true, detail: `open, ${n} devices` };
    } catch (e) {
      checks.store = { ok: false, detail: `store query failed: ${(e as Error).message}` };
    }
    if (this.ports.storeWrites) checks.storeWrites = await this.ports.storeWrites();
    const acsPort = this.ports.acsPort();
    checks.acs = acsPort > 0 ? { ok: true, detail: `listening on port ${acsPort}` } : { ok: false, detail: 'ACS not listening' };
    for (const s of this.ports.mtps()) checks[s.mtp] = { ok: s.connected, detail: s.detail };
    return checks;
  }

  /** online | unreachable | offline from the last Inform and the last connection request (src/ops/online.ts). */
  private state(deviceKey: string, lastInformMs: number | null, periodicS: number | null, now: number): ReturnType<typeof onlineState> {
    const lastConnReq = this.ports.lastConnectionRequest?.(deviceKey) ?? null;
    return onlineState({ lastInformMs, periodicInformIntervalS: periodicS, onlineWindowS: this.ports.onlineWindowS, lastConnReq, now });
  }

  private async deviceSummary(d: DeviceRecord, now: number): Promise<Record<string, unknown>> {
    const [state, learned, tags, migration] = await Promise.all([
      this.ports.engine.deviceState(d.deviceKey),
      this.ports.learned(d),
      this.ports.store.getTags(d.deviceKey),
      this.ports.migration?.service.view(d.deviceKey),
    ]);
    const st = this.state(d.deviceKey, d.lastInform ? Date.parse(d.lastInform) : null, d.periodicInformInterval, now);
    const cr = this.ports.lastConnectionRequest?.(d.deviceKey) ?? null;
    return {
      endpointId: d.endpointId,
      deviceKey: d.deviceKey,
      deviceId: { ...d.deviceId },
      rootModel: d.rootModel,
      lastInform: d.lastInform,
      online: st === 'online',
      state: st,
      lastConnectionRequest: cr ? { ok: cr.ok, at: new Date(cr.atMs).toISOString(), ...(cr.detail ? { detail: cr.detail } : {}) } : null,
      inSession: state.inSession,
      queuedRpcs: state.queuedRpcs,
      capabilities: learned.capabilities,
      valueChange: learned.valueChange,
      reach: this.ports.reach?.(d),
      tags,
      migration,
    };
  }

  private async listDevices(req: Request, res: Response): Promise<void> {
    const q = req.query;
    const search = typeof q.search === 'string' ? q.search.slice(0, 200) : undefined;
    const limit = intParam(q.limit, 'limit', 100, 1, MAX_LIMIT);
    const offset = intParam(q.offset, 'offset', 0, 0, Number.MAX_SAFE_INTEGER);
    const store = this.ports.store;
    if (typeof q.tag === 'string') {
      if (search) throw new HttpError(400, 'search and tag cannot be combined');
      const [tag] = tagList([q.tag]);
      const keys = await store.devicesWithTag(tag!);
      const page = (await Promise.all(keys.slice(offset, offset + limit).map((k) => store.getDevice(k)))).filter((d): d is DeviceRecord => d !== null);
      const now = Date.now();
      res.json({ total: keys.length, devices: await Promise.all(page.map((d) => this.deviceSummary(d, now))) });
      return;
    }
    const devices = await store.listDevices({ search: search || undefined, limit, offset });
    // countDevices() counts everything; with a search, count the matches (bounded scan).
    const total = search ? (await store.listDevices({ search })).length : await store.countDevices();
    const now = Date.now();
    res.json({ total, devices: await Promise.all(devices.map((d) => this.deviceSummary(d, now))) });
  }

  private async findDevice(rawKey: unknown): Promise<DeviceRecord> {
    const key = typeof rawKey === 'string' ? rawKey : '';
    if (!key || key.length > 512) throw new HttpError(400, 'bad device key');
    const d = (await this.ports.store.getDevice(key)) ?? (await this.ports.store.getDeviceByEndpointId(key));
    if (!d) throw new HttpError(404, `no device ${key}`);
    return d;
  }

  private async deviceDetails(req: Request, res: Response): Promise<void> {
    const d = await this.findDevice(req.params.key);
    const now = Date.now();
    const modelKey = modelKeyOf(d);
    const [queue, types] = await Promise.all([this.ports.store.listQueuedRpcs(d.deviceKey), this.ports.store.getParameterTypes(modelKey)]);
    res.json({
      ...(await this.deviceSummary(d, now)),
      softwareVersion: d.softwareVersion,
      connectionRequestUrl: d.connectionRequestUrl,
      periodicInformInterval: d.periodicInformInterval,
      lastInformEvents: d.lastInformEvents,
      registeredAt: d.registeredAt,
      queue: queue.map((r: QueuedRpc) => ({ id: r.id, method: r.rpc.method, createdAt: r.createdAt, deadline: new Date(r.deadline).toISOString() })),
      modelKey,
      parameterTypes: Object.fromEntries([...types].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
    });
  }

  private async connectionRequest(req: Request, res: Response): Promise<void> {
    const d = await this.findDevice(req.params.key);
    if (!d.connectionRequestUrl) throw new HttpError(409, 'the device never reported a ConnectionRequestURL');
    const creds = d.connReqUsername ? { username: d.connReqUsername, password: d.connReqPassword ?? '' } : null;
    this.audit(req, 'connection request', { deviceKey: d.deviceKey });
    const result = await this.ports.connectionRequest(d.deviceKey, d.connectionRequestUrl, creds);
    res.json(result);
  }

  /**
   * DELETE /api/devices/{key}/cpe-credentials: forgets the device's per-device ACS credentials
   * (current and pending) and its certificate binding, so that the shared bootstrap login opens
   * its next session and provisions new ones (a replaced or factory-reset device).
   */
  private async resetCpeCredentials(req: Request, res: Response): Promise<void> {
    const d = await this.findDevice(req.params.key);
    const had = d.cpeUsername !== null || !!d.cpePendingUsername || !!d.cpeCertIdentity;
    await this.ports.store.upsertDevice({
      ...d,
      cpeUsername: null,
      cpePassword: null,
      cpePendingUsername: null,
      cpePendingPassword: null,
      cpeCertIdentity: null,
    });
    this.audit(req, 'reset CPE credentials', { deviceKey: d.deviceKey, reset: had });
    res.json({ deviceKey: d.deviceKey, reset: had });
  }

  private taskList(): TaskList {
    if (!this.tasks) throw new HttpError(501, 'tasks are not available in this server');
    return this.tasks;
  }

  /** The admin identity in audit lines: the token is the one admin identity; never the token itself. */
  private audit(req: Request, action: string, fields: Record<string, unknown>): void {
    this.ports.log.info({ audit: true, admin: 'admin-token', client: req.socket.remoteAddress, action, ...fields }, `admin API: ${action}`);
  }

  /** POST /api/devices/{key}/tasks {type, ...args}: 202 {id, status} (docs/nbi.md). */
  private async createTask(req: Request, res: Response): Promise<void> {
    const tasks = this.taskList();
    const d = await this.findDevice(req.params.key);
    const body = req.body as Record<string, unknown> | undefined;
    // Set values without a type take the type the device reported for the parameter.
    const names = body?.type === 'set' && Array.isArray(body.values) ? body.values.map((v) => String((v as { name?: unknown })?.name ?? '')).slice(0, 256) : [];
    const types = names.length ? await this.ports.store.getParameterTypes(modelKeyOf(d), names) : new Map<string, string>();
    let parsed: ReturnType<typeof parseTask>;
    try {
      parsed = parseTask(body, types);
    } catch (e) {
      if (e instanceof TaskRequestError) throw new HttpError(400, e.message);
      throw e;
    }
    if (parsed.type === 'connectionRequest' && !d.connectionRequestUrl && !this.ports.reach?.(d).transports.length)
      throw new HttpError(409, 'the device never reported a ConnectionRequestURL');
    let t: ReturnType<TaskList['start']>;
    try {
      t = tasks.start(d.deviceKey, parsed.type, parsed.action);
    } catch (e) {
      if (e instanceof TaskListFull) throw new HttpError(429, e.message);
      throw e;
    }
    const rpc = parsed.action.kind === 'rpc' ? parsed.action.rpc : null;
    this.audit(req, 'task', {
      deviceKey: d.deviceKey,
      task: t.id,
      type: t.type,
      method: t.method,
      // Names only: values (a Set may carry a secret) and Download credentials stay out of the log.
      paths:
        parsed.action.kind === 'read'
          ? 'names' in parsed.action.what
            ? parsed.action.what.names
            : [parsed.action.what.object]
          : rpc?.method === 'SetParameterValues'
            ? rpc.parameterList.map((p) => p.name)
            : rpc?.method === 'AddObject' || rpc?.method === 'DeleteObject'
              ? [rpc.objectName]
              : undefined,
    });
    res.status(202).location(`/api/tasks/${t.id}`).json({ id: t.id, status: t.status });
  }

  /**
   * POST /api/devices/import (JSON list or text/csv): registers devices before their first Inform,
   * with pre-provisioned per-device CPE credentials (which then open their sessions: the shared
   * login no longer does, docs/security.md). A device already known keeps its record; given
   * credentials replace its own. All rows are checked before any is written.
   */
  private async importDevices(req: Request, res: Response): Promise<void> {
    let rows: ReturnType<typeof importRows>;
    try {
      rows = importRows(typeof req.body === 'string' ? parseCsv(req.body) : req.body);
    } catch (e) {
      if (e instanceof ImportError) throw new HttpError(400, e.message);
      throw e;
    }
    const scheme = this.ports.endpointIdScheme ?? 'os';
    const keys = rows.map((r) => deviceKeyOf(r.deviceId));
    if (new Set(keys).size !== keys.length) throw new HttpError(400, 'the same device is listed twice');
    const users = rows.map((r) => r.cpeUsername).filter((u): u is string => u !== null);
    if (new Set(users).size !== users.length) throw new HttpError(400, 'the same cpeUsername is given to two devices');
    // A username identifies its device at authentication (acs.auth.perDevice): never two devices'.
    for (const [i, r] of rows.entries()) {
      const holder = r.cpeUsername === null ? null : await this.ports.store.getDeviceByCpeUsername(r.cpeUsername);
      if (holder && holder.deviceKey !== keys[i]) throw new HttpError(409, `row ${i + 1}: that cpeUsername belongs to another device`);
    }
    const plan: DeviceRecord[] = [];
    let created = 0;
    const now = new Date().toISOString();
    for (const [i, r] of rows.entries()) {
      const known = await this.ports.store.getDevice(keys[i]!);
      if (known) {
        if (r.cpeUsername !== null)
          plan.push({ ...known, cpeUsername: r.cpeUsername, cpePassword: r.cpePassword, cpePendingUsername: null, cpePendingPassword: null });
        continue;
      }
      const endpointId = endpointIdOf(r.deviceId, scheme);
      const holder = await this.ports.store.getDeviceByEndpointId(endpointId);
      if (holder) throw new HttpError(409, `row ${i + 1}: Endpoint ID ${endpointId} belongs to another device (${holder.deviceKey})`);
      created++;
      plan.push({
        deviceKey: keys[i]!,
        endpointId,
        deviceId: r.deviceId,
        rootModel: r.rootModel,
        softwareVersion: null,
        connectionRequestUrl: null,
        connReqUsername: null,
        connReqPassword: null,
        cpeUsername: r.cpeUsername,
        cpePassword: r.cpePassword,
        periodicInformInterval: null,
        lastInform: null,
        lastInformEvents: [],
        registeredAt: now,
      });
    }
    for (const d of plan) await this.ports.store.upsertDevice(d);
    for (const [i, r] of rows.entries()) if (r.tags) await this.ports.store.setTags(keys[i]!, r.tags);
    const withCredentials = rows.filter((r) => r.cpeUsername !== null).length;
    this.audit(req, 'import devices', { rows: rows.length, created, withCredentials, tagged: rows.filter((r) => r.tags).length });
    res.json({ rows: rows.length, created, updated: plan.length - created, unchanged: rows.length - plan.length, withCredentials });
  }

  /**
   * DELETE /api/devices/{key}: forgets a device (a ghost, a replaced unit). Refused while it is in
   * a CWMP session; its queued RPCs are cancelled first so that their callers hear of it. A device
   * that Informs again is registered again.
   */
  private async deleteDevice(req: Request, res: Response): Promise<void> {
    const d = await this.findDevice(req.params.key);
    if ((await this.ports.engine.deviceState(d.deviceKey)).inSession) throw new HttpError(409, 'the device is in a CWMP session now; try again when it ended');
    const queued = await this.ports.store.listQueuedRpcs(d.deviceKey);
    for (const q of queued) await this.ports.engine.cancel(q.id);
    const deleted = await this.ports.store.deleteDevice(d.deviceKey);
    this.metrics.deviceIndex.delete(d.deviceKey);
    this.ports.console?.trace.forget(d.endpointId);
    this.audit(req, 'delete device', { deviceKey: d.deviceKey, endpointId: d.endpointId, cancelledRpcs: queued.length });
    if (!deleted) throw new HttpError(404, `no device ${d.deviceKey}`);
    res.status(204).end();
  }

  /**
   * PUT /api/devices/{key}/cpe-credentials {"username", "password"}: the device's own ACS
   * credentials, as configured on the CPE (ManagementServer.Username/Password); from then on only
   * they open its sessions. Pending ones are dropped.
   */
  private async setCpeCredentials(req: Request, res: Response): Promise<void> {
    const d = await this.findDevice(req.params.key);
    const body = req.body as { username?: unknown; password?: unknown } | undefined;
    const ok = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 256;
    if (!ok(body?.username) || !ok(body?.password)) throw new HttpError(400, 'body: {"username", "password"}: non-empty strings of at most 256 characters');
    const holder = await this.ports.store.getDeviceByCpeUsername(body.username);
    if (holder && holder.deviceKey !== d.deviceKey) throw new HttpError(409, 'that username belongs to another device');
    await this.ports.store.upsertDevice({ ...d, cpeUsername: body.username, cpePassword: body.password, cpePendingUsername: null, cpePendingPassword: null });
    this.audit(req, 'set CPE credentials', { deviceKey: d.deviceKey, username: body.username });
    res.json({ deviceKey: d.deviceKey, set: true });
  }

  /** PUT /api/devices/{key}/value-change/{instance} {"pollIntervalS": n}: tighter (or no) polling for one subscription. */
  private async setPollInterval(req: Request, res: Response): Promise<void> {
    const d = await this.findDevice(req.params.key);
    const raw = String(req.params.instance ?? '');
    if (!/^\d{1,9}$/.test(raw) || Number(raw) < 1) throw new HttpError(400, 'the subscription instance must be a positive integer');
    const body = req.body as { pollIntervalS?: unknown } | undefined;
    const seconds = body?.pollIntervalS;
    if (typeof seconds !== 'number' || !Number.isInteger(seconds) || seconds < 0) throw new HttpError(400, 'body: {"pollIntervalS": a non-negative integer}');
    this.audit(req, 'set poll interval', { deviceKey: d.deviceKey, subscription: Number(raw), pollIntervalS: seconds });
    try {
      res.json(await this.ports.setPollInterval(d, Number(raw), seconds));
    } catch (e) {
      if (e instanceof WatchRequestError) throw new HttpError(e.status, e.message);
      throw e;
    }
  }

  private controllers(): unknown[] {
    const mtps = this.ports.mtps();
    return this.ports.controllers.map((c) => ({
      endpointId: c.endpointId,
      role: c.role,
      mtps: mtps
        .filter((s) => (s.mtp === 'mqtt' ? !!c.mqtt.topic : s.mtp === 'stomp' ? !!c.stomp.destination : true))
        .map((s) => ({
          mtp: s.mtp,
          address: s.mtp === 'mqtt' ? c.mqtt.topic : s.mtp === 'stomp' ? c.stomp.destination : c.websocket.url || null,
          connected: s.connected,
          channels: s.channels,
          detail: s.detail,
        })),
    }));
  }

  private async summary(res: Response): Promise<void> {
    const m = this.metrics;
    const store = this.ports.store;
    // The metrics module keeps a device index from Informs; resync it when the store disagrees.
    if ((await store.countDevices()) !== m.deviceIndex.size) {
      for (const d of await store.listDevices()) {
        const known = m.deviceIndex.get(d.deviceKey);
        if (!known || (d.lastInform && (known.lastInformMs ?? 0) < Date.parse(d.lastInform))) m.noteDevice(d);
      }
    }
    const now = Date.now();
    let online = 0;
    const byRootModel: Record<string, number> = {};
    const byProductClass: Record<string, number> = {};
    for (const [key, d] of m.deviceIndex) {
      if (this.state(key, d.lastInformMs, d.periodicInformInterval, now) === 'online') online++;
      byRootModel[d.rootModel] = (byRootModel[d.rootModel] ?? 0) + 1;
      byProductClass[d.productClass] = (byProductClass[d.productClass] ?? 0) + 1;
    }
    const total = m.deviceIndex.size;
    res.json({
      devices: { total, online, offline: total - online, inSession: this.ports.engine.activeSessions, byRootModel, byProductClass },
      informsPerMinute: m.informsPerMinute.values(),
      uspRequestsPerMinute: m.uspRequestsPerMinute.values(),
      recentErrors: m.recentErrors(),
    });
  }
}

/** A device's tags as given to the API: a list of at most MAX_TAGS names of TAG's characters, deduplicated. */
function tagList(v: unknown): string[] {
  if (!Array.isArray(v) || v.length > MAX_TAGS || !v.every((t) => typeof t === 'string' && TAG.test(t)))
    throw new HttpError(400, `tags: a list of at most ${MAX_TAGS} names of 1-64 letters, digits, "_", ".", ":" or "-"`);
  return [...new Set(v as string[])];
}

/** The key of the device model's learned parameter types (Store.getParameterTypes). */
function modelKeyOf(d: DeviceRecord): string {
  return `${d.deviceId.oui}-${d.deviceId.productClass}-${d.softwareVersion ?? ''}`;
}

function intParam(v: unknown, name: string, def: number, min: number, max: number): number {
  if (v === undefined || v === '') return def;
  if (typeof v !== 'string' || !/^\d+$/.test(v)) throw new HttpError(400, `${name} must be a non-negative integer`);
  const n = Number(v);
  if (n < min || n > max) throw new HttpError(400, `${name} must be between ${min} and ${max}`);
  return n;
}
