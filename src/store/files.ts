/**
 * The data folder and the store's files on disk (issue 14 items 10, 11): the folder is 0700 and
 * the SQLite files 0600, as they hold per-device secrets; looser modes left by an older version
 * are tightened at start (and reported, so the operator sees it in the log). A folder or file that
 * cannot be made is reported with its path and a plain cause, not SQLite's "unable to open
 * database file".
 */
import { chmodSync, closeSync, mkdirSync, openSync, statSync } from 'node:fs';
import path from 'node:path';

/** A store that cannot be opened at start: names the path and the cause. */
export class StoreOpenError extends Error {
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(message);
    this.name = 'StoreOpenError';
  }
}

const CAUSES: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOTDIR: 'a part of the path is a file, not a folder',
  EEXIST: 'a file is where the folder should be',
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EISDIR: 'the path is a folder',
  ENOENT: 'a part of the path does not exist',
  ELOOP: 'too many symbolic links',
};

/** "<plain cause> (<code>)" for a Node file-system error or a SQLite error. */
export function fileErrorCause(e: unknown): string {
  const err = e as { code?: string; message?: string };
  const plain = err.code ? CAUSES[err.code] : undefined;
  if (plain) return `${plain} (${err.code})`;
  return err.message ?? String(e);
}

/** A permission tightened at start, for the log. */
export interface ModeFix {
  path: string;
  from: string;
  to: string;
}

const octal = (m: number): string => '0' + (m & 0o777).toString(8);

function tighten(p: string, mode: number, fixes: ModeFix[]): void {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(p);
  } catch {
    return;
  }
  // A shared sticky folder (/tmp) is never ours to restrict, nor is another user's (chmod would fail).
  if ((st.mode & 0o1000) !== 0) return;
  if (typeof process.getuid === 'function' && st.uid !== process.getuid()) return;
  if ((st.mode & 0o777 & ~mode) === 0) return;
  chmodSync(p, mode);
  fixes.push({ path: p, from: octal(st.mode), to: octal(mode) });
}

/**
 * Creates `dir` (and its parents) 0700 when missing; tightens it to 0700 when it exists looser.
 * Throws StoreOpenError naming the folder and the cause.
 */
export function secureDataDir(dir: string, what: string, fixes: ModeFix[]): void {
  const abs = path.resolve(dir);
  try {
    mkdirSync(abs, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw new StoreOpenError(abs, `${what} ${abs}: cannot create the folder: ${fileErrorCause(e)}`);
  }
  try {
    tighten(abs, 0o700, fixes);
  } catch (e) {
    throw new StoreOpenError(abs, `${what} ${abs}: cannot restrict the folder to its owner: ${fileErrorCause(e)}`);
  }
}

/**
 * Prepares a SQLite file for a writable open: its folder exists (0700 when created here), the file
 * exists with mode 0600 before SQLite opens it (SQLite gives -wal and -shm the mode of the main
 * file), and any looser mode of the three is tightened. Throws StoreOpenError naming the path.
 */
export function prepareSqliteFile(file: string, fixes: ModeFix[]): void {
  const abs = path.resolve(file);
  const dir = path.dirname(abs);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw new StoreOpenError(abs, `store.path ${abs}: cannot create its folder ${dir}: ${fileErrorCause(e)}`);
  }
  try {
    closeSync(openSync(abs, 'a', 0o600));
  } catch (e) {
    throw new StoreOpenError(abs, `store.path ${abs}: cannot open the database file for writing: ${fileErrorCause(e)}`);
  }
  try {
    for (const f of [abs, `${abs}-wal`, `${abs}-shm`, `${abs}-journal`]) tighten(f, 0o600, fixes);
  } catch (e) {
    throw new StoreOpenError(abs, `store.path ${abs}: cannot restrict the file to its owner: ${fileErrorCause(e)}`);
  }
}
