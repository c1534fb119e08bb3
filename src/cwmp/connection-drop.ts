/**
 * Notices a CPE going away from its TCP connection between its POSTs, for the session engine's
 * dropped-connection grace (SessionEngine.connectionClosed). A close counts only when it says
 * something about the CPE:
 *
 * - the peer closed it (FIN or reset) while no request of it was in progress, on a connection it
 *   had asked to keep open (HTTP/1.1 without `Connection: close`, or HTTP/1.0 with keep-alive):
 *   a CPE that half-closes after sending its request, or one that closes after every exchange
 *   as it announced, has dropped nothing;
 * - or it closed before our reply to a POST was written: the reply (maybe an ACS RPC) never
 *   reached the CPE;
 * - and never when a request on it came through a proxy (Forwarded, X-Forwarded-For or Via): a
 *   balancer's connection carries the POSTs of many CPEs, and its closing says nothing of them.
 *
 * A close the server makes itself (keep-alive timeout, shutdown) has no peer FIN first and is
 * not counted. A connection that dies without a FIN or reset is left to the session timeout.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

interface Watched {
  /** A request is being read or answered. */
  busy: boolean;
  /** The latest request asked to keep the connection open. */
  keepAlive: boolean;
  proxied: boolean;
  /** FIN or reset from the peer while idle. */
  peerClosed: boolean;
  /** A reply was never written out. */
  undelivered: boolean;
}

const watched = new WeakMap<Socket, Watched>();

/** Call for every request; `onGone` runs at most once per connection, when it closes as above. */
export function watchConnectionDrop(req: IncomingMessage, res: ServerResponse, onGone: (socket: Socket) => void): void {
  const socket = req.socket;
  let w = watched.get(socket);
  if (!w) {
    const state: Watched = { busy: false, keepAlive: true, proxied: false, peerClosed: false, undelivered: false };
    w = state;
    watched.set(socket, state);
    const peer = (): void => {
      if (!state.busy) state.peerClosed = true;
    };
    socket.once('end', peer);
    socket.once('error', peer);
    socket.once('close', () => {
      if (!state.proxied && ((state.peerClosed && state.keepAlive) || state.undelivered)) onGone(socket);
    });
  }
  const h = req.headers;
  const connection = h.connection ?? '';
  w.busy = true;
  w.proxied ||= h.forwarded !== undefined || h['x-forwarded-for'] !== undefined || h.via !== undefined;
  w.keepAlive = req.httpVersion === '1.0' ? /keep-alive/i.test(connection) : !/close/i.test(connection);
  const state = w;
  res.once('close', () => {
    if (!res.writableFinished) state.undelivered = true;
    state.busy = false;
  });
}
