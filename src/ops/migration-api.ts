/**
 * The admin API of migrations (docs/migration.md "Admin API"), mounted under /api by admin.ts:
 *   GET  /migration                              configured?, in progress, rollouts
 *   GET  /devices/{key}/migration                detection and last migration of a device
 *   POST /devices/{key}/migration/detect         reads the device's LocalAgent over CWMP now
 *   POST /devices/{key}/migration                starts a migration (202; 409 one runs, 503 not configured)
 *   POST /migration/rollouts                     {selection:{productClass,oui,softwareVersion,tag}, waveSize, perMinute, concurrency, maxFailurePercent}
 *   GET  /migration/rollouts/{id}                its summary
 *   POST /migration/rollouts/{id}/pause|resume|cancel
 * Errors carry `status` (4xx/503) for admin.ts's error handler.
 */
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type { DeviceRecord } from '../store/types.js';
import type { RolloutOptions, RolloutSelection } from '../migration/rollout.js';
import type { Rollouts } from '../migration/rollouts.js';
import type { MigrationService } from '../migration/service.js';

export interface MigrationApiPorts {
  service: MigrationService;
  rollouts: Rollouts;
  /** Whether migration.* names a broker and a controller. */
  configured: boolean;
}

class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const SELECTION_KEYS = ['productClass', 'oui', 'softwareVersion', 'tag'] as const;
const OPTION_BOUNDS: Record<keyof RolloutOptions, [number, number]> = {
  waveSize: [1, 100_000],
  perMinute: [1, 1_000_000],
  concurrency: [1, 1000],
  maxFailurePercent: [0, 100],
};

function parseRollout(body: unknown): { selection: RolloutSelection; options: Partial<RolloutOptions> } {
  if (typeof body !== 'object' || body === null) throw new ApiError(400, 'the body must be a JSON object');
  const b = body as Record<string, unknown>;
  const sel = (b.selection ?? {}) as Record<string, unknown>;
  if (typeof sel !== 'object' || sel === null) throw new ApiError(400, 'selection must be an object');
  const selection: RolloutSelection = {};
  for (const [k, v] of Object.entries(sel)) {
    if (!(SELECTION_KEYS as readonly string[]).includes(k)) throw new ApiError(400, `selection.${k}: unknown (one of ${SELECTION_KEYS.join(', ')})`);
    if (typeof v !== 'string' || v.length > 200) throw new ApiError(400, `selection.${k} must be a string of at most 200 characters`);
    selection[k as keyof RolloutSelection] = v;
  }
  const options: Partial<RolloutOptions> = {};
  for (const [k, [min, max]] of Object.entries(OPTION_BOUNDS) as [keyof RolloutOptions, [number, number]][]) {
    const v = b[k];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new ApiError(400, `${k} must be an integer from ${min} to ${max}`);
    options[k] = v;
  }
  return { selection, options };
}

export function migrationRoutes(
  p: MigrationApiPorts,
  findDevice: (key: unknown) => Promise<DeviceRecord>,
  audit: (req: Request, action: string, fields: Record<string, unknown>) => void,
): Router {
  const r = express.Router();
  const wrap =
    (fn: (req: Request, res: Response) => Promise<void>) =>
    (req: Request, res: Response, next: NextFunction): void =>
      void fn(req, res).catch(next);
  const rollout = (id: unknown) => {
    const x = typeof id === 'string' && id.length <= 64 ? p.rollouts.get(id) : undefined;
    if (!x) throw new ApiError(404, `no rollout ${String(id)}`);
    return x;
  };
  r.get(
    '/migration',
    wrap(async (_req, res) => {
      res.json({ configured: p.configured, inProgress: p.service.inProgress, rollouts: p.rollouts.all().map((x) => x.summary()) });
    }),
  );
  r.get(
    '/devices/:key/migration',
    wrap(async (req, res) => {
      const d = await findDevice(req.params.key);
      res.json({ deviceKey: d.deviceKey, ...(await p.service.view(d.deviceKey)) });
    }),
  );
  r.post(
    '/devices/:key/migration/detect',
    wrap(async (req, res) => {
      const d = await findDevice(req.params.key);
      res.json({ deviceKey: d.deviceKey, detection: await p.service.detect(d) });
    }),
  );
  r.post(
    '/devices/:key/migration',
    wrap(async (req, res) => {
      const d = await findDevice(req.params.key);
      void p.service.start(d).catch(() => undefined);
      audit(req, 'migrate to native USP', { deviceKey: d.deviceKey });
      res.status(202).json({ deviceKey: d.deviceKey, status: 'running', view: `/api/devices/${encodeURIComponent(d.deviceKey)}/migration` });
    }),
  );
  r.post(
    '/migration/rollouts',
    wrap(async (req, res) => {
      if (!p.configured) throw new ApiError(503, 'migration is not configured (migration.brokerHost, controllerEndpointId, controllerTopic)');
      const { selection, options } = parseRollout(req.body);
      const x = await p.rollouts.create(selection, options).catch((e: Error) => {
        throw new ApiError(400, e.message);
      });
      audit(req, 'start migration rollout', { rollout: x.id, selection, devices: x.summary().total });
      res.status(201).json(x.summary());
    }),
  );
  r.get(
    '/migration/rollouts/:id',
    wrap(async (req, res) => {
      res.json(rollout(req.params.id).summary());
    }),
  );
  for (const action of ['pause', 'resume', 'cancel'] as const) {
    r.post(
      `/migration/rollouts/:id/${action}`,
      wrap(async (req, res) => {
        const x = rollout(req.params.id);
        x[action]();
        audit(req, `${action} migration rollout`, { rollout: x.id });
        res.json(x.summary());
      }),
    );
  }
  return r;
}
