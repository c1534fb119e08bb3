/** Worker thread body: decodes SOAP bodies off the main thread (decode-pool.ts). */
import { parentPort, workerData } from 'node:worker_threads';
import { decodeSoap, SoapError, type DecodeOptions } from './soap.js';
import type { WorkerAnswer, WorkerBatch } from './decode-pool.js';

/** The pool's limits (acs.limits), given once at the worker's start. */
const limits = (workerData as { limits?: DecodeOptions } | null)?.limits ?? {};

/**
 * A body this long or longer takes milliseconds to parse: the answers already decoded leave
 * before it, so that the small bodies of the same batch do not wait for it.
 */
const LONG_BODY_CHARS = 32 * 1024;

function decodeOne(id: number, xml: string): WorkerAnswer {
  try {
    return { id, ok: true, result: decodeSoap(xml, limits) };
  } catch (e) {
    const err = e as Error & { code?: string };
    const soap = e instanceof SoapError ? { cwmpVersion: e.cwmpVersion, id: e.id, method: e.method } : {};
    return { id, ok: false, error: { soap: e instanceof SoapError, code: err.code, message: err.message, ...soap } };
  }
}

/**
 * Answers leave at least this often while a batch is being parsed: a storm's batch holds dozens of
 * bodies, and the main thread must go on with the first sessions while the worker parses the rest
 * (answering the whole batch at once cost an Inform storm 15-20% of its rate, bench:informs).
 */
const ANSWER_EVERY_MS = 0.5;

parentPort!.on('message', (m: WorkerBatch) => {
  let answers: WorkerAnswer[] = [];
  let since = performance.now();
  for (let i = 0; i < m.ids.length; i++) {
    const xml = m.xmls[i]!;
    if (answers.length > 0 && (xml.length >= LONG_BODY_CHARS || performance.now() - since >= ANSWER_EVERY_MS)) {
      parentPort!.postMessage(answers);
      answers = [];
      since = performance.now();
    }
    answers.push(decodeOne(m.ids[i]!, xml));
  }
  parentPort!.postMessage(answers);
});
