/**
 * An in-process MTP for endpoint tests: what the endpoint sends is decoded and kept in `sent`;
 * inject()/deliver() hand it Records as if they came from a broker (MQTT), no sockets.
 */
import { EventEmitter } from 'node:events';
import { decodeRecord, type UspRecord } from '../../src/usp/codec/record.js';
import type { InboundRecord, Mtp, MtpDestination, MtpEvents, MtpKind, MtpStatus } from '../../src/usp/mtp/types.js';

export class FakeMtp extends EventEmitter<MtpEvents> implements Mtp {
  readonly kind: MtpKind;
  /** Every Record the endpoint sent, decoded, oldest first. */
  readonly sent: { from: string; dest: MtpDestination; rec: UspRecord }[] = [];
  /** Agents added, in order. */
  readonly agents: string[] = [];

  /** connected: what status() reports (a connected broker MTP makes new agents send Connect Records); kind: which MTP it plays. */
  constructor(
    private readonly connected = true,
    kind: MtpKind = 'mqtt',
  ) {
    super();
    this.kind = kind;
  }

  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  async send(from: string, dest: MtpDestination, bytes: Uint8Array): Promise<void> {
    this.sent.push({ from, dest, rec: decodeRecord(bytes) });
  }
  status(): MtpStatus {
    return { mtp: this.kind, connected: this.connected, detail: 'fake', channels: 1 };
  }
  addAgent(eid: string): void {
    this.agents.push(eid);
  }
  removeAgent(): void {}

  /** A Record from the broker; replyTo is its Response Topic (null: none). */
  inject(bytes: Uint8Array, replyTo: string | null = '/reply', peerEid: string | null = null): void {
    const r: InboundRecord = { mtp: this.kind, bytes, replyTo: replyTo ? { mtp: this.kind, address: replyTo } : null, agentEid: null, peerEid };
    this.emit('record', r);
  }

  /** inject(), then a few turns of the event loop so that the endpoint has answered. */
  async deliver(bytes: Uint8Array, replyTo: string | null = '/reply'): Promise<void> {
    this.inject(bytes, replyTo);
    for (let i = 0; i < 10; i++) await new Promise<void>((r) => setImmediate(r));
  }
}
