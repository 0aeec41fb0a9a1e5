// OpenNext's build of this storefront (`npx open-next build`), the way AWS teams run Next.js:
// the server in Lambda, behind CloudFront. `next start` stays the default way to run it.
//
// The tag cache is catalog-sync's tag table (packages/next-cache-handler/src/opennext.ts), so no
// revalidate route is needed: every Lambda instance and every cold start reads the
// revalidations the tag-revalidator writes. Its entries are judged by log position, so the
// incremental cache is wrapped in `withLogPositions`: S3 on Lambda, OpenNext's file-system
// cache where the server runs with CATALOG_OPENNEXT_CACHE=fs. CATALOG_OPENNEXT_LOCAL=1 at build
// time picks OpenNext's node wrapper and converter (a plain HTTP server) for
// `scripts/dev --storefront --opennext`; without it the build is for Lambda.
import type { OpenNextConfig } from "@opennextjs/aws/types/open-next.js";

const local = process.env.CATALOG_OPENNEXT_LOCAL === "1";
// Read when the server starts (this file is bundled into it), not at build time.
const fsCache = () => process.env.CATALOG_OPENNEXT_CACHE === "fs";
// The benchmark's baseline (docs/BENCHMARKS.md): OpenNext's file-system cache with no tag cache
// at all, so nothing it caches is ever revalidated. Honoured only with the local cache.
const benchBaseline = () =>
  fsCache() && process.env.CATALOG_OPENNEXT_BENCH_BASELINE === "no-tag-cache";

const config = {
  default: {
    override: {
      // Locally a plain HTTP server; for Lambda, OpenNext's defaults.
      ...(local ? { wrapper: "node", converter: "node", queue: "direct" } : {}),
      incrementalCache: async () => {
        const { withLogPositions } = await import("@catalog-sync/next-cache-handler/opennext");
        const inner = async () =>
          fsCache()
            ? (await import("@opennextjs/aws/overrides/incrementalCache/fs-dev.js")).default
            : (await import("@opennextjs/aws/overrides/incrementalCache/s3-lite.js")).default;
        return benchBaseline() ? inner() : withLogPositions(inner);
      },
      tagCache: async () => {
        if (benchBaseline()) return (await import("@opennextjs/aws/overrides/tagCache/dummy.js")).default;
        const { catalogTagCache } = await import("@catalog-sync/next-cache-handler/opennext");
        return catalogTagCache();
      },
    },
  },
  buildCommand: "npx --no-install next build",
} satisfies OpenNextConfig;

export default config;
