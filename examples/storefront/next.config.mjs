import { fileURLToPath } from "node:url";

// With CATALOG_TAG_TABLE set (several instances behind a load balancer), the cache handlers
// of packages/next-cache-handler keep every instance's tag state in step through catalog-sync's
// tag table; without it, Next's own handlers serve one instance revalidated over HTTP
// (app/api/revalidate). Read when `next start` starts, so one build serves both.
const handler = (entry) =>
  fileURLToPath(import.meta.resolve(`@catalog-sync/next-cache-handler/${entry}`));
const tagTable = process.env.CATALOG_TAG_TABLE
  ? {
      cacheHandler: handler("incremental"),
      cacheHandlers: { default: handler("use-cache") },
      // No memory cache of Next's in front of the handler: it keeps its own.
      cacheMaxMemorySize: 0,
    }
  : {};

/** @type {import('next').NextConfig} */
const nextConfig = {
  // The pages fetch from the listing API at request time; nothing is fetched at build time.
  poweredByHeader: false,
  ...tagTable,
};

export default nextConfig;
