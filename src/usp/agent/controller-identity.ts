/**
 * Who is speaking (TR-369 "Authentication and Authorization"): the configured controllers'
 * credentials, the decision on a WebSocket handshake, and the trust of each inbound Record. One
 * place decides, so that the MTPs stay byte movers and the handlers see only `trusted`.
 *
 * Proofs of an Endpoint ID: a TLS client certificate from the listener's CA naming it in
 * subjectAltName (R-SEC.0a), a pinned certificate fingerprint, a per-controller secret in the
 * WebSocket handshake, an MQTT topic that a broker ACL lets only that controller publish to, or
 * the agent's own connection to the controller's configured URL. A configured controller
 * without any credential is trusted on its stated Endpoint ID (labs) unless
 * usp.websocket.requireAuth; a broker MTP's publisher is authenticated by the broker.
 * No I/O except reading secret files once, at construction.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ConfigError, type ControllerConfig, normalizeFingerprint } from '../../app/config.js';
import type { InboundRecord, MtpKind, WsHandshakeFacts, WsPeerDecision } from '../mtp/types.js';

/** Why a controller is untrusted; the 7006 answer and the log name it. */
export type UntrustedReason = 'not configured' | 'not authenticated';

export type RecordTrust =
  | { kind: 'trusted'; controller: ControllerConfig }
  | { kind: 'untrusted'; reason: UntrustedReason; controller: ControllerConfig | undefined }
  /** Not answered at all: the Record contradicts the identity its channel proved, or failed authentication without usp.allowUntrusted. */
  | { kind: 'refused'; reason: string };

export interface IdentityOptions {
  /** usp.websocket.requireAuth: every WebSocket controller must prove its Endpoint ID. */
  requireWsAuth: boolean;
  /** usp.allowUntrusted: failed authentication is answered as untrusted instead of refused. */
  allowUntrusted: boolean;
}

interface Credentials {
  readonly config: ControllerConfig;
  /** SHA-256 of the secret: compared in constant time, whatever the lengths. */
  readonly secretHash: Buffer | null;
  readonly fingerprints: readonly string[];
}

const sha256 = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

export class ControllerIdentities {
  private readonly byEid = new Map<string, Credentials>();
  private readonly mqttBound = new Map<string, string>();
  readonly opts: IdentityOptions;

  constructor(controllers: readonly ControllerConfig[], opts: IdentityOptions) {
    this.opts = opts;
    for (const [i, c] of controllers.entries()) {
      this.byEid.set(c.endpointId, { config: c, secretHash: secretOf(c, i), fingerprints: fingerprintsOf(c) });
      if (c.mqtt.agentTopic) this.mqttBound.set(c.mqtt.agentTopic, c.endpointId);
    }
  }

  controller(eid: string): ControllerConfig | undefined {
    return this.byEid.get(eid)?.config;
  }

  /** Some controller has a credential (secret or pinned certificate), i.e. WebSocket identities can be proved without a CA. */
  get anyWsCredential(): boolean {
    for (const c of this.byEid.values()) if (c.secretHash || c.fingerprints.length) return true;
    return false;
  }

  /** Configured controllers without a WebSocket credential: trusted on their stated Endpoint ID unless requireAuth. */
  withoutWsCredential(): string[] {
    return [...this.byEid.values()].filter((c) => !c.secretHash && c.fingerprints.length === 0).map((c) => c.config.endpointId);
  }

  /** The controller a bound MQTT topic belongs to (controllers[].mqtt.agentTopic). */
  boundTo(mtp: MtpKind, channel: string | undefined): string | undefined {
    return mtp === 'mqtt' && channel !== undefined ? this.mqttBound.get(channel) : undefined;
  }

  /**
   * Who a WebSocket peer is, from its handshake. A proof for another Endpoint ID than the one
   * stated is refused; a configured controller that must authenticate and did not, or a wrong
   * secret, is refused (401) unless usp.allowUntrusted, then accepted as untrusted.
   */
  decideWs(f: WsHandshakeFacts): WsPeerDecision {
    const proofs = new Map<string, string>();
    const cert = f.certificate;
    if (cert) {
      // R-SEC.0a: the subjectAltName names the Endpoint ID, but only a certificate from the trusted CA says so.
      if (cert.authorized) for (const e of cert.endpointIds) proofs.set(e, 'certificate');
      const fp = cert.fingerprint256.toUpperCase();
      for (const c of this.byEid.values()) if (c.fingerprints.includes(fp)) proofs.set(c.config.endpointId, 'fingerprint');
    }
    let badSecret = false;
    if (f.bearer !== null) {
      const h = sha256(f.bearer);
      const matches: string[] = [];
      // Every configured secret is compared (no early exit), each in constant time.
      for (const c of this.byEid.values()) if (c.secretHash && timingSafeEqual(c.secretHash, h)) matches.push(c.config.endpointId);
      const which = f.claimedEid !== null && matches.includes(f.claimedEid) ? f.claimedEid : matches[0];
      if (which !== undefined) proofs.set(which, 'secret');
      else badSecret = true;
    }
    const claimed = f.claimedEid;
    if (claimed !== null) {
      const how = proofs.get(claimed);
      if (how) return { accept: true, peerEid: claimed, authenticated: true, authFailed: false, untrusted: !this.byEid.has(claimed), method: how };
      if (proofs.size > 0) return { accept: false, status: 403, reason: `the credentials presented identify ${[...proofs.keys()].join(', ')}, not ${claimed}` };
    } else if (proofs.size === 1) {
      const [eid, how] = [...proofs][0]!;
      return { accept: true, peerEid: eid, authenticated: true, authFailed: false, untrusted: !this.byEid.has(eid), method: how };
    } else if (proofs.size > 1) {
      return {
        accept: false,
        status: 400,
        reason: `the credentials presented identify several Endpoint IDs (${[...proofs.keys()].join(', ')}): state yours with ?eid=`,
      };
    }
    const c = claimed !== null ? this.byEid.get(claimed) : undefined;
    if (badSecret || (c && this.wsNeedsProof(c))) {
      const reason = badSecret
        ? 'the secret presented belongs to no configured controller'
        : `controller ${claimed} must authenticate (Authorization: Bearer <its secret>, or a client certificate)`;
      if (!this.opts.allowUntrusted) return { accept: false, status: 401, reason };
      return { accept: true, peerEid: claimed, authenticated: false, authFailed: true, untrusted: true };
    }
    return { accept: true, peerEid: claimed, authenticated: false, authFailed: false, untrusted: !c };
  }

  /**
   * The trust of one Record whose from_id is `fromId`, given what its channel proved. A channel
   * bound to one controller speaks only for it (R-SEC.0a: Records that do not match are not
   * processed).
   */
  trustOf(fromId: string, r: InboundRecord): RecordTrust {
    const bound = this.boundTo(r.mtp, r.channel);
    if (bound !== undefined && bound !== fromId) return { kind: 'refused', reason: `from_id is not ${bound}, the controller bound to topic ${r.channel}` };
    if (r.peerEid !== null && r.peerEid !== fromId) return { kind: 'refused', reason: 'from_id does not match the Endpoint ID of the connection' };
    const creds = this.byEid.get(fromId);
    if (r.authFailed) return this.failed(creds?.config);
    if (!creds) return { kind: 'untrusted', reason: 'not configured', controller: undefined };
    if (bound === fromId || (r.authenticated && r.peerEid === fromId)) return { kind: 'trusted', controller: creds.config };
    if (this.needsProof(creds, r.mtp)) return this.failed(creds.config);
    return { kind: 'trusted', controller: creds.config };
  }

  private failed(controller: ControllerConfig | undefined): RecordTrust {
    if (!this.opts.allowUntrusted) return { kind: 'refused', reason: 'the controller did not authenticate (usp.allowUntrusted is off)' };
    return { kind: 'untrusted', reason: 'not authenticated', controller };
  }

  private wsNeedsProof(c: Credentials): boolean {
    return this.opts.requireWsAuth || c.secretHash !== null || c.fingerprints.length > 0;
  }

  private needsProof(c: Credentials, mtp: MtpKind): boolean {
    switch (mtp) {
      case 'websocket':
        return this.wsNeedsProof(c);
      case 'mqtt':
        return c.config.mqtt.agentTopic !== '';
      case 'stomp':
        return false;
    }
  }
}

function secretOf(c: ControllerConfig, i: number): Buffer | null {
  let secret = c.websocket.secret;
  if (c.websocket.secretFile) {
    try {
      secret = readFileSync(c.websocket.secretFile, 'utf8').trim();
    } catch (e) {
      throw new ConfigError(
        `controllers[${i}].websocket.secretFile: cannot read ${c.websocket.secretFile}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      );
    }
    if (!secret) throw new ConfigError(`controllers[${i}].websocket.secretFile: ${c.websocket.secretFile} is empty`);
  }
  return secret ? sha256(secret) : null;
}

function fingerprintsOf(c: ControllerConfig): string[] {
  return c.tls.fingerprint
    .split(',')
    .map((f) => normalizeFingerprint(f))
    .filter((f): f is string => f !== null);
}
