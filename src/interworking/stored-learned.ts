/**
 * What the proxy learned of devices, read from the store alone (no running proxy): the stored
 * model profile's capabilities and how each ValueChange subscription is served. For
 * `cwmp-usp-proxy devices --json`; the admin API shows the same from the running proxy.
 */
import type { DeviceRecord, Store } from '../store/types.js';
import { LOCAL_AGENT_PREFIXES } from '../usp/agent/local-agent-schema.js';
import { type LearnedCapabilities, learnedCapabilities } from './capabilities.js';
import { modelKeyOf } from './knowledge/knowledge-base.js';
import { ModelProfile } from './knowledge/model-profile.js';
import { DeviceWatch, describeServing, deviceValueChangeSubscriptions, type SubscriptionServing } from './watch-state.js';

export interface StoredLearned {
  /** null: the proxy has learned nothing of the device's model yet. */
  capabilities: LearnedCapabilities | null;
  valueChange: SubscriptionServing[];
}

/** One entry per device, in order. `gpvBatchSize`: interworking.gpvBatchSize (the upper bound). */
export async function storedLearned(
  store: Pick<Store, 'getLearned' | 'listAllSubscriptions'>,
  devices: readonly DeviceRecord[],
  gpvBatchSize: number,
): Promise<StoredLearned[]> {
  const subs = new Map<string, { instance: number; values: Record<string, string> }[]>();
  for (const r of await store.listAllSubscriptions()) {
    const list = subs.get(r.agentEid) ?? [];
    list.push({ instance: r.instance, values: r.values });
    subs.set(r.agentEid, list);
  }
  const models = new Map<string, LearnedCapabilities | null>();
  const out: StoredLearned[] = [];
  for (const d of devices) {
    const key = modelKeyOf(d);
    if (!models.has(key)) {
      const raw = await store.getLearned('model', key);
      // Failures in their back-off are not stored (a restart retries at once): null, not "none".
      models.set(key, raw === null ? null : learnedCapabilities(ModelProfile.fromJSON(key, parse(raw)), gpvBatchSize, null));
    }
    const refs = deviceValueChangeSubscriptions(
      (subs.get(d.endpointId) ?? []).sort((a, b) => a.instance - b.instance),
      LOCAL_AGENT_PREFIXES,
    );
    const watch = refs.length ? DeviceWatch.fromJSON(parse(await store.getLearned('watch', d.deviceKey))) : null;
    out.push({ capabilities: models.get(key) ?? null, valueChange: describeServing(refs, watch) });
  }
  return out;
}

function parse(raw: string | null): unknown {
  if (raw === null) return null;
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return null;
  }
}
