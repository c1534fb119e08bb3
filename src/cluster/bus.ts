/**
 * Messages between instances over Redis pub/sub (one subscriber connection per instance).
 * Pub/sub is at-most-once: it carries wake-ups and results to a waiting caller, never the only
 * copy of durable state (queued RPCs, subscriptions and pending Notifies live in Redis keys).
 */
import type { Redis } from 'ioredis';
import type { Logger } from '../app/log.js';

export type BusHandler = (message: Record<string, unknown>) => void;

export class ClusterBus {
  private subConn: Redis | null = null;
  private readonly handlers = new Map<string, BusHandler>();
  private closed = false;
  private lastError = '';

  constructor(
    private readonly redis: Redis,
    private readonly log: Logger,
  ) {}

  /**
   * The subscriber connection, opened on the first subscription (when the proxy starts). A
   * subscribed connection cannot run other commands (Redis pub/sub), hence a second one.
   */
  private get sub(): Redis {
    if (this.subConn) return this.subConn;
    // No ready check: its INFO would race the SUBSCRIBE on this connection (ioredis then fails
    // with "Connection in subscriber mode, only subscriber commands may be used").
    const sub = (this.subConn = this.redis.duplicate({ enableReadyCheck: false }));
    sub.on('error', (e: Error) => {
      // Once per distinct error while Redis is away, not once per reconnect attempt.
      if (e.message !== this.lastError) this.log.warn({ err: e.message }, 'cluster bus: Redis subscriber error');
      this.lastError = e.message;
    });
    sub.on('ready', () => (this.lastError = ''));
    sub.on('message', (channel: string, text: string) => this.dispatch(channel, text));
    return sub;
  }

  private dispatch(channel: string, text: string): void {
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
    this.subConn?.disconnect();
  }
}
