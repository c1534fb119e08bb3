/**
 * The rollouts of this proxy: created from a selection over the registered devices, kept in
 * memory (bounded: the oldest finished ones are forgotten), each run by rollout.ts.
 */
import { randomBytes } from 'node:crypto';
import type { DeviceRecord, Store } from '../store/types.js';
import type { MigrationState } from './machine.js';
import { Rollout, type RolloutOptions, type RolloutSelection, selects } from './rollout.js';

/** Rollouts kept (running ones are never dropped). */
const MAX_ROLLOUTS = 20;
const PAGE = 1000;

export interface RolloutsPorts {
  store: Pick<Store, 'listDevices' | 'getTags' | 'getDevice'>;
  migrate(device: DeviceRecord): Promise<MigrationState>;
  sleep?(ms: number): Promise<void>;
  now?(): Date;
}

export class RolloutError extends Error {}

export class Rollouts {
  private readonly list = new Map<string, Rollout>();

  constructor(
    private readonly ports: RolloutsPorts,
    readonly defaults: RolloutOptions,
  ) {}

  /** The device keys a selection takes, in registration order of the store's listing. */
  async select(sel: RolloutSelection): Promise<string[]> {
    const out: string[] = [];
    for (let offset = 0; ; offset += PAGE) {
      const page = await this.ports.store.listDevices({ limit: PAGE, offset });
      for (const d of page) if (selects(sel, d, sel.tag === undefined ? [] : await this.ports.store.getTags(d.deviceKey))) out.push(d.deviceKey);
      if (page.length < PAGE) return out;
    }
  }

  async create(sel: RolloutSelection, opts: Partial<RolloutOptions> = {}): Promise<Rollout> {
    const options = { ...this.defaults, ...opts };
    const devices = await this.select(sel);
    if (devices.length === 0) throw new RolloutError('the selection matches no device');
    const now = this.ports.now ?? (() => new Date());
    const sleep = this.ports.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
    const r = new Rollout(randomBytes(6).toString('hex'), sel, options, devices, {
      migrate: async (key) => {
        const d = await this.ports.store.getDevice(key);
        if (!d) throw new Error('the device was deleted');
        return this.ports.migrate(d);
      },
      sleep,
      now,
    });
    this.list.set(r.id, r);
    this.prune();
    return r;
  }

  get(id: string): Rollout | undefined {
    return this.list.get(id);
  }

  all(): Rollout[] {
    return [...this.list.values()];
  }

  cancelAll(): void {
    for (const r of this.list.values()) r.cancel('the proxy is stopping');
  }

  private prune(): void {
    for (const [id, r] of this.list) {
      if (this.list.size <= MAX_ROLLOUTS) return;
      const s = r.summary().status;
      if (s === 'done' || s === 'stopped') this.list.delete(id);
    }
  }
}
