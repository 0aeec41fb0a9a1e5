/**
 * OpenNext (`@opennextjs/aws` 4.1) overrides that make catalog-sync's tag table the tag cache
 * of a storefront served from Lambda, with no revalidate route: `open-next.config.ts` sets
 * `tagCache` to `catalogTagCache()` and wraps its incremental cache (S3, or `fs-dev` locally)
 * in `withLogPositions`.
 *
 * OpenNext's "next mode" asks `hasBeenRevalidated(tags, lastModified)` after each cache read:
 * a tag time against the entry's `lastModified`, which the S3 cache stamps with S3's clock
 * when the render is stored. Both the clocks and the render's length would decide freshness
 * there (a render that read the old data and was stored after the revalidation would look
 * fresh). So entries are judged by log position instead (`log-positions.ts`): the wrapper
 * stores with each entry a stamp read before its render began, and on a read hands the stamp
 * to the tag cache through the request's scope, keyed by the `lastModified` it returned; the
 * tag cache answers whether a tag was revalidated past it. (OpenNext passes a fetch entry's
 * tags only to the tag cache, so the judging is done there.)
 *
 * Cost per request: at most one eventually consistent GetItem of the counter (none when the
 * table was read within `maxAgeMs`), and one consistent Query when it moved.
 */
import type {
  CacheEntryType,
  CacheValue,
  IncrementalCache,
  NextModeTagCache,
  NextModeTagCacheWriteInput,
  WithLastModified,
} from "@opennextjs/aws/types/overrides";

import { envMs, processSync, type TagSync } from "./sync.js";

/** The field of a stored entry that holds its stamp. */
export const STAMP_FIELD = "catalogSyncStamp";
/** What a request's scope holds: the stamp its renders begin after. */
const REQUEST_STAMP = "catalog-sync:stamp";
/** And the stamps of the entries it read, by the `lastModified` each was returned with. */
const READ_STAMPS = "catalog-sync:read";

export interface OpenNextOptions {
  /** The sync to ask (default: the process's, reading only when asked). */
  sync?: () => TagSync;
  /** How old a read of the table may be and still serve a request (default 200 ms). */
  maxAgeMs?: number;
  /**
   * A map that lives for one request (default: OpenNext's `requestCache`): where the stamp
   * read at the request's first cache call is kept for the entries the request stores.
   */
  requestScope?: () => Map<string, unknown> | undefined;
}

interface Resolved {
  sync: () => TagSync;
  maxAgeMs: number;
  requestScope: () => Map<string, unknown> | undefined;
}

function resolve(options: OpenNextOptions): Resolved {
  return {
    sync: options.sync ?? (() => processSync(false)),
    maxAgeMs: options.maxAgeMs ?? envMs("CATALOG_TAG_MAX_AGE_MS") ?? 200,
    requestScope: options.requestScope ?? openNextRequestScope,
  };
}

/** OpenNext's per-request cache, documented for overrides (`OpenNextRequestContext`). */
function openNextRequestScope(): Map<string, unknown> | undefined {
  type Store = { requestCache?: { getOrCreate(key: string): Map<string, unknown> } };
  const als = (globalThis as { __openNextAls?: { getStore(): Store | undefined } }).__openNextAls;
  return als?.getStore()?.requestCache?.getOrCreate("catalog-sync");
}

/**
 * `inner` with every entry stamped on `set`, and its stamp noted for the tag cache on `get`.
 * An entry without a stamp (prerendered at build time, or stored before the wrapper) counts
 * as stamped 0: stale once any of its tags, or anything out of reach, was revalidated since.
 * `inner` may be a function that loads it on first use: OpenNext's build calls the override
 * only to learn its name, where OpenNext's own caches cannot load yet.
 */
export function withLogPositions(
  load: IncrementalCache | (() => Promise<IncrementalCache>),
  options: OpenNextOptions = {},
): IncrementalCache {
  const { sync, maxAgeMs, requestScope } = resolve(options);
  let loaded: Promise<IncrementalCache> | undefined;
  const cache = () => (loaded ??= typeof load === "function" ? load() : Promise.resolve(load));
  return {
    name: "catalog-sync",

    async get<T extends CacheEntryType = "cache">(key: string, type?: T) {
      await sync().readWithin(maxAgeMs);
      const scope = requestScope();
      const now = sync().stamp();
      if (scope && now !== undefined && !scope.has(REQUEST_STAMP)) scope.set(REQUEST_STAMP, now);
      const found = await (await cache()).get(key, type);
      if (!found?.value) return found;
      const { [STAMP_FIELD]: stamp, ...value } = found.value as Record<string, unknown>;
      const lastModified = found.lastModified ?? Date.now();
      noteRead(scope, lastModified, typeof stamp === "number" ? stamp : 0);
      return { ...found, lastModified, value } as WithLastModified<CacheValue<T>>;
    },

    async set<T extends CacheEntryType = "cache">(key: string, value: CacheValue<T>, type?: T) {
      // A store with no stamp from its request (no cache read before the render) gets 0.
      const stamp = requestScope()?.get(REQUEST_STAMP) ?? 0;
      await (await cache()).set(key, { ...value, [STAMP_FIELD]: stamp } as CacheValue<T>, type);
    },

    delete: async (key: string) => (await cache()).delete(key),
  };
}

/** Notes a read entry's stamp; of two entries read with one `lastModified`, the older stamp. */
function noteRead(scope: Map<string, unknown> | undefined, lastModified: number, stamp: number): void {
  if (!scope) return;
  const read = (scope.get(READ_STAMPS) as Map<number, number> | undefined) ?? new Map<number, number>();
  read.set(lastModified, Math.min(stamp, read.get(lastModified) ?? stamp));
  scope.set(READ_STAMPS, read);
}

/**
 * The tag cache for OpenNext's "next mode": judges each entry OpenNext read through
 * `withLogPositions` in this request by the stamp the wrapper noted for it. An entry with no
 * noted stamp (the config lacks the wrapper) counts as revalidated, with a warning, rather
 * than trusting its `lastModified`.
 */
export function catalogTagCache(options: OpenNextOptions = {}): NextModeTagCache {
  const { sync, maxAgeMs, requestScope } = resolve(options);
  let warned = false;
  return {
    name: "catalog-sync",
    mode: "nextMode",

    /**
     * For `'use cache'`'s `getExpiration` (its implicit path tags): when this instance
     * learned of the latest revalidation of any of `tags` (its clock), 0 if never. Entries'
     * own tags are judged by position in `hasBeenRevalidated`; these alone compare clocks.
     */
    async getLastRevalidated(tags: string[]): Promise<number> {
      await sync().readWithin(maxAgeMs);
      return sync().times.latestLearned(tags);
    },

    async hasBeenRevalidated(tags: string[], lastModified?: number): Promise<boolean> {
      const read = requestScope()?.get(READ_STAMPS) as Map<number, number> | undefined;
      const stamp = lastModified === undefined ? undefined : read?.get(lastModified);
      if (stamp === undefined) {
        if (!warned) {
          warned = true;
          console.log(
            JSON.stringify({
              level: "WARN",
              message: "an entry reached the tag cache with no stamp: wrap the incremental cache in withLogPositions",
              tags,
            }),
          );
        }
        return true;
      }
      await sync().readWithin(maxAgeMs);
      return sync().isStaleAt(tags, stamp);
    },

    async writeTags(tags: NextModeTagCacheWriteInput[]): Promise<void> {
      const names = tags.map((tag) => (typeof tag === "string" ? tag : tag.tag));
      if (names.length > 0) await sync().revalidate(names);
    },
  };
}
