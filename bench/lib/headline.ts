/**
 * The README's headline table: the figures of one full `npm run bench` run, written between two markers so it is
 * never a mix of rows from different runs (issue 15, "Bench honesty"). Notes and commands stay in RESULTS.md.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { cellText, type Cell, type Report } from './report.ts';

const START = '<!-- bench:headline:start (written by npm run bench; do not edit by hand) -->';
const END = '<!-- bench:headline:end -->';

/** Replaces the README's headline block with this run's table; false when the README has no markers. */
export function writeHeadline(
  readmePath: string,
  report: Report,
  run: { date: Date; load1: number; cores: number; minutes: string; versions: Record<string, string> },
): boolean {
  const readme = readFileSync(readmePath, 'utf8');
  const from = readme.indexOf(START);
  const to = readme.indexOf(END);
  if (from < 0 || to < from) return false;
  const esc = (c: Cell | undefined): string => cellText(c).replace(/\|/g, '\\|');
  const table = [
    `One run of \`npm run bench\` on ${run.date.toISOString().slice(0, 16).replace('T', ' ')} UTC, ${run.minutes} min, ` +
      `${run.cores} cores, load average ${run.load1} at start (${Object.entries(run.versions)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}). Each row's command and notes are in [bench/RESULTS.md](bench/RESULTS.md).`,
    '',
    '| Figure | Switchboard | etcd | Ratio | Target |',
    '| --- | ---: | ---: | ---: | --- |',
    ...report.rows.map(
      (r) => `| ${esc(r.figure)} | ${esc(r.switchboard)} | ${esc(r.etcd)} | ${esc(r.ratio)} | ${esc(r.target)} |`,
    ),
  ].join('\n');
  writeFileSync(readmePath, `${readme.slice(0, from + START.length)}\n${table}\n${readme.slice(to)}`);
  return true;
}
