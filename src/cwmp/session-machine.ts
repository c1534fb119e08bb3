/**
 * The CWMP session state machine (TR-069 3.7), pure: `step(state, input, options)` returns the
 * reply to the CPE, the write the state must take and the effects to carry out.
 *
 *   Inform -> InformResponse -> CPE requests (TransferComplete, GetRPCMethods, ...) -> empty POST
 *          -> queued ACS RPCs, one per HTTP response, each answer read from the next POST -> 204
 *
 * It decides everything: the reply to each POST, which RPC in flight is answered or lost and why,
 * when the ACS's turn comes and whether the session then ends or waits for a follow-up RPC. It
 * does no I/O. The engine (session.ts) loads a session from its SessionState port (memory, or
 * Redis for several instances), steps, has the port write the step atomically (compare-and-set
 * on `seq`, so a step computed on an older state is refused and recomputed), then carries out
 * the effects. What the machine cannot know is the head of the device's queue: a `next` write
 * claims it as the RPC in flight, and the port hands it back as the input 'claimed' (or
 * 'queue-empty', having ended the session or kept it open as the write said).
 */
import type { QueuedRpc } from '../store/types.js';
import { encodeSoap } from './soap.js';
import {
  CwmpFault,
  RESPONSE_OF,
  type AcsRequest,
  type AcsResponse,
  type AutonomousDUStateChangeComplete,
  type AutonomousTransferComplete,
  type CpeResponse,
  type DUStateChangeComplete,
  type CwmpVersion,
  type SoapEnvelope,
  type TransferComplete,
} from './types.js';
import { RpcError, plain, type CwmpReply, type InFlightLoss, type RpcErrorReason, type RpcOutcome } from './session-types.js';

/** The ACS RPC a session waits on: claimed from the device's queue, answered by the next POST. */
export interface Inflight {
  /** The queued RPC's id, sent as cwmp:ID. */
  id: string;
  method: AcsRequest['method'];
  /** The instance whose caller waits for the outcome ('' none). */
  origin: string;
  /** The caller may follow up with another RPC (EnqueueOptions.linger). */
  linger: boolean;
}

/** One CWMP session as the SessionState port keeps it. */
export interface SessionRecord {
  /** Session id: the cookie. */
  id: string;
  deviceKey: string;
  /** The CWMP version of the CPE's Inform: every reply uses it. */
  version: CwmpVersion;
  /** Device model key of the learned parameter types. */
  modelKey: string;
  endpointId: string;
  /** Set by the port's `next` claim, cleared by its `take`. */
  inflight: Inflight | null;
  /** ACS RPCs claimed in this session. */
  rpcs: number;
  /** Bumped by every write; a write computed on another seq is refused. */
  seq: number;
  /** `seq` written by the CPE's latest POST. */
  lastPost: number;
}

export type SessionInput =
  /** The Inform opened this session; `queued` ACS RPCs wait for it. */
  | { kind: 'opened'; id: string | null; queued: number }
  /** A POST with a body other than an Inform (the engine opens a new session for those). */
  | { kind: 'post'; envelope: SoapEnvelope }
  /** An empty POST: the CPE has no (more) requests (TR-069 3.7.1.3). */
  | { kind: 'empty' }
  /** A POST the codec could not decode (a method it does not know). */
  | { kind: 'unsupported'; id: string | null; detail: string }
  /** After a `next` write: the RPC now in flight, and how many more are queued. */
  | { kind: 'claimed'; rpc: QueuedRpc; more: number }
  /** After a `next` write: nothing was queued; the session ended, or it lingers. */
  | { kind: 'queue-empty'; ended: boolean }
  /** The linger wait is over (an RPC was queued, or the time ran out). */
  | { kind: 'linger-over' }
  /** The session timer armed at `seq` ran out. */
  | { kind: 'timeout'; seq: number; timeoutMs: number }
  /** The TCP connection of the POST written at `lastPost` was closed by the CPE, and the grace ran out. */
  | { kind: 'connection-closed'; lastPost: number }
  /** A new Inform of the device replaced this session (the port has already removed it). */
  | { kind: 'superseded' }
  | { kind: 'shutdown' };

/** What the port writes for one step, atomically, if the session is still at the seq it was read at. */
export interface SessionWrite {
  /** The input was a CPE POST: `lastPost` becomes the new seq. */
  post: boolean;
  /** Remove the RPC in flight (answered, or lost). */
  take: boolean;
  /**
   * The ACS's turn (TR-069 3.7.1.3): claim the device's next queued RPC as the RPC in flight;
   * with none queued, end the session ('end') or keep it open for a follow-up RPC ('linger').
   */
  next: 'end' | 'linger' | null;
  /** End the session. */
  end: boolean;
}

export type SessionEffect =
  /** The CPE answered the RPC in flight (a response or a cwmp Fault). */
  | { kind: 'settle'; rpc: Inflight; outcome: RpcOutcome }
  /** The RPC in flight is lost. */
  | { kind: 'fail'; rpc: Inflight; error: RpcError }
  | { kind: 'transfer-complete'; message: TransferComplete | AutonomousTransferComplete }
  | { kind: 'du-state-change-complete'; message: DUStateChangeComplete | AutonomousDUStateChangeComplete }
  | { kind: 'log'; level: 'warn' | 'info' | 'debug'; msg: string; fields?: Record<string, unknown> }
  /** Hold the POST's reply up to `ms` for a follow-up RPC, then step 'linger-over'. */
  | { kind: 'linger'; ms: number }
  /** The session is over; `wake`: a new connection request if RPCs are still queued. */
  | { kind: 'ended'; reason: string; wake: boolean };

export interface StepResult {
  /** The HTTP reply to the POST; null when the engine must go on (after a write's claim, or a linger) or there is no POST. */
  reply: CwmpReply | null;
  write: SessionWrite | null;
  effects: SessionEffect[];
}

export interface MachineOptions {
  /** cwmp:HoldRequests while the ACS has more RPCs queued (TR-069 3.7.1.4). */
  holdRequests: boolean;
  /** The linger window (ms; 0: sessions never linger). */
  lingerMs: number;
}

/** ACS methods (TR-069 A.4.1 GetRPCMethods): the CPE requests this ACS answers. */
export const ACS_METHODS = [
  'Inform',
  'GetRPCMethods',
  'TransferComplete',
  'AutonomousTransferComplete',
  'RequestDownload',
  'DUStateChangeComplete',
  'AutonomousDUStateChangeComplete',
  'Kicked',
];

// The hot path's results are shared constants (a session of a known device allocates little).
const TOUCH: SessionWrite = Object.freeze({ post: true, take: false, next: null, end: false });
const NOTHING: StepResult = Object.freeze({ reply: null, write: null, effects: [] });
const ACS_TURN: StepResult = Object.freeze({ reply: null, write: Object.freeze({ post: true, take: false, next: 'end', end: false }), effects: [] });
const DONE: StepResult = Object.freeze({
  reply: Object.freeze({ status: 204, body: '', ended: true }),
  write: null,
  effects: Object.freeze([Object.freeze({ kind: 'ended', reason: 'done', wake: false })]) as SessionEffect[],
});
const XML = 'text/xml; charset="utf-8"';

export function step(s: SessionRecord, input: SessionInput, o: MachineOptions): StepResult {
  switch (input.kind) {
    case 'opened': {
      const reply = envelope(s, input.id, { method: 'InformResponse', maxEnvelopes: 1 }, o.holdRequests && input.queued > 0);
      reply.cookie = s.id;
      return { reply, write: null, effects: [] };
    }
    case 'post':
      return onPost(s, input.envelope, o);
    case 'empty': {
      if (!s.inflight) return ACS_TURN;
      const expected = RESPONSE_OF[s.inflight.method];
      return {
        reply: null,
        write: { post: true, take: true, next: 'end', end: false },
        effects: [
          { kind: 'log', level: 'warn', msg: 'empty POST while an RPC was in flight', fields: { expected } },
          lost(s.inflight, 'session-ended', `the CPE sent an empty POST instead of ${expected}`, 'empty-post'),
        ],
      };
    }
    case 'unsupported':
      return { reply: cwmpFault(s, input.id, CwmpFault.AcsMethodNotSupported, input.detail), write: TOUCH, effects: [warnFault(input.detail)] };
    case 'claimed':
      return { reply: envelope(s, input.rpc.id, input.rpc.rpc, o.holdRequests && input.more > 0), write: null, effects: [] };
    case 'queue-empty':
      if (input.ended) return DONE;
      return { reply: null, write: null, effects: [{ kind: 'linger', ms: o.lingerMs }] };
    case 'linger-over':
      // Another POST of this session took the ACS's turn meanwhile (a CPE on two connections).
      if (s.inflight)
        return { reply: plain(409, `another POST of this session took the ACS's turn (${s.inflight.method} is in flight)`), write: null, effects: [] };
      return { reply: null, write: { post: false, take: false, next: 'end', end: false }, effects: [] };
    case 'timeout': {
      if (input.seq !== s.seq) return NOTHING; // stepped since the timer was armed
      const what = s.inflight ? ` waiting for ${RESPONSE_OF[s.inflight.method]}` : '';
      const effects: SessionEffect[] = [{ kind: 'log', level: 'warn', msg: `CWMP session timed out${what}`, fields: { timeoutMs: input.timeoutMs } }];
      if (s.inflight) effects.push(lost(s.inflight, 'session-timeout', `CWMP session timed out after ${input.timeoutMs} ms${what}`, 'timeout'));
      effects.push({ kind: 'ended', reason: 'timeout', wake: true });
      return { reply: null, write: { post: false, take: s.inflight !== null, next: null, end: true }, effects };
    }
    case 'connection-closed': {
      // The CPE came back (a later POST, on any connection or instance), or nothing was lost.
      if (input.lastPost !== s.lastPost || !s.inflight) return NOTHING;
      const method = s.inflight.method;
      return {
        reply: null,
        write: { post: false, take: true, next: null, end: true },
        effects: [
          { kind: 'log', level: 'warn', msg: 'the CPE closed the connection with an RPC in flight', fields: { method } },
          lost(s.inflight, 'session-ended', `the CPE closed the connection with ${method} in flight`, 'connection-closed'),
          { kind: 'ended', reason: 'connection closed', wake: true },
        ],
      };
    }
    case 'superseded': {
      const effects: SessionEffect[] = [];
      if (s.inflight) effects.push(lost(s.inflight, 'session-ended', `the CPE started a new session with ${s.inflight.method} in flight`, 'new-session'));
      effects.push({ kind: 'ended', reason: 'superseded by a new Inform', wake: false });
      return { reply: null, write: null, effects };
    }
    case 'shutdown': {
      const effects: SessionEffect[] = [];
      if (s.inflight) effects.push(lost(s.inflight, 'shutdown', 'the proxy shut down with this RPC in flight', 'shutdown'));
      effects.push({ kind: 'ended', reason: 'shutdown', wake: false });
      return { reply: null, write: { post: false, take: s.inflight !== null, next: null, end: true }, effects };
    }
  }
}

/**
 * A POST with a body. A CPE request (TR-069 A.3.2, A.4.2) is answered whatever the session's
 * state, in any order, even while an ACS RPC is in flight (which stays in flight: only a
 * response or a Fault answers it).
 */
function onPost(s: SessionRecord, env: SoapEnvelope, o: MachineOptions): StepResult {
  const body = env.body;
  const answer = (response: AcsResponse, ...effects: SessionEffect[]): StepResult => ({ reply: envelope(s, env.id, response), write: TOUCH, effects });
  switch (body.method) {
    case 'TransferComplete':
      return answer({ method: 'TransferCompleteResponse' }, { kind: 'transfer-complete', message: body });
    case 'AutonomousTransferComplete':
      return answer({ method: 'AutonomousTransferCompleteResponse' }, { kind: 'transfer-complete', message: body });
    case 'DUStateChangeComplete':
      return answer({ method: 'DUStateChangeCompleteResponse' }, { kind: 'du-state-change-complete', message: body });
    case 'AutonomousDUStateChangeComplete':
      return answer({ method: 'AutonomousDUStateChangeCompleteResponse' }, { kind: 'du-state-change-complete', message: body });
    case 'GetRPCMethods':
      return answer({ method: 'GetRPCMethodsResponse', methodList: ACS_METHODS });
    case 'RequestDownload':
      // TR-069 A.4.2.2: the ACS may answer and do nothing else; a download is the operator's call.
      return answer(
        { method: 'RequestDownloadResponse' },
        { kind: 'log', level: 'info', msg: 'the CPE asked for a download (RequestDownload); answered, nothing started', fields: { fileType: body.fileType } },
      );
    case 'Kicked':
      // TR-069 A.4.2.1: the CPE's web page goes on to NextURL; this ACS sends it where the CPE said.
      return answer({ method: 'KickedResponse', nextURL: body.next }, { kind: 'log', level: 'info', msg: 'Kicked', fields: { command: body.command } });
    case 'Inform':
      // The engine opens a new session for every Inform; one cannot reach a session.
      return { reply: plain(400, 'an Inform starts a new session'), write: null, effects: [] };
    case 'Fault':
      return onAnswer(s, env, o);
    default: {
      if (body.method.endsWith('Response')) return onAnswer(s, env, o);
      const text = `method ${body.method} is not supported by this ACS`;
      return { reply: cwmpFault(s, env.id, CwmpFault.AcsMethodNotSupported, text), write: TOUCH, effects: [warnFault(text)] };
    }
  }
}

function onAnswer(s: SessionRecord, env: SoapEnvelope, o: MachineOptions): StepResult {
  const method = env.body.method;
  const p = s.inflight;
  if (!p) {
    return {
      reply: plain(400, `${method} received, but no RPC is outstanding in this session`),
      write: TOUCH,
      effects: [{ kind: 'log', level: 'warn', msg: 'response for an RPC that was not sent', fields: { method } }],
    };
  }
  const expected = RESPONSE_OF[p.method];
  if (method !== 'Fault' && method !== expected) {
    return {
      reply: plain(400, `${method} received, but the RPC in flight is ${p.method} (expects ${expected})`),
      write: TOUCH,
      effects: [{ kind: 'log', level: 'warn', msg: 'response does not match the RPC in flight', fields: { method, expected } }],
    };
  }
  const effects: SessionEffect[] = [];
  if (env.id !== null && env.id !== p.id)
    effects.push({ kind: 'log', level: 'debug', msg: 'cwmp:ID of the response differs', fields: { got: env.id, sent: p.id } });
  const outcome: RpcOutcome = env.body.method === 'Fault' ? { kind: 'fault', fault: env.body } : { kind: 'response', response: env.body as CpeResponse };
  effects.push({ kind: 'settle', rpc: p, outcome });
  return { reply: null, write: { post: true, take: true, next: p.linger && o.lingerMs > 0 ? 'linger' : 'end', end: false }, effects };
}

function lost(rpc: Inflight, reason: RpcErrorReason, message: string, how: InFlightLoss): SessionEffect {
  return { kind: 'fail', rpc, error: new RpcError(reason, message, { lost: how, method: rpc.method }) };
}

function warnFault(text: string): SessionEffect {
  return { kind: 'log', level: 'warn', msg: text, fields: { faultCode: CwmpFault.AcsMethodNotSupported } };
}

/** A SOAP reply in the session's CWMP version; a response echoes the request's cwmp:ID (TR-069 3.4.1). */
function envelope(s: SessionRecord, id: string | null, body: AcsResponse | AcsRequest, hold = false): CwmpReply {
  return { status: 200, body: encodeSoap({ cwmpVersion: s.version, id: id ?? s.id, holdRequests: hold || undefined, body }), contentType: XML };
}

/** A cwmp Fault to a CPE request (TR-069 A.5: 8000 method not supported). */
function cwmpFault(s: SessionRecord, id: string | null, code: number, text: string): CwmpReply {
  const body = encodeSoap({
    cwmpVersion: s.version,
    id: id ?? s.id,
    body: { method: 'Fault', soapFaultCode: 'Client', faultCode: code, faultString: text, setParameterValuesFault: [] },
  });
  return { status: 200, body, contentType: XML };
}
