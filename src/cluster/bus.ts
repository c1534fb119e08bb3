/**
 * Messages between instances over Redis pub/sub (one subscriber connection per instance).
 * Pub/sub is at-most-once: it carries wake-ups and results to a waiting caller, never the only
 * copy of durable state (queued RPCs, subscriptions and pending Notifies live in Redis keys).
 */
import type { Redis } from 'ioredis';
import type { Logger } from '../log.js';

export type BusHandler = (message: Record<string, unknown>) => void;

export class ClusterBus {
  private readonly sub: Redis;
  private readonly handlers = new Map<string, BusHandler>();
  private closed = false;

  constructor(
    private readonly redis: Redis,
    private readonly log: Logger,
  ) {
    // A subscribed connection cannot run other commands (Redis pub/sub), hence a second one.
    // No ready check: its INFO would race the SUBSCRIBE on this connection (ioredis then fails
    // with "Connection in subscriber mode, only subscriber commands may be used").
    this.sub = redis.duplicate({ enableReadyCheck: false });
    this.sub.on('error', (e: Error) => this.log.warn({ err: e.message }, 'cluster bus: Redis subscriber error'));
    this.sub.on('message', (channel: string, text: string) => {
      const h = this.handlers.get(channel);
      if (!h) return;
      let m: unknown;
      try {
        m = JSON.parse(text);
      } catch {
        this.log.warn({ channel }, 'cluster bus: message is not JSON, dropped');
        return;
      }
      if (m === null || typeof m !== 'object') return;
      try {
        h(m as Record<string, unknown>);
      } catch (e) {
        this.log.error({ channel, err: (e as Error).message }, 'cluster bus: handler failed');
      }
    });
  }

  /** Subscribes before resolving, so nothing published afterwards is missed. */
  async on(channel: string, handler: BusHandler): Promise<void> {
    this.handlers.set(channel, handler);
    await this.sub.subscribe(channel);
  }

  publish(channel: string, message: object): void {
    if (this.closed) return;
    this.redis.publish(channel, JSON.stringify(message)).catch((e: Error) => this.log.warn({ channel, err: e.message }, 'cluster bus: publish failed'));
  }

  async close(): Promise<void> {
    this.closed = true;
    this.handlers.clear();
    this.sub.disconnect();
  }
}
