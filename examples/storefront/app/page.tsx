export default function Home() {
  return (
    <main>
      <h1>catalog-sync storefront</h1>
      <p>
        Open <a href="/stores/store-1">/stores/store-1</a> or <code>/products/&lt;productId&gt;</code>.
      </p>
    </main>
  );
}
