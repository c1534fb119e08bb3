/**
 * Generates assets/param-types.json, the standard parameter type table, from the Broadband Forum
 * data-model XML (TR-181 Device:2 CWMP flavour, TR-098 InternetGatewayDevice:1, TR-106 types).
 *   npm run gen:types [-- --reference DIR] [-- --check]
 * --reference DIR  folder holding tr-181-cwmp/, tr-098/ (default ../shared/reference beside the project)
 * --check          regenerate in memory and exit 1 when the shipped file differs (nothing written)
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { assetPath, projectRoot } from '../src/util/assets.js';
import { buildTypeTable, type DmSource, serializeTypeTable, type TypeTableModel, typeTableCounts } from './type-table/generate.js';

/** The inputs, relative to the reference folder. */
export const TYPE_TABLE_INPUTS = {
  models: ['tr-181-cwmp/tr-181-2-17-0-cwmp-full.xml', 'tr-098/tr-098-1-8-0-full.xml'],
  types: ['tr-098/tr-106-types.xml'],
} as const;

export const defaultReferenceDir = (): string => path.resolve(projectRoot(), '..', 'shared', 'reference');

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
  let dir = defaultReferenceDir();
  let check = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--check') check = true;
    else if (a === '--reference' && argv[i + 1] !== undefined) dir = path.resolve(argv[++i]!);
    else {
      console.error(`usage: gen-type-table [--reference DIR] [--check]  (unexpected ${a})`);
      return 2;
    }
  }
  const { model, text } = generateFromReference(dir);
  const out = assetPath('param-types.json');
  const counts = [...typeTableCounts(model)].map(([root, c]) => `${root} ${c.objects} objects, ${c.parameters} parameters (${c.secured} secured)`);
  if (check) {
    let shipped = '';
    try {
      shipped = readFileSync(out, 'utf8');
    } catch {}
    if (shipped !== text) {
      console.error(`${path.relative(projectRoot(), out)} is stale or missing: run npm run gen:types`);
      return 1;
    }
    console.log(`${path.relative(projectRoot(), out)} is up to date: ${counts.join('; ')}`);
    return 0;
  }
  writeFileSync(out, text);
  console.log(`wrote ${path.relative(projectRoot(), out)} (${Buffer.byteLength(text)} bytes): ${counts.join('; ')}`);
  return 0;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) process.exitCode = main(process.argv.slice(2));
