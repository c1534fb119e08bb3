/** Worker thread body: decodes SOAP bodies off the main thread (decode-pool.ts). */
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { bodyText } from './body-text.js';
import { decodeSoap, SoapError, type DecodeOptions } from './soap.js';
import type { BodyDecode, RawBody, WorkerAnswer, WorkerBatch } from './decode-pool.js';
import { packLists } from './parameter-columns.js';

/** The pool's limits (acs.limits) and this thread's nice value, given once at the worker's start. */
const data = workerData as { limits?: DecodeOptions; nice?: number } | null;
const limits = data?.limits ?? {};

/**
 * Lowers this thread's priority (the bulk lane, acs.bulkParseNice). On Linux a nice value is a
 * thread's own (setpriority(2) on a thread id); where /proc/thread-self is missing the thread keeps
 * the proxy's priority, which only costs the other sessions some latency on a loaded machine.
 */
function lowerPriority(nice: number): void {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (Number.isInteger(tid) && tid > 0) setPriority(tid, nice);
  } catch {
    // not Linux, or not allowed: as the proxy
  }
}
if (data?.nice) lowerPriority(data.nice);

/**
 * A body this long or longer takes milliseconds to parse: the answers already decoded leave
 * before it, so that the small bodies of the same batch do not wait for it.
 */
const LONG_BODY_CHARS = 32 * 1024;

/** A body posted as bytes (decode-pool.ts decodeBody): its text first, as the main thread would. */
function decodeRaw(raw: RawBody): BodyDecode {
  const { text, unknownLabel } = bodyText(Buffer.concat(raw.chunks, raw.size), raw.contentType);
  const result: BodyDecode = text.trim() === '' ? { envelope: null, warnings: [] } : decodeSoap(text, limits);
  if (unknownLabel !== undefined) result.unknownLabel = unknownLabel;
  return result;
}

function decodeOne(id: number, xml: string | RawBody): WorkerAnswer {
  try {
    const result = typeof xml === 'string' ? decodeSoap(xml, limits) : decodeRaw(xml);
    const packed = packLists(result);
    return packed ? { id, ok: true, result, packed } : { id, ok: true, result };
  } catch (e) {
    const err = e as Error & { code?: string };
    const soap = e instanceof SoapError ? { cwmpVersion: e.cwmpVersion, id: e.id, method: e.method } : {};
    return { id, ok: false, error: { soap: e instanceof SoapError, code: err.code, message: err.message, ...soap } };
  }
}

/**
 * Answers leave in groups of at most this many while a batch is parsed: a storm's batch holds dozens
 * of bodies, and the main thread must go on with the first sessions while the worker parses the
 * rest (answering a whole batch at once cost an Inform storm 15-20% of its rate, bench:informs);
 * the 2-3 bodies of a turn of 32 idle-device wake-ups still go back in one message. A count, not a
 * time: a descheduled worker would otherwise split every batch.
 */
const ANSWERS_PER_MESSAGE = 4;

parentPort!.on('message', (m: WorkerBatch) => {
  let answers: WorkerAnswer[] = [];
  for (let i = 0; i < m.ids.length; i++) {
    const xml = m.xmls[i]!;
    const length = typeof xml === 'string' ? xml.length : xml.size;
    if (answers.length >= ANSWERS_PER_MESSAGE || (answers.length > 0 && length >= LONG_BODY_CHARS)) {
      parentPort!.postMessage(answers);
      answers = [];
    }
    answers.push(decodeOne(m.ids[i]!, xml));
  }
  parentPort!.postMessage(answers);
});
