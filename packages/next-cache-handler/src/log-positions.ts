/**
 * What one instance knows of its storefront's log, by position only: for each tag the latest
 * position that revalidated it, and `floor`, the lowest position from which on every position
 * has been read. Pure: the sync fills it, the OpenNext cache (`opennext.ts`) asks it.
 *
 * For caches shared by many instances (OpenNext's S3 cache), where an entry is judged by an
 * instance other than the one that rendered it, so no clock can be compared. Each entry
 * carries a stamp instead: a log position read before its render began. A writer writes the
 * data change, then takes a position; so a change the render may have missed was logged past
 * the stamp, and the entry is stale exactly when one of its tags was revalidated past it.
 */
import { LatestByTag } from "./latest-by-tag.js";
import type { LogEntry } from "./table.js";

export class LogPositions {
  /** Tag -> the latest position that revalidated it. */
  private readonly latest: LatestByTag;

  /**
   * @param floor every position from here on is read as the log is followed; earlier ones
   *   only when an entry's stamp asks for them (`readBack`).
   * @param limit the tags remembered; past it the earliest learned are forgotten, which only
   *   makes more entries stale.
   */
  constructor(
    public floor: number,
    limit = 100_000,
  ) {
    this.latest = new LatestByTag(limit);
  }

  /** Records that `tags` were revalidated at `position`. */
  learn(tags: Iterable<string>, position: number): void {
    this.latest.learn(tags, position);
  }

  /** Forgets where the log was followed from: positions before `floor` must be read back. */
  restart(floor: number): void {
    this.floor = floor;
  }

  /** The positions to read before an entry stamped `stamp` can be judged (none: `undefined`). */
  unread(stamp: number): { from: number; to: number } | undefined {
    return stamp + 1 < this.floor ? { from: stamp + 1, to: this.floor - 1 } : undefined;
  }

  /**
   * Takes what a read of positions `from` to the floor found and lowers the floor to the
   * lowest position above which nothing is missing. A missing position (a writer still
   * between taking it and putting its item, or an item past its TTL) is never waited on here:
   * entries stamped below it stay stale, and re-render.
   */
  readBack(read: LogEntry[], from: number): void {
    const found = new Set<number>();
    for (const entry of read) {
      found.add(entry.position);
      this.learn(entry.tags, entry.position);
    }
    let floor = this.floor;
    while (floor > from && found.has(floor - 1)) floor--;
    this.floor = floor;
  }

  /** Whether an entry stamped `stamp` under `tags` is stale, on what has been read. */
  isStale(tags: Iterable<string>, stamp: number): boolean {
    // A forgotten tag's position counts for every tag: `max` is at least `forgotten`.
    return stamp + 1 < this.floor || this.latest.max(tags) > stamp;
  }

  get size(): number {
    return this.latest.size;
  }
}
