/**
 * Generates assets/mappings/tr098-names.json, the names the Broadband Forum TR-098 data model
 * defines (every version; src/mapping/bbf-names.ts), which the mapping coverage command counts
 * its target share against.
 *   npm run gen:names [-- --reference DIR] [-- --check]
 * --reference DIR  folder holding tr-098/ (default ../shared/reference beside the project)
 * --check          regenerate in memory and exit 1 when the shipped file differs (nothing written)
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { assetPath, projectRoot } from '../src/util/assets.js';
import { TR098_NAMES_FILE } from '../src/mapping/bbf-names.js';
import { buildNameSet, serializeNameSet } from './bbf-names/generate.js';
import { defaultReferenceDir } from './gen-type-table.js';

export const TR098_NAMES_INPUT = 'tr-098/tr-098-1-8-0-full.xml';

export function generateNamesFromReference(dir: string): string {
  const file = path.join(dir, TR098_NAMES_INPUT);
  return serializeNameSet(buildNameSet({ file: path.basename(file), xml: readFileSync(file, 'utf8') }));
}

function main(argv: string[]): number {
  let dir = defaultReferenceDir();
  let check = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--check') check = true;
    else if (a === '--reference' && argv[i + 1] !== undefined) dir = path.resolve(argv[++i]!);
    else {
      console.error(`usage: gen-bbf-names [--reference DIR] [--check]  (unexpected ${a})`);
      return 2;
    }
  }
  const text = generateNamesFromReference(dir);
  const out = assetPath('mappings', TR098_NAMES_FILE);
  const rel = path.relative(projectRoot(), out);
  if (check) {
    let shipped = '';
    try {
      shipped = readFileSync(out, 'utf8');
    } catch {}
    if (shipped !== text) {
      console.error(`${rel} is stale or missing: run npm run gen:names`);
      return 1;
    }
    console.log(`${rel} is up to date`);
    return 0;
  }
  writeFileSync(out, text);
  const objects = text.split('\n').length - 3;
  console.log(`wrote ${rel} (${Buffer.byteLength(text)} bytes, ${objects} objects)`);
  return 0;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) process.exitCode = main(process.argv.slice(2));
