/**
 * Micro-benchmark of the CWMP SOAP codec: decodes/s of a 20-parameter
 * Inform and a 2,000-parameter GetParameterValuesResponse, encodes/s of both, and what a full
 * XMLValidator pass or our well-formedness scan would add to a decode.
 *   npm run build && node dist/bench/soap-parse.js [seconds-per-case]
 */
import { XMLValidator } from 'fast-xml-parser';
import { decodeSoap, encodeSoap } from '../src/cwmp/soap.js';
import { checkWellFormed } from '../src/cwmp/soap-wellformed.js';
import type { ParameterValueStruct, SoapEnvelope } from '../src/cwmp/types.js';

const seconds = Number(process.argv[2] ?? 1.5);

function params(n: number): ParameterValueStruct[] {
  return Array.from({ length: n }, (_, i) => ({
    name: `InternetGatewayDevice.LANDevice.1.Hosts.Host.${i + 1}.HostName`,
    value: i % 5 === 0 ? `host-${i} & <lab>` : `host-${i}`,
    type: i % 3 === 0 ? 'xsd:unsignedInt' : 'xsd:string',
  }));
}

const inform: SoapEnvelope = {
  cwmpVersion: '1-0',
  id: 'fcg3se0p',
  body: {
    method: 'Inform',
    deviceId: { manufacturer: 'Huawei Technologies Co., Ltd.', oui: '202BC1', productClass: 'BM632w', serialNumber: '000000' },
    event: [{ eventCode: '2 PERIODIC', commandKey: '' }],
    maxEnvelopes: 1,
    currentTime: '2026-11-25T11:37:24.085Z',
    retryCount: 0,
    parameterList: params(20),
  },
};
const gpvr: SoapEnvelope = {
  cwmpVersion: '1-0',
  id: 'acs-2',
  body: { method: 'GetParameterValuesResponse', parameterList: params(2000) },
};

function rate(label: string, fn: () => unknown): number {
  for (let i = 0; i < 20; i++) fn(); // warm-up
  let n = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < seconds * 1000) {
    fn();
    n++;
    if ((n & 7) === 0) t = performance.now();
  }
  t = performance.now();
  const perS = n / ((t - t0) / 1000);
  console.log(`${label.padEnd(48)} ${perS.toFixed(perS < 100 ? 1 : 0).padStart(9)} /s  ${(1000 / perS).toFixed(3).padStart(8)} ms`);
  return perS;
}

for (const [name, env] of [
  ['Inform, 20 params', inform],
  ['GetParameterValuesResponse, 2000 params', gpvr],
] as const) {
  const xml = encodeSoap(env);
  console.log(`# ${name}: ${xml.length} bytes`);
  rate('decodeSoap (well-formedness scan + parse + walk)', () => decodeSoap(xml));
  rate('encodeSoap', () => encodeSoap(env));
  rate('checkWellFormed alone', () => checkWellFormed(xml));
  rate('XMLValidator.validate alone', () => XMLValidator.validate(xml));
}
