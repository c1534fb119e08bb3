/**
 * What the USP agent side needs from the other instances when several proxies share one store:
 * given to the constructors of the endpoint, the notifier and the local agent. One instance on
 * its own uses SingleInstance (every claim is won, numbering is local, nothing is relayed);
 * src/cluster/ implements it on Redis. Inbound signals from the other instances are events.
 */
import { EventEmitter } from 'node:events';
import type { StoredRow } from '../../store/types.js';

export interface RelayedRecord {
  agentEid: string;
  controllerEid: string;
  /** The encoded Record, sent as is. */
  bytes: Uint8Array;
  /** Its Msg type (for metrics; the Record is not decoded again). */
  msgType: string;
}

export interface CoordinationEvents {
  /** A Record for a controller another instance does not reach (a WebSocket controller connected here, maybe). */
  relayedRecord: [RelayedRecord];
  /** A NotifyResp that reached another instance, for a Notify this one may be retrying (TR-369 R-NOT.9). */
  notifyResp: [{ agentEid: string; controllerEid: string; msgId: string }];
  /** An agent registered on another instance: it appears on this instance's MTPs too. */
  agentAdded: [{ endpointId: string }];
  /** Another instance changed the agent's stored Subscription or Request rows: the rows as stored now. */
  rowsChanged: [{ agentEid: string; subscriptions: StoredRow[]; requests: StoredRow[] }];
}

export interface Coordination extends EventEmitter<CoordinationEvents> {
  /**
   * Claims a once-key for ttlMs: true when this instance won it. Timers every instance arms
   * (Periodic!, TimeToLive) act only on a won claim, so each fires once across instances.
   */
  claimOnce(key: string, ttlMs: number): Promise<boolean>;
  /**
   * Instance number of a new row of tablePath (at least atLeast, never handed out twice across
   * instances); undefined: numbering is local (the table's next).
   */
  allocateInstance(agentEid: string, tablePath: string, atLeast: number): Promise<number> | undefined;
  /** Hands a Record no MTP of this instance could deliver to the instances that may. False: nobody else to ask. */
  relayRecord(record: RelayedRecord): boolean;
  /** A USP request is in progress here: if this instance dies before answering, another answers it with an Error. */
  requestStarted(agentEid: string, controllerEid: string, msgId: string): void;
  /**
   * That request is done; called before its answer is handed to the MTP. False (or a promise
   * of false): another instance took it over and answered it, so this answer must not go.
   */
  requestAnswered(agentEid: string, controllerEid: string, msgId: string): boolean | Promise<boolean>;
  /** Is this Endpoint ID an agent registered on another instance? */
  resolveAgent(endpointId: string): Promise<boolean>;
  /** A NotifyResp for a Notify this instance does not retry: the one that does may be elsewhere. */
  relayNotifyResp(agentEid: string, controllerEid: string, msgId: string): void;
  /** An agent appeared here (its device's first Inform on this instance). */
  announceAgent(endpointId: string): void;
  /** The agent's stored Subscription or Request rows are being written: the others re-read them once stored. */
  rowsWritten(agentEid: string, write: Promise<void>): void;
}

/** One proxy on its own store: nothing to coordinate with. */
export class SingleInstance extends EventEmitter<CoordinationEvents> implements Coordination {
  async claimOnce(_key: string, _ttlMs: number): Promise<boolean> {
    return true;
  }
  allocateInstance(_agentEid: string, _tablePath: string, _atLeast: number): Promise<number> | undefined {
    return undefined;
  }
  relayRecord(_record: RelayedRecord): boolean {
    return false;
  }
  requestStarted(_agentEid: string, _controllerEid: string, _msgId: string): void {}
  requestAnswered(_agentEid: string, _controllerEid: string, _msgId: string): boolean | Promise<boolean> {
    return true;
  }
  async resolveAgent(_endpointId: string): Promise<boolean> {
    return false;
  }
  relayNotifyResp(_agentEid: string, _controllerEid: string, _msgId: string): void {}
  announceAgent(_endpointId: string): void {}
  rowsWritten(_agentEid: string, _write: Promise<void>): void {}
}
