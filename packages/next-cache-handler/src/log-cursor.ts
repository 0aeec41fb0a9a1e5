/**
 * Where one instance stands in its storefront's log. Pure: the sync gives it what it read,
 * it answers which entries are new here and which positions to give up on.
 *
 * Positions are handed out by the counter before their items land, so a read can find a gap:
 * a writer between taking its position and putting its item, or one that died there. Items
 * past a gap are applied at once (learning early is safe); the gap itself is only waited on,
 * and once it has stayed empty for `voidAfterMs` the sync voids it (a conditional put that a
 * late writer's put cannot also win: the writer then takes a new position, which a later
 * read finds). So no item is ever skipped, whatever the delay, and the wait costs reads only.
 */
import type { LogEntry } from "./table.js";

export interface Taken {
  /** Entries this instance has not applied before, in position order. */
  fresh: LogEntry[];
  /** Empty positions waited on for `voidAfterMs` or more. */
  toVoid: number[];
}

export class LogCursor {
  /** Applied positions past `next` (a gap lies between). */
  private readonly ahead = new Set<number>();
  /** When each empty position at or past `next` was first found empty. */
  private readonly emptySince = new Map<number, number>();

  /** @param next the first position not yet applied: every earlier one has been. */
  constructor(public next: number) {}

  /** Positions from `next` to `last` not applied yet. */
  behind(last: number): number {
    return Math.max(0, last - this.next + 1 - this.ahead.size);
  }

  /**
   * Takes `read`, the entries found at positions `next` to `last` (`now`: when the read
   * answered, this instance's clock), and moves `next` past every applied position.
   */
  take(read: LogEntry[], last: number, now: number, voidAfterMs: number): Taken {
    const fresh: LogEntry[] = [];
    for (const entry of [...read].sort((a, b) => a.position - b.position)) {
      if (entry.position < this.next || this.ahead.has(entry.position)) continue;
      fresh.push(entry);
      this.ahead.add(entry.position);
    }
    while (this.ahead.delete(this.next)) {
      this.emptySince.delete(this.next);
      this.next++;
    }
    const toVoid: number[] = [];
    for (const position of this.emptySince.keys()) {
      if (position < this.next || this.ahead.has(position)) this.emptySince.delete(position);
    }
    for (let position = this.next; position <= last; position++) {
      if (this.ahead.has(position)) continue;
      const since = this.emptySince.get(position) ?? now;
      this.emptySince.set(position, since);
      if (now - since >= voidAfterMs) toVoid.push(position);
    }
    return { fresh, toVoid };
  }
}
