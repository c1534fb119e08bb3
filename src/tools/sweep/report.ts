/**
 * The sweep's report as text: a table model x check, the reasons of what failed or was
 * skipped, and per model the CWMP cost of the first and of a steady-state Get. Pure.
 */
import { describeCost } from './checks.js';
import type { SweepResult } from './run.js';

export function renderReport(r: SweepResult): string[] {
  const lines: string[] = [];
  const nameW = Math.max(5, ...r.models.map((m) => m.model.length));
  const widths = r.checks.map((c) => Math.max(c.length, 4));
  const row = (first: string, cells: string[]): string => [first.padEnd(nameW), ...cells.map((c, i) => c.padEnd(widths[i]!))].join('  ').trimEnd();
  lines.push(`Sweep of ${r.models.length} model(s) in ${r.dir}, quirks: ${r.quirks}`);
  lines.push('');
  lines.push(row('model', [...r.checks]));
  lines.push(
    row(
      '-'.repeat(nameW),
      widths.map((w) => '-'.repeat(w)),
    ),
  );
  for (const m of r.models)
    lines.push(
      row(
        m.model,
        r.checks.map((c) => m.checks[c]?.status ?? '-'),
      ),
    );
  const notes = r.models.flatMap((m) =>
    r.checks
      .filter((c) => m.checks[c] && m.checks[c].status !== 'ok' && m.checks[c].reason !== 'not registered')
      .map((c) => `  ${m.model} / ${c}: ${m.checks[c].status} ${m.checks[c].reason ?? ''}`.trimEnd()),
  );
  if (notes.length) {
    lines.push('');
    lines.push('Not ok (FAIL or skip):');
    lines.push(...notes);
  }
  lines.push('');
  lines.push('CWMP cost at the CPE of a USP Get of Device.DeviceInfo.SoftwareVersion (RPCs received, bytes on the wire, time):');
  for (const m of r.models) {
    const first = m.firstGet ? describeCost(m.firstGet) : 'not run';
    const steady = m.steadyGet ? describeCost(m.steadyGet) : 'not run';
    lines.push(`  ${m.model} (${m.root || '?'} ${m.params} parameters)`);
    lines.push(`    first Get, never-seen model (includes learning it): ${first}`);
    lines.push(`    steady-state Get (the same again):                   ${steady}`);
    lines.push(`    time to learn the model (first less steady Get):     ${m.learnMs === undefined ? 'n/a (a Get failed)' : `${m.learnMs} ms`}`);
  }
  const failed = r.models.reduce((n, m) => n + Object.values(m.checks).filter((c) => c.status === 'FAIL').length, 0);
  lines.push('');
  lines.push(failed === 0 ? 'All checks ok.' : `${failed} check(s) failed.`);
  return lines;
}
