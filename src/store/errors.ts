/**
 * A store that cannot be reached (Redis down, or its command timeout) or cannot write (SQLite:
 * disk full, read-only file or folder, I/O error, locked past busy_timeout) is a temporary
 * condition of this proxy, not a fault of the peer: the fronts answer 503 with Retry-After (HTTP)
 * or a USP 7003 rather than 500, /readyz fails meanwhile (src/store/health.ts), and nothing else
 * is affected.
 */
export function storeUnavailable(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  return (
    e.name === 'MaxRetriesPerRequestError' ||
    storeWriteFailed(e) ||
    /Connection is closed|Stream isn't writeable|Command timed out|ECONNREFUSED|ECONNRESET|cannot reach Redis/i.test(e.message)
  );
}

/** SQLite result codes (better-sqlite3's SqliteError.code) and file-system codes of a store that cannot write now. */
const WRITE_FAILURE = /^(SQLITE_(FULL|READONLY|IOERR|CANTOPEN|BUSY|LOCKED|PROTOCOL)|ENOSPC|EROFS|EDQUOT|EIO)/;

export function storeWriteFailed(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' && WRITE_FAILURE.test(code);
}
