/**
 * Prometheus metrics of migrations (the src/ops/metrics.ts pattern: typed events in, no reference
 * kept to the proxy): migrations finished by outcome, in progress, and rollout devices by state.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Rollouts } from './rollouts.js';
import type { MigrationService } from './service.js';

export function attachMigrationMetrics(registry: Registry, service: MigrationService, rollouts: Rollouts): void {
  const registers = [registry];
  const finished = new Counter({
    name: 'migration_finished_total',
    help: 'Migrations to the native USP Agent finished, by outcome (migrated, rolled-back, failed: not rolled back)',
    labelNames: ['outcome'],
    registers,
  });
  service.on('finished', ({ state }) => finished.inc({ outcome: state.phase === 'migrated' ? 'migrated' : state.rolledBack ? 'rolled-back' : 'failed' }));
  new Gauge({
    name: 'migration_in_progress',
    help: 'Migrations running now',
    registers,
    collect() {
      this.set(service.inProgress);
    },
  });
  new Gauge({
    name: 'migration_rollout_devices',
    help: 'Devices of the rollouts kept in memory, by state (migrated, failed, running, pending)',
    labelNames: ['state'],
    registers,
    collect() {
      const t = { migrated: 0, failed: 0, running: 0, pending: 0 };
      for (const r of rollouts.all()) {
        const s = r.summary();
        t.migrated += s.migrated;
        t.failed += s.failed.length;
        t.running += s.running;
        t.pending += s.pending;
      }
      for (const [state, n] of Object.entries(t)) this.set({ state }, n);
    },
  });
}
