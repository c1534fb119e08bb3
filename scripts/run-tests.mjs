#!/usr/bin/env node
// Runs the compiled tests whose TypeScript source exists (an incremental build leaves the output of
// deleted or renamed tests behind in dist/, which must not run). Usage:
//   node scripts/run-tests.mjs [folder under test/ ...] [-- extra node --test flags]
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const sep = argv.indexOf('--');
const folders = (sep === -1 ? argv : argv.slice(0, sep)).filter(Boolean);
const extra = sep === -1 ? [] : argv.slice(sep + 1);

function walk(dir, out) {
  if (!existsSync(dir)) return out;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else if (e.name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const sources = (folders.length ? folders : ['']).flatMap((f) => walk(path.join(root, 'test', f), []));
const compiled = sources.map((s) => path.join(root, 'dist', path.relative(root, s)).replace(/\.ts$/, '.js')).sort();
const missing = compiled.filter((c) => !existsSync(c));
if (missing.length) {
  console.error(`not compiled (run npm run build): ${missing.join(', ')}`);
  process.exit(1);
}
if (compiled.length === 0) {
  console.error(`no tests under test/${folders.join(', test/')}`);
  process.exit(1);
}
const r = spawnSync(process.execPath, ['--test', ...extra, ...compiled], { stdio: 'inherit' });
process.exit(r.status ?? 1);
