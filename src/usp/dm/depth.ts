/**
 * Get max_depth (TR-369 R-GET.5): depth 1 is the object itself, 2 adds its sub-objects, ...; a
 * table and its instances are one level. 0 means no limit.
 */

/** Object levels of a path: its names, not counting instance numbers. */
export function levelsOf(path: string): number {
  let n = 0;
  for (const s of path.split('.')) if (s !== '' && !/^\d+$/.test(s)) n++;
  return n;
}

/** Whether a parameter below `objectPath` is within `maxDepth` of it. */
export function withinDepth(objectPath: string, paramPath: string, maxDepth: number | undefined): boolean {
  if (!maxDepth || maxDepth <= 0) return true;
  const obj = paramPath.slice(0, paramPath.lastIndexOf('.') + 1);
  return levelsOf(obj) - levelsOf(objectPath) < maxDepth;
}
