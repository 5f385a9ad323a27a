/* Verbatim chat widget: answers quoted from your documents, with citations.
 *
 * Embed with one tag:
 *   <script src="http://host:8000/widget.js" data-endpoint="http://host:8000"></script>
 * Optional attributes: data-title="…" (panel heading), data-theme="light|dark|auto".
 * Plain JS, no dependencies; the UI lives in a Shadow DOM so page CSS cannot reach it.
 * Text from documents and users is only ever set with textContent, never parsed as HTML.
 */
(() => {
  "use strict";
  if (window.VerbatimWidget) return;

  const script = document.currentScript;
  const scriptOrigin = script && script.src ? new URL(script.src, location.href).origin : location.origin;
  const endpoint = ((script && script.dataset.endpoint) || scriptOrigin).replace(/\/+$/, "");
  const heading = (script && script.dataset.title) || "Ask the documents";
  const theme = (script && script.dataset.theme) || "auto";
  const STORAGE_KEY = "verbatim-widget:" + endpoint;
  const TIMEOUT_MS = 60000;
  const MAX_CHARS = 500;

  const DARK = `--bg:#1b1d22;--fg:#e8eaee;--muted:#a3aab6;--line:#343842;--accent:#8aa8ff;
    --accent-fg:#0d1530;--user:#2b3a66;--user-fg:#eef2ff;--bot:#24272e;--mark:#7a6200;
    --mark-fg:#fff;--error:#ff9c94;--error-bg:#3a2222;--shadow:0 12px 40px rgba(0,0,0,.55);`;
  const CSS = `
    :host { all: initial; position: fixed; z-index: 2147483000; right: 0; bottom: 0;
      --bg:#ffffff;--fg:#1c1f24;--muted:#5b6270;--line:#dde0e6;--accent:#2f5bea;
      --accent-fg:#ffffff;--user:#2f5bea;--user-fg:#ffffff;--bot:#f2f4f7;--mark:#ffe27a;
      --mark-fg:#1c1f24;--error:#a61b1b;--error-bg:#fdecec;--shadow:0 12px 40px rgba(15,23,42,.25); }
    @media (prefers-color-scheme: dark) { :host(:not([data-theme="light"])) { ${DARK} } }
    :host([data-theme="dark"]) { ${DARK} }
    * { box-sizing: border-box; }
    .root { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
      color: var(--fg); color-scheme: light dark; }
    button { font: inherit; cursor: pointer; }
    :focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
    .sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0);
      white-space: nowrap; }
    .launcher { position: fixed; right: 20px; bottom: 20px; display: flex; align-items: center;
      gap: .5em; border: 0; border-radius: 999px; padding: .8em 1.15em; background: var(--accent);
      color: var(--accent-fg); font-weight: 600; box-shadow: var(--shadow); }
    .launcher svg { width: 1.3em; height: 1.3em; fill: currentColor; }
    .panel { position: fixed; right: 20px; bottom: 84px; width: min(400px, calc(100vw - 40px));
      height: min(600px, calc(100vh - 110px)); display: flex; flex-direction: column;
      background: var(--bg); color: var(--fg); border: 1px solid var(--line); border-radius: 14px;
      box-shadow: var(--shadow); overflow: hidden; }
    .panel[hidden] { display: none; }
    header { display: flex; align-items: center; gap: .5em; padding: .7em .8em .7em 1em;
      border-bottom: 1px solid var(--line); }
    h2 { flex: 1; margin: 0; font-size: 1.02em; font-weight: 650; }
    .ghost { border: 1px solid transparent; background: none; color: var(--muted);
      border-radius: 8px; padding: .3em .55em; }
    .ghost:hover { border-color: var(--line); color: var(--fg); }
    .close { font-size: 1.15em; line-height: 1; padding: .3em .5em; }
    .log { flex: 1; overflow-y: auto; margin: 0; padding: 1em; list-style: none;
      display: flex; flex-direction: column; gap: .8em; overscroll-behavior: contain; }
    .empty { color: var(--muted); margin: auto 0; text-align: center; font-size: .93em; }
    .msg { display: flex; }
    .msg.user { justify-content: flex-end; }
    .bubble { max-width: 88%; padding: .6em .85em; border-radius: 14px; overflow-wrap: anywhere;
      white-space: pre-wrap; }
    .user .bubble { background: var(--user); color: var(--user-fg); border-bottom-right-radius: 4px; }
    .bot .bubble { background: var(--bot); border-bottom-left-radius: 4px; white-space: normal; }
    .bot p { margin: 0; }
    .answer { font-weight: 650; font-size: 1.05em; }
    .confidence { display: flex; align-items: center; gap: .5em; margin-top: .35em;
      font-size: .82em; color: var(--muted); }
    .meter { width: 4.5em; height: .45em; border-radius: 99px; background: var(--line);
      overflow: hidden; }
    .meter > span { display: block; height: 100%; background: var(--accent); }
    .low .meter > span { background: #d97706; }
    blockquote { margin: .6em 0 0; padding: .1em 0 .1em .7em; border-left: 3px solid var(--accent);
      color: var(--fg); font-size: .93em; }
    mark { background: var(--mark); color: var(--mark-fg); border-radius: 3px; padding: 0 .1em; }
    .source { margin-top: .5em !important; font-size: .85em; color: var(--muted); }
    .source a { color: var(--accent); font-weight: 600; text-underline-offset: 2px; }
    .abstain .answer { font-weight: 600; }
    .note { margin-top: .3em !important; color: var(--muted); font-size: .9em; }
    .error .bubble { background: var(--error-bg); color: var(--error); }
    .retry { margin-top: .45em; border: 1px solid currentColor; background: none;
      color: inherit; border-radius: 8px; padding: .2em .7em; font-size: .88em; }
    .dots { display: inline-flex; gap: 3px; margin-right: .45em; vertical-align: middle; }
    .dots i { width: 6px; height: 6px; border-radius: 50%; background: var(--muted);
      animation: blink 1.2s infinite ease-in-out; }
    .dots i:nth-child(2) { animation-delay: .2s; } .dots i:nth-child(3) { animation-delay: .4s; }
    @keyframes blink { 0%, 80%, 100% { opacity: .25; } 40% { opacity: 1; } }
    form { display: flex; gap: .5em; padding: .7em; border-top: 1px solid var(--line);
      align-items: flex-end; }
    textarea { flex: 1; resize: none; min-height: 2.6em; max-height: 8em; padding: .6em .75em;
      border: 1px solid var(--line); border-radius: 10px; background: var(--bg); color: var(--fg);
      font: inherit; font-size: 16px; line-height: 1.35; }
    textarea::placeholder { color: var(--muted); }
    .send { border: 0; border-radius: 10px; padding: .65em 1em; background: var(--accent);
      color: var(--accent-fg); font-weight: 600; }
    .send[aria-disabled="true"] { opacity: .55; cursor: progress; }
    .hint { margin: 0; padding: 0 1em .6em; font-size: .75em; color: var(--muted); }
    @media (max-width: 480px) {
      .panel { inset: 0; width: 100%; height: 100%; height: 100dvh; border-radius: 0; border: 0; }
      .launcher { right: 14px; bottom: 14px; }
      .hint { display: none; }
      .bubble { max-width: 94%; }
    }
    @media (prefers-reduced-motion: reduce) { .dots i { animation: none; opacity: .7; } }
  `;

  /** Build an element; strings in children become text nodes (never HTML). */
  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
      if (key === "text") node.textContent = value;
      else if (key === "class") node.className = value;
      else if (key === "on") for (const [ev, fn] of Object.entries(value)) node.addEventListener(ev, fn);
      else if (value !== false && value != null) node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children) if (child != null) node.append(child);
    return node;
  }

  function chatIcon() {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    const path = document.createElementNS(ns, "path");
    path.setAttribute("d", "M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4H4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2z");
    svg.append(path);
    return svg;
  }

  class WidgetError extends Error {}

  /** POST the question; resolve to the Answer JSON or throw a WidgetError with a readable message. */
  async function requestAnswer(question) {
    const ctrl = new AbortController();
    const timer = setTimeout(() => ctrl.abort(), TIMEOUT_MS);
    let res;
    try {
      res = await fetch(endpoint + "/ask", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ question }),
        signal: ctrl.signal,
      });
    } catch (err) {
      throw new WidgetError(err && err.name === "AbortError"
        ? "The server took too long to answer. Please try again."
        : `Can't reach the server at ${endpoint}. Check that it is running and try again.`);
    } finally {
      clearTimeout(timer);
    }
    let body = null;
    try { body = await res.json(); } catch { /* not JSON: handled below */ }
    if (!res.ok) {
      const message = body && body.error && body.error.message;
      const wait = res.headers.get("Retry-After");
      if (res.status === 503 && wait) throw new WidgetError(`The server is busy. Please try again in ${wait} s.`);
      throw new WidgetError(message ? sentence(message) : `The server answered with an error (HTTP ${res.status}).`);
    }
    if (!body || typeof body.abstained !== "boolean") throw new WidgetError("The server's reply could not be read.");
    return body;
  }

  function sentence(text) {
    const s = String(text);
    return s.charAt(0).toUpperCase() + s.slice(1) + (/[.!?]$/.test(s) ? "" : ".");
  }

  /** The parts of an Answer the conversation keeps (and stores across page loads). */
  function summarize(ans) {
    if (ans.abstained || !ans.citations || !ans.citations.length) return { kind: "abstain", score: ans.score };
    const c = ans.citations[0];
    const sentenceText = typeof c.sentence === "string" ? c.sentence : ans.answer;
    let from = c.start - c.sentence_start;
    let to = c.end - c.sentence_start;
    if (sentenceText.slice(from, to) !== ans.answer) {
      from = sentenceText.indexOf(ans.answer);
      to = from < 0 ? -1 : from + ans.answer.length;
    }
    return {
      kind: "answer", answer: ans.answer, score: ans.score, title: c.title,
      url: documentUrl(c.url), sentence: sentenceText, from, to,
    };
  }

  /** An absolute http(s) URL for a citation link (server paths may sit under a proxy prefix). */
  function documentUrl(url) {
    const href = String(url).startsWith("/") ? endpoint + url : new URL(url, endpoint + "/").href;
    return /^https?:\/\//i.test(href) ? href : "about:blank";
  }

  function confidence(score) {
    const pct = Math.round(Math.max(0, Math.min(1, Number(score) || 0)) * 100);
    const level = pct >= 75 ? "High" : pct >= 50 ? "Medium" : "Low";
    const bar = el("span");
    bar.style.width = pct + "%";
    return el("div", { class: "confidence " + level.toLowerCase(), title: `Confidence score ${pct}%` },
      el("span", { class: "meter", "aria-hidden": "true" }, bar),
      el("span", { text: `${level} confidence · ${pct}%` }));
  }

  /** The supporting sentence with the answer marked; nothing when it is the answer itself. */
  function evidence(item) {
    if (!item.sentence || item.sentence.trim() === item.answer.trim()) return null;
    if (item.from < 0) return el("blockquote", { text: item.sentence });
    return el("blockquote", {},
      item.sentence.slice(0, item.from),
      el("mark", { text: item.sentence.slice(item.from, item.to) }),
      item.sentence.slice(item.to));
  }

  const host = el("div", { id: "verbatim-widget", "data-theme": theme });
  const shadow = host.attachShadow({ mode: "open" });
  const log = el("ol", { class: "log", role: "log", "aria-live": "polite", "aria-label": "Conversation" });
  const input = el("textarea", {
    id: "vb-input", rows: "1", maxlength: String(MAX_CHARS), placeholder: "Ask a question…",
    autocomplete: "off", enterkeyhint: "send",
  });
  const send = el("button", { class: "send", type: "submit" }, "Send");
  const form = el("form", { "aria-label": "Ask a question" },
    el("label", { class: "sr-only", for: "vb-input", text: "Your question" }), input, send);
  const closeBtn = el("button", { class: "ghost close", type: "button", "aria-label": "Close chat", text: "✕" });
  const clearBtn = el("button", { class: "ghost", type: "button", text: "New chat" });
  const panel = el("section", { class: "panel", id: "vb-panel", role: "dialog", "aria-modal": "false",
    "aria-labelledby": "vb-title", hidden: true },
    el("header", {}, el("h2", { id: "vb-title", text: heading }), clearBtn, closeBtn),
    log, form,
    el("p", { class: "hint", text: "Enter to send · Shift+Enter for a new line · Esc to close" }));
  const launcher = el("button", { class: "launcher", type: "button", "aria-expanded": "false",
    "aria-controls": "vb-panel", "aria-label": heading }, chatIcon(), el("span", { text: "Ask" }));
  const root = el("div", { class: "root" }, launcher, panel);
  shadow.append(el("style", { text: CSS }), root);

  let history = load();
  let busy = false;

  function load() {
    try { return JSON.parse(sessionStorage.getItem(STORAGE_KEY)) || []; } catch { return []; }
  }
  function save() {
    try { sessionStorage.setItem(STORAGE_KEY, JSON.stringify(history.slice(-50))); } catch { /* private mode */ }
  }

  function render(item) {
    if (item.role === "user") return el("li", { class: "msg user" }, el("p", { class: "bubble", text: item.text }));
    if (item.kind === "answer") {
      const link = el("a", { href: item.url, target: "_blank", rel: "noopener noreferrer", text: item.title,
        title: "Open the document at this passage (new tab)" });
      return el("li", { class: "msg bot" }, el("div", { class: "bubble" },
        el("p", { class: "answer", text: item.answer }), confidence(item.score), evidence(item),
        el("p", { class: "source" }, "Source: ", link)));
    }
    if (item.kind === "abstain") {
      return el("li", { class: "msg bot abstain" }, el("div", { class: "bubble" },
        el("p", { class: "answer", text: "Not found in the documents." }),
        el("p", { class: "note", text: "I couldn't find an answer to that in the documents. Try rephrasing, or ask about something they cover." })));
    }
    const retry = el("button", { class: "retry", type: "button", text: "Try again",
      on: { click: () => {
        if (busy) return;
        retry.closest("li").remove();
        input.focus();
        ask(item.question, false);
      } } });
    return el("li", { class: "msg bot error", role: "alert" }, el("div", { class: "bubble" },
      el("p", { text: item.text }), item.question ? retry : null));
  }

  function append(item) {
    log.querySelector(".empty")?.remove();
    const node = render(item);
    log.append(node);
    log.scrollTop = log.scrollHeight;
    return node;
  }

  function renderAll() {
    log.replaceChildren();
    if (!history.length) {
      log.append(el("li", { class: "empty", text: "Ask a question. Answers are quoted word for word from the documents, with a link to the source." }));
    }
    history.forEach(append);
  }

  function setBusy(value) {
    busy = value;
    send.setAttribute("aria-disabled", String(value));
    log.setAttribute("aria-busy", String(value));
  }

  /** Ask a question: show it, show a loading reply, then the answer or a readable error. */
  async function ask(question, echo = true) {
    question = String(question || "").trim();
    if (!question || busy) return;
    if (echo) { history.push({ role: "user", text: question }); append(history.at(-1)); }
    setBusy(true);
    const pending = log.appendChild(el("li", { class: "msg bot loading" }, el("div", { class: "bubble" },
      el("span", { class: "dots", "aria-hidden": "true" }, el("i"), el("i"), el("i")),
      "Searching the documents…")));
    log.scrollTop = log.scrollHeight;
    let item;
    try {
      item = { role: "bot", ...summarize(await requestAnswer(question)) };
      history.push(item);
      save();
    } catch (err) {
      const text = err instanceof WidgetError ? err.message : "Something went wrong showing the answer.";
      item = { role: "bot", kind: "error", text, question };  // shown, not stored
    } finally {
      pending.remove();
      setBusy(false);
    }
    append(item);
  }

  function open() {
    panel.hidden = false;
    launcher.setAttribute("aria-expanded", "true");
    log.scrollTop = log.scrollHeight;
    input.focus();
  }
  function close() {
    panel.hidden = true;
    launcher.setAttribute("aria-expanded", "false");
    launcher.focus();
  }

  launcher.addEventListener("click", () => (panel.hidden ? open() : close()));
  closeBtn.addEventListener("click", close);
  clearBtn.addEventListener("click", () => { history = []; save(); renderAll(); input.focus(); });
  root.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && !panel.hidden) { e.preventDefault(); close(); }
  });
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); form.requestSubmit(); }
  });
  input.addEventListener("input", () => {
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight + 2, 160) + "px";
  });
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    if (busy || !input.value.trim()) return;
    const question = input.value;
    input.value = "";
    input.style.height = "";
    ask(question);
    input.focus();
  });

  renderAll();
  const mount = () => document.body.append(host);
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);

  /** A small API for the host page: open or close the panel, or ask a question. */
  window.VerbatimWidget = Object.freeze({
    open, close, endpoint,
    ask: (question) => { open(); return ask(question); },
  });
})();
