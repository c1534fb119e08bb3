/**
 * The command line shared by the scripts that derive a shipped asset from the BBF reference XML
 * (gen-type-table.ts, gen-bbf-names.ts): `[--reference DIR] [--check]`; --check regenerates in
 * memory and exits 1 when the shipped file differs, nothing written.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../src/util/assets.js';

export const defaultReferenceDir = (): string => path.resolve(projectRoot(), '..', 'shared', 'reference');

export interface GeneratedAsset {
  /** Script name for the usage line, npm script that regenerates the file. */
  readonly script: string;
  readonly npmScript: string;
  /** The asset's absolute path. */
  readonly out: string;
  /** The file's text from a reference folder, and a one-line summary of what it holds. */
  readonly generate: (referenceDir: string) => { text: string; summary: string };
}

/** Runs the command line; returns the exit code (0 ok, 1 stale under --check, 2 usage). */
export function generatedAssetMain(asset: GeneratedAsset, argv: readonly string[]): number {
  let dir = defaultReferenceDir();
  let check = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--check') check = true;
    else if (a === '--reference' && argv[i + 1] !== undefined) dir = path.resolve(argv[++i]!);
    else {
      console.error(`usage: ${asset.script} [--reference DIR] [--check]  (unexpected ${a})`);
      return 2;
    }
  }
  const { text, summary } = asset.generate(dir);
  const rel = path.relative(projectRoot(), asset.out);
  if (check) {
    let shipped = '';
    try {
      shipped = readFileSync(asset.out, 'utf8');
    } catch {}
    if (shipped !== text) {
      console.error(`${rel} is stale or missing: run npm run ${asset.npmScript}`);
      return 1;
    }
    console.log(`${rel} is up to date: ${summary}`);
    return 0;
  }
  writeFileSync(asset.out, text);
  console.log(`wrote ${rel} (${Buffer.byteLength(text)} bytes): ${summary}`);
  return 0;
}
