// Recent errors as the page lists them: the newest first, at most n. Pure (test/unit/console-page.test.ts).
// The API answers newest first already; sorting by time keeps the page right whatever order it gets
// (ISO 8601 times of one clock sort as strings; equal times keep their given order).
export function newestErrors(list, n) {
  return [...(list ?? [])].sort((a, b) => (a.time < b.time ? 1 : a.time > b.time ? -1 : 0)).slice(0, n);
}
