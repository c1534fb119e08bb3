import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

/** Project root (tests run compiled from dist/test/..., sources live at the root). */
export const ROOT = (() => {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('package.json not found above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
  return dir;
})();

/** ../shared/reference beside the checkout; tests that use it skip (saying why) when absent. */
export const REFERENCE = path.resolve(ROOT, '..', 'shared', 'reference');
export const hasReference = (sub = ''): boolean => existsSync(path.join(REFERENCE, sub));
export const fixture = (...parts: string[]): string => path.join(ROOT, 'test', 'fixtures', ...parts);
