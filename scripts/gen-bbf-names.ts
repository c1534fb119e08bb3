/**
 * Generates assets/mappings/tr098-names.json, the names the Broadband Forum TR-098 data model
 * defines (every version; src/mapping/bbf-names.ts), which the mapping coverage command counts
 * its target share against.
 *   npm run gen:names [-- --reference DIR] [-- --check]
 * --reference DIR  folder holding tr-098/ (default ../shared/reference beside the project)
 * --check          regenerate in memory and exit 1 when the shipped file differs (nothing written)
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { assetPath } from '../src/util/assets.js';
import { TR098_NAMES_FILE } from '../src/mapping/bbf-names.js';
import { buildNameSet, serializeNameSet } from './bbf-names/generate.js';
import { generatedAssetMain } from './generated-asset.js';

export const TR098_NAMES_INPUT = 'tr-098/tr-098-1-8-0-full.xml';

export function generateNamesFromReference(dir: string): string {
  const file = path.join(dir, TR098_NAMES_INPUT);
  return serializeNameSet(buildNameSet({ file: path.basename(file), xml: readFileSync(file, 'utf8') }));
}

function main(argv: string[]): number {
  return generatedAssetMain(
    {
      script: 'gen-bbf-names',
      npmScript: 'gen:names',
      out: assetPath('mappings', TR098_NAMES_FILE),
      generate: (dir) => {
        const text = generateNamesFromReference(dir);
        return { text, summary: `${text.split('\n').length - 3} objects` };
      },
    },
    argv,
  );
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) process.exitCode = main(process.argv.slice(2));
