// The demo page's own script (a file, so the page's CSP allows scripts from this origin only).
document.getElementById("snippet").textContent =
  `<script src="${location.origin}/widget.js" data-endpoint="${location.origin}"></` + "script>";
for (const button of document.querySelectorAll("#examples button")) {
  button.addEventListener("click", () => window.VerbatimWidget.ask(button.textContent));
}
const list = document.getElementById("documents");
fetch("/documents")
  .then((res) => (res.ok ? res.json() : Promise.reject(new Error(`HTTP ${res.status}`))))
  .then(({ documents }) => {
    list.replaceChildren(...documents.map((d) => {
      const item = document.createElement("li");
      const link = document.createElement("a");
      link.href = d.url;
      link.textContent = d.title;
      const meta = document.createElement("span");
      meta.className = "muted";
      meta.textContent = ` (${d.length.toLocaleString()} characters)`;
      item.append(link, meta);
      return item;
    }));
  })
  .catch(() => {
    list.replaceChildren(Object.assign(document.createElement("li"), {
      className: "muted", textContent: "The documents are still loading; reload in a moment.",
    }));
  });
