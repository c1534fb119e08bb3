/**
 * Graceful shutdown (SIGTERM/SIGINT): stop accepting CWMP connections, let running sessions
 * end within a grace period, then Proxy.stop() (Disconnect Records to controllers, remaining
 * sessions ended with their RPCs left queued in the store, store closed and flushed).
 */
import net from 'node:net';
import type http from 'node:http';
import type { CwmpUspProxy } from './proxy.js';
import type { Logger } from './log.js';

export interface DrainOptions {
  /** How long running CWMP sessions may take to end (ms). */
  graceMs: number;
  log: Logger;
  /** Retry-After (s) on Informs refused during the drain (default 60). */
  retryAfterS?: number;
}

export interface DrainResult {
  /** Sessions still running when the grace period ran out (ended by Proxy.stop). */
  abandonedSessions: number;
  drainMs: number;
}

/**
 * Drains and stops the proxy. New TCP connections to the ACS are refused at once; a new
 * Inform on a still-open keep-alive socket gets 503 + Retry-After; requests of sessions
 * already running are served until they end or graceMs passes.
 */
export async function drainAndStop(proxy: CwmpUspProxy, opts: DrainOptions): Promise<DrainResult> {
  const { log } = opts;
  const started = Date.now();
  const server = proxy.acs.server;
  refuseNewSessions(server, proxy, opts.retryAfterS ?? 60);
  // http.Server#close() also closes idle keep-alive sockets (Node >= 19), which would cut a CWMP
  // session between two of its requests; net.Server#close() only stops listening.
  if (server.listening) net.Server.prototype.close.call(server);

  const active = proxy.engine.activeSessions;
  if (active > 0) log.info({ sessions: active, graceMs: opts.graceMs }, 'draining: waiting for CWMP sessions to end');
  await waitForSessions(proxy, opts.graceMs);
  const abandoned = proxy.engine.activeSessions;
  if (abandoned > 0) log.warn({ sessions: abandoned }, 'grace period over: ending the remaining sessions (their queued RPCs stay in the store)');
  await proxy.stop();
  return { abandonedSessions: abandoned, drainMs: Date.now() - started };
}

function waitForSessions(proxy: CwmpUspProxy, graceMs: number): Promise<void> {
  if (proxy.engine.activeSessions === 0) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearInterval(poll);
      clearTimeout(timer);
      proxy.engine.off('sessionEnd', check);
      resolve();
    };
    const check = (): void => {
      // sessionEnd is emitted before the session is removed: look again on the next tick.
      setImmediate(() => {
        if (proxy.engine.activeSessions === 0) done();
      });
    };
    proxy.engine.on('sessionEnd', check);
    const poll = setInterval(check, 50);
    const timer = setTimeout(done, graceMs);
  });
}

/** Answers requests that would start a new CWMP session with 503 + Retry-After + Connection: close. */
function refuseNewSessions(server: http.Server, proxy: CwmpUspProxy, retryAfterS: number): void {
  const handlers = server.listeners('request') as ((req: http.IncomingMessage, res: http.ServerResponse) => void)[];
  server.removeAllListeners('request');
  server.on('request', async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const found = await Promise.resolve(proxy.engine.findSession(sessionCookie(req.headers.cookie), req.socket)).catch(() => null);
    if (found === null) {
      req.resume();
      res.writeHead(503, { 'Content-Type': 'text/plain', 'Retry-After': String(retryAfterS), Connection: 'close' });
      res.end('the ACS is shutting down\n');
      return;
    }
    for (const h of handlers) h.call(server, req, res);
  });
}

function sessionCookie(header: string | undefined): string | null {
  if (!header) return null;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === 'session') return part.slice(i + 1).trim() || null;
  }
  return null;
}
