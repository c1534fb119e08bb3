/**
 * The ACS's STUN server (TR-111 Part 2; RFC 5389 Binding): CPEs behind NAT send it Binding
 * Requests with CONNECTION-REQUEST-BINDING to keep a NAT binding open and tell the ACS where
 * UDP connection requests reach them. It learns that binding per STUN USERNAME, and the same
 * socket sends the UDP connection requests (TR-069 Annex G) so the NAT lets them in.
 *
 * Not an amplifier nor a reflector: it answers only Binding Requests, only to their source
 * (RESPONSE-ADDRESS and CHANGE-REQUEST of RFC 3489 are ignored), never with more bytes than the
 * request had (a response needs 32 bytes for IPv4, 44 for IPv6; a TR-111 request carries
 * CONNECTION-REQUEST-BINDING and so is at least 44 bytes; a smaller bare request is dropped),
 * and at most `ratePerSecond` per source address. Anything else is dropped and counted.
 */
import dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../../app/log.js';
import { BINDING_REQUEST, decodeStun, encodeBindingResponse, type TransportAddress, verifyMessageIntegrity } from './codec.js';

export type StunDropReason = 'malformed' | 'not-binding-request' | 'too-small' | 'rate-limited' | 'unauthenticated';

export interface StunServerOptions {
  host: string;
  /** 0: any free port (tests). */
  port: number;
  /** Binding Requests answered per source address per second (token bucket, burst 2x). */
  ratePerSecond: number;
  /** Sources tracked by the rate limiter at once; the oldest is forgotten beyond (bounds memory). */
  maxSources?: number;
  /**
   * The STUNPassword of a USERNAME, when Binding Requests must carry a valid MESSAGE-INTEGRITY
   * (TR-111 Part 2, 2.2.1); null or absent: not checked. A request failing it is dropped unanswered.
   */
  password?: (username: string) => string | null;
}

export interface StunBinding {
  username: string;
  address: string;
  port: number;
  /** The CPE flagged BINDING-CHANGE, or the address differs from the last one seen. */
  changed: boolean;
}

export interface StunServerEvents {
  /** A Binding Request with CONNECTION-REQUEST-BINDING and a USERNAME (TR-111 Part 2, 2.2.1). */
  binding: [StunBinding];
  dropped: [{ reason: StunDropReason; detail: string }];
}

interface Bucket {
  tokens: number;
  at: number;
}

export class StunServer extends EventEmitter<StunServerEvents> {
  private socket: dgram.Socket | null = null;
  private readonly buckets = new Map<string, Bucket>();
  private readonly last = new Map<string, string>();
  readonly dropped: Record<StunDropReason, number> = { malformed: 0, 'not-binding-request': 0, 'too-small': 0, 'rate-limited': 0, unauthenticated: 0 };
  answered = 0;
  port = 0;

  constructor(
    private readonly opts: StunServerOptions,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {
    super();
  }

  async listen(): Promise<number> {
    const type = this.opts.host.includes(':') ? 'udp6' : 'udp4';
    const socket = dgram.createSocket({ type, reuseAddr: false });
    socket.on('message', (msg, rinfo) => this.onMessage(msg, rinfo));
    // A send error toward one peer (ICMP unreachable surfaces here on some systems) must not end the server.
    socket.on('error', (err) => this.log.warn({ err: err.message }, 'STUN socket error'));
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(this.opts.port, this.opts.host, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    this.socket = socket;
    this.port = (socket.address() as AddressInfo).port;
    return this.port;
  }

  /** Sends a datagram from the STUN port (UDP connection requests go through the CPE's binding). */
  send(data: Buffer | string, port: number, address: string): Promise<void> {
    const socket = this.socket;
    if (!socket) return Promise.reject(new Error('STUN server not listening'));
    return new Promise<void>((resolve, reject) => socket.send(data, port, address, (err) => (err ? reject(err) : resolve())));
  }

  async close(): Promise<void> {
    const socket = this.socket;
    this.socket = null;
    if (socket) await new Promise<void>((resolve) => socket.close(() => resolve()));
  }

  private drop(reason: StunDropReason, detail: string): void {
    this.dropped[reason]++;
    this.emit('dropped', { reason, detail });
  }

  private allow(source: string): boolean {
    const rate = this.opts.ratePerSecond;
    const now = this.now();
    let b = this.buckets.get(source);
    if (!b) {
      if (this.buckets.size >= (this.opts.maxSources ?? 100_000)) this.buckets.delete(this.buckets.keys().next().value!);
      b = { tokens: 2 * rate, at: now };
      this.buckets.set(source, b);
    } else {
      b.tokens = Math.min(2 * rate, b.tokens + ((now - b.at) / 1000) * rate);
      b.at = now;
    }
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  private onMessage(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (!this.allow(rinfo.address)) return this.drop('rate-limited', rinfo.address);
    const decoded = decodeStun(msg);
    if (!decoded.ok) return this.drop('malformed', decoded.reason);
    const req = decoded.message;
    if (req.type !== BINDING_REQUEST) return this.drop('not-binding-request', `type 0x${req.type.toString(16)}`);
    const password = req.username !== undefined ? (this.opts.password?.(req.username) ?? null) : null;
    if (password !== null && !verifyMessageIntegrity(msg, req, password)) return this.drop('unauthenticated', `USERNAME ${JSON.stringify(req.username)}`);
    const source: TransportAddress = { family: rinfo.family === 'IPv6' ? 'IPv6' : 'IPv4', address: rinfo.address, port: rinfo.port };
    const response = encodeBindingResponse(req, source);
    if (response.length > msg.length) return this.drop('too-small', `${msg.length}-byte request, ${response.length}-byte response`);
    this.answered++;
    this.socket?.send(response, rinfo.port, rinfo.address);
    if (req.connectionRequestBinding && req.username) {
      const where = `${rinfo.address}:${rinfo.port}`;
      const before = this.last.get(req.username);
      if (before === undefined && this.last.size >= (this.opts.maxSources ?? 100_000)) this.last.delete(this.last.keys().next().value!);
      this.last.set(req.username, where);
      this.emit('binding', {
        username: req.username,
        address: rinfo.address,
        port: rinfo.port,
        changed: req.bindingChange || (before !== undefined && before !== where),
      });
    }
  }
}
