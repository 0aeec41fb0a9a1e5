// A real browser for catalog-sync's end-to-end tests: Debian's Chromium, driven by
// playwright-core (no browser download). Reads one URL per line on stdin, loads it in a fresh
// page (a reload, as a shopper would), and prints one JSON line: the HTTP status, the
// products shown ({id, title, price, stock}) and when the server rendered the page.
import { chromium } from "playwright-core";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

const userDataDir = mkdtempSync(join(tmpdir(), "catalog-chromium-"));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  // Without the background-networking flags Chromium keeps trying to reach Google's hosts,
  // which this machine's closed network refuses.
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
const page = await context.newPage();

async function load(url) {
  const response = await page.goto(url, { waitUntil: "load", timeout: 15000 });
  const products = await page.$$eval("[data-product-id]", (nodes) =>
    nodes.map((n) => ({
      id: n.getAttribute("data-product-id"),
      title: (n.querySelector("a, h1")?.textContent ?? "").trim(),
      price: (n.querySelector(".price")?.textContent ?? "").trim(),
      stock: (n.querySelector(".stock")?.textContent ?? "").trim(),
    })),
  );
  const renderedAt = (await page.$eval("#rendered-at", (n) => n.textContent).catch(() => null)) ?? null;
  return { status: response?.status() ?? 0, products, renderedAt };
}

console.log(JSON.stringify({ ready: true }));
for await (const line of createInterface({ input: process.stdin })) {
  const url = line.trim();
  if (!url) continue;
  try {
    console.log(JSON.stringify(await load(url)));
  } catch (e) {
    console.log(JSON.stringify({ error: String(e) }));
  }
}
await context.close();
rmSync(userDataDir, { recursive: true, force: true });
