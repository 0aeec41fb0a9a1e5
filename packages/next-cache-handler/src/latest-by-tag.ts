/**
 * The latest value (a time or a log position) learned for each tag, in bounded memory: past
 * `limit` tags the earliest learned are forgotten, and `forgotten` keeps the highest value
 * forgotten, so that a caller can count everything at or below it as possibly revalidated.
 * Tags no page carries then cannot grow an instance's memory without end.
 */
export class LatestByTag {
  /** Tag -> latest value, in the order learned (a tag learned again moves to the end). */
  private readonly latest = new Map<string, number>();
  /** The highest value forgotten to keep the map bounded (0: none). */
  private forgotten = 0;

  constructor(private readonly limit: number) {}

  /** Records `value` for each of `tags` unless a later one is known. */
  learn(tags: Iterable<string>, value: number): void {
    for (const tag of tags) {
      const known = this.latest.get(tag);
      if (known !== undefined && known >= value) continue;
      this.latest.delete(tag);
      this.latest.set(tag, value);
    }
    for (const [tag, when] of this.latest) {
      if (this.latest.size <= this.limit) break;
      this.latest.delete(tag);
      this.forgotten = Math.max(this.forgotten, when);
    }
  }

  /** The latest value of any of `tags`, at least `forgotten` (0 when none is known). */
  max(tags: Iterable<string>): number {
    let latest = this.forgotten;
    for (const tag of tags) latest = Math.max(latest, this.latest.get(tag) ?? 0);
    return latest;
  }

  get size(): number {
    return this.latest.size;
  }
}
