/**
 * A tiny scripted STOMP 1.2 server on 127.0.0.1 for the cases a real broker can't script:
 * CONNECTED with a subscribe-dest header, refused / dropped connections, ERROR frames,
 * heart-beat timing, silent servers. It records every frame (and the raw bytes) each client
 * sent. Uses the frame codec of src/usp/mtp/stomp.ts; the raw bytes let tests check the wire
 * independently of that codec.
 */
import net from 'node:net';
import { encodeStompFrame, StompParser, stompHeader, type StompFrame } from '../../src/usp/mtp/stomp.js';

export type ConnectBehaviour =
  /** Answer CONNECTED with these extra headers (version:1.2 is always sent). */
  | { kind: 'connected'; headers?: Array<[string, string]> }
  /** Close the TCP connection as soon as it is accepted. */
  | { kind: 'drop' }
  /** Answer an ERROR frame and close (like a broker refusing the login). */
  | { kind: 'error'; message: string }
  /** Accept and never answer. */
  | { kind: 'silent' };

export interface ScriptServerOptions {
  /** Behaviour for the n-th connection (0-based). Default: CONNECTED without extra headers. */
  onConnect?: (n: number, stompFrame: StompFrame | null) => ConnectBehaviour;
  /** Send RECEIPT for every client frame carrying a receipt header (default true). */
  autoReceipt?: boolean;
  /** Port to listen on (default: any free one). */
  port?: number;
}

export interface ScriptConnection {
  readonly index: number;
  readonly socket: net.Socket;
  /** Frames received, in order. */
  readonly frames: StompFrame[];
  /** Raw bytes received, in order. */
  readonly raw: Buffer[];
  /** Times (Date.now()) at which an EOL heart-beat arrived. */
  readonly heartbeats: number[];
  readonly closed: Promise<void>;
  /** Resolves with the next (or an already received, not yet awaited) frame with this command. */
  waitFor(command: string, timeoutMs?: number): Promise<StompFrame>;
  send(frame: StompFrame): void;
  /** Delivers a MESSAGE for the client's subscription to `destination` (content-length set). */
  deliver(destination: string, body: Uint8Array, headers?: Array<[string, string]>): void;
  sendRaw(bytes: Uint8Array | string): void;
  /** Destroys the TCP connection without any frame. */
  drop(): void;
}

export interface ScriptServer {
  readonly host: string;
  readonly port: number;
  readonly connections: ScriptConnection[];
  /** Resolves with connection number n (0-based) once it is accepted. */
  connection(n: number, timeoutMs?: number): Promise<ScriptConnection>;
  setBehaviour(fn: (n: number, stompFrame: StompFrame | null) => ConnectBehaviour): void;
  close(): Promise<void>;
}

export async function startStompScriptServer(opts: ScriptServerOptions = {}): Promise<ScriptServer> {
  let behaviour = opts.onConnect ?? (() => ({ kind: 'connected' }) as ConnectBehaviour);
  const autoReceipt = opts.autoReceipt ?? true;
  const connections: ScriptConnection[] = [];
  const waiters = new Map<number, Array<(c: ScriptConnection) => void>>();
  const sockets = new Set<net.Socket>();

  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    const index = connections.length;
    const frames: StompFrame[] = [];
    const raw: Buffer[] = [];
    const heartbeats: number[] = [];
    let consumed = 0;
    const frameWaiters: Array<{ command: string; resolve: (f: StompFrame) => void }> = [];
    let closeResolve!: () => void;
    const closed = new Promise<void>((r) => (closeResolve = r));
    socket.on('close', () => closeResolve());
    const parser = new StompParser({ unescape: true });
    const subs = new Map<string, string>(); // destination -> subscription id
    let msgSeq = 0;

    const conn: ScriptConnection = {
      index,
      socket,
      frames,
      raw,
      heartbeats,
      closed,
      waitFor(command, timeoutMs = 10_000) {
        for (let i = consumed; i < frames.length; i++) {
          if (frames[i]!.command === command) {
            consumed = i + 1;
            return Promise.resolve(frames[i]!);
          }
        }
        return new Promise((resolve, reject) => {
          const t = setTimeout(() => reject(new Error(`no ${command} frame within ${timeoutMs} ms`)), timeoutMs);
          frameWaiters.push({
            command,
            resolve: (f) => {
              clearTimeout(t);
              resolve(f);
            },
          });
        });
      },
      send(frame) {
        if (!socket.destroyed) socket.write(encodeStompFrame(frame));
      },
      deliver(destination, body, headers = []) {
        const sub = subs.get(destination) ?? 'none';
        conn.send({
          command: 'MESSAGE',
          headers: [
            ['subscription', sub],
            ['destination', destination],
            ['message-id', `m-${index}-${++msgSeq}`],
            ...headers,
            ['content-length', String(body.length)],
          ],
          body,
        });
      },
      sendRaw(bytes) {
        if (!socket.destroyed) socket.write(typeof bytes === 'string' ? Buffer.from(bytes) : bytes);
      },
      drop() {
        socket.destroy();
      },
    };
    connections.push(conn);
    for (const w of waiters.get(index) ?? []) w(conn);
    waiters.delete(index);

    let greeted = false;
    const first = behaviour(index, null);
    if (first.kind === 'drop') {
      socket.destroy();
      return;
    }

    socket.on('data', (chunk: Buffer) => {
      raw.push(Buffer.from(chunk));
      for (const ev of parser.push(chunk)) {
        if (ev.type === 'heartbeat') {
          heartbeats.push(Date.now());
          continue;
        }
        if (ev.type !== 'frame') continue;
        const f = ev.frame;
        const wi = frameWaiters.findIndex((w) => w.command === f.command);
        frames.push(f);
        if (wi >= 0) {
          consumed = frames.length;
          frameWaiters.splice(wi, 1)[0]!.resolve(f);
        }
        if ((f.command === 'STOMP' || f.command === 'CONNECT') && !greeted) {
          greeted = true;
          const b = behaviour(index, f);
          if (b.kind === 'error') {
            conn.send({ command: 'ERROR', headers: [['message', b.message]], body: Buffer.from(b.message) });
            socket.end();
          } else if (b.kind === 'drop') {
            socket.destroy();
          } else if (b.kind === 'connected') {
            conn.send({ command: 'CONNECTED', headers: [['version', '1.2'], ...(b.headers ?? [])], body: new Uint8Array(0) });
          }
          continue;
        }
        if (f.command === 'SUBSCRIBE') {
          const d = stompHeader(f, 'destination');
          const id = stompHeader(f, 'id');
          if (d && id) subs.set(d, id);
        }
        if (f.command === 'UNSUBSCRIBE') {
          const id = stompHeader(f, 'id');
          for (const [d, s] of subs) if (s === id) subs.delete(d);
        }
        const receipt = stompHeader(f, 'receipt');
        if (autoReceipt && receipt !== undefined) {
          conn.send({ command: 'RECEIPT', headers: [['receipt-id', receipt]], body: new Uint8Array(0) });
        }
        if (f.command === 'DISCONNECT') socket.end();
      }
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;

  return {
    host: '127.0.0.1',
    port,
    connections,
    connection(n, timeoutMs = 15_000) {
      if (connections[n]) return Promise.resolve(connections[n]!);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`connection #${n} not made within ${timeoutMs} ms`)), timeoutMs);
        const list = waiters.get(n) ?? [];
        list.push((c) => {
          clearTimeout(t);
          resolve(c);
        });
        waiters.set(n, list);
      });
    },
    setBehaviour(fn) {
      behaviour = fn;
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}
