import type { Registry } from 'prom-client';

/*
 * Counters and histograms for the request path. prom-client hashes the label object on every
 * `inc`/`observe`, bound children included; here a label combination is resolved once into a
 * cell, and counting is a property increment or one bucket search over a small typed array.
 * Both register themselves in a prom-client registry like any other metric, so /metrics renders
 * them with the rest, in the same exposition format.
 */

type Labels = Record<string, string>;

interface MetricValue {
  readonly value: number;
  readonly labels: Labels;
  readonly metricName?: string;
}

interface CollectedMetric {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'histogram';
  readonly values: MetricValue[];
  readonly aggregator: 'sum';
}

interface Options {
  readonly name: string;
  readonly help: string;
  readonly labelNames?: readonly string[];
  readonly registers: readonly Registry[];
}

/** Cells by label values, resolved through one Map per label: no key strings are built. */
class CellTree<Cell> {
  readonly #root = new Map<string, unknown>();
  readonly #depth: number;
  readonly cells: { readonly labels: Labels; readonly cell: Cell }[] = [];

  constructor(depth: number) {
    this.#depth = depth;
  }

  find(values: readonly string[], labelNames: readonly string[], create: () => Cell): Cell {
    let level = this.#root;
    for (let i = 0; i < this.#depth - 1; i++) {
      let next = level.get(values[i]!) as Map<string, unknown> | undefined;
      if (next === undefined) level.set(values[i]!, (next = new Map()));
      level = next;
    }
    const last = values[this.#depth - 1]!;
    let cell = level.get(last) as Cell | undefined;
    if (cell === undefined) {
      cell = create();
      level.set(last, cell);
      const labels: Labels = {};
      labelNames.forEach((name, i) => (labels[name] = values[i]!));
      this.cells.push({ labels, cell });
    }
    return cell;
  }
}

export interface CounterCell {
  value: number;
}

export class HotCounter {
  readonly name: string;
  readonly help: string;
  readonly #labelNames: readonly string[];
  readonly #tree: CellTree<CounterCell>;
  readonly #single: CounterCell = { value: 0 };

  constructor(options: Options) {
    this.name = options.name;
    this.help = options.help;
    this.#labelNames = options.labelNames ?? [];
    this.#tree = new CellTree(this.#labelNames.length);
    for (const registry of options.registers) registry.registerMetric(this as never);
  }

  /** The cell for these label values (in labelNames order); keep it, then `cell.value++`. */
  cell(...values: string[]): CounterCell {
    if (this.#labelNames.length === 0) return this.#single;
    return this.#tree.find(values, this.#labelNames, () => ({ value: 0 }));
  }

  get(): CollectedMetric {
    const values = this.#labelNames.length === 0
      ? [{ value: this.#single.value, labels: {} }]
      : this.#tree.cells.map(({ labels, cell }) => ({ value: cell.value, labels }));
    return { name: this.name, help: this.help, type: 'counter', values, aggregator: 'sum' };
  }
}

export interface HistogramCell {
  /** Per-bucket (non-cumulative) counts; the last slot is +Inf. */
  readonly counts: Float64Array;
  sum: number;
}

export class HotHistogram {
  readonly name: string;
  readonly help: string;
  readonly #labelNames: readonly string[];
  readonly #bounds: Float64Array;
  readonly #tree: CellTree<HistogramCell>;
  readonly #single: HistogramCell;

  constructor(options: Options & { readonly buckets: readonly number[] }) {
    this.name = options.name;
    this.help = options.help;
    this.#labelNames = options.labelNames ?? [];
    this.#bounds = Float64Array.from([...options.buckets].sort((a, b) => a - b));
    this.#tree = new CellTree(this.#labelNames.length);
    this.#single = this.#newCell();
    for (const registry of options.registers) registry.registerMetric(this as never);
  }

  cell(...values: string[]): HistogramCell {
    if (this.#labelNames.length === 0) return this.#single;
    return this.#tree.find(values, this.#labelNames, () => this.#newCell());
  }

  observe(cell: HistogramCell, value: number): void {
    const bounds = this.#bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    cell.counts[i]!++;
    cell.sum += value;
  }

  #newCell(): HistogramCell {
    return { counts: new Float64Array(this.#bounds.length + 1), sum: 0 };
  }

  get(): CollectedMetric {
    const cells = this.#labelNames.length === 0 ? [{ labels: {}, cell: this.#single }] : this.#tree.cells;
    const values: MetricValue[] = [];
    for (const { labels, cell } of cells) {
      let cumulative = 0;
      for (let i = 0; i <= this.#bounds.length; i++) {
        cumulative += cell.counts[i]!;
        const le = i < this.#bounds.length ? String(this.#bounds[i]) : '+Inf';
        values.push({ metricName: `${this.name}_bucket`, labels: { ...labels, le }, value: cumulative });
      }
      values.push({ metricName: `${this.name}_sum`, labels, value: cell.sum });
      values.push({ metricName: `${this.name}_count`, labels, value: cumulative });
    }
    return { name: this.name, help: this.help, type: 'histogram', values, aggregator: 'sum' };
  }
}
