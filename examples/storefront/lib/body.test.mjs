import { test } from "node:test";
import assert from "node:assert/strict";
import { readLimited } from "./body.mjs";

/** A streamed body of `chunks` chunks of `size` bytes each, counting how many were pulled. */
function streamed(chunks, size, headers = {}) {
  const pulled = { count: 0 };
  let left = chunks;
  const body = new ReadableStream({
    pull(controller) {
      if (left-- === 0) return controller.close();
      pulled.count++;
      controller.enqueue(new Uint8Array(size).fill(0x61));
    },
  });
  const request = new Request("http://x/api/revalidate", { method: "POST", body, headers, duplex: "half" });
  return { request, pulled };
}

test("a small body is read whole", async () => {
  const request = new Request("http://x/", { method: "POST", body: '{"tags":["a"]}' });
  assert.equal(await readLimited(request, 64), '{"tags":["a"]}');
});

test("a declared length over the limit is refused before any byte is read", async () => {
  const { request, pulled } = streamed(1000, 1024, { "content-length": String(1000 * 1024) });
  assert.equal(await readLimited(request, 64 * 1024), null);
  // A stream fills its one-chunk queue when it is made; nothing past that was pulled.
  assert.ok(pulled.count <= 1, `pulled ${pulled.count} chunks`);
});

test("a body without a length stops being read just past the limit", async () => {
  const { request, pulled } = streamed(1000, 1024);
  assert.equal(await readLimited(request, 64 * 1024), null);
  assert.ok(pulled.count <= 66, `read ${pulled.count} chunks of 1 KiB for a 64 KiB limit`);
});

test("the limit counts bytes, not UTF-16 units", async () => {
  // 40,000 "é" are 40,000 UTF-16 units but 80,000 bytes.
  const text = "é".repeat(40_000);
  const request = new Request("http://x/", { method: "POST", body: text });
  assert.equal(await readLimited(request, 64 * 1024), null);
  const fits = new Request("http://x/", { method: "POST", body: "é".repeat(30_000) });
  assert.equal((await readLimited(fits, 64 * 1024)).length, 30_000);
});

test("a malformed declared length is refused", async () => {
  const request = new Request("http://x/", { method: "POST", body: "{}", headers: { "content-length": "2" } });
  assert.equal(await readLimited(request, 64), "{}");
  const bad = streamed(1, 2, { "content-length": "-1" });
  assert.equal(await readLimited(bad.request, 64), null);
});
