// One concern: how often a node's DRA pool may be written. At most once per window per node;
// the first change after a quiet window is written at once (leading edge), and whatever arrives
// while a window is open waits for its end and goes out in one write. A burst of reservations
// becoming Ready on one node thus costs one write per window, not one per reservation, and the
// API server and the scheduler's slice informer see a few updates instead of hundreds.

/** Default window: a burst's tail shows up within two seconds (slices are not on the path to Ready; an idle node publishes at once). */
export const DEFAULT_PUBLISH_WINDOW_MS = 2_000;

export class PublishWindow {
  private readonly openedAt = new Map<string, number>();

  constructor(
    readonly windowMs = DEFAULT_PUBLISH_WINDOW_MS,
    private readonly now: () => number = () => Date.now(),
  ) {}

  /** How long `node` must wait before its pool may be written: 0 when its last write is a window ago. */
  wait(node: string): number {
    const at = this.openedAt.get(node);
    if (at === undefined) return 0;
    const left = at + this.windowMs - this.now();
    if (left > 0) return left;
    this.openedAt.delete(node); // quiet again: nothing to remember
    return 0;
  }

  /** Records that `node`'s pool is being written now (the window starts). */
  open(node: string): void {
    this.openedAt.set(node, this.now());
  }
}
