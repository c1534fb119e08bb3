/** Worker thread body: decodes large SOAP bodies off the main thread (decode-pool.ts). */
import { parentPort } from 'node:worker_threads';
import { decodeSoap, SoapError, type DecodeOptions } from './soap.js';

parentPort!.on('message', (m: { id: number; xml: string; limits?: DecodeOptions }) => {
  try {
    parentPort!.postMessage({ id: m.id, ok: true, result: decodeSoap(m.xml, m.limits) });
  } catch (e) {
    const err = e as Error & { code?: string };
    const soap = e instanceof SoapError ? { cwmpVersion: e.cwmpVersion, id: e.id, method: e.method } : {};
    parentPort!.postMessage({ id: m.id, ok: false, error: { soap: e instanceof SoapError, code: err.code, message: err.message, ...soap } });
  }
});
