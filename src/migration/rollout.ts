/**
 * A fleet rollout of migrations (docs/migration.md "Fleet rollout"): the selected devices in waves
 * of waveSize, at most perMinute starts a minute and concurrency at once, a stop when the failure
 * ratio after a wave exceeds maxFailurePercent, pause/resume between starts, and a summary
 * (migrated, failed with reasons, pending). The decisions (selection, stop) are pure functions.
 */
import { EventEmitter } from 'node:events';
import type { DeviceRecord } from '../store/types.js';
import type { MigrationState } from './machine.js';

export interface RolloutSelection {
  /** DeviceId ProductClass (the model). */
  productClass?: string;
  oui?: string;
  /** DeviceInfo.SoftwareVersion as last reported (the firmware). */
  softwareVersion?: string;
  /** A tag set through the admin API. */
  tag?: string;
}

export interface RolloutOptions {
  waveSize: number;
  perMinute: number;
  concurrency: number;
  maxFailurePercent: number;
}

/** Whether a device is in the selection (`tags`: the device's tags). */
export function selects(sel: RolloutSelection, d: DeviceRecord, tags: readonly string[]): boolean {
  if (sel.productClass !== undefined && d.deviceId.productClass !== sel.productClass) return false;
  if (sel.oui !== undefined && d.deviceId.oui.toUpperCase() !== sel.oui.toUpperCase()) return false;
  if (sel.softwareVersion !== undefined && d.softwareVersion !== sel.softwareVersion) return false;
  if (sel.tag !== undefined && !tags.includes(sel.tag)) return false;
  return true;
}

/** After a wave: stop when failed/finished is over the limit (percent). */
export function overFailureLimit(failed: number, finished: number, maxFailurePercent: number): boolean {
  return finished > 0 && (failed * 100) / finished > maxFailurePercent;
}

export type RolloutStatus = 'running' | 'paused' | 'stopped' | 'done';

export interface RolloutSummary {
  id: string;
  status: RolloutStatus;
  /** Why it stopped (failure ratio, cancelled). */
  reason: string | null;
  selection: RolloutSelection;
  options: RolloutOptions;
  total: number;
  wave: number;
  waves: number;
  migrated: number;
  failed: { deviceKey: string; reason: string }[];
  running: number;
  pending: number;
  startedAt: string;
  finishedAt: string | null;
}

export interface RolloutPorts {
  migrate(deviceKey: string): Promise<MigrationState>;
  sleep(ms: number): Promise<void>;
  now(): Date;
}

export interface RolloutEvents {
  device: [{ deviceKey: string; state: MigrationState }];
  end: [RolloutSummary];
}

export class Rollout extends EventEmitter<RolloutEvents> {
  private status: RolloutStatus = 'running';
  private reason: string | null = null;
  private wave = 0;
  private readonly migrated = new Set<string>();
  private readonly failed = new Map<string, string>();
  private readonly active = new Set<string>();
  private resumed: (() => void) | null = null;
  private lastStart = -Infinity;
  private readonly startedAt: string;
  private finishedAt: string | null = null;
  readonly done: Promise<RolloutSummary>;

  constructor(
    readonly id: string,
    readonly selection: RolloutSelection,
    readonly options: RolloutOptions,
    private readonly devices: readonly string[],
    private readonly ports: RolloutPorts,
  ) {
    super();
    this.startedAt = ports.now().toISOString();
    this.done = this.run();
  }

  pause(): void {
    if (this.status === 'running') this.status = 'paused';
  }

  resume(): void {
    if (this.status !== 'paused') return;
    this.status = 'running';
    this.resumed?.();
    this.resumed = null;
  }

  /** Starts nothing more; migrations in progress finish (or roll back) on their own. */
  cancel(reason = 'cancelled'): void {
    if (this.status === 'done' || this.status === 'stopped') return;
    this.status = 'stopped';
    this.reason = reason;
    this.resumed?.();
    this.resumed = null;
  }

  summary(): RolloutSummary {
    const finished = this.migrated.size + this.failed.size;
    return {
      id: this.id,
      status: this.status,
      reason: this.reason,
      selection: this.selection,
      options: this.options,
      total: this.devices.length,
      wave: this.wave,
      waves: Math.ceil(this.devices.length / this.options.waveSize),
      migrated: this.migrated.size,
      failed: [...this.failed].map(([deviceKey, reason]) => ({ deviceKey, reason })),
      running: this.active.size,
      pending: this.devices.length - finished - this.active.size,
      startedAt: this.startedAt,
      finishedAt: this.finishedAt,
    };
  }

  private async whilePaused(): Promise<void> {
    while (this.status === 'paused') await new Promise<void>((r) => (this.resumed = r));
  }

  /** A method, not a field read: pause()/cancel() change the status while run() awaits. */
  private is(status: RolloutStatus): boolean {
    return this.status === status;
  }

  /** Waits for a start slot: not paused, and at least 60 s / perMinute after the previous start. */
  private async gate(): Promise<boolean> {
    await this.whilePaused();
    if (!this.is('running')) return false;
    const wait = this.lastStart + 60_000 / this.options.perMinute - this.ports.now().getTime();
    if (wait > 0) await this.ports.sleep(wait);
    await this.whilePaused();
    if (!this.is('running')) return false;
    this.lastStart = this.ports.now().getTime();
    return true;
  }

  private async one(deviceKey: string): Promise<void> {
    this.active.add(deviceKey);
    try {
      const state = await this.ports.migrate(deviceKey);
      if (state.phase === 'migrated') this.migrated.add(deviceKey);
      else this.failed.set(deviceKey, state.reason ?? 'failed');
      this.emit('device', { deviceKey, state });
    } catch (e) {
      this.failed.set(deviceKey, (e as Error).message);
    } finally {
      this.active.delete(deviceKey);
    }
  }

  private async run(): Promise<RolloutSummary> {
    await Promise.resolve(); // listeners attach first
    const size = this.options.waveSize;
    for (let start = 0; start < this.devices.length; start += size) {
      if (this.is('stopped')) break;
      this.wave++;
      const wave = this.devices.slice(start, start + size);
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < wave.length) {
          if (!(await this.gate())) return;
          const key = wave[next++];
          if (key === undefined) return;
          await this.one(key);
        }
      };
      await Promise.all(Array.from({ length: Math.min(this.options.concurrency, wave.length) }, worker));
      const finished = this.migrated.size + this.failed.size;
      if (!this.is('stopped') && overFailureLimit(this.failed.size, finished, this.options.maxFailurePercent)) {
        this.status = 'stopped';
        this.reason = `failure ratio ${this.failed.size}/${finished} over ${this.options.maxFailurePercent}% after wave ${this.wave}`;
      }
    }
    if (!this.is('stopped')) this.status = 'done';
    this.finishedAt = this.ports.now().toISOString();
    const s = this.summary();
    this.emit('end', s);
    return s;
  }
}
