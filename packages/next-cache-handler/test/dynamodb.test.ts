// The handlers against a real DynamoDB: DynamoDB Local, either the one
// tests/tests/integration/cache_handler.rs runs (with a tag table the tag-revalidator wrote to,
// named in RUST_WRITTEN as storefront:tag) or, when `npm test` runs alone, one of its own
// (test/dynamodb-local.ts).
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type AddressInfo } from "node:net";

import { DynamoDBClient, PutItemCommand, UpdateItemCommand } from "@aws-sdk/client-dynamodb";

import CatalogCacheHandler from "../dist/incremental.js";
import { createUseCacheHandler } from "../dist/use-cache.js";
import { TagSync, type SyncOptions } from "../dist/sync.js";
import { TagTable, logPk, logSk, seqPk, type WriteHooks } from "../dist/table.js";
import { localClient, tagTableUnderTest } from "./dynamodb-local.ts";

const { endpoint, tableName, stop } = await tagTableUnderTest();
after(stop);

const client = (url = endpoint) => localClient(url);
let storefronts = 0;
const fresh = () => `sf-${process.pid}-${storefronts++}`;
type Line = Record<string, unknown>;
const table = (storefront: string, url?: string) => new TagTable(client(url), tableName, storefront);
const quiet: Line[] = [];
const sync = (t: TagTable, options: SyncOptions = {}) =>
  new TagSync(t, { pollMs: 60_000, emit: (l) => quiet.push(l), ...options });

/** A clock the test moves by hand. */
function manualClock(start = 1_000_000) {
  const clock = { t: start, now: () => clock.t };
  return clock;
}

/** A writer that stops after taking its first position until `release` is called. */
function slowWriter(storefront: string) {
  let release = () => {};
  const gate = new Promise<void>((r) => (release = r));
  let first = true;
  const hooks: WriteHooks = {
    afterReserve: async () => {
      if (first) (first = false), await gate;
    },
  };
  return { hooks, release: () => release(), table: table(storefront) };
}

test("concurrent writers each get a position of their own, and the log keeps every revalidation", async () => {
  const storefront = fresh();
  const [a, b] = [table(storefront), table(storefront)];
  await Promise.all([a.revalidate(["product:p1"], 2000), b.revalidate(["product:p1"], 1000)]);
  await a.revalidate(["product:p1"], 1500);
  const log = await a.readLog(1, await a.last());
  assert.deepEqual(log.map((l) => l.position), [1, 2, 3]);
  assert.deepEqual(log.map((l) => l.at).sort(), [1000, 1500, 2000]);
});

for (const [late, voidAfterMs] of [[12_000, 3000], [60_000, 120_000]]) {
  test(`a log item landing ${late / 1000} s late is learned at the first poll after it lands (void after ${voidAfterMs} ms)`, async () => {
    const storefront = fresh();
    const clock = manualClock();
    const reader = sync(table(storefront), { now: clock.now, voidAfterMs });
    await reader.start();
    const slow = slowWriter(storefront);
    const writing = slow.table.revalidate(["product:late"], Date.now(), slow.hooks);
    await waitFor(async () => (await table(storefront).last()) === 1);
    await table(storefront).revalidate(["product:on-time"], Date.now());

    await reader.refresh();
    assert.ok(reader.times.expiration(["product:on-time"]) > 0, "a later item is not held up by the gap");
    clock.t += late;
    await reader.refresh(); // waits on, or voids, the gap
    slow.release();
    await writing;
    assert.equal(reader.times.isStale(["product:late"], clock.t - 1), false, "not learned before it landed");
    clock.t += 1;
    await reader.refresh();
    assert.equal(reader.times.isStale(["product:late"], clock.t - 1), true, "learned at the first poll after landing");
    assert.equal(reader.stats.voided, late > voidAfterMs ? 1 : 0);
    assert.equal(reader.stats.behind, 0);
    reader.stop();
  });
}

for (const skew of [1500, -1500]) {
  test(`a writer whose clock is ${skew} ms off: no page rendered before the write is served after the instance learns of it`, async () => {
    const storefront = fresh();
    const reader = sync(table(storefront));
    await reader.start();
    CatalogCacheHandler.sync = () => reader;
    const pages = new CatalogCacheHandler({});
    const useCache = createUseCacheHandler(() => reader);
    const ctx = { kind: "FETCH", tags: ["product:p1"] };

    assert.equal(await pages.get("before", ctx), null); // the render begins
    await useCache.set("before", Promise.resolve(entry(["product:p1"], reader.now())));
    await table(storefront).revalidate(["product:p1"], Date.now() + skew);
    await pages.set("before", fetched("price 1000"), { fetchCache: true, tags: ["product:p1"] });
    await reader.refresh();
    assert.equal(await pages.get("before", ctx), null, "a page rendered before the write");
    assert.equal(await useCache.get("before", []), undefined);

    assert.equal(await pages.get("after", ctx), null);
    await pages.set("after", fetched("price 1200"), { fetchCache: true, tags: ["product:p1"] });
    await useCache.set("after", Promise.resolve(entry(["product:p1"], reader.now())));
    assert.ok(await pages.get("after", ctx), "a page rendered after the instance learned is cached");
    assert.ok(await useCache.get("after", []));
    reader.stop();
  });
}

test("an instance reads only the counter at rest, and the new positions when it moved", async () => {
  const storefront = fresh();
  const writer = table(storefront);
  await writer.revalidate(Array.from({ length: 300 }, (_, i) => `product:old-${i}`), Date.now());
  const reader = sync(table(storefront));
  await reader.start();
  assert.equal(reader.times.size, 0, "nothing before the start is read: nothing cached predates it");
  let requests = reader.table.requests;
  await reader.refresh();
  assert.equal(reader.table.requests - requests, 1, "one GetItem of the counter");
  await writer.revalidate(["product:new"], Date.now());
  requests = reader.table.requests;
  await reader.refresh();
  assert.equal(reader.table.requests - requests, 2, "the counter and one Query");
  assert.equal(reader.stats.tagsApplied, 1);
  assert.equal(reader.stats.loads, 1);
  reader.stop();
});

test("an instance serves nothing rendered before its first read of the table", async () => {
  const storefront = fresh();
  const restarted = sync(table(storefront));
  const useCache = createUseCacheHandler(() => restarted);
  await useCache.set("u1", Promise.resolve(entry(["product:p1"], restarted.now())));
  await new Promise((r) => setTimeout(r, 5));
  await restarted.start();
  assert.equal(await useCache.get("u1", []), undefined);
  await useCache.set("u2", Promise.resolve(entry(["product:p1"], restarted.now())));
  assert.ok(await useCache.get("u2", []));
  restarted.stop();
});

test("revalidateTag inside the storefront reaches the other instances", async () => {
  const storefront = fresh();
  const [a, b] = [sync(table(storefront)), sync(table(storefront))];
  await Promise.all([a.start(), b.start()]);
  CatalogCacheHandler.sync = () => a;
  await new CatalogCacheHandler({}).revalidateTag(["store:s1:products"]);
  const useCache = createUseCacheHandler(() => b);
  await useCache.updateTags(["product:p9"]);
  await Promise.all([a.refresh(), b.refresh()]);
  assert.ok(b.times.size === 2 && a.times.size === 2, `${a.times.size} ${b.times.size}`);
  a.stop();
  b.stop();
});

test("a dead endpoint: pages keep being served, and the failure is logged and counted", async () => {
  const dead = await closedPort();
  const lines: Line[] = [];
  const live = table(fresh());
  const s = new TagSync(live, { pollMs: 60_000, metricsMs: 50, emit: (line) => lines.push(line) });
  await s.start();
  // DynamoDB becomes unreachable: the table's client (private) swapped for a dead one.
  (live as unknown as { client: DynamoDBClient }).client = client(`http://127.0.0.1:${dead}`);
  CatalogCacheHandler.sync = () => s;
  const handler = new CatalogCacheHandler({});
  await handler.set("dead-1", fetched("x"), { fetchCache: true, tags: ["product:p1"] });
  await s.refresh();
  assert.ok(await handler.get("dead-1", { kind: "FETCH", tags: ["product:p1"] }), "served from memory");
  await handler.revalidateTag("product:p1");
  assert.equal(await handler.get("dead-1", { kind: "FETCH", tags: ["product:p1"] }), null, "this instance still knows");
  await new Promise((r) => setTimeout(r, 120));
  s.stop();
  assert.ok(s.stats.failures >= 2, JSON.stringify(s.stats));
  assert.ok(lines.some((l) => l.level === "WARN" && /tag table read failed/.test(String(l.message))));
  assert.ok(lines.some((l) => l.level === "ERROR" && /revalidateTag could not write/.test(String(l.message))));
  const metric = lines.find((l) => l._aws) as Record<string, number> | undefined;
  assert.ok(metric && metric.TagSyncFailures >= 1 && metric.TagSyncStaleness >= 0 && metric.TagSyncBehind === 0, JSON.stringify(metric));
});

const rustWritten = process.env.RUST_WRITTEN;
test("the tag-revalidator's writes are read here (same keys in Rust and TypeScript)", {
  skip: !rustWritten && "run by tests/tests/integration/cache_handler.rs, which sets RUST_WRITTEN",
}, async () => {
  const written = rustWritten ?? "";
  const [storefront, ...rest] = written.split(":");
  const tag = rest.join(":");
  const t = table(storefront);
  const logged = await t.readLog(1, await t.last());
  assert.ok(logged.some((l) => l.tags.includes(tag)), "the log has it");
});

test("a log item of 1,000 tags (not of catalog-sync's making) is skipped with a warning, not learned", async () => {
  const storefront = fresh();
  const lines: Line[] = [];
  const reader = sync(table(storefront), { emit: (l) => lines.push(l) });
  await reader.start();
  const raw = client();
  const added = await raw.send(new UpdateItemCommand({
    TableName: tableName, Key: { pk: { S: seqPk(storefront) }, sk: { S: "seq" } },
    UpdateExpression: "ADD #last :one", ExpressionAttributeNames: { "#last": "last" },
    ExpressionAttributeValues: { ":one": { N: "1" } }, ReturnValues: "UPDATED_NEW",
  }));
  const position = Number(added.Attributes?.last?.N);
  const flood = Array.from({ length: 1000 }, (_, i) => `product:flood-${i}`);
  await raw.send(new PutItemCommand({
    TableName: tableName,
    Item: { pk: { S: logPk(storefront, position) }, sk: { S: logSk(position) }, tags: { SS: flood } },
  }));
  await table(storefront).revalidate(["product:after"], Date.now());
  await reader.refresh();
  assert.equal(reader.times.size, 1, "only the tag after it");
  assert.equal(reader.stats.behind, 0, "the instance moved past it");
  assert.ok(lines.some((l) => l.level === "WARN" && l.position === position && /1000 tags/.test(String(l.reason))));
  reader.stop();
});

const fetched = (body: string) => ({ kind: "FETCH", data: { body }, tags: ["product:p1"], revalidate: 3600 });

async function waitFor(check: () => Promise<boolean>) {
  for (let i = 0; i < 200; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error("condition not met in 2 s");
}

function entry(tags: string[], timestamp: number) {
  return {
    value: new ReadableStream({ start: (c) => (c.enqueue(new Uint8Array([1, 2, 3])), c.close()) }),
    tags,
    stale: 300,
    timestamp,
    expire: 3600,
    revalidate: 900,
  };
}

/** A port nothing listens on. */
function closedPort() {
  return new Promise<number>((resolve) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
