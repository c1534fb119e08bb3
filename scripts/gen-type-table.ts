/**
 * Generates assets/param-types.json, the standard parameter type table, from the Broadband Forum
 * data-model XML (TR-181 Device:2 CWMP flavour, TR-098 InternetGatewayDevice:1, TR-106 types).
 *   npm run gen:types [-- --reference DIR] [-- --check]
 * --reference DIR  folder holding tr-181-cwmp/, tr-098/ (default ../shared/reference beside the project)
 * --check          regenerate in memory and exit 1 when the shipped file differs (nothing written)
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { assetPath } from '../src/util/assets.js';
import { generatedAssetMain } from './generated-asset.js';
import { buildTypeTable, type DmSource, serializeTypeTable, type TypeTableModel, typeTableCounts } from './type-table/generate.js';

/** The inputs, relative to the reference folder. */
export const TYPE_TABLE_INPUTS = {
  models: ['tr-181-cwmp/tr-181-2-17-0-cwmp-full.xml', 'tr-098/tr-098-1-8-0-full.xml'],
  types: ['tr-098/tr-106-types.xml'],
} as const;

const read = (dir: string, rel: string): DmSource => ({ file: path.basename(rel), xml: readFileSync(path.join(dir, rel), 'utf8') });

/** The table model and its file text from the reference folder. */
export function generateFromReference(dir: string): { model: TypeTableModel; text: string } {
  const model = buildTypeTable(
    TYPE_TABLE_INPUTS.models.map((f) => read(dir, f)),
    TYPE_TABLE_INPUTS.types.map((f) => read(dir, f)),
  );
  return { model, text: serializeTypeTable(model) };
}

function main(argv: string[]): number {
  return generatedAssetMain(
    {
      script: 'gen-type-table',
      npmScript: 'gen:types',
      out: assetPath('param-types.json'),
      generate: (dir) => {
        const { model, text } = generateFromReference(dir);
        const counts = [...typeTableCounts(model)].map(([root, c]) => `${root} ${c.objects} objects, ${c.parameters} parameters (${c.secured} secured)`);
        return { text, summary: counts.join('; ') };
      },
    },
    argv,
  );
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) process.exitCode = main(process.argv.slice(2));
