#!/usr/bin/env node
// Prints the import graph of src/ from its import and export statements: modules, layers (the
// folders under src/), arrows between modules and between layers, and every cycle. Usage:
//   node scripts/import-graph.mjs [--depth N] [--runtime] [--split M]... [--arrows] [--json] [dir]
//     --depth N   a layer is the first N folders under src/ (default 1: app, cwmp, usp, ...)
//     --runtime   leave out type-only imports (`import type`, `export type`, `{ type A }`)
//     --split M   module M (path under src/, e.g. app/log.ts) is a layer of its own; repeatable
//     --arrows    also list every arrow between modules
//     --json      machine-readable output
//     dir         the source root (default: src/ of this checkout)
// The exit code is 0 with or without cycles: this is a measure, not a gate.
import { readdirSync, readFileSync, statSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const flag = (name) => args.includes(name);
const depthAt = args.indexOf('--depth');
const depth = depthAt === -1 ? 1 : Math.max(1, Number(args[depthAt + 1]) || 1);
const positional = args.filter((a, i) => !a.startsWith('--') && args[i - 1] !== '--depth' && args[i - 1] !== '--split');
const split = new Set(args.filter((_, i) => args[i - 1] === '--split'));
const srcDir = path.resolve(positional[0] ?? path.join(root, 'src'));
const runtimeOnly = flag('--runtime');

function walk(dir, out) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

// Statements start at column 0 in formatted code, which keeps comments and strings out of the match.
const STATIC = /^(import|export)\s+(type\s+)?([^;'"]*?)\s*from\s*['"]([^'"]+)['"]/gm;
const BARE = /^import\s+['"]([^'"]+)['"]/gm;
const DYNAMIC = /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g;

/** An import is type-only when the statement says so or every named specifier does. */
function typeOnly(typeKeyword, clause) {
  if (typeKeyword) return true;
  const braces = clause.match(/^\{([\s\S]*)\}$/);
  if (!braces) return false;
  const names = braces[1]
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  return names.length > 0 && names.every((n) => n.startsWith('type '));
}

function resolve(from, spec) {
  if (!spec.startsWith('.')) return null;
  const base = path.resolve(path.dirname(from), spec);
  for (const c of [base.replace(/\.js$/, '.ts'), base + '.ts', path.join(base, 'index.ts')]) {
    if (existsSync(c) && statSync(c).isFile()) return c;
  }
  return null;
}

const files = walk(srcDir, []).sort();
const rel = (f) => path.relative(srcDir, f).split(path.sep).join('/');
const layerOf = (m) => {
  if (split.has(m)) return m.replace(/\.ts$/, '');
  const parts = m.split('/');
  return parts.length === 1 ? '(root)' : parts.slice(0, Math.min(depth, parts.length - 1)).join('/');
};

/** module -> Map(target module -> { type: boolean }) ; an arrow is type-only if all its imports are. */
const graph = new Map();
const external = new Map();
const unresolved = [];
for (const f of files) {
  const text = readFileSync(f, 'utf8');
  const out = new Map();
  const add = (spec, isType) => {
    const target = resolve(f, spec);
    if (target === null) {
      if (spec.startsWith('.')) unresolved.push(`${rel(f)}: ${spec}`);
      else {
        const pkg = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0];
        if (!isType || !runtimeOnly) external.set(pkg, (external.get(pkg) ?? 0) + 1);
      }
      return;
    }
    if (!target.startsWith(srcDir + path.sep)) return;
    if (runtimeOnly && isType) return;
    const t = rel(target);
    const prev = out.get(t);
    out.set(t, { type: prev ? prev.type && isType : isType });
  };
  for (const m of text.matchAll(STATIC)) add(m[4], typeOnly(m[2], m[3].trim()));
  for (const m of text.matchAll(BARE)) add(m[1], false);
  for (const m of text.matchAll(DYNAMIC)) add(m[1], false);
  graph.set(rel(f), out);
}

/** Strongly connected components with more than one node (Tarjan), each sorted. */
function cycles(nodes, edges) {
  let index = 0;
  const idx = new Map();
  const low = new Map();
  const stack = [];
  const on = new Set();
  const out = [];
  const visit = (v) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
    }
    if (low.get(v) === idx.get(v)) {
      const scc = [];
      let w;
      do {
        w = stack.pop();
        on.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1) out.push(scc.sort());
    }
  };
  for (const n of nodes) if (!idx.has(n)) visit(n);
  return out.sort((a, b) => a[0].localeCompare(b[0]));
}

/** One shortest loop through the first member of a component, for a readable report. */
function loopThrough(scc, edges) {
  const inside = new Set(scc);
  const start = scc[0];
  const prev = new Map([[start, null]]);
  const queue = [start];
  while (queue.length) {
    const v = queue.shift();
    for (const w of edges.get(v) ?? []) {
      if (!inside.has(w)) continue;
      if (w === start) {
        const loop = [start];
        for (let x = v; x !== start; x = prev.get(x)) loop.splice(1, 0, x);
        return [...loop, start];
      }
      if (!prev.has(w)) {
        prev.set(w, v);
        queue.push(w);
      }
    }
  }
  return scc;
}

const moduleEdges = new Map([...graph].map(([m, out]) => [m, [...out.keys()].sort()]));
const moduleArrows = [...graph].flatMap(([m, out]) => [...out].map(([t, a]) => ({ from: m, to: t, type: a.type })));
const layers = new Map();
for (const m of graph.keys()) layers.set(layerOf(m), (layers.get(layerOf(m)) ?? 0) + 1);
const layerArrowCount = new Map();
for (const a of moduleArrows) {
  const from = layerOf(a.from);
  const to = layerOf(a.to);
  if (from === to) continue;
  const key = `${from} -> ${to}`;
  layerArrowCount.set(key, (layerArrowCount.get(key) ?? 0) + 1);
}
const layerEdges = new Map();
for (const key of layerArrowCount.keys()) {
  const [from, to] = key.split(' -> ');
  layerEdges.set(from, [...(layerEdges.get(from) ?? []), to]);
}
const moduleCycles = cycles([...graph.keys()].sort(), moduleEdges);
const layerCycles = cycles([...layers.keys()].sort(), layerEdges);

const result = {
  root: path.relative(root, srcDir) || '.',
  depth,
  runtimeOnly,
  modules: graph.size,
  moduleArrows: moduleArrows.length,
  typeOnlyArrows: moduleArrows.filter((a) => a.type).length,
  layers: Object.fromEntries([...layers].sort()),
  layerArrows: Object.fromEntries([...layerArrowCount].sort()),
  moduleCycles: moduleCycles.map((c) => ({ modules: c, loop: loopThrough(c, moduleEdges) })),
  layerCycles: layerCycles.map((c) => ({ layers: c, loop: loopThrough(c, layerEdges) })),
  external: Object.fromEntries([...external].sort()),
  unresolved,
};

if (flag('--json')) {
  if (flag('--arrows')) result.arrows = moduleArrows;
  process.stdout.write(JSON.stringify(result, null, 2) + '\n');
} else {
  const lines = [];
  const p = (s = '') => lines.push(s);
  p(`import graph of ${result.root}/ (layer = first ${depth} folder${depth > 1 ? 's' : ''}${runtimeOnly ? ', runtime imports only' : ''})`);
  p(`modules: ${result.modules}   arrows: ${result.moduleArrows} (type-only: ${result.typeOnlyArrows})`);
  p(
    `layers: ${layers.size}   arrows between layers: ${layerArrowCount.size} (imports crossing layers: ${[...layerArrowCount.values()].reduce((a, b) => a + b, 0)})`,
  );
  p(`module cycles: ${moduleCycles.length}   layer cycles: ${layerCycles.length}`);
  p();
  p('layers (modules):');
  for (const [l, n] of Object.entries(result.layers)) p(`  ${l.padEnd(20)} ${n}`);
  p();
  p('arrows between layers (imports):');
  for (const [k, n] of Object.entries(result.layerArrows)) p(`  ${k.padEnd(34)} ${n}`);
  if (moduleCycles.length) {
    p();
    p('module cycles:');
    for (const c of result.moduleCycles) {
      p(`  ${c.modules.length} modules: ${c.modules.join(', ')}`);
      p(`      e.g. ${c.loop.join(' -> ')}`);
    }
  }
  if (layerCycles.length) {
    p();
    p('layer cycles:');
    for (const c of result.layerCycles) {
      p(`  ${c.layers.length} layers: ${c.layers.join(', ')}`);
      p(`      e.g. ${c.loop.join(' -> ')}, through:`);
      for (let i = 0; i + 1 < c.loop.length; i++) {
        const [from, to] = [c.loop[i], c.loop[i + 1]];
        const via = moduleArrows.filter((a) => layerOf(a.from) === from && layerOf(a.to) === to);
        for (const a of via) p(`        ${a.from} -> ${a.to}${a.type ? ' (type)' : ''}`);
      }
    }
  }
  if (flag('--arrows')) {
    p();
    p('arrows:');
    for (const a of moduleArrows) p(`  ${a.from} -> ${a.to}${a.type ? ' (type)' : ''}`);
  }
  if (unresolved.length) {
    p();
    p('unresolved relative imports:');
    for (const u of unresolved) p(`  ${u}`);
  }
  process.stdout.write(lines.join('\n') + '\n');
}
