/**
 * A CommonJS package loaded on first use, from synchronous code that cannot await import().
 * For dependencies only some configurations use (MQTT, Redis, pino-pretty, YAML files): the
 * default proxy never loads them, which keeps their code and its compiled form out of the heap
 * (issue 22: memory per device). The caller names the type, e.g.
 * `lazyRequire<typeof import('mqtt')>('mqtt')`. The package must have a CommonJS entry; use the
 * members its require() object has (named exports, not an ESM `default` that is not there).
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** A function returning the package, loading it at its first call (require() caches it after). */
export function lazyRequire<T>(id: string): () => T {
  let mod: T | undefined;
  return () => (mod ??= require(id) as T);
}
