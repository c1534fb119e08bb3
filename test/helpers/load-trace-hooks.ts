/** module.register() hooks of load-trace.ts: each resolved URL appended to a file, synchronously (the process may exit any time). */
import { appendFileSync } from 'node:fs';
import type { InitializeHook, ResolveHook } from 'node:module';

let file = '';

export const initialize: InitializeHook<{ file: string }> = (data) => {
  file = data.file;
};

export const resolve: ResolveHook = async (specifier, context, next) => {
  const r = await next(specifier, context);
  appendFileSync(file, `${r.url}\n`);
  return r;
};
