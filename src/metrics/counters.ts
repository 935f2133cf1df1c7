// Prometheus counters whose values live elsewhere (a component's own stats object): at each
// scrape the counter is set to the component's running total, so the exposition says
// `# TYPE … counter` while the component keeps a plain number.
import { Counter, type Registry } from 'prom-client';

export interface MirroredCounterSpec<L extends string> {
  name: string;
  help: string;
  labelNames: readonly L[];
  /** The current totals, one per label set. */
  read(): Array<[Partial<Record<L, string>>, number]>;
}

export function mirroredCounter<L extends string>(registry: Registry, spec: MirroredCounterSpec<L>): Counter<L> {
  return new Counter<L>({
    name: spec.name,
    help: spec.help,
    labelNames: spec.labelNames,
    registers: [registry],
    collect() {
      this.reset();
      // Label sets still at 0 are shown too, so rate() has a starting point.
      for (const [labels, value] of spec.read()) this.inc(labels, value);
    },
  });
}
