/**
 * Bounded string interning: values many devices share (vendor, OUI, product class, software
 * version, event codes) kept once instead of once per device. A CPE chooses these values, so the
 * table stops growing at `max` distinct values; later ones are simply not shared.
 */
export class Interner {
  private readonly known = new Map<string, string>();

  constructor(private readonly max = 4096) {}

  of(s: string): string {
    const k = this.known.get(s);
    if (k !== undefined) return k;
    if (this.known.size < this.max) this.known.set(s, s);
    return s;
  }
}

/** The process-wide table of device identity strings (store cache, metrics index). */
export const deviceStrings = new Interner();
