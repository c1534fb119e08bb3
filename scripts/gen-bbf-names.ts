/**
 * Generates assets/mappings/tr098-names.json, the names the Broadband Forum TR-098 data model
 * defines (every version; src/mapping/bbf-names.ts), which the mapping coverage command counts
 * its target share against.
 * With --tr104 it makes assets/mappings/tr104v2-names.json instead, the names of TR-104 v2
 * (VoiceService:2), from tr-104/tr-104-2-0-2-cwmp-full.xml (BroadbandForum/cwmp-data-models; not
 * in the reference folder today: the shipped file was transcribed from that XML, and this makes
 * the same set from it, which test/unit/bbf-names.test.ts checks whenever the XML is there).
 *   npm run gen:names [-- --reference DIR] [-- --check] [-- --tr104]
 * --reference DIR  folder holding tr-098/ (and tr-104/) (default ../shared/reference beside the project)
 * --check          regenerate in memory and exit 1 when the shipped file differs (nothing written)
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { assetPath } from '../src/util/assets.js';
import { TR098_NAMES_FILE, TR104V2_NAMES_FILE } from '../src/mapping/bbf-names.js';
import { buildNameSet, serializeNameSet } from './bbf-names/generate.js';
import { defaultReferenceDir, generatedAssetMain } from './generated-asset.js';

export const TR098_NAMES_INPUT = 'tr-098/tr-098-1-8-0-full.xml';
export const TR104V2_NAMES_INPUT = 'tr-104/tr-104-2-0-2-cwmp-full.xml';

export function generateNamesFromReference(dir: string, input = TR098_NAMES_INPUT): string {
  const file = path.join(dir, input);
  return serializeNameSet(buildNameSet({ file: path.basename(file), xml: readFileSync(file, 'utf8') }));
}

function main(argv: string[]): number {
  const tr104 = argv.includes('--tr104');
  const ref = argv.indexOf('--reference');
  const input = path.join(ref >= 0 && argv[ref + 1] ? path.resolve(argv[ref + 1]!) : defaultReferenceDir(), tr104 ? TR104V2_NAMES_INPUT : TR098_NAMES_INPUT);
  if (!existsSync(input)) {
    console.error(`gen-bbf-names: ${input} not found (the BBF XML the name set is made from)`);
    return 2;
  }
  return generatedAssetMain(
    {
      script: 'gen-bbf-names',
      npmScript: tr104 ? 'gen:names -- --tr104' : 'gen:names',
      out: assetPath('mappings', tr104 ? TR104V2_NAMES_FILE : TR098_NAMES_FILE),
      generate: (dir) => {
        const text = generateNamesFromReference(dir, tr104 ? TR104V2_NAMES_INPUT : TR098_NAMES_INPUT);
        return { text, summary: `${text.split('\n').length - 3} objects` };
      },
    },
    argv.filter((a) => a !== '--tr104'),
  );
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) process.exitCode = main(process.argv.slice(2));
