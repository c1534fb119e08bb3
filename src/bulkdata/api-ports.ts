/** The admin API's view of Bulk Data (src/ops/bulkdata-api.ts): profiles, their latest collection, periodic Informs. */
import type { BulkData, ProfileView } from './profiles.js';
import type { BulkDataScheduler, ProfileStatus } from './scheduler.js';

export interface BulkDataView {
  enabled(agentEid: string): boolean;
  profiles(agentEid: string): ProfileView[];
  status(agentEid: string, instance: number): ProfileStatus | undefined;
  periodicInform(agentEid: string): { intervalS: number | null; next: string | null };
}

export function bulkDataApiPorts(bulkData: BulkData, scheduler: BulkDataScheduler): BulkDataView {
  return {
    enabled: (eid) => bulkData.enabled(eid),
    profiles: (eid) => bulkData.profiles(eid),
    status: (eid, instance) => scheduler.profileStatus(eid, instance),
    periodicInform: (eid) => {
      const ms = scheduler.informs.intervalMs(eid);
      const next = scheduler.informs.next(eid, Date.now());
      return { intervalS: ms > 0 ? ms / 1000 : null, next: next === null ? null : new Date(next).toISOString() };
    },
  };
}
