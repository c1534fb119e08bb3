/**
 * USP path names (TR-369 "Path Names", "Searching", "Reference Following", "Data Model Path
 * Grammar"): parser, canonical formatter, matching helpers and a backend-agnostic resolver.
 * The implementation is split between path-syntax.ts (pure) and path-resolve.ts (needs a backend).
 */
export * from './syntax.js';
export * from './resolve.js';
