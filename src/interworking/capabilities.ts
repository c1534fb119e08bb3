/**
 * What the proxy learned of a device model's CPE agent, as the admin API and `devices --json`
 * show it. Pure: built from a ModelProfile (live, or restored from the store).
 */
import type { ModelProfile, RememberedFailure, Tri } from './knowledge/model-profile.js';

export interface LearnedCapabilities {
  /** The model key: OUI|ProductClass|SoftwareVersion. */
  model: string;
  /** GetParameterValues with a partial path: the proxy sends none unless the model has shown it answers them ("yes"). */
  partialPaths: 'yes' | 'no';
  /** Names per GetParameterValues (the configured size, or less once the model faulted on longer lists). */
  gpvBatchSize: number;
  setParameterAttributes: Tri;
  rootNextLevelFalse: Tri;
  /** The CPE's GetRPCMethods answer (null: not asked yet). */
  rpcMethods: string[] | null;
  knownParameters: number;
  /** Learn failures in their back-off; null where not known (they live in the running proxy only). */
  failures: RememberedFailure[] | null;
}

export function learnedCapabilities(m: ModelProfile, gpvBatchSize: number, failures: RememberedFailure[] | null): LearnedCapabilities {
  const c = m.caps;
  return {
    model: m.key,
    partialPaths: c.partialPaths === 'yes' ? 'yes' : 'no',
    gpvBatchSize: Math.min(c.gpvBatch, gpvBatchSize),
    setParameterAttributes: c.setParameterAttributes,
    rootNextLevelFalse: c.rootNextLevelFalse,
    rpcMethods: c.rpcMethods ? [...c.rpcMethods] : null,
    knownParameters: m.paramCount,
    failures,
  };
}
