/**
 * Decodes SOAP bodies inline or on worker threads. Large bodies (a 2,000-parameter
 * GetParameterValuesResponse takes ~30 ms to parse) always go to a worker, so one big response
 * does not stall every other session's event loop. Below that the choice follows the main thread's
 * load (issue 22): while it is mostly idle a small body is parsed inline (a worker round trip adds
 * 0.1-0.2 ms to every RPC of a session); once it is busy (event-loop utilization over the limit)
 * every body from `thresholdBytes` up goes to a worker, because posting a 2 KB Inform costs the
 * saturated main thread about a quarter of parsing it.
 *
 * Bodies for a worker are posted once per event-loop turn, in messages of at most 4 bodies (issue 22
 * item 5; larger messages left more RSS behind after a registration storm, docs/benchmarks.md): under 32 concurrent wake-ups several CPE bodies arrive in the same poll phase, and
 * each postMessage costs the main thread a serialisation and a wake-up of the worker (about 20 us,
 * 4-5% of its time per idle-device Get); the worker answers a batch in one message likewise.
 *
 * Workers start on their first body and stop after acs.parseWorkerIdleMs without one (an idle
 * proxy does not keep a thread's heap). Bodies of acs.bulkParseBytes and more have a worker of
 * their own, so a big answer's parse never queues the small bodies of other sessions behind it.
 */
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { bodyText } from './body-text.js';
import { unpackLists, type PackedList } from './parameter-columns.js';
import { decodeSoap, SoapError, type DecodeOptions } from './soap.js';
import type { SoapEnvelope } from './types.js';

/** Bodies in one message to a worker at most (see decode()). */
const BATCH_BODIES = 4;

/**
 * Bodies from this size up that go to a worker go as the bytes read from the socket: joining the
 * chunks and decoding the text of a 300 KB body took the main thread 2-3 ms (fresh pages for the
 * joined buffer and the string), posting the chunks as they are 0.03 ms.
 */
const RAW_BODY_BYTES = 16 * 1024;

export type DecodeResult = { envelope: SoapEnvelope | null; warnings: string[]; warningsDropped?: number };

/** A decoded body: with the charset label that was not recognised (the body was read as UTF-8), for a warning. */
export type BodyDecode = DecodeResult & { unknownLabel?: string };

/** A body as read from the socket; its text is decoded (body-text.ts) by the thread that parses it. */
export interface RawBody {
  chunks: Uint8Array[];
  size: number;
  contentType?: string;
}

export interface WorkerError {
  soap: boolean;
  code?: string;
  message: string;
  cwmpVersion?: SoapError['cwmpVersion'];
  id?: string | null;
  method?: string;
}

interface Job {
  resolve: (r: BodyDecode) => void;
  reject: (e: Error) => void;
}

/** One body's answer from a worker (decode-worker.ts); a worker posts an array of them. */
export interface WorkerAnswer {
  id: number;
  ok: boolean;
  result?: BodyDecode;
  /** The result's long parameter list, in columns (packLists). */
  packed?: PackedList;
  error?: WorkerError;
}

/** What the pool posts to a worker: the bodies of one event-loop turn, ids and bodies in order. */
export interface WorkerBatch {
  ids: number[];
  xmls: (string | RawBody)[];
}

/** Small bodies parsed inline while the main thread has time (see the module comment). */
export interface AdaptiveDecode {
  /** Bodies up to this size are parsed inline while the main thread is not busy (0: never). */
  inlineBytes?: number;
  /** Event-loop utilization (0-1) above which the main thread counts as busy. */
  busyUtilization?: number;
  /** How often the utilization is looked at (ms). */
  windowMs?: number;
}

/**
 * When workers start and stop, and which one takes a large body (config acs.bulkParseBytes,
 * acs.parseWorkerIdleMs).
 */
export interface WorkerLanes {
  /**
   * Bodies this size and larger go to a worker of their own (the bulk lane): a 2,000-parameter
   * answer parses for 20-30 ms, and the small bodies of every other session queued behind it on a
   * shared worker would wait that long (issue 22 item 4). 0: no bulk lane.
   */
  bulkBytes?: number;
  /**
   * The bulk lane's thread runs at this nice value (Linux; 0: as the proxy). On few cores a big
   * parse at equal priority takes a core from the main thread and the other sessions' bodies for
   * its 20-30 ms; at a lower priority it gets what they leave.
   */
  bulkNice?: number;
  /** A worker with nothing to do for this long (ms) is stopped, its memory released; 0: never. */
  idleMs?: number;
}

/** One worker's place: started on its first body, stopped after idleMs without one. */
interface Lane {
  worker: Worker | null;
  /** Bodies posted to it and not answered yet. */
  load: number;
  /** Bodies waiting for this turn's post. */
  batch: WorkerBatch;
  /** When its load last fell to 0. */
  idleSince: number;
  /** The pool's `decodes` when the lane's idle clock last started (shared lanes: any body resets it). */
  decodesAt: number;
  idleTimer: NodeJS.Timeout | null;
}

export class DecodePool {
  /** The shared lanes first, then the bulk lane if there is one; a job id's low byte names its lane. */
  private readonly lanes: Lane[] = [];
  private readonly shared: number;
  private readonly bulkBytes: number;
  private readonly bulkNice: number;
  private readonly idleMs: number;
  private readonly jobs = new Map<number, Job>();
  private flushScheduled = false;
  private closed = false;
  private nextId = 1;
  /** Bodies handed to the codec so far (tests prove an unauthenticated body never gets here). */
  decodes = 0;

  private readonly adaptive: Required<AdaptiveDecode>;
  private elu: EventLoopUtilization = performance.eventLoopUtilization();
  private eluAt = performance.now();
  private busy = false;

  constructor(
    size: number,
    /** Bodies of this size and larger go to a worker while the main thread is busy (0: all). */
    private readonly thresholdBytes: number,
    /** The parse budget and warning cap of every decode (config acs.limits). */
    private readonly limits: DecodeOptions = {},
    adaptive: AdaptiveDecode = {},
    lanes: WorkerLanes = {},
  ) {
    this.adaptive = { inlineBytes: adaptive.inlineBytes ?? 0, busyUtilization: adaptive.busyUtilization ?? 0.75, windowMs: adaptive.windowMs ?? 100 };
    if (size > 255) throw new RangeError('at most 255 decode workers');
    this.shared = size;
    this.bulkBytes = size > 0 ? (lanes.bulkBytes ?? 0) : 0;
    this.bulkNice = lanes.bulkNice ?? 0;
    this.idleMs = lanes.idleMs ?? 0;
    const count = size + (this.bulkBytes > 0 ? 1 : 0);
    for (let i = 0; i < count; i++) this.lanes.push({ worker: null, load: 0, batch: { ids: [], xmls: [] }, idleSince: 0, decodesAt: 0, idleTimer: null });
  }

  /** Workers running now (started lazily, stopped when idle). */
  get workersRunning(): number {
    let n = 0;
    for (const l of this.lanes) if (l.worker) n++;
    return n;
  }

  /** The main thread's event-loop utilization since the last look, looked at most once per window. */
  private mainThreadBusy(): boolean {
    const now = performance.now();
    if (now - this.eluAt >= this.adaptive.windowMs) {
      const cur = performance.eventLoopUtilization();
      this.busy = performance.eventLoopUtilization(cur, this.elu).utilization > this.adaptive.busyUtilization;
      this.elu = cur;
      this.eluAt = now;
    }
    return this.busy;
  }

  /** Where the next body of this size is parsed (inline: on the calling thread). */
  placement(byteLength: number): 'inline' | 'worker' {
    // After close() a late body is parsed inline, as without workers.
    if (this.shared === 0 || this.closed || byteLength < this.thresholdBytes) return 'inline';
    if (byteLength <= this.adaptive.inlineBytes && !this.mainThreadBusy()) return 'inline';
    return 'worker';
  }

  /** The lane's worker, started if it is not running. */
  private workerOf(i: number): Worker {
    const lane = this.lanes[i]!;
    if (lane.worker) return lane.worker;
    // The limits go once, with the worker: a message then carries only its id and body.
    const nice = i === this.shared ? this.bulkNice : 0;
    const w = new Worker(new URL('./decode-worker.js', import.meta.url), { workerData: { limits: this.limits, nice } });
    w.unref();
    w.on('message', (answers: WorkerAnswer[]) => {
      for (const m of answers) {
        const job = this.jobs.get(m.id);
        if (!job) continue;
        this.jobs.delete(m.id);
        lane.load--;
        if (m.ok) {
          if (m.packed) unpackLists(m.result!, m.packed);
          job.resolve(m.result!);
        } else if (m.error!.soap) {
          const e = new SoapError(m.error!.code as SoapError['code'], m.error!.message);
          e.cwmpVersion = m.error!.cwmpVersion;
          e.id = m.error!.id;
          e.method = m.error!.method;
          job.reject(e);
        } else job.reject(new Error(m.error!.message));
      }
      if (lane.load === 0) this.idle(i);
    });
    w.on('error', (e) => {
      if (lane.worker !== w) return;
      // A crashed worker fails only its own jobs; the lane's next body starts a fresh one.
      for (const [id, job] of this.jobs) {
        if ((id & 0xff) === i) {
          this.jobs.delete(id);
          job.reject(e);
        }
      }
      lane.worker = null;
      lane.load = 0;
    });
    lane.worker = w;
    return w;
  }

  /**
   * The lane's load fell to 0: its worker stops after idleMs more without a body. A shared lane
   * counts every body the pool sees, inline ones included: under a load that hovers around the
   * busy mark bodies go inline for a while and then to the worker again, and a worker stopped in
   * between started cold each time (its parser's compiled code lost; bench:cluster at two instances:
   * 1.50-1.95x one instance's CPU per Get against 1.16-1.38x with the stop off). The bulk lane counts
   * only its own big bodies.
   */
  private idle(i: number): void {
    const lane = this.lanes[i]!;
    lane.idleSince = performance.now();
    lane.decodesAt = this.decodes;
    if (this.idleMs <= 0 || lane.idleTimer) return;
    // One timer per lane, re-armed for what is left rather than reset on every answer.
    const check = (): void => {
      lane.idleTimer = null;
      if (!lane.worker || lane.load > 0 || lane.batch.ids.length > 0) return;
      if (i < this.shared && this.decodes !== lane.decodesAt) {
        // Bodies were parsed inline since: the proxy is not idle, the clock starts again.
        lane.idleSince = performance.now();
        lane.decodesAt = this.decodes;
      }
      const left = this.idleMs - (performance.now() - lane.idleSince);
      if (left > 0) {
        lane.idleTimer = setTimeout(check, left);
        lane.idleTimer.unref();
        return;
      }
      const w = lane.worker;
      lane.worker = null;
      void w.terminate();
    };
    lane.idleTimer = setTimeout(check, this.idleMs);
    lane.idleTimer.unref();
  }

  private post(i: number, batch: WorkerBatch): void {
    this.workerOf(i).postMessage(batch);
  }

  /** Posts each lane the bodies of this turn, one message per lane. */
  private readonly flush = (): void => {
    this.flushScheduled = false;
    if (this.closed) return;
    for (let i = 0; i < this.lanes.length; i++) {
      const lane = this.lanes[i]!;
      if (lane.batch.ids.length === 0) continue;
      const b = lane.batch;
      lane.batch = { ids: [], xmls: [] };
      this.post(i, b);
    }
  };

  /** `byteLength` is the body size on the wire (cheaper than recomputing). */
  decode(xml: string, byteLength: number): Promise<DecodeResult> {
    this.decodes++;
    if (this.placement(byteLength) === 'inline') {
      try {
        return Promise.resolve(decodeSoap(xml, this.limits));
      } catch (e) {
        return Promise.reject(e);
      }
    }
    return this.submit(xml, byteLength);
  }

  /**
   * A body as read from the socket (`size` bytes in `chunks`), its text decoded in the character
   * encoding the CPE used (body-text.ts). A body that is only white space is no message (an empty
   * POST): its envelope is null. A large body bound for a worker goes there as bytes, so that the
   * main thread neither joins nor decodes it.
   */
  decodeBody(chunks: Buffer[], size: number, contentType: string | undefined): Promise<BodyDecode> {
    if (size >= RAW_BODY_BYTES && this.placement(size) === 'worker') {
      this.decodes++;
      const raw: RawBody = { chunks, size };
      if (contentType !== undefined) raw.contentType = contentType;
      return this.submit(raw, size);
    }
    let text: string;
    let unknownLabel: string | undefined;
    try {
      ({ text, unknownLabel } = bodyText(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size), contentType));
    } catch (e) {
      return Promise.reject(e);
    }
    const labelled = (r: DecodeResult): BodyDecode => (unknownLabel === undefined ? r : { ...r, unknownLabel });
    if (text.trim() === '') return Promise.resolve(labelled({ envelope: null, warnings: [] }));
    return this.decode(text, size).then(labelled);
  }

  /** Queues a body for the least loaded worker (a big one for the bulk lane), posted at the end of this turn. */
  private submit(xml: string | RawBody, byteLength: number): Promise<BodyDecode> {
    let best = 0;
    if (this.bulkBytes > 0 && byteLength >= this.bulkBytes) best = this.shared;
    else for (let i = 1; i < this.shared; i++) if (this.lanes[i]!.load < this.lanes[best]!.load) best = i;
    const id = this.nextId++ * 256 + best;
    if (this.nextId > 0x7fffff) this.nextId = 1;
    const lane = this.lanes[best]!;
    lane.load++;
    const batch = lane.batch;
    batch.ids.push(id);
    batch.xmls.push(xml);
    if (batch.ids.length >= BATCH_BODIES) {
      // A storm's turn can read hundreds of bodies: posted in bounded messages, the worker starts
      // on the first ones at once and no message grows with the storm.
      lane.batch = { ids: [], xmls: [] };
      this.post(best, batch);
    } else if (!this.flushScheduled) {
      this.flushScheduled = true;
      // After the poll phase: the bodies read from every socket in this turn leave together.
      setImmediate(this.flush);
    }
    return new Promise((resolve, reject) => {
      this.jobs.set(id, { resolve, reject });
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const closed = new Error('the decode pool was closed');
    for (const job of this.jobs.values()) job.reject(closed);
    this.jobs.clear();
    const running: Worker[] = [];
    for (const lane of this.lanes) {
      if (lane.idleTimer) clearTimeout(lane.idleTimer);
      lane.idleTimer = null;
      if (lane.worker) running.push(lane.worker);
      lane.worker = null;
      lane.load = 0;
      lane.batch = { ids: [], xmls: [] };
    }
    await Promise.all(running.map((w) => w.terminate()));
  }
}
