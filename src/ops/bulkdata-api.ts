/**
 * The Bulk Data profiles of a device in the admin API (issue 20, docs/bulkdata.md):
 * GET /api/devices/{key}/bulkdata gives each Device.BulkData.Profile.{i} of the device's agent
 * with its parameters, where its reports go (the collector URL without user information; the
 * password never) and its latest collection (due, collected, via periodic Inform or connection
 * request, lag, outcome, missed count, retained failed reports), and when the device's next
 * periodic Inform is expected.
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import type { ProfileView } from '../bulkdata/profiles.js';
import type { ProfileStatus } from '../bulkdata/scheduler.js';
import type { BulkDataView } from '../bulkdata/api-ports.js';

/** What the route reads: a narrow view of the Bulk Data parts (bulkdata/api-ports.ts). */
export type BulkDataApiPorts = BulkDataView;

/** The collector URL as shown: no user information (it may carry a password). */
export function shownUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return url === '' ? '' : '(not a URL)';
  }
}

export function profileJson(p: ProfileView, status: ProfileStatus | undefined): Record<string, unknown> {
  const v = p.values;
  return {
    instance: p.instance,
    path: p.path,
    alias: v.Alias ?? '',
    name: v.Name ?? '',
    enable: v.Enable === 'true',
    protocol: v.Protocol ?? '',
    encodingType: v.EncodingType ?? '',
    reportingIntervalS: Number(v.ReportingInterval),
    timeReference: v.TimeReference ?? '',
    parameters: p.parameters,
    http: v.Protocol === 'HTTP' ? { url: shownUrl(p.http.URL ?? ''), method: p.http.Method ?? 'POST', compression: p.http.Compression ?? 'None' } : undefined,
    lastCollection: status ?? null,
  };
}

/** The router, mounted on /api behind its bearer token (admin.ts); `findDevice` answers 400/404 for a bad key. */
export function bulkDataRoutes(ports: BulkDataApiPorts, findDevice: (key: unknown) => Promise<{ deviceKey: string; endpointId: string }>): express.Router {
  const r = express.Router();
  r.get('/devices/:key/bulkdata', (req: Request, res: Response, next: NextFunction) => {
    findDevice(req.params.key)
      .then((d) => {
        const eid = d.endpointId;
        res.json({
          deviceKey: d.deviceKey,
          endpointId: eid,
          enabled: ports.enabled(eid),
          periodicInform: ports.periodicInform(eid),
          profiles: ports.profiles(eid).map((p) => profileJson(p, ports.status(eid, p.instance))),
        });
      })
      .catch(next);
  });
  return r;
}
