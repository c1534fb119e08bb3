/**
 * The invariants of ARCHITECTURE.md marked "(checked)", read from the sources' import statements
 * and text: a rename or a shortcut that breaks one fails here, with the file named.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { ROOT } from '../helpers/paths.js';

interface Source {
  /** Path under src/, e.g. "usp/agent/endpoint.ts". */
  rel: string;
  text: string;
  /** Import/export specifiers, resolved to paths under src/ for relative ones ("cwmp/types.ts"). */
  imports: string[];
}

function sources(): Source[] {
  const src = path.join(ROOT, 'src');
  const out: Source[] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts')) {
        const text = readFileSync(p, 'utf8');
        const imports: string[] = [];
        for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g)) {
          const spec = m[1] ?? m[2]!;
          imports.push(spec.startsWith('.') ? path.relative(src, path.resolve(path.dirname(p), spec)).replace(/\.js$/, '.ts') : spec);
        }
        out.push({ rel: path.relative(src, p), text, imports });
      }
    }
  };
  walk(src);
  return out;
}

const all = sources();
const layer = (rel: string): string => rel.split('/')[0]!;

test('usp/ and cwmp/ never import each other', () => {
  for (const s of all) {
    if (layer(s.rel) === 'usp') assert.ok(!s.imports.some((i) => layer(i) === 'cwmp'), `${s.rel} imports cwmp/`);
    if (layer(s.rel) === 'cwmp') assert.ok(!s.imports.some((i) => layer(i) === 'usp'), `${s.rel} imports usp/`);
  }
});

test('codecs and machines import no I/O: no node:fs/net/http/dgram/child_process, store, log or config', () => {
  const pure = [
    'cwmp/soap.ts',
    'cwmp/session-machine.ts',
    'usp/codec/record.ts',
    'usp/path/syntax.ts',
    'mapping/engine.ts',
    'cwmp/stun/codec.ts',
    'cwmp/connreq-udp-message.ts',
  ];
  const io = /^(node:)?(fs|net|http|https|http2|dgram|child_process|worker_threads)$/;
  for (const rel of pure) {
    const s = all.find((x) => x.rel === rel);
    assert.ok(s, `${rel} exists`);
    for (const i of s.imports) {
      assert.ok(!io.test(i), `${rel} imports ${i}`);
      assert.ok(!/^(store\/(?!types)|app\/log|app\/config)/.test(i), `${rel} imports ${i}`);
    }
  }
});

test('single-instance code knows no Redis: only store/redis.ts and cluster/ import ioredis', () => {
  for (const s of all) {
    if (s.imports.includes('ioredis')) assert.ok(s.rel === 'store/redis.ts' || layer(s.rel) === 'cluster', `${s.rel} imports ioredis`);
  }
});

test('every GetParameterValues the proxy sends is built in interworking/device-access.ts', () => {
  // The codec decodes and the types declare it; the simulator (a CPE) and the controller tools are not the proxy.
  const allowed = new Set(['interworking/device-access.ts', 'cwmp/soap.ts', 'cwmp/types.ts']);
  for (const s of all) {
    if (layer(s.rel) === 'tools' || allowed.has(s.rel)) continue;
    assert.ok(!/method:\s*'GetParameterValues'/.test(s.text), `${s.rel} builds a GetParameterValues`);
  }
});

test('runtime files are found only through util/assets.ts', () => {
  for (const s of all) {
    if (s.rel === 'util/assets.ts') continue;
    assert.ok(!/dirname\(fileURLToPath\(import\.meta\.url\)\)/.test(s.text), `${s.rel} looks for files from its own location`);
  }
});

test('comments cite the standards or ARCHITECTURE.md, not documents outside the repository', () => {
  for (const s of all) assert.ok(!/DESIGN(\.md| section)/.test(s.text), `${s.rel} cites DESIGN`);
});

test('no import cycle between modules (type-only imports included)', () => {
  const byRel = new Map(all.map((s) => [s.rel, s]));
  const state = new Map<string, 'open' | 'done'>();
  const visit = (rel: string, trail: string[]): void => {
    if (state.get(rel) === 'done') return;
    assert.notEqual(state.get(rel), 'open', `import cycle: ${[...trail.slice(trail.indexOf(rel)), rel].join(' -> ')}`);
    state.set(rel, 'open');
    for (const i of byRel.get(rel)?.imports ?? []) if (byRel.has(i)) visit(i, [...trail, rel]);
    state.set(rel, 'done');
  };
  for (const s of all) visit(s.rel, []);
});

test('the product does not import its tools; only the CLI starts them', () => {
  // app/cli.ts is the one entry point that runs the simulator, demo and controller tools (bin path).
  for (const s of all) {
    if (layer(s.rel) === 'tools' || s.rel === 'app/cli.ts') continue;
    assert.ok(!s.imports.some((i) => layer(i) === 'tools'), `${s.rel} imports tools/`);
  }
});

test('the README stays under 8 KB: details belong in docs/', () => {
  const size = readFileSync(path.join(ROOT, 'README.md')).length;
  assert.ok(size < 8192, `README.md is ${size} bytes`);
});
