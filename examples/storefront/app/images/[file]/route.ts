// Placeholder product images for the demo catalog: `/images/<productId>.svg`, a tinted
// square with the product id, the same for the same id. Real stores point primaryImageUrl at
// their CDN.
const FILE = /^([A-Za-z0-9_.-]{1,128})\.svg$/;

/** A hue from the id (FNV-1a), so neighbouring ids get far-apart colours. */
function hue(text: string): number {
  let h = 0x811c9dc5;
  for (const c of text) h = Math.imul(h ^ c.codePointAt(0)!, 16777619);
  return (h >>> 0) % 360;
}

export async function GET(_request: Request, { params }: { params: Promise<{ file: string }> }) {
  const match = FILE.exec((await params).file);
  if (!match) return new Response("not found", { status: 404 });
  const id = match[1];
  const h = hue(id);
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="240" height="180" viewBox="0 0 240 180">
<rect width="240" height="180" fill="hsl(${h} 55% 82%)"/>
<circle cx="120" cy="80" r="42" fill="hsl(${h} 45% 62%)"/>
<text x="120" y="160" font-family="sans-serif" font-size="16" text-anchor="middle" fill="hsl(${h} 40% 25%)">${id}</text>
</svg>`;
  return new Response(svg, {
    headers: { "content-type": "image/svg+xml", "cache-control": "public, max-age=31536000, immutable" },
  });
}
