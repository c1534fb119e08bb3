/**
 * A USP controller for end-to-end tests: the controller CLI's client, plus the Notifies it
 * received, awaitable by predicate (already received or still to come).
 */
import type { UspControllerClient } from '../../src/tools/controller/client.js';
import type { Msg } from '../../src/usp/codec/record.js';

export class TestController {
  readonly notifies: Msg[] = [];
  private waiters: { pred: (m: Msg) => boolean; resolve: (m: Msg) => void }[] = [];

  constructor(readonly c: UspControllerClient) {
    c.on('notify', (m) => {
      this.notifies.push(m);
      for (const w of [...this.waiters]) if (w.pred(m)) this.waiters.splice(this.waiters.indexOf(w), 1), w.resolve(m);
    });
    c.on('error', () => undefined);
  }

  req(m: Msg, timeoutMs = 10_000): Promise<Msg> {
    return this.c.request(m, timeoutMs);
  }

  /** Resolves with the first Notify (already received or future) matching pred. */
  notify(pred: (m: Msg) => boolean, timeoutMs = 10_000, label = 'Notify'): Promise<Msg> {
    const seen = this.notifies.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no ${label} within ${timeoutMs} ms; got ${JSON.stringify(this.notifies.map((n) => n.body.request?.notify))}`)),
        timeoutMs,
      );
      this.waiters.push({ pred, resolve: (m) => (clearTimeout(timer), resolve(m)) });
    });
  }
}
