/**
 * The tag times one instance knows: for each tag, the latest time (ms since the epoch) it was
 * revalidated anywhere. Pure: the sync fills it, the handlers ask it.
 */
export class TagTimes {
  private readonly times = new Map<string, number>();

  /**
   * @param marginMs clock-skew margin: an entry stored up to this long after a revalidation
   *   (by this instance's clock) still counts as older than it, because the time came from
   *   another machine's clock.
   */
  constructor(readonly marginMs: number) {}

  /** Raises `tag` to `at` unless it already holds a later time; times never go backwards. */
  raise(tag: string, at: number): void {
    if (!Number.isFinite(at)) return;
    const known = this.times.get(tag);
    if (known === undefined || known < at) this.times.set(tag, at);
  }

  /** The latest revalidation of any of `tags`, or 0 if none was ever revalidated. */
  latest(tags: Iterable<string>): number {
    let latest = 0;
    for (const tag of tags) {
      const at = this.times.get(tag);
      if (at !== undefined && at > latest) latest = at;
    }
    return latest;
  }

  /**
   * Whether an entry stored at `storedAt` under `tags` is older than one of their
   * revalidations, margin included.
   */
  isStale(tags: Iterable<string>, storedAt: number): boolean {
    const latest = this.latest(tags);
    return latest > 0 && storedAt <= latest + this.marginMs;
  }

  /**
   * What `getExpiration` answers: the latest revalidation moved forward by the margin, so an
   * entry stored within the margin after it is treated as stale too; 0 for none.
   */
  expiration(tags: Iterable<string>): number {
    const latest = this.latest(tags);
    return latest > 0 ? latest + this.marginMs : 0;
  }

  get size(): number {
    return this.times.size;
  }
}
