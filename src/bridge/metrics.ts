/**
 * A minimal Prometheus registry: counters and gauges with fixed label sets, rendered as text exposition format.
 * Enough for our handful of series; not worth a dependency.
 */
type Labels = Record<string, string>;

function key(labels: Labels | undefined): string {
  if (!labels) return '';
  const parts = Object.keys(labels)
    .sort()
    .map((k) => `${k}="${String(labels[k]).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

interface Family {
  kind: 'counter' | 'gauge';
  help: string;
  values: Map<string, number>;
  collect?: () => Array<[Labels | undefined, number]>;
}

export class Metrics {
  readonly #families = new Map<string, Family>();

  #family(name: string, kind: Family['kind'], help: string): Family {
    let family = this.#families.get(name);
    if (!family) {
      family = { kind, help, values: new Map() };
      this.#families.set(name, family);
    }
    return family;
  }

  /** Declares a counter so it renders as 0 before its first increment. */
  counter(name: string, help: string, labels?: Labels): void {
    const family = this.#family(name, 'counter', help);
    const k = key(labels);
    if (!family.values.has(k)) family.values.set(k, 0);
  }

  inc(name: string, labels?: Labels, by = 1): void {
    const family = this.#family(name, 'counter', name);
    const k = key(labels);
    family.values.set(k, (family.values.get(k) ?? 0) + by);
  }

  get(name: string, labels?: Labels): number {
    return this.#families.get(name)?.values.get(key(labels)) ?? 0;
  }

  /** A gauge read at render time. */
  gauge(name: string, help: string, collect: () => number | Array<[Labels | undefined, number]>): void {
    const family = this.#family(name, 'gauge', help);
    family.collect = () => {
      const v = collect();
      return typeof v === 'number' ? [[undefined, v]] : v;
    };
  }

  render(): string {
    const lines: string[] = [];
    for (const [name, family] of this.#families) {
      lines.push(`# HELP ${name} ${family.help}`, `# TYPE ${name} ${family.kind}`);
      if (family.collect) {
        for (const [labels, v] of family.collect()) lines.push(`${name}${key(labels)} ${v}`);
      } else {
        for (const [k, v] of family.values) lines.push(`${name}${k} ${v}`);
      }
    }
    return lines.join('\n') + '\n';
  }
}
