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
 */
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { decodeSoap, SoapError, type DecodeOptions } from './soap.js';
import type { SoapEnvelope } from './types.js';

/** Bodies in one message to a worker at most (see decode()). */
const BATCH_BODIES = 4;

export type DecodeResult = { envelope: SoapEnvelope | null; warnings: string[]; warningsDropped?: number };

export interface WorkerError {
  soap: boolean;
  code?: string;
  message: string;
  cwmpVersion?: SoapError['cwmpVersion'];
  id?: string | null;
  method?: string;
}

interface Job {
  resolve: (r: DecodeResult) => void;
  reject: (e: Error) => void;
}

/** One body's answer from a worker (decode-worker.ts); a worker posts an array of them. */
export interface WorkerAnswer {
  id: number;
  ok: boolean;
  result?: DecodeResult;
  error?: WorkerError;
}

/** What the pool posts to a worker: the bodies of one event-loop turn, ids and texts in order. */
export interface WorkerBatch {
  ids: number[];
  xmls: string[];
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

export class DecodePool {
  private readonly workers: Worker[] = [];
  private readonly jobs = new Map<number, Job>();
  private readonly load: number[] = [];
  /** Bodies waiting for this turn's post, per worker. */
  private readonly batches: WorkerBatch[] = [];
  private flushScheduled = false;
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
  ) {
    this.adaptive = { inlineBytes: adaptive.inlineBytes ?? 0, busyUtilization: adaptive.busyUtilization ?? 0.75, windowMs: adaptive.windowMs ?? 100 };
    for (let i = 0; i < size; i++) this.spawn(i);
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
    if (this.workers.length === 0 || byteLength < this.thresholdBytes) return 'inline';
    if (byteLength <= this.adaptive.inlineBytes && !this.mainThreadBusy()) return 'inline';
    return 'worker';
  }

  private spawn(i: number): void {
    // The limits go once, with the worker: a message then carries only its id and body.
    const w = new Worker(new URL('./decode-worker.js', import.meta.url), { workerData: { limits: this.limits } });
    w.unref();
    w.on('message', (answers: WorkerAnswer[]) => {
      for (const m of answers) {
        const job = this.jobs.get(m.id);
        if (!job) continue;
        this.jobs.delete(m.id);
        this.load[i]!--;
        if (m.ok) job.resolve(m.result!);
        else if (m.error!.soap) {
          const e = new SoapError(m.error!.code as SoapError['code'], m.error!.message);
          e.cwmpVersion = m.error!.cwmpVersion;
          e.id = m.error!.id;
          e.method = m.error!.method;
          job.reject(e);
        } else job.reject(new Error(m.error!.message));
      }
    });
    w.on('error', (e) => {
      // A crashed worker fails only its own jobs; a fresh one takes its place.
      for (const [id, job] of this.jobs) {
        if ((id & 0xff) === i) {
          this.jobs.delete(id);
          job.reject(e);
        }
      }
      this.spawn(i);
    });
    this.workers[i] = w;
    this.load[i] = 0;
    this.batches[i] = { ids: [], xmls: [] };
  }

  /** Posts each worker the bodies of this turn, one message per worker. */
  private readonly flush = (): void => {
    this.flushScheduled = false;
    for (let i = 0; i < this.workers.length; i++) {
      const b = this.batches[i]!;
      if (b.ids.length === 0) continue;
      this.batches[i] = { ids: [], xmls: [] };
      this.workers[i]!.postMessage(b);
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
    let best = 0;
    for (let i = 1; i < this.workers.length; i++) if (this.load[i]! < this.load[best]!) best = i;
    const id = this.nextId++ * 256 + best;
    if (this.nextId > 0x7fffff) this.nextId = 1;
    this.load[best]!++;
    const batch = this.batches[best]!;
    batch.ids.push(id);
    batch.xmls.push(xml);
    if (batch.ids.length >= BATCH_BODIES) {
      // A storm's turn can read hundreds of bodies: posted in bounded messages, the worker starts
      // on the first ones at once and no message grows with the storm.
      this.batches[best] = { ids: [], xmls: [] };
      this.workers[best]!.postMessage(batch);
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
    const closed = new Error('the decode pool was closed');
    for (const job of this.jobs.values()) job.reject(closed);
    this.jobs.clear();
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers.length = 0;
  }
}
