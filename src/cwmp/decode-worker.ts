/** Worker thread body: decodes large SOAP bodies off the main thread (decode-pool.ts). */
import { parentPort, workerData } from 'node:worker_threads';
import { decodeSoap, SoapError, type DecodeOptions } from './soap.js';

/** The pool's limits (acs.limits), given once at the worker's start. */
const limits = (workerData as { limits?: DecodeOptions } | null)?.limits ?? {};

parentPort!.on('message', (m: { id: number; xml: string }) => {
  try {
    parentPort!.postMessage({ id: m.id, ok: true, result: decodeSoap(m.xml, limits) });
  } catch (e) {
    const err = e as Error & { code?: string };
    const soap = e instanceof SoapError ? { cwmpVersion: e.cwmpVersion, id: e.id, method: e.method } : {};
    parentPort!.postMessage({ id: m.id, ok: false, error: { soap: e instanceof SoapError, code: err.code, message: err.message, ...soap } });
  }
});
