/**
 * The migration of one device to its native USP Agent as a pure state machine (docs/migration.md):
 * read-settings -> configure -> enable -> await-agent -> verify -> handover -> migrated.
 * A step that fails after the device's settings were touched leads to rollback (the saved
 * settings written back over CWMP), then to failed with the first reason; a failure in
 * read-settings ends at once (nothing was changed). The runner (runner.ts) does the I/O.
 */

export const STEPS = ['read-settings', 'configure', 'enable', 'await-agent', 'verify', 'handover'] as const;
export type StepName = (typeof STEPS)[number] | 'rollback';

export type Phase = 'running' | 'migrated' | 'failed';

export interface StepRecord {
  name: StepName;
  startedAt: string;
  durationMs: number;
  ok: boolean;
  detail: string;
}

export interface MigrationState {
  phase: Phase;
  /** The step to run next (null when finished). */
  step: StepName | null;
  steps: StepRecord[];
  /** The device's own agent (Device.LocalAgent.EndpointID). */
  nativeEndpointId: string;
  /** Why it failed (the first failure; a failed rollback adds its own). */
  reason: string | null;
  /** failed only: whether the saved settings were written back. */
  rolledBack: boolean | null;
  startedAt: string;
  finishedAt: string | null;
}

export type StepResult = { ok: true; detail?: string } | { ok: false; reason: string };

export function begin(nativeEndpointId: string, now: Date): MigrationState {
  return {
    phase: 'running',
    step: 'read-settings',
    steps: [],
    nativeEndpointId,
    reason: null,
    rolledBack: null,
    startedAt: now.toISOString(),
    finishedAt: null,
  };
}

/** The state after the current step ended with `result` (it started at `startedAt`). */
export function advance(s: MigrationState, result: StepResult, startedAt: Date, now: Date): MigrationState {
  const step = s.step;
  if (s.phase !== 'running' || step === null) throw new Error('advance: the migration is finished');
  const record: StepRecord = {
    name: step,
    startedAt: startedAt.toISOString(),
    durationMs: Math.max(0, now.getTime() - startedAt.getTime()),
    ok: result.ok,
    detail: result.ok ? (result.detail ?? '') : result.reason,
  };
  const steps = [...s.steps, record];
  const done = (phase: Phase, extra: Partial<MigrationState>): MigrationState => ({ ...s, steps, step: null, phase, finishedAt: now.toISOString(), ...extra });
  if (step === 'rollback') {
    return result.ok ? done('failed', { rolledBack: true }) : done('failed', { rolledBack: false, reason: `${s.reason}; rollback failed: ${result.reason}` });
  }
  if (!result.ok) {
    const reason = `${step}: ${result.reason}`;
    // Nothing was written before configure: there is nothing to roll back.
    if (step === 'read-settings') return done('failed', { reason, rolledBack: false });
    return { ...s, steps, step: 'rollback', reason };
  }
  const i = STEPS.indexOf(step);
  if (i === STEPS.length - 1) return done('migrated', {});
  return { ...s, steps, step: STEPS[i + 1] };
}

/** A step that did not end by itself (the device rebooted, the proxy is stopping): a failure with that reason. */
export function interrupt(s: MigrationState, reason: string, startedAt: Date, now: Date): MigrationState {
  if (s.phase !== 'running' || s.step === null) return s;
  if (s.step === 'rollback') return s; // the rollback itself runs to its end
  return advance(s, { ok: false, reason }, startedAt, now);
}

/** The OperationComplete output arguments of the MigrateToUSP() command (docs/migration.md). */
export function outputArgs(s: MigrationState): Record<string, string> {
  return {
    Status: s.phase === 'migrated' ? 'Migrated' : s.phase === 'failed' ? 'Failed' : 'Running',
    NativeEndpointID: s.nativeEndpointId,
    Reason: s.reason ?? '',
    RolledBack: s.rolledBack === null ? '' : String(s.rolledBack),
    Steps: s.steps.map((r) => `${r.name}:${r.ok ? 'ok' : 'failed'}:${r.durationMs}ms`).join(','),
    DurationMs: String(s.finishedAt ? Date.parse(s.finishedAt) - Date.parse(s.startedAt) : 0),
  };
}
