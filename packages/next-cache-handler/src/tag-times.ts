/**
 * What one instance knows of revalidations, on its own clock only: for each tag, when this
 * instance learned of its latest revalidation, and a floor before which every entry counts as
 * stale (set when the instance first read the table, and again when it had to skip the log).
 * Pure: the sync fills it, the handlers ask it.
 *
 * Why no writer's time: an entry is stale exactly when its render began before the data
 * change was written. The change is written before its log item, and the instance reads the
 * item before it notes the time it learned of it; so a render that began after that time
 * read the changed data, and one that began at or before it may not have. Both times are
 * this machine's, so no clock is compared with another's.
 */
import { LatestByTag } from "./latest-by-tag.js";

export class TagTimes {
  /** Tag -> when learned (this instance's clock). */
  private readonly learned: LatestByTag;
  private floor: number | undefined;

  /**
   * `limit` bounds the tags remembered: past it the earliest learned are forgotten and every
   * entry rendered by the latest forgotten time counts as stale (re-renders, never a stale
   * page), so tags no page carries cannot grow an instance's memory without end.
   */
  constructor(limit = 100_000) {
    this.learned = new LatestByTag(limit);
  }

  /** Records that `tags` were revalidated, learned at `at` (this instance's clock). */
  learn(tags: Iterable<string>, at: number): void {
    this.learned.learn(tags, at);
  }
  /** Treats every entry whose render began at or before `at` as stale. */
  flush(at: number): void {
    if (this.floor === undefined || this.floor < at) this.floor = at;
  }

  /** Whether the table has been read at all: until then, nothing cached is trusted. */
  get settled(): boolean {
    return this.floor !== undefined;
  }

  /**
   * The time an entry's render must have begun after to be fresh: the floor or the latest
   * learned revalidation of any of `tags`; `Infinity` before the first read.
   */
  expiration(tags: Iterable<string>): number {
    if (this.floor === undefined) return Number.POSITIVE_INFINITY;
    return Math.max(this.floor, this.learned.max(tags));
  }

  /**
   * The latest time any of `tags` was learned (0: none), without the floor: for a caller that
   * judges entries rendered before this instance began (`opennext.ts`, `getLastRevalidated`).
   */
  latestLearned(tags: Iterable<string>): number {
    return this.learned.max(tags);
  }

  /** Whether an entry whose render began at `startedAt` under `tags` is stale. */
  isStale(tags: Iterable<string>, startedAt: number): boolean {
    return startedAt <= this.expiration(tags);
  }

  get size(): number {
    return this.learned.size;
  }
}
