/**
 * Generates assets/mappings/tr098-names.json, the names the Broadband Forum TR-098 data model
 * defines (every version; src/mapping/bbf-names.ts), which the mapping coverage command counts
 * its target share against.
 * With --tr104 (--tr140) it makes assets/mappings/tr104v2-names.json (tr140-names.json) instead,
 * the names of TR-104 v2 VoiceService:2 (TR-140 StorageService:1), from tr-104/tr-104-2-0-2-cwmp-full.xml
 * (tr-140/tr-140-1-3-0-full.xml) of BroadbandForum/cwmp-data-models. Those XML files are not in the
 * reference folder today: the shipped files were transcribed from them, and this makes the same
 * sets, which test/unit/bbf-names.test.ts checks whenever the XML is there.
 *   npm run gen:names [-- --reference DIR] [-- --check] [-- --tr104 | --tr140]
 * --reference DIR  folder holding tr-098/ (and tr-104/) (default ../shared/reference beside the project)
 * --check          regenerate in memory and exit 1 when the shipped file differs (nothing written)
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { assetPath } from '../src/util/assets.js';
import { TR098_NAMES_FILE, TR104V2_NAMES_FILE, TR140_NAMES_FILE } from '../src/mapping/bbf-names.js';
import { buildNameSet, serializeNameSet } from './bbf-names/generate.js';
import { defaultReferenceDir, generatedAssetMain } from './generated-asset.js';

export const TR098_NAMES_INPUT = 'tr-098/tr-098-1-8-0-full.xml';
export const TR104V2_NAMES_INPUT = 'tr-104/tr-104-2-0-2-cwmp-full.xml';
export const TR140_NAMES_INPUT = 'tr-140/tr-140-1-3-0-full.xml';

/** The name sets this script makes: flag -> input XML (under the reference folder) and shipped file. */
const SETS: Record<string, { input: string; out: string; npm: string }> = {
  '': { input: TR098_NAMES_INPUT, out: TR098_NAMES_FILE, npm: 'gen:names' },
  '--tr104': { input: TR104V2_NAMES_INPUT, out: TR104V2_NAMES_FILE, npm: 'gen:names -- --tr104' },
  '--tr140': { input: TR140_NAMES_INPUT, out: TR140_NAMES_FILE, npm: 'gen:names -- --tr140' },
};

export function generateNamesFromReference(dir: string, input = TR098_NAMES_INPUT): string {
  const file = path.join(dir, input);
  return serializeNameSet(buildNameSet({ file: path.basename(file), xml: readFileSync(file, 'utf8') }));
}

function main(argv: string[]): number {
  const flag = argv.find((a) => a in SETS && a !== '') ?? '';
  const set = SETS[flag]!;
  const ref = argv.indexOf('--reference');
  const input = path.join(ref >= 0 && argv[ref + 1] ? path.resolve(argv[ref + 1]!) : defaultReferenceDir(), set.input);
  if (!existsSync(input)) {
    console.error(`gen-bbf-names: ${input} not found (the BBF XML the name set is made from)`);
    return 2;
  }
  return generatedAssetMain(
    {
      script: 'gen-bbf-names',
      npmScript: set.npm,
      out: assetPath('mappings', set.out),
      generate: (dir) => {
        const text = generateNamesFromReference(dir, set.input);
        return { text, summary: `${text.split('\n').length - 3} objects` };
      },
    },
    argv.filter((a) => a !== flag),
  );
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) process.exitCode = main(process.argv.slice(2));
