import type { AcsRequest, DeviceIdStruct, XsdType } from '../cwmp/types.js';

/** Which data model root a device speaks (TR-181 "Device." or TR-098 "InternetGatewayDevice."). */
export type RootModel = 'Device' | 'InternetGatewayDevice';

/** One registered CWMP device: the registry's truth. */
export interface DeviceRecord {
  /** Stable key: "<OUI>-<ProductClass>-<SerialNumber>" with each part %-encoded as needed. */
  deviceKey: string;
  /** USP Endpoint ID the device is presented under (os::OUI-Serial or ops::OUI-ProductClass-Serial). */
  endpointId: string;
  deviceId: DeviceIdStruct;
  rootModel: RootModel;
  softwareVersion: string | null;
  connectionRequestUrl: string | null;
  /** ManagementServer.ConnectionRequestUsername/Password the ACS set on BOOTSTRAP. Secret. */
  connReqUsername: string | null;
  connReqPassword: string | null;
  /** Per-device credentials the CPE uses toward the ACS (null: use the shared pair). Secret. */
  cpeUsername: string | null;
  cpePassword: string | null;
  /**
   * acs.auth.perDevice: credentials stored before the SetParameterValues that gives them to the
   * device, accepted besides the current ones until the device first authenticates with them (so
   * that a crash between the device applying them and the proxy storing its answer locks nobody
   * out). Secret. Absent = none.
   */
  cpePendingUsername?: string | null;
  cpePendingPassword?: string | null;
  /** The TLS client certificate identity (subject or serial) bound to the device at first use (acs.tls.clientCert). */
  cpeCertIdentity?: string | null;
  /** ManagementServer.PeriodicInformInterval when the Inform carried it (seconds). */
  periodicInformInterval: number | null;
  /** ISO-8601 time of the last Inform, and its event codes. */
  lastInform: string | null;
  lastInformEvents: string[];
  registeredAt: string;
}

/** An ACS RPC waiting for the device's next session (survives restarts). */
export interface QueuedRpc {
  /** Unique id (the proxy's; also used as the cwmp:ID of the request). */
  id: string;
  deviceKey: string;
  rpc: AcsRequest;
  /** ISO-8601 creation time; the queue is FIFO per device on (createdAt, seq). */
  createdAt: string;
  /** Epoch ms after which the RPC is failed as "device unreachable". */
  deadline: number;
  /** Several instances (src/cluster/): the instance whose caller waits for the outcome. */
  origin?: string;
  /** Several instances: EnqueueOptions.linger of the caller. */
  linger?: boolean;
  /**
   * Epoch ms at which a session took the RPC to send it, written before its bytes leave: after a
   * crash an RPC with sentAt may have been carried out (at-most-once, docs/reliability.md).
   */
  sentAt?: number;
}

export interface DeviceQuery {
  /** Case-insensitive substring of Endpoint ID, DeviceId fields or deviceKey. */
  search?: string;
  limit?: number;
  offset?: number;
}

/**
 * The store interface. SQLite (sqlite.ts) is the embedded default; a shared store
 * (e.g. Redis, for several instances) implements the same. Methods are synchronous-
 * looking Promises so that network-backed stores fit.
 */
export interface Store {
  upsertDevice(device: DeviceRecord): Promise<void>;
  getDevice(deviceKey: string): Promise<DeviceRecord | null>;
  /**
   * Forgets a device (a ghost, or one replaced): its record, its queued RPCs, its mapped instance
   * numbers and what was learned of it alone. Its agent's USP rows (subscriptions, requests) are
   * kept: they belong to the Endpoint ID, which a device coming back takes again. False when unknown.
   */
  deleteDevice(deviceKey: string): Promise<boolean>;
  /** Operator tags of a device (store migration 9), sorted; [] when none or unknown. */
  getTags(deviceKey: string): Promise<string[]>;
  /** Replaces a device's tags. */
  setTags(deviceKey: string, tags: readonly string[]): Promise<void>;
  /** Keys of the devices with this tag, in key order. */
  devicesWithTag(tag: string): Promise<string[]>;
  getDeviceByEndpointId(endpointId: string): Promise<DeviceRecord | null>;
  /** The device whose per-device CPE username (current or pending) this is (acs.auth.perDevice). */
  getDeviceByCpeUsername(username: string): Promise<DeviceRecord | null>;
  listDevices(query?: DeviceQuery): Promise<DeviceRecord[]>;
  countDevices(): Promise<number>;
  /** Cheap Inform bookkeeping on the hot path: only lastInform, its events and the connection request URL. */
  touchInform(deviceKey: string, at: string, events: string[], connectionRequestUrl: string | null): Promise<void>;

  /** Learned xsi:types, per device model key (e.g. "OUI-ProductClass-SoftwareVersion"). */
  putParameterTypes(modelKey: string, types: ReadonlyMap<string, XsdType>): Promise<void>;
  getParameterTypes(modelKey: string, names?: readonly string[]): Promise<Map<string, XsdType>>;

  /** Queued RPCs, FIFO per device. */
  addQueuedRpc(rpc: QueuedRpc): Promise<void>;
  listQueuedRpcs(deviceKey: string): Promise<QueuedRpc[]>;
  listAllQueuedRpcs(): Promise<QueuedRpc[]>;
  removeQueuedRpc(id: string): Promise<boolean>;
  /** Marks a queued RPC as sent (QueuedRpc.sentAt); nothing when it is gone. */
  markQueuedRpcSent(id: string, at: number): Promise<void>;

  /** Device.LocalAgent.Subscription rows per agent (TR-369: subscriptions survive a restart when Persistent). */
  putSubscription(agentEid: string, instance: number, values: Record<string, string>): Promise<void>;
  deleteSubscription(agentEid: string, instance: number): Promise<void>;
  listAllSubscriptions(): Promise<StoredRow[]>;

  /** Device.LocalAgent.Request rows of running async commands (finished with OperationComplete after a restart). */
  putRequest(agentEid: string, instance: number, values: Record<string, string>): Promise<void>;
  deleteRequest(agentEid: string, instance: number): Promise<void>;
  listAllRequests(): Promise<StoredRow[]>;

  /** Instance numbers of mapped Device:2 tables per device (TR-098 mapping): stable, never reused. */
  getInstanceMap(deviceKey: string): Promise<Record<string, number> | null>;
  putInstanceMap(deviceKey: string, map: Record<string, number>): Promise<void>;

  /**
   * What the proxy learned of a CWMP device model or of one device (names, types, capabilities;
   * src/interworking/knowledge/), as an opaque JSON document per (kind, key): a cache of facts
   * the device can tell again, kept so that a restart does not walk every device again.
   */
  getLearned(kind: LearnedKind, key: string): Promise<string | null>;
  putLearned(kind: LearnedKind, key: string, json: string): Promise<void>;
  deleteLearned(kind: LearnedKind, key: string): Promise<void>;

  /** Notify Msgs sent with send_resp and not yet answered (retried after a restart, TR-369 NotifRetry). */
  putPendingNotify(n: PendingNotify): Promise<void>;
  deletePendingNotify(msgId: string): Promise<void>;
  listPendingNotifies(): Promise<PendingNotify[]>;

  /**
   * Store migration 8: moves devices stored under a key that is not deviceKeyOf(their DeviceId)
   * (the form before it left "-" unescaped inside OUI and ProductClass) to that key, with
   * everything keyed by it. Run by the migration itself; idempotent.
   */
  rekeyDevices(): Promise<{ moved: number; clashes: number }>;

  /** Network-backed stores: resolves once the backend answers, rejects with a message naming it. */ ready?(): Promise<void>;
  close(): Promise<void>;
}

/**
 * 'model': per device model (OUI, ProductClass, software version); 'device': per deviceKey;
 * 'watch': how the ValueChange subscriptions of a device are served, per deviceKey;
 * 'transfer': firmware Download() commands not reported back yet, per deviceKey;
 * 'bulkdata': the Device.BulkData. rows of an agent (src/bulkdata/), per agent Endpoint ID.
 */
export type LearnedKind = 'model' | 'device' | 'watch' | 'transfer' | 'bulkdata' | 'migration';

export interface PendingNotify {
  msgId: string;
  agentEid: string;
  controllerEid: string;
  /** The encoded USP Msg (resent as is). */
  msg: Uint8Array;
  attempt: number;
  /** Epoch ms after which retries stop; null = never (OnBoardRequest). */
  expiresAt: number | null;
}

/** A stored row of an agent's Device.LocalAgent.Subscription.{i}. or Device.LocalAgent.Request.{i}. table. */
export interface StoredRow {
  agentEid: string;
  instance: number;
  values: Record<string, string>;
}

/** The optional CPE-authentication fields (migration 7), present only when set. */
export function authFields(
  pendingUsername: string | null | undefined,
  pendingPassword: string | null | undefined,
  certIdentity: string | null | undefined,
): Pick<DeviceRecord, 'cpePendingUsername' | 'cpePendingPassword' | 'cpeCertIdentity'> {
  const out: Pick<DeviceRecord, 'cpePendingUsername' | 'cpePendingPassword' | 'cpeCertIdentity'> = {};
  if (pendingUsername != null) out.cpePendingUsername = pendingUsername;
  if (pendingPassword != null) out.cpePendingPassword = pendingPassword;
  if (certIdentity != null) out.cpeCertIdentity = certIdentity;
  return out;
}
