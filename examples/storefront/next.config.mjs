/** @type {import('next').NextConfig} */
const nextConfig = {
  // The pages fetch from the listing API at request time; nothing is fetched at build time.
  poweredByHeader: false,
};

export default nextConfig;
