/**
 * Benchmark output: a progress display on stderr and a results table on stdout / in Markdown.
 *
 * Progress goes to stderr so stdout carries only the results (it can be piped into a file or a doc).
 * On a TTY the progress is one line rewritten in place; otherwise (CI logs) it is plain lines, throttled so
 * a long loop does not flood the log.
 */
import { cpus, loadavg, totalmem } from 'node:os';

/** A table cell: text as is, numbers formatted by {@link formatNumber}. */
export type Cell = string | number;

/** One row of the results table. */
export interface Row {
  /** What is measured, e.g. "crash detection p50 (ms)". */
  figure: string;
  switchboard: Cell;
  etcd?: Cell;
  /** Switchboard relative to etcd, e.g. "12x faster"; computed by the caller, who knows which way is better. */
  ratio?: Cell;
  /** The target from the issue, e.g. "< 1,000 ms". */
  target?: Cell;
  /** Command that reproduces the figure. */
  command: string;
  note?: string;
}

/** Machine facts shown above the table. */
export interface MachineInfo {
  cores: number;
  memoryGiB: number;
  cpuModel: string;
  node: string;
  platform: string;
  /** 1-minute load average when measured: figures taken on a busy machine are not comparable. */
  load1: number;
}

/** The machine this process runs on, from the os module. */
export function machineInfo(): MachineInfo {
  const cpu = cpus();
  return {
    cores: cpu.length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    cpuModel: cpu[0]?.model.trim() ?? 'unknown',
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    load1: Math.round(loadavg()[0] * 100) / 100,
  };
}

/**
 * Format a number for a table: thousands separators, and decimals only where they carry information
 * (3 significant digits for values below 100, none above).
 */
export function formatNumber(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const abs = Math.abs(n);
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3;
  return n.toLocaleString('en-US', { minimumFractionDigits: 0, maximumFractionDigits: digits });
}

/** A cell as the tables print it (numbers formatted). */
export const cellText = (c: Cell | undefined): string =>
  c === undefined ? '' : typeof c === 'number' ? formatNumber(c) : c;

/** A progress line on stderr. */
export interface Progress {
  /** Replace the current progress text. */
  update(text: string): void;
  /** Finish: print the final text (always shown, also when not a TTY). */
  done(text?: string): void;
}

/**
 * Start a progress display for one step. TTY: one line rewritten in place, at most 10 times a second.
 * Not a TTY: a plain line at most every 2 s, plus the final one.
 */
export function progress(label: string, stream: NodeJS.WriteStream = process.stderr): Progress {
  const tty = stream.isTTY === true;
  const minGap = tty ? 100 : 2_000;
  let last = 0;
  const write = (text: string, final: boolean): void => {
    const line = text ? `${label}: ${text}` : label;
    if (tty) {
      const width = (stream.columns ?? 120) - 1;
      stream.write(`\r\x1b[2K${line.slice(0, width)}${final ? '\n' : ''}`);
    } else {
      stream.write(`${line}\n`);
    }
  };
  return {
    update(text: string): void {
      const now = Date.now();
      if (now - last < minGap) return;
      last = now;
      write(text, false);
    },
    done(text = 'done'): void {
      write(text, true);
    },
  };
}

/** The results table of a benchmark run. */
export class Report {
  readonly rows: Row[] = [];

  /** Add a row; `etcd`, `ratio`, `target` and `note` may be left out. */
  addRow(row: Row): void {
    this.rows.push(row);
  }

  /** The table as aligned plain text (the command goes last, as it is the widest column). */
  tableText(): string {
    const headers = ['figure', 'switchboard', 'etcd', 'ratio', 'target', 'note', 'command'];
    const hasCol = headers.map(
      (h, i) => i < 2 || h === 'command' || this.rows.some((r) => cellText(r[h as keyof Row]) !== ''),
    );
    const cols = headers.filter((_, i) => hasCol[i]);
    const data = this.rows.map((r) => cols.map((h) => cellText(r[h as keyof Row])));
    const widths = cols.map((h, i) => Math.max(h.length, ...data.map((d) => d[i].length)));
    const numeric = (h: string) => h === 'switchboard' || h === 'etcd' || h === 'ratio';
    const fmt = (cells: string[]) =>
      cells
        .map((c, i) => (i === cells.length - 1 ? c : numeric(cols[i]) ? c.padStart(widths[i]) : c.padEnd(widths[i])))
        .join('  ')
        .trimEnd();
    return [fmt(cols), fmt(widths.map((w) => '-'.repeat(w))), ...data.map(fmt)].join('\n');
  }

  /** Print the table to stdout. */
  printTable(): void {
    process.stdout.write(`${this.tableText()}\n`);
  }

  /**
   * A Markdown section: machine facts, versions, date, then the table with the command of each row.
   * @param opts.machine defaults to {@link machineInfo}(); `versions` e.g. `{ switchboard: '0.1.0', etcd: '3.4.23' }`
   *   (Node's version is always included); `date` defaults to now.
   */
  toMarkdown(
    opts: { machine?: MachineInfo; versions?: Record<string, string>; date?: Date | string; title?: string } = {},
  ): string {
    const m = opts.machine ?? machineInfo();
    const date = opts.date === undefined ? new Date() : opts.date;
    const dateText = typeof date === 'string' ? date : date.toISOString().replace(/\.\d+Z$/, 'Z');
    const versions = { node: m.node, ...(opts.versions ?? {}) };
    const esc = (s: string) => s.replace(/\|/g, '\\|');
    const lines: string[] = [];
    lines.push(`## ${opts.title ?? 'Benchmark results'}`, '');
    lines.push(`- Date: ${dateText}`);
    lines.push(
      `- Machine: ${m.cores} cores, ${m.memoryGiB} GiB RAM, ${m.cpuModel} (${m.platform}), load average ${m.load1} at start`,
    );
    lines.push(
      `- Versions: ${Object.entries(versions)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}`,
    );
    lines.push('');
    const anyEtcd = this.rows.some((r) => r.etcd !== undefined);
    const anyRatio = this.rows.some((r) => r.ratio !== undefined);
    const anyTarget = this.rows.some((r) => r.target !== undefined);
    const anyNote = this.rows.some((r) => r.note !== undefined);
    const head = [
      'Figure',
      'Switchboard',
      ...(anyEtcd ? ['etcd'] : []),
      ...(anyRatio ? ['Ratio'] : []),
      ...(anyTarget ? ['Target'] : []),
      'Command',
      ...(anyNote ? ['Note'] : []),
    ];
    const align = head.map((h) => (h === 'Switchboard' || h === 'etcd' || h === 'Ratio' ? '---:' : '---'));
    lines.push(`| ${head.join(' | ')} |`, `| ${align.join(' | ')} |`);
    for (const r of this.rows) {
      const cells = [
        esc(r.figure),
        esc(cellText(r.switchboard)),
        ...(anyEtcd ? [esc(cellText(r.etcd))] : []),
        ...(anyRatio ? [esc(cellText(r.ratio))] : []),
        ...(anyTarget ? [esc(cellText(r.target))] : []),
        `\`${r.command}\``,
        ...(anyNote ? [esc(r.note ?? '')] : []),
      ];
      lines.push(`| ${cells.join(' | ')} |`);
    }
    lines.push('');
    return lines.join('\n');
  }
}
