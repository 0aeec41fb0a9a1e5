// The handlers against a real DynamoDB (DynamoDB Local in catalog-sync's tests). Needs
// DYNAMODB_ENDPOINT and CATALOG_TAG_TABLE (a table created from template.yaml's TagTable);
// tests/tests/cache_handler.rs provides both, and RUST_WRITTEN (storefront:tag) for the check
// that the tag-revalidator's writes are read here.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:net";

import { DynamoDBClient } from "@aws-sdk/client-dynamodb";

import CatalogCacheHandler from "../dist/incremental.js";
import { createUseCacheHandler } from "../dist/use-cache.js";
import { TagSync } from "../dist/sync.js";
import { LOG_BUCKET_MS, TagTable } from "../dist/table.js";

const endpoint = process.env.DYNAMODB_ENDPOINT;
const tableName = process.env.CATALOG_TAG_TABLE;
if (!endpoint || !tableName) {
  throw new Error("set DYNAMODB_ENDPOINT and CATALOG_TAG_TABLE (tests/tests/cache_handler.rs does)");
}

const client = (url = endpoint) =>
  new DynamoDBClient({
    endpoint: url,
    region: "us-east-1",
    credentials: { accessKeyId: "local", secretAccessKey: "local" },
    maxAttempts: 1,
    requestHandler: { connectionTimeout: 2000, requestTimeout: 3000 },
  });
let storefronts = 0;
const fresh = () => `sf-${process.pid}-${storefronts++}`;
const table = (storefront, url) => new TagTable(client(url), tableName, storefront);
const quiet = [];
const sync = (t, options = {}) => new TagSync(t, { pollMs: 60_000, emit: (l) => quiet.push(l), ...options });

test("a tag's time never moves backwards: retries and out-of-order writers", async () => {
  const storefront = fresh();
  const [a, b] = [table(storefront), table(storefront)];
  await Promise.all([a.revalidate(["product:p1"], 2000), b.revalidate(["product:p1"], 1000)]);
  await a.revalidate(["product:p1"], 1500);
  await b.revalidate(["product:p1"], 2000);
  const loaded = await a.loadAll();
  assert.deepEqual(loaded, [{ tag: "product:p1", at: 2000 }]);
  // The log keeps every revalidation, a retry of the same time once; readers take the maximum.
  const log = await a.readLog(0, 3000);
  assert.deepEqual(log.map((l) => l.at), [1000, 1500, 2000]);
});

test("after the full load, each poll reads only the log written since, across minutes", async () => {
  const storefront = fresh();
  const writer = table(storefront);
  const many = Array.from({ length: 300 }, (_, i) => `product:old-${i}`);
  const t0 = Date.now() - 60_000;
  await writer.revalidate(many, t0);
  const reader = sync(table(storefront));
  await reader.start();
  assert.equal(reader.times.size, 300);
  const applied = reader.stats.tagsApplied;
  const requests = reader.table.requests;
  // One write in the previous minute (late, inside the look-back), one now.
  const now = Date.now();
  const late = Math.floor(now / LOG_BUCKET_MS) * LOG_BUCKET_MS - 1;
  await writer.revalidate(["product:late"], Math.max(late, now - 5000));
  await writer.revalidate(["product:new"], now);
  await reader.refresh();
  assert.ok(reader.times.latest(["product:new"]) >= now);
  assert.ok(reader.times.latest(["product:late"]) > 0, "a write landing late, inside the look-back, is read");
  const read = reader.stats.tagsApplied - applied;
  assert.ok(read <= 2 + 300 / 100, `a poll read ${read} items, not the whole partition`);
  assert.ok(reader.table.requests - requests <= 2, "one Query per minute partition");
  assert.equal(reader.stats.loads, 1);
  assert.equal(reader.stats.polls, 1);
  reader.stop();
});

test("an instance started after a revalidation serves no entry older than the tag", async () => {
  const storefront = fresh();
  const before = sync(table(storefront));
  await before.start();
  CatalogCacheHandler.sync = () => before;
  const handler = new CatalogCacheHandler({});
  const fetched = { kind: "FETCH", data: { body: "price 1000" }, tags: ["product:p1"], revalidate: 3600 };
  await handler.set("k1", fetched, { fetchCache: true, tags: ["product:p1"] });
  assert.ok(await handler.get("k1", { kind: "FETCH", tags: ["product:p1"] }));
  const useCache = createUseCacheHandler(() => before);
  await useCache.set("u1", Promise.resolve(entry(["product:p1"])));
  assert.ok(await useCache.get("u1", []));

  // Another instance revalidates; this one has not polled yet. A restarted instance (a new
  // sync, as in a new process) loads the tag table before it answers anything.
  const other = sync(table(storefront));
  await other.revalidate(["product:p1"]);
  const restarted = sync(table(storefront));
  CatalogCacheHandler.sync = () => restarted;
  assert.equal(await new CatalogCacheHandler({}).get("k1", { kind: "FETCH", tags: ["product:p1"] }), null);
  const useCacheRestarted = createUseCacheHandler(() => restarted);
  await useCacheRestarted.set("u1", Promise.resolve(entry(["product:p1"], Date.now() - 60_000)));
  assert.equal(await useCacheRestarted.get("u1", []), undefined);
  assert.ok((await useCacheRestarted.getExpiration(["product:p1"])) >= other.times.latest(["product:p1"]));
  // The first instance learns it at its next poll.
  await before.refresh();
  CatalogCacheHandler.sync = () => before;
  assert.equal(await handler.get("k1", { kind: "FETCH", tags: ["product:p1"] }), null);
  assert.equal(await useCache.get("u1", []), undefined);
  for (const s of [before, other, restarted]) s.stop();
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
  assert.ok(b.times.latest(["store:s1:products"]) > 0);
  assert.ok(a.times.latest(["product:p9"]) > 0);
  a.stop();
  b.stop();
});

test("a dead endpoint: pages keep being served, and the failure is logged and counted", async () => {
  const dead = await closedPort();
  const lines = [];
  const s = new TagSync(table(fresh(), `http://127.0.0.1:${dead}`), {
    pollMs: 60_000,
    metricsMs: 50,
    emit: (line) => lines.push(line),
  });
  await s.start();
  CatalogCacheHandler.sync = () => s;
  const handler = new CatalogCacheHandler({});
  const fetched = { kind: "FETCH", data: { body: "x" }, tags: ["product:p1"], revalidate: 60 };
  await handler.set("dead-1", fetched, { fetchCache: true, tags: ["product:p1"] });
  assert.ok(await handler.get("dead-1", { kind: "FETCH", tags: ["product:p1"] }), "served from memory");
  await handler.revalidateTag("product:p1");
  assert.equal(await handler.get("dead-1", { kind: "FETCH", tags: ["product:p1"] }), null, "this instance still knows");
  await new Promise((r) => setTimeout(r, 120));
  s.stop();
  assert.ok(s.stats.failures >= 2, JSON.stringify(s.stats));
  assert.ok(lines.some((l) => l.level === "WARN" && /tag table read failed/.test(l.message)));
  assert.ok(lines.some((l) => l.level === "ERROR" && /revalidateTag could not write/.test(l.message)));
  const metric = lines.find((l) => l._aws);
  assert.ok(metric && metric.TagSyncFailures >= 1 && metric.TagSyncStaleness === -1, JSON.stringify(metric));
});

test("the tag-revalidator's writes are read here (same keys in Rust and TypeScript)", async () => {
  const written = process.env.RUST_WRITTEN;
  assert.ok(written, "RUST_WRITTEN=storefront:tag is set by tests/tests/cache_handler.rs");
  const [storefront, ...rest] = written.split(":");
  const tag = rest.join(":");
  const s = sync(table(storefront));
  await s.start();
  assert.ok(s.times.latest([tag]) > Date.now() - 600_000, "the full load has it");
  const logged = await s.table.readLog(Date.now() - 600_000, Date.now());
  assert.ok(logged.some((l) => l.tag === tag), "the log has it");
  s.stop();
});

function entry(tags, timestamp = Date.now()) {
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
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}
