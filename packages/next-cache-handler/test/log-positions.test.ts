// The pure part of the OpenNext cache: judging an entry by its stamp, against a model that
// knows the whole log.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";

import { LogPositions } from "../dist/log-positions.js";
import type { LogEntry } from "../dist/table.js";

const tag = fc.constantFrom("product:p1", "product:p2", "store:s:products", "inventory:p1", "x:1");
/** A log: position i + 1 holds the i-th tag list, or is missing (`null`: a writer not landed yet). */
const log = fc.array(fc.option(fc.array(tag, { maxLength: 3 }), { freq: 6 }), { minLength: 1, maxLength: 40 });

/** What the whole log says: some tag of `tags` revalidated past `stamp`, or a position past it missing. */
function modelStale(entries: (string[] | null)[], tags: string[], stamp: number, missingCounts: boolean) {
  return entries.some(
    (held, i) => i + 1 > stamp && (held === null ? missingCounts : held.some((t) => tags.includes(t))),
  );
}

const logEntries = (entries: (string[] | null)[], from: number, to: number): LogEntry[] =>
  entries.flatMap((tags, i) => (tags && i + 1 >= from && i + 1 <= to ? [{ position: i + 1, tags }] : []));

test("an entry is stale iff a tag of its was revalidated past its stamp", () => {
  const positions = new LogPositions(1);
  positions.learn(["product:p1"], 5);
  positions.learn(["product:p1"], 3);
  assert.equal(positions.isStale(["product:p1"], 4), true);
  assert.equal(positions.isStale(["product:p1"], 5), false);
  assert.equal(positions.isStale(["product:p2", "store:s:products"], 0), false);
});

/**
 * An instance that began following the log at `start` and reads back what an entry's stamp
 * asks for: whatever the log, the start, the stamps and the memory bound, it never calls an
 * entry fresh that the whole log calls stale (a missing position counts as stale only when
 * read back: past the start, it is a write still in flight that no reader can know of yet).
 * Unbounded and with nothing missing, it agrees with the log exactly.
 */
test("read back and a bounded memory never call a stale entry fresh", () => {
  const asks = fc.array(fc.tuple(fc.array(tag, { maxLength: 3 }), fc.nat(45)), { minLength: 1, maxLength: 10 });
  fc.assert(
    fc.property(log, fc.nat(45), asks, fc.integer({ min: 1, max: 6 }), (entries, startAt, asked, limit) => {
      const last = entries.length;
      const start = Math.min(startAt, last) + 1;
      const [bounded, unbounded] = [new LogPositions(start, limit), new LogPositions(start)];
      for (const p of [bounded, unbounded]) {
        for (const e of logEntries(entries, start, last)) p.learn(e.tags, e.position);
      }
      for (const [tags, rawStamp] of asked) {
        const stamp = Math.min(rawStamp, last);
        for (const p of [bounded, unbounded]) {
          const unread = p.unread(stamp);
          if (unread) p.readBack(logEntries(entries, unread.from, unread.to), unread.from);
        }
        const readBackMissing = entries.some((held, i) => held === null && i + 1 > stamp && i + 1 < start);
        const stale = modelStale(entries, tags, stamp, false) || readBackMissing;
        if (stale) assert.equal(bounded.isStale(tags, stamp), true, JSON.stringify({ entries, start, tags, stamp }));
        assert.ok(bounded.size <= limit);
        if (!entries.includes(null)) assert.equal(unbounded.isStale(tags, stamp), stale);
      }
    }),
  );
});

test("a position missing from a read back keeps every entry stamped below it stale", () => {
  const positions = new LogPositions(11);
  positions.readBack([{ position: 9, tags: ["x:1"] }, { position: 10, tags: [] }], 4);
  assert.equal(positions.floor, 9, "position 8 is missing");
  assert.equal(positions.isStale(["product:p1"], 8), false);
  assert.equal(positions.isStale(["product:p1"], 7), true);
  assert.deepEqual(positions.unread(5), { from: 6, to: 8 });
});
