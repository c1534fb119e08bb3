/**
 * The proxy's own MQTT connection to the operator's broker during migrations: it sends USP Gets
 * to a device's native agent as the operator's controller (the only controller the migration
 * configures on the device, TR-369 "Special Roles": an agent answers its controllers only) and
 * takes the answers on a reply topic of its own, so the operator's controller sees none of them.
 * One connection for every migration; started on first use.
 */
import { randomBytes } from 'node:crypto';
import { decodeMsg, decodeRecord, encodeRecord, type Msg, noSessionRecord } from '../usp/codec/record.js';
import { MqttMtp, type MqttMtpOptions } from '../usp/mtp/mqtt.js';
import type { InboundRecord } from '../usp/mtp/types.js';

export interface NativeProbeOptions {
  url: string;
  username?: string;
  password?: string;
  /** from_id of the Gets: the operator's controller (migration.controllerEndpointId). */
  controllerEndpointId: string;
  /** Where the native agents listen: this prefix + their Endpoint ID (migration.agentTopicPrefix). */
  agentTopicPrefix: string;
  tls?: MqttMtpOptions['tls'];
  log?: MqttMtpOptions['log'];
}

/** Bound on Gets in flight (one per migrating device at a time). */
const MAX_PENDING = 10_000;

export class NativeProbe {
  private mtp: MqttMtp | null = null;
  private starting: Promise<void> | null = null;
  private readonly pending = new Map<string, { resolve: (m: Msg) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  private seq = 0;
  private readonly tag = randomBytes(4).toString('hex');

  constructor(private readonly o: NativeProbeOptions) {}

  private start(): Promise<void> {
    this.starting ??= (async () => {
      const mtp = new MqttMtp({
        url: this.o.url,
        protocolVersion: 5,
        username: this.o.username || undefined,
        password: this.o.password || undefined,
        keepaliveS: 60,
        agentTopic: `/usp/migration/${this.tag}`,
        connectEndpointId: this.o.controllerEndpointId,
        maxRecordBytes: 1024 * 1024,
        backoff: { baseMs: 1000, maxMs: 30_000 },
        tls: this.o.tls,
        log: this.o.log,
      });
      mtp.on('record', (r) => this.onRecord(r));
      this.mtp = mtp;
      await mtp.start();
    })();
    return this.starting;
  }

  private onRecord(r: InboundRecord): void {
    try {
      const rec = decodeRecord(r.bytes);
      if (rec.toId !== this.o.controllerEndpointId || rec.recordType.kind !== 'noSessionContext') return;
      const msg = decodeMsg(rec.recordType.payload);
      const p = this.pending.get(msg.header.msgId);
      if (!p) return;
      this.pending.delete(msg.header.msgId);
      clearTimeout(p.timer);
      p.resolve(msg);
    } catch {
      // A Record that does not decode is not an answer of ours: dropped.
    }
  }

  /** Values of `paths` as the native agent answers them (paths it reports as errors are left out). */
  async get(nativeEndpointId: string, paths: readonly string[], timeoutMs: number): Promise<Record<string, string>> {
    await this.start();
    if (this.pending.size >= MAX_PENDING) throw new Error('too many migration Gets in flight');
    const msgId = `migration-${this.tag}-${++this.seq}`;
    const msg: Msg = {
      header: { msgId, msgType: 'GET' },
      body: { msgBody: 'request', request: { reqType: 'get', get: { paramPaths: [...paths], maxDepth: 0 } } },
    };
    const answer = new Promise<Msg>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(msgId);
        reject(new Error(`no answer from ${nativeEndpointId} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(msgId, { resolve, reject, timer });
    });
    // The deadline may pass while the publish still waits for its PUBACK: handled below, never unhandled.
    answer.catch(() => undefined);
    const dest = { mtp: 'mqtt' as const, address: this.o.agentTopicPrefix + nativeEndpointId };
    try {
      await this.mtp!.send(this.o.controllerEndpointId, dest, encodeRecord(noSessionRecord(this.o.controllerEndpointId, nativeEndpointId, msg)));
    } catch (e) {
      const p = this.pending.get(msgId);
      if (p) {
        clearTimeout(p.timer);
        this.pending.delete(msgId);
      }
      throw e;
    }
    const m = await answer;
    if (m.body.msgBody === 'error') throw new Error(`the native agent answered Error ${m.body.error?.errCode}: ${m.body.error?.errMsg}`);
    const out: Record<string, string> = {};
    for (const rp of m.body.response?.getResp?.reqPathResults ?? [])
      for (const rr of rp.resolvedPathResults) for (const [k, v] of Object.entries(rr.resultParams)) out[(rr.resolvedPath ?? '') + k] = v;
    return out;
  }

  async stop(): Promise<void> {
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new Error('stopping'));
    }
    this.pending.clear();
    await this.mtp?.stop();
  }
}
