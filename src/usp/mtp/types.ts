/**
 * The one small interface every MTP implements: send Record bytes to a
 * destination, report Records received and channels opened. MTPs never decode the Msg; the
 * only thing they may read from a Record is nothing at all — routing by to_id happens in
 * endpoint.ts after the Record codec has run.
 */
import type { EventEmitter } from 'node:events';

export type MtpKind = 'websocket' | 'mqtt' | 'stomp';

/**
 * Where to send a Record. The address is MTP-specific and opaque above the MTP:
 *  - mqtt:      a topic (the request's Response Topic, or the controller's configured topic)
 *  - stomp:     a destination (reply-to-dest, or the controller's configured destination)
 *  - websocket: a connection id handed out by the WebSocket MTP in InboundRecord.replyTo
 *               or MtpChannelOpen.dest (server side: the controller's connection; client side:
 *               the agent's own outgoing connection to the controller)
 */
export interface MtpDestination {
  mtp: MtpKind;
  address: string;
}

export interface InboundRecord {
  mtp: MtpKind;
  /** The USP Record exactly as received (binary). */
  bytes: Uint8Array;
  /** Where a reply should go when the request says so (MQTT Response Topic / STOMP reply-to-dest / WS connection); null when absent. */
  replyTo: MtpDestination | null;
  /** Agent EID implied by the channel (WS path /usp/<EID>, WS client connection of that agent); null on shared channels. */
  agentEid: string | null;
  /** The peer's EID as the transport stated it (WS ?eid= or extension header, MQTT 5 user property, STOMP header), if any. */
  peerEid: string | null;
  /**
   * The channel proved peerEid (TLS client certificate, WebSocket secret, or the agent's own
   * connection to a configured controller URL): TR-369 R-SEC.0a then binds from_id to it.
   */
  authenticated?: boolean;
  /** The peer presented credentials that failed (accepted only under usp.allowUntrusted): none of its Records is trusted. */
  authFailed?: boolean;
  /** Broker MTPs: the address the Record arrived on (MQTT Topic Name without a reply-to suffix), for topics bound to one controller. */
  channel?: string;
  /** The MQTT Content Type / STOMP content-type, when the transport carried one. */
  contentType?: string;
}

/**
 * A channel on which agents must send their Connect Record (R-MTP.6): a broker connection
 * (re)established (agentEid null: every agent sends one), a controller connected to an
 * agent's WS path, or an agent's own outgoing WS connection came up.
 */
export interface MtpChannelOpen {
  mtp: MtpKind;
  /** null for a shared broker channel; else the agent this channel belongs to. */
  agentEid: string | null;
  /** For WS: where the Connect Record goes (the connection). For brokers: null (send to each controller's configured address). */
  dest: MtpDestination | null;
  /** The peer's EID when known (WS controller). */
  peerEid: string | null;
}

export interface MtpStatus {
  mtp: MtpKind;
  connected: boolean;
  /** Human-readable, e.g. "connected to mqtt://127.0.0.1:1883 as cwmp-usp-proxy-1a2b". */
  detail: string;
  /** Open channels: WS connections, or 1 for a broker connection. */
  channels: number;
}

export class MtpSendError extends Error {
  constructor(
    readonly mtp: MtpKind,
    message: string,
  ) {
    super(message);
    this.name = 'MtpSendError';
  }
}

export interface MtpEvents {
  record: [InboundRecord];
  channelOpen: [MtpChannelOpen];
  channelClose: [{ mtp: MtpKind; agentEid: string | null; dest: MtpDestination | null; reason: string }];
  /** Operational problems (connection lost, bad frame dropped): for logs/metrics; never fatal. */
  warning: [{ mtp: MtpKind; message: string; detail?: Record<string, unknown> }];
}

export interface Mtp extends EventEmitter<MtpEvents> {
  readonly kind: MtpKind;
  start(): Promise<void>;
  /** Stops accepting and closes connections. Records already handed to send() are flushed first when possible. */
  stop(): Promise<void>;
  /** Sends one Record. Rejects with MtpSendError when the destination cannot be reached now. */
  send(from: string, dest: MtpDestination, bytes: Uint8Array): Promise<void>;
  status(): MtpStatus;
  /** Agents appear and disappear as devices register; the WS client dials one connection per agent. */
  addAgent(eid: string): void;
  removeAgent(eid: string): void;
}

/**
 * What a WebSocket handshake told about the peer, for the decision who it is (the MTP does not
 * know the controllers; the endpoint layer's ControllerIdentities decides).
 */
export interface WsHandshakeFacts {
  /** The Endpoint ID the peer states (?eid= or the bbf-usp-protocol extension), null when none. */
  claimedEid: string | null;
  /** The token of `Authorization: Bearer <token>`, null when absent. Never logged. */
  bearer: string | null;
  /** The TLS client certificate, when one was presented (wss:// only). */
  certificate: {
    /** Chains to the listener's configured CA. */
    authorized: boolean;
    /** SHA-256, as "AB:CD:..." (node's fingerprint256). */
    fingerprint256: string;
    /** Endpoint IDs in subjectAltName URIs `urn:bbf:usp:id:<eid>` (TR-369 R-SEC.0a). */
    endpointIds: string[];
  } | null;
}

/** Who the peer is for this connection, or why it is refused. */
export type WsPeerDecision =
  | {
      accept: true;
      /** The Endpoint ID the connection speaks for (proved or stated); null: unstated (each Record's from_id decides). */
      peerEid: string | null;
      /** peerEid is proved. */
      authenticated: boolean;
      /** Credentials were presented and failed (accepted under usp.allowUntrusted). */
      authFailed: boolean;
      /** Counts against the untrusted connection limits (not a configured controller, or failed authentication). */
      untrusted: boolean;
      /** How it was proved, for the log: 'certificate', 'fingerprint' or 'secret'. */
      method?: string;
    }
  | { accept: false; status: 400 | 401 | 403; reason: string };
