// The pure parts: what an instance knows (its own clock only) and where it stands in the log.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";

import { LogCursor } from "../dist/log-cursor.js";
import { TagTimes } from "../dist/tag-times.js";
import { readableTags } from "../dist/table.js";

test("nothing is trusted before the first read; then a render is stale iff it began by a learn", () => {
  const times = new TagTimes();
  assert.equal(times.isStale([], 1e15), true, "before the first read");
  times.flush(100);
  assert.equal(times.isStale(["product:p1"], 100), true, "began before the first read");
  assert.equal(times.isStale(["product:p1"], 101), false);
  times.learn(["product:p1"], 500);
  times.learn(["product:p1"], 300);
  assert.equal(times.isStale(["product:p1"], 500), true);
  assert.equal(times.isStale(["product:p1", "store:s1:products"], 501), false);
  assert.equal(times.isStale(["product:p2"], 101), false, "another tag");
  assert.equal(times.expiration(["product:p1", "product:p2"]), 500);
  assert.equal(times.expiration(["product:p2"]), 100);
});

/**
 * Bounded memory never serves a page the unbounded one would call stale: whatever tags are
 * learned (random ones no page carries included), a bounded TagTimes calls stale at least
 * every (tags, render start) the unbounded one does, and stays within its limit.
 */
test("a bounded memory forgets tags only by calling more entries stale", () => {
  const tag = fc.constantFrom("product:p1", "product:p2", "store:s:products", "inventory:p1", "x:1", "x:2");
  const learns = fc.array(fc.tuple(fc.array(tag, { maxLength: 3 }), fc.nat(1000)), { maxLength: 40 });
  const asks = fc.array(fc.tuple(fc.array(tag, { maxLength: 3 }), fc.nat(1200)), { maxLength: 20 });
  fc.assert(
    fc.property(learns, asks, fc.integer({ min: 1, max: 4 }), (learned, asked, limit) => {
      const [bounded, unbounded] = [new TagTimes(limit), new TagTimes()];
      let now = 0;
      for (const t of [bounded, unbounded]) t.flush(0);
      for (const [tags, step] of learned) {
        now += step;
        for (const t of [bounded, unbounded]) t.learn(tags, now);
        assert.ok(bounded.size <= limit);
      }
      for (const [tags, startedAt] of asked) {
        if (unbounded.isStale(tags, startedAt)) assert.ok(bounded.isStale(tags, startedAt), `${tags} at ${startedAt}`);
      }
    }),
  );
});

/**
 * A model of writers and one reader: positions are taken in order, items land in any order
 * or never (a writer that died), the reader reads whatever has landed up to the counter and
 * voids what stays empty; a writer whose position was voided takes a new one. Every item
 * that lands must be applied exactly once, and every position ends applied or voided.
 */
test("the cursor applies every landed item once, whatever order and delay, and voids only gaps", () => {
  const plan = fc.array(fc.record({ delay: fc.nat(12), dies: fc.boolean() }), { maxLength: 30 });
  fc.assert(
    fc.property(plan, fc.integer({ min: 1, max: 6 }), (writers, voidAfter) => {
      const landed = new Map<number, number>(); // position -> writer
      const voided = new Set<number>();
      let last = 0;
      const pending = writers.map((w, id) => ({ ...w, id, position: ++last, tries: 0, done: false }));
      const cursor = new LogCursor(1);
      const applied: string[] = [];
      for (let now = 0; now < 200; now++) {
        for (const w of pending.filter((w) => !w.done && !w.dies && now >= w.delay)) {
          if (voided.has(w.position)) w.position = ++last;
          else (landed.set(w.position, w.id), (w.done = true));
        }
        const read = [...landed.keys()].filter((p) => p >= cursor.next && p <= last);
        const { fresh, toVoid } = cursor.take(read.map((position) => ({ position, tags: [String(landed.get(position))] })), last, now, voidAfter);
        applied.push(...fresh.flatMap((e) => e.tags));
        // As the sync does: a void is put only where nothing landed; either way it is taken.
        for (const p of toVoid) if (!landed.has(p)) voided.add(p);
        const after = toVoid.map((p) => ({ position: p, tags: landed.has(p) ? [String(landed.get(p))] : [] }));
        applied.push(...cursor.take(after, last, now, voidAfter).fresh.flatMap((e) => e.tags));
      }
      const written = pending.filter((w) => !w.dies).map((w) => String(w.id)).sort();
      assert.deepEqual(applied.sort(), written);
      assert.equal(cursor.next, last + 1, "every position applied or voided");
    }),
  );
});

test("an instance takes only what catalog-sync's writers could have written", () => {
  assert.deepEqual(readableTags(["product:p1", "store:s1:products"]), { tags: ["product:p1", "store:s1:products"] });
  const flood = readableTags(Array.from({ length: 101 }, (_, i) => `product:p${i}`));
  assert.deepEqual(flood.tags, []);
  assert.match(flood.refused ?? "", /101 tags/);
  const odd = readableTags(["product:p1", "", "a b", "x".repeat(257), "product:\u0000", "x".repeat(256)]);
  assert.deepEqual(odd.tags, ["product:p1", "x".repeat(256)]);
  assert.match(odd.refused ?? "", /4 tags/);
});
