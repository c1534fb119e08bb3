/**
 * One connection-request HTTP server for a whole fleet (TR-069 3.2.2): each device has its
 * own path (`/<serial>`); HTTP GET with Digest (qop=auth) or, when enabled, Basic, checked
 * against the device's ManagementServer.ConnectionRequestUsername/Password.
 */
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { authenticate, parseAuthorization } from '../../cwmp/http-auth.js';
import type { SimDevice } from './device.js';

export interface ConnReqServerOptions {
  host?: string;
  port?: number;
  /** Also accept Basic (Digest is always accepted). Default false. */
  allowBasic?: boolean;
  realm?: string;
  lookup: (serial: string) => SimDevice | undefined;
  /** Behind NAT: every connection is reset, as if nothing could reach the device (TR-069 Annex G). */
  refuse?: boolean;
  log?: (msg: string, extra?: object) => void;
}

export class ConnReqServer {
  private readonly server: http.Server;
  private readonly secret = randomBytes(16);
  private readonly realm: string;
  port = 0;

  constructor(private readonly opts: ConnReqServerOptions) {
    this.realm = opts.realm ?? 'cwmp-sim';
    this.server = http.createServer((req, res) => {
      if (opts.refuse) return void req.socket.destroy();
      this.handle(req, res).catch((e: Error) => {
        opts.log?.('connection request handler failed', { error: e.message });
        if (!res.headersSent) res.writeHead(500);
        res.end();
      });
    });
    this.server.keepAliveTimeout = 2000;
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.opts.port ?? 0, this.opts.host ?? '127.0.0.1', () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.port = (this.server.address() as AddressInfo).port;
    return this.port;
  }

  async close(): Promise<void> {
    if (!this.server.listening) return;
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    req.resume();
    const url = new URL(req.url ?? '/', 'http://x');
    const serial = decodeURIComponent(url.pathname.replace(/^\/+|\/+$/g, ''));
    const dev = this.opts.lookup(serial);
    if (!dev) {
      res.writeHead(404, { 'Content-Length': 0 }).end();
      return;
    }
    if (req.method !== 'GET') {
      res.writeHead(405, { Allow: 'GET', 'Content-Length': 0 }).end();
      return;
    }
    const { username, password } = dev.connReqCredentials;
    // No credentials configured at all: the lab default is an open connection request.
    if (username !== '' || password !== '') {
      const header = req.headers.authorization;
      const mode = this.opts.allowBasic && parseAuthorization(header)?.scheme === 'Basic' ? 'basic' : 'digest';
      const r = await authenticate(header, {
        mode,
        realm: this.realm,
        method: 'GET',
        requestUri: req.url,
        nonceSecret: this.secret,
        lookup: (u) => (u === username ? password : null),
      });
      if (!r.ok) {
        const challenges = [r.challenge];
        if (mode === 'digest' && this.opts.allowBasic) challenges.push(`Basic realm="${this.realm}"`);
        res.writeHead(401, { 'WWW-Authenticate': challenges, 'Content-Length': 0 }).end();
        if (r.reason !== 'missing') this.opts.log?.('connection request refused', { serial, reason: r.reason });
        return;
      }
    }
    if (!dev.connectionRequest()) {
      // Rebooting or stopped: TR-069 lets the CPE refuse; 503 tells the ACS to try later.
      res.writeHead(503, { 'Retry-After': '5', 'Content-Length': 0 }).end();
      return;
    }
    res.writeHead(200, { 'Content-Length': 0 }).end();
  }
}
