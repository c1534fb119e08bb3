/**
 * Which FirmwareImage a firmware Download() targeted, kept from the Operate until the CPE's
 * TransferComplete (TR-069 A.3.3.1: the CommandKey of the Download comes back in TransferComplete),
 * across restarts: TR-181 TransferComplete! names the Command that caused the transfer
 * ("Device.DeviceInfo.FirmwareImage.2.Download()"). Kept in the store (learned kind 'transfer',
 * per deviceKey), at most MAX_PER_DEVICE per device, the oldest dropped first: a CPE that never
 * reports back costs a bounded amount.
 */
import type { Store } from '../store/types.js';

export const MAX_PER_DEVICE = 8;

interface Entry {
  /** The CommandKey sent in the CWMP Download. */
  key: string;
  /** The USP command path that was run. */
  command: string;
}

export class DownloadTargets {
  constructor(private readonly store: Pick<Store, 'getLearned' | 'putLearned' | 'deleteLearned'>) {}

  /** A Download with this CWMP CommandKey was sent to the device for this command path. */
  async remember(deviceKey: string, key: string, command: string): Promise<void> {
    const list = (await this.list(deviceKey)).filter((e) => e.key !== key);
    list.push({ key, command });
    await this.store.putLearned('transfer', deviceKey, JSON.stringify(list.slice(-MAX_PER_DEVICE)));
  }

  /** The command path of the Download that this TransferComplete reports (and forgets it); null when unknown. */
  async take(deviceKey: string, key: string): Promise<string | null> {
    const list = await this.list(deviceKey);
    const hit = list.find((e) => e.key === key);
    if (!hit) return null;
    const rest = list.filter((e) => e !== hit);
    if (rest.length) await this.store.putLearned('transfer', deviceKey, JSON.stringify(rest));
    else await this.store.deleteLearned('transfer', deviceKey);
    return hit.command;
  }

  private async list(deviceKey: string): Promise<Entry[]> {
    const raw = await this.store.getLearned('transfer', deviceKey);
    if (!raw) return [];
    try {
      const v: unknown = JSON.parse(raw);
      return Array.isArray(v) ? v.filter((e): e is Entry => typeof e?.key === 'string' && typeof e?.command === 'string') : [];
    } catch {
      return [];
    }
  }
}
