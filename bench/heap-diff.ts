/**
 * What the JS heap grew by between two V8 heap snapshots of the same process (bench:informs
 * `--heap-snapshot DIR`): every object is attributed to the holder on its shortest path from the
 * GC roots at depth `depth` (e.g. `CwmpUspProxy.proxy/SqliteStore.store/LRUCache.cache`), and the
 * bytes per holder are compared. Growth between 1,000 and 10,000 registered devices, divided by
 * 9,000, is what each added device costs and who keeps it.
 */
import { readFileSync } from 'node:fs';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; edge_fields: string[]; edge_types: [string[]] } };
  nodes: number[];
  edges: number[];
  strings: string[];
}

/** Bytes (self sizes) per holder path. */
export function heapByHolder(file: string, depth = 7): Map<string, number> {
  const s = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
  const nf = s.snapshot.meta.node_fields.length;
  const ef = s.snapshot.meta.edge_fields.length;
  const edgeTypes = s.snapshot.meta.edge_types[0];
  const n = s.nodes.length / nf;
  const firstEdge = new Uint32Array(n + 1);
  for (let i = 0, e = 0; i < n; i++) {
    firstEdge[i] = e;
    e += s.nodes[i * nf + 4]! * ef;
  }
  firstEdge[n] = s.edges.length;
  // Breadth first from the root: each object's parent on a shortest strong path.
  const parent = new Int32Array(n).fill(-1);
  const level = new Uint16Array(n);
  const via: string[] = new Array(n);
  const seen = new Uint8Array(n);
  seen[0] = 1;
  let queue = [0];
  while (queue.length > 0) {
    const next: number[] = [];
    for (const i of queue) {
      for (let e = firstEdge[i]!; e < firstEdge[i + 1]!; e += ef) {
        const type = edgeTypes[s.edges[e]!];
        if (type === 'weak' || type === 'shortcut') continue;
        const to = s.edges[e + 2]! / nf;
        if (seen[to]) continue;
        seen[to] = 1;
        parent[to] = i;
        level[to] = level[i]! + 1;
        via[to] = type === 'element' || type === 'hidden' ? '[]' : String(s.strings[s.edges[e + 1]!]);
        next.push(to);
      }
    }
    queue = next;
  }
  const name = (i: number): string => `${String(s.strings[s.nodes[i * nf + 1]!]).slice(0, 24)}.${via[i]}`;
  const keyOf = new Map<number, string>();
  const bytes = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    let j = i;
    while (level[j]! > depth) j = parent[j]!;
    let key = keyOf.get(j);
    if (key === undefined) {
      const path: string[] = [];
      for (let k = j; k > 0; k = parent[k]!) path.push(name(k));
      // The first two steps are V8's root groups ("(GC roots)", "(Stack roots)"): not telling.
      key = path.reverse().slice(2).join('/');
      keyOf.set(j, key);
    }
    bytes.set(key, (bytes.get(key) ?? 0) + s.nodes[i * nf + 3]!);
  }
  return bytes;
}

/** The holders that grew most from `before` to `after`, largest first. */
export function heapGrowth(before: string, after: string, top = 10): { holder: string; grew: number; now: number }[] {
  const a = heapByHolder(before);
  const b = heapByHolder(after);
  return [...b]
    .map(([holder, now]) => ({ holder, grew: now - (a.get(holder) ?? 0), now }))
    .sort((x, y) => y.grew - x.grew)
    .slice(0, top);
}
