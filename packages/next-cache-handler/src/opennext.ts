/**
 * OpenNext (`@opennextjs/aws` 4.1) overrides that make catalog-sync's tag table the tag cache
 * of a storefront served from Lambda, with no revalidate route: `open-next.config.ts` sets
 * `tagCache` to `catalogTagCache()` and wraps its incremental cache (S3, or `fs-dev` locally)
 * in `withLogPositions`.
 *
 * OpenNext's "next mode" asks `hasBeenRevalidated(tags, lastModified)`: a tag time against
 * the entry's `lastModified`, which the S3 cache stamps with S3's clock when the render is
 * stored. Both the clocks and the render's length would decide freshness there (a render that
 * read the old data and was stored after the revalidation would look fresh). So the wrapper
 * judges each entry itself, by log position (`log-positions.ts`): it stores a stamp read
 * before the render began with the entry, and on a read returns the entry only if none of its
 * tags was revalidated past it, with `shouldBypassTagCache` so OpenNext asks nothing more.
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

import { processSync, type TagSync } from "./sync.js";

/** The field of a stored entry that holds its stamp. */
export const STAMP_FIELD = "catalogSyncStamp";
const TAGS_HEADER = "x-next-cache-tags";
/** What a request's scope holds: the stamp its renders begin after. */
const REQUEST_STAMP = "catalog-sync:stamp";

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

function envMs(name: string): number | undefined {
  const value = process.env[name];
  if (value === undefined || value === "") return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name}=${value} is not a number of milliseconds`);
  return n;
}

/** OpenNext's per-request cache, documented for overrides (`OpenNextRequestContext`). */
function openNextRequestScope(): Map<string, unknown> | undefined {
  type Store = { requestCache?: { getOrCreate(key: string): Map<string, unknown> } };
  const als = (globalThis as { __openNextAls?: { getStore(): Store | undefined } }).__openNextAls;
  return als?.getStore()?.requestCache?.getOrCreate("catalog-sync");
}

/** The tags an entry of `type` is stored under. */
export function tagsOf(value: Record<string, unknown>, type: CacheEntryType): string[] {
  const list = (v: unknown) => (Array.isArray(v) ? v.filter((t): t is string => typeof t === "string") : []);
  if (type === "fetch") {
    const data = value.data as { tags?: unknown } | undefined;
    return [...new Set([...list(value.tags), ...list(data?.tags)])];
  }
  if (type === "composable") return list(value.tags);
  const meta = value.meta as { headers?: Record<string, unknown> } | undefined;
  const header = meta?.headers?.[TAGS_HEADER];
  return typeof header === "string" && header ? header.split(",") : [];
}

/**
 * `inner` with every entry stamped on `set` and judged by its stamp on `get`. An entry
 * without a stamp (prerendered at build time, or stored before the wrapper) counts as stamped
 * 0: stale once any of its tags, or anything out of reach, was revalidated since.
 */
export function withLogPositions(inner: IncrementalCache, options: OpenNextOptions = {}): IncrementalCache {
  const { sync, maxAgeMs, requestScope } = resolve(options);
  return {
    name: `${inner.name}+catalog-sync`,

    async get<T extends CacheEntryType = "cache">(key: string, type?: T) {
      await sync().readWithin(maxAgeMs);
      const scope = requestScope();
      const now = sync().stamp();
      if (scope && now !== undefined && !scope.has(REQUEST_STAMP)) scope.set(REQUEST_STAMP, now);
      const found = await inner.get(key, type);
      if (!found?.value) return found;
      const { [STAMP_FIELD]: stamp, ...value } = found.value as Record<string, unknown>;
      const tags = tagsOf(value, type ?? "cache");
      if (await sync().isStaleAt(tags, typeof stamp === "number" ? stamp : 0)) return null;
      return { ...found, value, shouldBypassTagCache: true } as WithLastModified<CacheValue<T>>;
    },

    async set<T extends CacheEntryType = "cache">(key: string, value: CacheValue<T>, type?: T) {
      // A store with no stamp from its request (no cache read before the render) gets 0.
      const stamp = requestScope()?.get(REQUEST_STAMP) ?? 0;
      await inner.set(key, { ...value, [STAMP_FIELD]: stamp } as CacheValue<T>, type);
    },

    delete: (key: string) => inner.delete(key),
  };
}

/**
 * The tag cache for OpenNext's "next mode". Entries are judged by `withLogPositions`, so
 * `hasBeenRevalidated` only sees one the wrapper did not judge (the config lacks it): that
 * entry counts as revalidated, with a warning, rather than trusting its `lastModified`.
 */
export function catalogTagCache(options: OpenNextOptions = {}): NextModeTagCache {
  const { sync, maxAgeMs } = resolve(options);
  let warned = false;
  return {
    name: "catalog-sync",
    mode: "nextMode",

    /**
     * For `'use cache'`'s `getExpiration` (its implicit path tags): when this instance
     * learned of the latest revalidation of any of `tags` (its clock), 0 if never. Explicit
     * tags are judged by position in `withLogPositions`; these alone compare clocks.
     */
    async getLastRevalidated(tags: string[]): Promise<number> {
      await sync().readWithin(maxAgeMs);
      return sync().times.latestLearned(tags);
    },

    async hasBeenRevalidated(tags: string[], _lastModified?: number): Promise<boolean> {
      if (!warned) {
        warned = true;
        console.log(
          JSON.stringify({
            level: "WARN",
            message: "an entry reached the tag cache unjudged: wrap the incremental cache in withLogPositions",
            tags,
          }),
        );
      }
      return true;
    },

    async writeTags(tags: NextModeTagCacheWriteInput[]): Promise<void> {
      const names = tags.map((tag) => (typeof tag === "string" ? tag : tag.tag));
      if (names.length > 0) await sync().revalidate(names);
    },
  };
}
