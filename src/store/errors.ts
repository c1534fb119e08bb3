/**
 * A shared store that cannot be reached (Redis down, or its command timeout) is a temporary
 * condition of this proxy, not a fault of the peer: the fronts answer 503 with Retry-After
 * (HTTP) or a USP 7003 rather than 500, and nothing else is affected.
 */
export function storeUnavailable(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  return (
    e.name === 'MaxRetriesPerRequestError' ||
    /Connection is closed|Stream isn't writeable|Command timed out|ECONNREFUSED|ECONNRESET|cannot reach Redis/i.test(e.message)
  );
}
