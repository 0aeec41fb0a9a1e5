// A real browser for catalog-sync's end-to-end tests: Debian's Chromium, driven by
// playwright-core (no browser download). Reads one command per line on stdin and prints one
// JSON line: the HTTP status, the page's URL, the products shown ({id, title, price, stock,
// unavailable}), when the server rendered the page and the enabled buttons of its forms. A
// command is a URL (loaded afresh, a reload as a shopper would) or a JSON object that acts on
// the current page as a shopper does:
//   {"select": ["#sort", "price_asc"]}   choose a menu option (the page navigates)
//   {"click": "#next"}                   click a link or a control that navigates
//   {"submit": "[data-product-id=p1] .add"}  press a form button (a server action; no navigation)
//   {"screenshot": "/path/to/file.png"}  save the whole page
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

async function read(response) {
  const products = await page.$$eval("[data-product-id]", (nodes) =>
    nodes.map((n) => ({
      id: n.getAttribute("data-product-id"),
      title: (n.querySelector("a, h1")?.textContent ?? "").trim(),
      price: (n.querySelector(".price")?.textContent ?? "").trim(),
      stock: (n.querySelector(".stock")?.textContent ?? "").trim(),
      unavailable: n.classList.contains("unavailable"),
    })),
  );
  const renderedAt = (await page.$eval("#rendered-at", (n) => n.textContent).catch(() => null)) ?? null;
  // Every button a shopper can press in a form (a server action), as a selector for "submit".
  const buttons = await page.$$eval("form button:not([disabled])", (nodes) =>
    nodes.map((_, i) => `form button:not([disabled]) >> nth=${i}`),
  );
  return { status: response?.status() ?? 200, url: page.url(), products, renderedAt, buttons };
}

/** Runs an action and waits until the page it leads to has loaded. */
async function navigating(action) {
  const before = page.url();
  await action();
  await page.waitForURL((url) => url.href !== before, { timeout: 15000 });
  await page.waitForLoadState("load");
  return read(null);
}

async function run(command) {
  if (!command.startsWith("{")) {
    return read(await page.goto(command, { waitUntil: "load", timeout: 15000 }));
  }
  const c = JSON.parse(command);
  if (c.select) return navigating(() => page.selectOption(c.select[0], c.select[1]));
  if (c.click) return navigating(() => page.click(c.click));
  if (c.submit) {
    // A server action answers the form's POST; the page re-renders in place.
    const answered = page.waitForResponse((r) => r.request().method() === "POST", { timeout: 15000 });
    await page.click(c.submit);
    await answered;
    await page.waitForLoadState("networkidle");
    return read(null);
  }
  if (c.screenshot) {
    await page.screenshot({ path: c.screenshot, fullPage: true });
    return read(null);
  }
  throw new Error(`unknown command ${command}`);
}

console.log(JSON.stringify({ ready: true }));
for await (const line of createInterface({ input: process.stdin })) {
  const command = line.trim();
  if (!command) continue;
  try {
    console.log(JSON.stringify(await run(command)));
  } catch (e) {
    console.log(JSON.stringify({ error: String(e) }));
  }
}
await context.close();
rmSync(userDataDir, { recursive: true, force: true });
