// The OpenNext overrides against a real DynamoDB (test/dynamodb-local.ts): instances sharing
// one incremental cache (S3's part, here a map), each with its own sync, as Lambda instances
// of one storefront are; revalidations written by the tag-revalidator's protocol. Each read
// is made as OpenNext's cache adapter makes it (adapters/cache.js): the incremental cache's
// `get`, then the tag cache's `hasBeenRevalidated` with the entry's tags and `lastModified`.
import { after, test } from "node:test";
import assert from "node:assert/strict";

import { UpdateItemCommand } from "@aws-sdk/client-dynamodb";
import type { CacheEntryType, CacheValue, IncrementalCache } from "@opennextjs/aws/types/overrides";

import { catalogTagCache, withLogPositions, STAMP_FIELD } from "../dist/opennext.js";
import { TagSync } from "../dist/sync.js";
import { SEQ_SK, TagTable, seqPk, type WriteHooks } from "../dist/table.js";
import { localClient, tagTableUnderTest } from "./dynamodb-local.ts";

const { endpoint, tableName, stop } = await tagTableUnderTest();
after(stop);

const client = (url = endpoint) => localClient(url);
let storefronts = 0;
const fresh = () => `on-${process.pid}-${storefronts++}`;
const table = (storefront: string, url?: string) => new TagTable(client(url), tableName, storefront);

/** The shared incremental cache: what S3 holds, with S3's `lastModified` (its clock at `set`). */
function sharedCache(): IncrementalCache & { stored: Map<string, Record<string, unknown>> } {
  const stored = new Map<string, Record<string, unknown>>();
  const modified = new Map<string, number>();
  return {
    name: "memory",
    stored,
    async get<T extends CacheEntryType = "cache">(key: string, type?: T) {
      const id = `${type ?? "cache"}:${key}`;
      const value = stored.get(id) as CacheValue<T> | undefined;
      return value ? { value: structuredClone(value), lastModified: modified.get(id) } : null;
    },
    async set<T extends CacheEntryType = "cache">(key: string, value: CacheValue<T>, type?: T) {
      const id = `${type ?? "cache"}:${key}`;
      stored.set(id, structuredClone(value) as Record<string, unknown>);
      modified.set(id, Date.now());
    },
    async delete(key: string) {
      stored.delete(`cache:${key}`);
    },
  };
}

/** One Lambda instance of the storefront: its own sync, OpenNext's two overrides. */
function instance(storefront: string, shared: IncrementalCache, opts: { maxAgeMs?: number; url?: string } = {}) {
  const lines: Record<string, unknown>[] = [];
  const sync = new TagSync(table(storefront, opts.url), { emit: (l) => lines.push(l) });
  let scope = new Map<string, unknown>();
  const options = { sync: () => sync, maxAgeMs: opts.maxAgeMs ?? 0, requestScope: () => scope };
  const cache = withLogPositions(shared, options);
  const tags = catalogTagCache(options);
  return {
    sync,
    lines,
    cache,
    tags,
    /** Begins a request: the stamps of what it stores come from its first cache read. */
    request() {
      scope = new Map();
    },
    /**
     * A read as OpenNext's adapter makes it: the entry, unless the tag cache says one of
     * `entryTags` (a page's header, a fetch's tags from Next, a 'use cache' entry's own) was
     * revalidated since it was stored.
     */
    async read<T extends CacheEntryType>(key: string, type: T, entryTags: (value: CacheValue<T>) => string[]) {
      const found = await cache.get(key, type);
      if (!found?.value) return null;
      const list = entryTags(found.value);
      if (list.length > 0 && (await tags.hasBeenRevalidated(list, found.lastModified))) return null;
      return found.value;
    },
  };
}

const pageTags = (value: CacheValue<"cache">) =>
  String((value.meta?.headers as Record<string, unknown> | undefined)?.["x-next-cache-tags"] ?? "")
    .split(",")
    .filter(Boolean);

/** A page as OpenNext stores it: its tags in the `x-next-cache-tags` header. */
const page = (html: string, tags: string[]): CacheValue<"cache"> => ({
  type: "app",
  html,
  meta: { headers: { "x-next-cache-tags": tags.join(",") } },
});

/** One request that misses `key`, renders `html` and stores it (OpenNext's order). */
async function render(on: ReturnType<typeof instance>, key: string, html: string, tags: string[]) {
  on.request();
  assert.equal(await on.read(key, "cache", pageTags), null, `${key} should miss before rendering`);
  await on.cache.set(key, page(html, tags));
}

async function served(on: ReturnType<typeof instance>, key: string): Promise<string | undefined> {
  on.request();
  const found = await on.read(key, "cache", pageTags);
  return (found as { html?: string } | null)?.html;
}

test("a revalidation reaches every instance and every cold start; other pages stay cached", async () => {
  const storefront = fresh();
  const shared = sharedCache();
  const revalidator = table(storefront);
  await revalidator.revalidate(["product:p0"], Date.now());
  const a = instance(storefront, shared);
  await render(a, "/products/p1", "old price", ["product:p1", "store:s1:products"]);
  await render(a, "/stores/s2", "s2 list", ["store:s2:products"]);
  const b = instance(storefront, shared);
  assert.equal(await served(b, "/products/p1"), "old price", "another instance serves what a stored");

  await revalidator.revalidate(["product:p1", "store:s1:products"], Date.now());

  assert.equal(await served(a, "/products/p1"), undefined, "the rendering instance");
  assert.equal(await served(b, "/products/p1"), undefined, "a warm instance");
  assert.equal(await served(instance(storefront, shared), "/products/p1"), undefined, "a cold start");
  assert.equal(await served(instance(storefront, shared), "/stores/s2"), "s2 list", "another store's page");
  await render(b, "/products/p1", "new price", ["product:p1", "store:s1:products"]);
  assert.equal(await served(instance(storefront, shared), "/products/p1"), "new price");
  assert.equal(await served(a, "/products/p1"), "new price");
});

test("a render that began before a revalidation and was stored after it is stale, whatever lastModified says", async () => {
  const storefront = fresh();
  const shared = sharedCache();
  const a = instance(storefront, shared);
  a.request();
  assert.equal(await a.cache.get("/products/p1"), null);
  // The render reads the old data, the change and its revalidation land, then it is stored.
  await table(storefront).revalidate(["product:p1"], Date.now());
  await a.cache.set("/products/p1", page("old price", ["product:p1"]));

  const stored = shared.stored.get("cache:/products/p1") as Record<string, unknown>;
  assert.equal(typeof stored[STAMP_FIELD], "number", "the entry carries its stamp");
  assert.equal(await served(a, "/products/p1"), undefined);
  assert.equal(await served(instance(storefront, shared), "/products/p1"), undefined);
});

test("fetch and 'use cache' entries are judged by their own tags", async () => {
  const storefront = fresh();
  const shared = sharedCache();
  const a = instance(storefront, shared);
  const fetchTags = () => ["product:p1", "inventory:p1"];
  const useCacheTags = (value: CacheValue<"composable">) => value.tags;
  a.request();
  assert.equal(await a.read("fetch-key", "fetch", fetchTags), null);
  const fetched = { kind: "FETCH", data: { headers: {}, body: "{}", url: "/x" } };
  await a.cache.set("fetch-key", fetched as CacheValue<"fetch">, "fetch");
  const composed = { value: "v", tags: ["product:p2"], stale: 0, timestamp: 0, expire: 1e9, revalidate: 1e9 };
  await a.cache.set("use-cache-key", composed as CacheValue<"composable">, "composable");
  await table(storefront).revalidate(["inventory:p1"], Date.now());

  a.request();
  assert.equal(await a.read("fetch-key", "fetch", fetchTags), null);
  const kept = await a.read("use-cache-key", "composable", useCacheTags);
  assert.deepEqual(kept?.tags, ["product:p2"]);
  assert.equal(STAMP_FIELD in (kept ?? {}), false, "the stamp is not handed to Next");
});

test("a storefront's own revalidateTag shows on its next request, whatever the read memo", async () => {
  const storefront = fresh();
  const shared = sharedCache();
  const a = instance(storefront, shared, { maxAgeMs: 60_000 });
  await render(a, "/products/p1", "old price", ["product:p1"]);
  await a.tags.writeTags(["product:p1", { tag: "store:s1:products" }]);
  assert.equal(await served(a, "/products/p1"), undefined);
  assert.equal(await served(instance(storefront, shared), "/products/p1"), undefined);
  assert.ok((await a.tags.getLastRevalidated(["store:s1:products"])) > 0);
});

test("an entry whose read back finds a write still in flight re-renders until it lands", async () => {
  const storefront = fresh();
  const shared = sharedCache();
  await table(storefront).revalidate(["x:first"], Date.now());
  await render(instance(storefront, shared), "/products/p1", "price", ["product:p1"]);
  // A writer takes position 2 and stalls before putting its item; position 3 lands.
  let reserved = () => {};
  const taken = new Promise<void>((r) => (reserved = r));
  let release = () => {};
  const gate = new Promise<void>((r) => (release = r));
  const hooks: WriteHooks = { afterReserve: async () => (reserved(), gate) };
  const slow = table(storefront).revalidate(["x:unrelated"], Date.now(), hooks);
  await taken;
  await table(storefront).revalidate(["x:other"], Date.now());

  assert.equal(await served(instance(storefront, shared), "/products/p1"), undefined, "position 2 is unknown");
  release();
  await slow;
  assert.equal(await served(instance(storefront, shared), "/products/p1"), "price", "once it landed");
});

test("an entry stamped more than 10,000 positions back re-renders without a read back", async () => {
  const storefront = fresh();
  const shared = sharedCache();
  await shared.set("/products/p1", page("prerendered", ["product:p1"])); // no stamp: 0
  await client().send(
    new UpdateItemCommand({
      TableName: tableName,
      Key: { pk: { S: seqPk(storefront) }, sk: { S: SEQ_SK } },
      UpdateExpression: "SET #last = :last",
      ExpressionAttributeNames: { "#last": "last" },
      ExpressionAttributeValues: { ":last": { N: "20000" } },
    }),
  );
  const cold = instance(storefront, shared, { maxAgeMs: 60_000 });
  assert.equal(await served(cold, "/products/p1"), undefined);
  assert.equal(cold.sync.table.requests, 1, "the counter once, not 20 partitions of log");
});

test("an entry the wrapper did not read counts as revalidated", async () => {
  const on = instance(fresh(), sharedCache());
  on.request();
  assert.equal(await on.tags.hasBeenRevalidated(["product:p1"], Date.now()), true);
});

test("a cold start that cannot read the table serves nothing cached, and says so", async () => {
  const storefront = fresh();
  const shared = sharedCache();
  await render(instance(storefront, shared), "/products/p1", "price", ["product:p1"]);
  const down = instance(storefront, shared, { url: "http://127.0.0.1:9", maxAgeMs: 60_000 });
  assert.equal(await served(down, "/products/p1"), undefined);
  assert.equal(await served(down, "/products/p1"), undefined);
  assert.equal(down.sync.stats.failures, 1, "tried once in its read period, not on every call");
  assert.match(String(down.lines[0]?.message), /tag table read failed/);
});
