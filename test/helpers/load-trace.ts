/**
 * `node --import dist/test/helpers/load-trace.js ...` with LOAD_TRACE_FILE=<path>: records every
 * module the process loads, for test/integration/lazy-deps.test.ts (and counting modules at rest).
 * ESM resolutions are appended to <path>.esm by the hooks below as they happen; CommonJS modules
 * (require(), createRequire(), and CommonJS packages imported from ESM, which Node 20 also caches
 * there) are the keys of require.cache, written to <path>.cjs when the process exits. Node 20's
 * module.register() hooks run on their own thread and do not see require().
 */
import { createRequire, register } from 'node:module';
import { writeFileSync } from 'node:fs';

const out = process.env.LOAD_TRACE_FILE;
if (out) {
  register('./load-trace-hooks.js', { parentURL: import.meta.url, data: { file: `${out}.esm` } });
  const require = createRequire(import.meta.url);
  process.on('exit', () => writeFileSync(`${out}.cjs`, Object.keys(require.cache).join('\n') + '\n'));
}
