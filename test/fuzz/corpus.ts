/**
 * Fuzzing seeds and a deterministic mutator, shared by `npm run fuzz` (test/fuzz/run.ts) and the
 * socket fuzz test. Seeds: test/fixtures/soap/** (XML), and when ../shared/reference is present
 * its cwmp-samples bodies and usp-samples/*.bin Records. Paths are harvested from the seeds.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { REFERENCE, fixture } from '../helpers/paths.js';

export interface Corpus {
  soap: string[];
  records: Uint8Array[];
  paths: string[];
}

function walk(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else out.push(p);
  }
  return out;
}

/** The body of a captured HTTP exchange (after the first blank line), or the file itself. */
function bodyOf(text: string): string {
  const m = /\r?\n\r?\n/.exec(text);
  return /^(POST|GET|HTTP)\b/.test(text) && m ? text.slice(m.index + m[0].length) : text;
}

const EXTRA_PATHS = [
  'Device.',
  'Device.LocalAgent.EndpointID',
  'Device.LocalAgent.Subscription.*.Enable',
  'Device.IP.Interface.[Enable==true&&Name=="eth0"].IPv4Address.1.',
  'Device.WiFi.SSID.{i}.SSID',
  'Device.NAT.PortMapping.[InternalPort>=80].Description',
  'Device.DeviceInfo.FirmwareImage.1.Download()',
  'Device.Boot!',
  'Device.LocalAgent.Controller.1.BootParameter.#.ParameterName+.',
  'InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.ExternalIPAddress',
];

export function loadCorpus(): Corpus {
  const soap: string[] = [];
  for (const f of walk(fixture('soap'))) if (f.endsWith('.xml')) soap.push(readFileSync(f, 'utf8'));
  const cwmpRef = path.join(REFERENCE, 'cwmp-samples');
  for (const f of walk(cwmpRef)) {
    if (f.endsWith('.xml') || f.endsWith('.http.txt')) {
      const b = bodyOf(readFileSync(f, 'latin1'));
      if (b.trim()) soap.push(b);
    }
  }
  const records: Uint8Array[] = [];
  for (const f of walk(path.join(REFERENCE, 'usp-samples'))) if (f.endsWith('.bin')) records.push(new Uint8Array(readFileSync(f)));
  const paths = new Set<string>(EXTRA_PATHS);
  const re = /(?:Device|InternetGatewayDevice)\.[A-Za-z0-9_.{}*#+!()[\]=<>~&|-]*/g;
  for (const s of soap) for (const m of s.matchAll(re)) if (paths.size < 2000) paths.add(m[0]);
  for (const f of walk(path.join(REFERENCE, 'usp-samples'))) {
    if (!f.endsWith('.json')) continue;
    for (const m of readFileSync(f, 'utf8').matchAll(re)) if (paths.size < 2000) paths.add(m[0]);
  }
  return { soap, records, paths: [...paths] };
}

/** xorshift32: deterministic, so a failure is reproducible from (seed, index). */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 0x9e3779b9;
  }
  next(): number {
    let x = this.s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.s = x >>> 0;
    return this.s;
  }
  int(n: number): number {
    return n <= 0 ? 0 : this.next() % n;
  }
  pick<T>(a: readonly T[]): T {
    return a[this.int(a.length)]!;
  }
}

const TOKENS = [
  '<',
  '>',
  '</',
  '/>',
  '&',
  '&amp;',
  '&lt;',
  '&#0;',
  '&#xFFFF;',
  '&#x110000;',
  '&lol;',
  '"',
  "'",
  '=',
  ':',
  'xmlns:',
  'xmlns=""',
  '<![CDATA[',
  ']]>',
  '<!--',
  '-->',
  '<?xml version="1.0"?>',
  '<!DOCTYPE a [<!ENTITY x "y">]>',
  '<!ENTITY',
  '\u0000',
  '\uFFFD',
  '\uD800',
  'soap-env:',
  'cwmp:',
  'Inform',
  'Fault',
  'xsi:type="xsd:int"',
  'arrayType="x[99999999]"',
  '.',
  '*',
  '{i}',
  '[',
  ']',
  '==',
  '&&',
  '#',
  '+',
  '!',
  '()',
  '\n',
  ' ',
  '4294967296',
  '-1',
  '9'.repeat(30),
].map((t) => Buffer.from(t, 'utf8'));

/** One to four random edits: flips, inserts, deletes, duplicated or spliced slices, tokens, truncation. */
export function mutate(input: Uint8Array, rng: Rng, others: readonly Uint8Array[] = []): Uint8Array {
  let b: Buffer = Buffer.from(input);
  const edits = 1 + rng.int(4);
  for (let e = 0; e < edits; e++) {
    const at = rng.int(b.length + 1);
    switch (rng.int(9)) {
      case 0: // bit flip
        if (b.length) b[rng.int(b.length)]! ^= 1 << rng.int(8);
        break;
      case 1: // random byte
        if (b.length) b[rng.int(b.length)] = rng.int(256);
        break;
      case 2: // insert random bytes
        b = Buffer.concat([b.subarray(0, at), Buffer.from(Array.from({ length: 1 + rng.int(8) }, () => rng.int(256))), b.subarray(at)]);
        break;
      case 3: // delete a range
        b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + rng.int(64)))]);
        break;
      case 4: {
        // duplicate a slice (grows nesting, repeats elements)
        const len = 1 + rng.int(Math.min(256, Math.max(1, b.length - at)));
        const slice = b.subarray(at, at + len);
        const times = 1 + rng.int(8);
        b = Buffer.concat([b.subarray(0, at), ...Array.from({ length: times }, () => slice), b.subarray(at)]);
        break;
      }
      case 5: // insert a token
        b = Buffer.concat([b.subarray(0, at), rng.pick(TOKENS), b.subarray(at)]);
        break;
      case 6: // truncate
        b = b.subarray(0, at);
        break;
      case 7: {
        // splice with another seed
        if (!others.length) break;
        const o = rng.pick(others);
        const from = rng.int(o.length + 1);
        b = Buffer.concat([b.subarray(0, at), o.subarray(from, from + 1 + rng.int(512))]);
        break;
      }
      default: {
        // varint-ish / length field damage: overwrite with 0xff or 0x00 runs
        const len = 1 + rng.int(6);
        for (let i = 0; i < len && at + i < b.length; i++) b[at + i] = rng.int(2) ? 0xff : 0x00;
      }
    }
    if (b.length > 1 << 20) b = b.subarray(0, 1 << 20);
  }
  return new Uint8Array(b.buffer, b.byteOffset, b.length);
}

/** A mutated text (decoded as UTF-8, so invalid sequences become U+FFFD like on the wire). */
export function mutateText(input: string, rng: Rng, others: readonly Uint8Array[] = []): string {
  return Buffer.from(mutate(Buffer.from(input, 'utf8'), rng, others)).toString('utf8');
}
