/**
 * The one place that finds the package's files at run time: the project root (the nearest folder
 * above this module holding package.json, the same from src/ under a test runner and from dist/src/)
 * and the runtime assets below assets/ (USP schemas, mappings, the status page, simulator models,
 * the parameter type table).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

/** The package root (where package.json is). */
export function projectRoot(): string {
  if (root !== undefined) return root;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('package.json not found above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
  return (root = dir);
}

/** A file or folder below assets/, e.g. assetPath('proto', 'usp-msg-1-4.proto'). */
export function assetPath(...parts: string[]): string {
  return path.join(projectRoot(), 'assets', ...parts);
}
