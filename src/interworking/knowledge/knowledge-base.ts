/**
 * Where learned device knowledge lives: model profiles and device trees, cached in memory (bounded
 * LRUs: idle devices cost no RAM) and written to the store so that a restart does not walk every
 * device again. The store is the only I/O, behind a narrow port passed in at construction.
 */
import { LRUCache } from 'lru-cache';
import type { DeviceRecord, LearnedKind } from '../../store/types.js';
import { DeviceTree } from './device-tree.js';
import { type ModelCapabilities, ModelProfile } from './model-profile.js';

/** The store methods this needs (Store implements them). */
export interface LearnedStore {
  getLearned(kind: LearnedKind, key: string): Promise<string | null>;
  putLearned(kind: LearnedKind, key: string, json: string): Promise<void>;
  deleteLearned(kind: LearnedKind, key: string): Promise<void>;
}

export interface KnowledgeBaseOptions {
  /** Device trees kept in memory (default 512). */
  deviceCacheSize?: number;
  /** Model profiles kept in memory (default 256). */
  modelCacheSize?: number;
  /** Initial capabilities of a model never seen (e.g. gpvBatch from the configuration). */
  capabilityDefaults?: Partial<ModelCapabilities>;
  /** A write failure (the knowledge is a cache: logged, never thrown at a request). */
  onStoreError?(what: string, err: Error): void;
}

/**
 * The model key: OUI, ProductClass and software version (a firmware change may change the model),
 * with "%" and "|" %-encoded in each part so that no two models share a key (a device must not
 * teach another model's names); unchanged for parts without them.
 */
export function modelKeyOf(d: Pick<DeviceRecord, 'deviceId' | 'softwareVersion'>): string {
  const esc = (s: string): string => s.replaceAll('%', '%25').replaceAll('|', '%7C');
  return `${esc(d.deviceId.oui)}|${esc(d.deviceId.productClass)}|${esc(d.softwareVersion ?? '')}`;
}

export class KnowledgeBase {
  private readonly models: LRUCache<string, ModelProfile>;
  private readonly trees: LRUCache<string, { tree: DeviceTree; model: string }>;
  private readonly loading = new Map<string, Promise<unknown>>();
  /** Writes in flight per document: the next write of the same document waits (last write wins in order). */
  private readonly writing = new Map<string, Promise<void>>();

  constructor(
    private readonly store: LearnedStore,
    private readonly opts: KnowledgeBaseOptions = {},
  ) {
    this.models = new LRUCache({ max: opts.modelCacheSize ?? 256 });
    this.trees = new LRUCache({ max: opts.deviceCacheSize ?? 512 });
  }

  async model(d: Pick<DeviceRecord, 'deviceId' | 'softwareVersion'>): Promise<ModelProfile> {
    const key = modelKeyOf(d);
    const hit = this.models.get(key);
    if (hit) return hit;
    return this.once(`model|${key}`, async () => {
      const raw = await this.store.getLearned('model', key).catch(() => null);
      const m = ModelProfile.fromJSON(key, parse(raw), this.opts.capabilityDefaults);
      this.models.set(key, m);
      return m;
    });
  }

  async tree(d: DeviceRecord): Promise<DeviceTree> {
    const model = await this.model(d);
    const hit = this.trees.get(d.deviceKey);
    // A firmware change moves the device to another model: what it knew is not reliable any more.
    if (hit && hit.model === model.key) return hit.tree;
    return this.once(`tree|${d.deviceKey}`, async () => {
      const raw = hit ? null : await this.store.getLearned('device', d.deviceKey).catch(() => null);
      const stored = parse(raw) as { model?: string; tree?: unknown } | null;
      const tree = stored?.model === model.key ? DeviceTree.fromJSON(stored.tree, model.interner) : new DeviceTree(model.interner);
      this.trees.set(d.deviceKey, { tree, model: model.key });
      return tree;
    });
  }

  /** Writes the device's tree and its model's profile when they changed (after a learn). */
  async save(d: DeviceRecord, tree: DeviceTree, model: ModelProfile): Promise<void> {
    const jobs: Promise<void>[] = [this.write('device', d.deviceKey, () => JSON.stringify({ model: model.key, tree: tree.toJSON() }))];
    if (model.dirty) {
      model.dirty = false;
      jobs.push(this.write('model', model.key, () => JSON.stringify(model.toJSON())));
    }
    await Promise.all(jobs);
  }

  /** Saves a model profile alone (a capability changed). */
  async saveModel(model: ModelProfile): Promise<void> {
    if (!model.dirty) return;
    model.dirty = false;
    await this.write('model', model.key, () => JSON.stringify(model.toJSON()));
  }

  /** BOOT / factory reset: every learned name of the device must be confirmed again before use. */
  markDeviceStale(deviceKey: string, prefix = ''): void {
    this.trees.get(deviceKey)?.tree.markStale(prefix);
  }

  /** An operator reset, or a device deleted: forget it entirely. */
  async forgetDevice(deviceKey: string): Promise<void> {
    this.trees.delete(deviceKey);
    await this.store.deleteLearned('device', deviceKey).catch((e: Error) => this.opts.onStoreError?.('deleting learned device names', e));
  }

  /** The cached model profile of a device, if loaded (for status displays; never loads). */
  cachedModel(d: Pick<DeviceRecord, 'deviceId' | 'softwareVersion'>): ModelProfile | undefined {
    return this.models.get(modelKeyOf(d));
  }

  private write(kind: LearnedKind, key: string, json: () => string): Promise<void> {
    const id = `${kind}|${key}`;
    const prev = this.writing.get(id) ?? Promise.resolve();
    const next = prev.then(() => this.store.putLearned(kind, key, json())).catch((e: Error) => this.opts.onStoreError?.(`storing learned ${kind} ${key}`, e));
    this.writing.set(id, next);
    void next.then(() => {
      if (this.writing.get(id) === next) this.writing.delete(id);
    });
    return next;
  }

  private once<T>(id: string, load: () => Promise<T>): Promise<T> {
    let p = this.loading.get(id) as Promise<T> | undefined;
    if (!p) {
      p = load().finally(() => this.loading.delete(id));
      this.loading.set(id, p);
    }
    return p;
  }
}

function parse(raw: string | null): unknown {
  if (raw === null) return null;
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return null;
  }
}
