/**
 * One socket write per event-loop turn for a connection written by a library in many small
 * pieces. mqtt-packet writes each MQTT packet as a dozen stream.write() calls (fixed header,
 * length, topic, each property, payload) and uncorks on the next tick; node then keeps a
 * bookkeeping entry per piece and hands the kernel one iovec per piece. Here the pieces of a
 * turn (the PUBACKs of the PUBLISHes just read and the answers of this turn) are copied into one
 * Buffer and written once when the turn ends (setImmediate): no latency beyond the turn.
 *
 * Semantics kept: a write with a callback, a non-UTF-8 string or on an ended/destroyed socket
 * flushes what is held and goes straight through; end() flushes first; write() still returns the
 * socket's real back-pressure state (false until 'drain' after a write the kernel could not take),
 * so MQTT.js's flow control (waiting for 'drain') is unchanged.
 */
import type { Socket } from 'node:net';

type WriteFn = (chunk: unknown, encoding?: unknown, cb?: unknown) => boolean;
type EndFn = (...args: unknown[]) => Socket;

/** Installs the per-turn batching on this socket (its own write/end, not the prototype's). */
export function batchWritesPerTurn(socket: Socket): void {
  const write = socket.write as WriteFn;
  const end = socket.end as EndFn;
  let parts: Array<Uint8Array | string> = [];
  let bytes = 0;
  let scheduled = false;

  const flush = (): void => {
    scheduled = false;
    if (parts.length === 0) return;
    const held = parts;
    parts = [];
    const size = bytes;
    bytes = 0;
    if (socket.destroyed) return; // MQTT.js fails what was in flight on 'close'
    let out: Uint8Array;
    if (held.length === 1 && typeof held[0] !== 'string') out = held[0] as Uint8Array;
    else {
      const buf = Buffer.allocUnsafe(size);
      let at = 0;
      for (const p of held) {
        if (typeof p === 'string') at += buf.write(p, at);
        else {
          buf.set(p, at);
          at += p.length;
        }
      }
      out = buf;
    }
    write.call(socket, out);
  };

  socket.write = function batchedWrite(chunk: unknown, encoding?: unknown, cb?: unknown): boolean {
    const callback = typeof encoding === 'function' ? encoding : cb;
    const enc = typeof encoding === 'string' ? encoding : undefined;
    const isString = typeof chunk === 'string';
    if (
      callback !== undefined ||
      socket.destroyed ||
      socket.writableEnded ||
      (isString && enc !== undefined && enc !== 'utf8' && enc !== 'utf-8') ||
      (!isString && !(chunk instanceof Uint8Array))
    ) {
      flush();
      return write.call(socket, chunk, encoding, cb);
    }
    const piece = chunk as Uint8Array | string;
    parts.push(piece);
    bytes += isString ? Buffer.byteLength(piece as string) : (piece as Uint8Array).length;
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
    return !socket.writableNeedDrain;
  } as Socket['write'];

  socket.end = function batchedEnd(...args: unknown[]): Socket {
    flush();
    return end.apply(socket, args);
  } as Socket['end'];
}
