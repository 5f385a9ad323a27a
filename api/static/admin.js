// The admin page's script: list, upload and delete documents (served as a file, so the page's
// CSP allows scripts from this origin only). Every string from the server is set with
// textContent, never parsed as HTML; the token lives in this tab's sessionStorage only.
(() => {
  "use strict";

  const TOKEN_KEY = "verbatim-admin-token";
  const POLL_MS = 500;
  const $ = (id) => document.getElementById(id);
  const tokenInput = $("token");
  const fileInput = $("files");
  const drop = $("drop");
  const progress = $("progress");
  const statusBox = $("status");
  const caption = $("caption");
  const tbody = document.querySelector("#documents tbody");
  const refreshButton = $("refresh");

  // -- the token: this tab's sessionStorage, never localStorage, cookies or the URL ------------
  const storage = (() => {
    try {
      return window.sessionStorage;
    } catch {
      return null; // storage disabled: the token is kept in the field only
    }
  })();
  tokenInput.value = (storage && storage.getItem(TOKEN_KEY)) || "";
  tokenInput.addEventListener("input", () => {
    if (!storage) return;
    const token = tokenInput.value.trim();
    if (token) storage.setItem(TOKEN_KEY, token);
    else storage.removeItem(TOKEN_KEY);
  });
  $("forget").addEventListener("click", () => {
    if (storage) storage.removeItem(TOKEN_KEY);
    tokenInput.value = "";
    say("The token is forgotten.");
    tokenInput.focus();
  });
  function authHeaders() {
    const token = tokenInput.value.trim();
    return token ? { Authorization: `Bearer ${token}` } : {};
  }

  // -- the status region ------------------------------------------------------------------------
  function say(text, kind = "") {
    statusBox.className = kind;
    statusBox.textContent = text;
  }

  /** The server's error message for a failed response (its body is {"error": {code, message}}). */
  async function errorOf(res) {
    let body = null;
    try {
      body = await res.json();
    } catch {
      // not JSON: a proxy's page, say
    }
    const err = body && body.error;
    return {
      code: (err && typeof err.code === "string" && err.code) || `http_${res.status}`,
      message: (err && typeof err.message === "string" && err.message) || `HTTP ${res.status}`,
    };
  }

  // -- the list -----------------------------------------------------------------------------------
  const DASH = "—";
  const show = (value) => (value === null || value === undefined || value === "" ? DASH : String(value));

  function viewHref(url) {
    if (typeof url !== "string") return null;
    try {
      const target = new URL(url, location.href);
      return target.origin === location.origin ? target.href : null;
    } catch {
      return null;
    }
  }

  function when(iso) {
    if (typeof iso !== "string" || !iso) return document.createTextNode(DASH);
    const time = document.createElement("time");
    time.dateTime = iso;
    const date = new Date(iso);
    time.textContent = Number.isNaN(date.getTime())
      ? iso
      : date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
    time.title = iso;
    return time;
  }

  function cell(content, className) {
    const td = document.createElement("td");
    if (className) td.className = className;
    if (content instanceof Node) td.append(content);
    else td.textContent = content;
    return td;
  }

  function row(doc) {
    const title = typeof doc.title === "string" && doc.title ? doc.title : String(doc.doc_id);
    const tr = document.createElement("tr");
    tr.dataset.docId = doc.doc_id;
    const href = viewHref(doc.url);
    let name;
    if (href) {
      name = document.createElement("a");
      name.href = href;
      name.textContent = title;
    } else {
      name = document.createTextNode(title);
    }
    const id = document.createElement("code");
    id.textContent = doc.doc_id;
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "danger";
    remove.textContent = "Delete";
    remove.setAttribute("aria-label", `Delete ${title}`);
    remove.addEventListener("click", () => deleteDocument(doc.doc_id, title, remove));
    tr.append(
      cell(name, "title"),
      cell(id),
      cell(show(doc.format)),
      cell(show(doc.pages), "num"),
      cell(show(doc.chunks), "num"),
      cell(when(doc.updated_at || doc.added_at)),
      cell(remove),
    );
    return tr;
  }

  let listing = 0; // the latest refresh wins when two overlap
  async function refresh() {
    const mine = ++listing;
    tbody.parentElement.setAttribute("aria-busy", "true");
    try {
      const res = await fetch("/documents", { cache: "no-store" });
      if (!res.ok) throw new Error((await errorOf(res)).message);
      const { documents } = await res.json();
      if (mine !== listing) return;
      tbody.replaceChildren(...documents.map(row));
      caption.textContent =
        documents.length === 1 ? "1 document" : `${documents.length} documents`;
    } catch (exc) {
      if (mine !== listing) return;
      caption.textContent = "The documents could not be loaded.";
      say(`Could not load the documents: ${exc.message || exc}`, "error");
    } finally {
      if (mine === listing) tbody.parentElement.removeAttribute("aria-busy");
    }
  }
  refreshButton.addEventListener("click", refresh);

  // -- delete ---------------------------------------------------------------------------------------
  const encodeId = (docId) => docId.split("/").map(encodeURIComponent).join("/");

  async function deleteDocument(docId, title, button) {
    if (!window.confirm(`Delete “${title}” (${docId})?\nIt will no longer be searched or cited.`)) {
      return;
    }
    button.disabled = true;
    say(`Deleting “${title}”…`);
    try {
      const res = await fetch(`/documents/${encodeId(docId)}`, {
        method: "DELETE",
        headers: authHeaders(),
      });
      if (res.ok) {
        say(`Deleted “${title}”.`, "ok");
      } else {
        say(`Could not delete “${title}”: ${(await errorOf(res)).message}`, "error");
      }
    } catch {
      say(`Could not delete “${title}”: the server cannot be reached.`, "error");
    } finally {
      button.disabled = false;
      await refresh();
    }
  }

  // -- upload ---------------------------------------------------------------------------------------
  let uploading = false;

  function setBusy(busy) {
    uploading = busy;
    fileInput.disabled = busy;
    drop.setAttribute("aria-busy", String(busy));
    progress.hidden = !busy;
    if (busy) progress.removeAttribute("value"); // indeterminate until a figure arrives
  }

  /** POST the files as multipart "files"; resolves to {status, body} (XHR: upload progress). */
  function post(files) {
    return new Promise((resolve, reject) => {
      const form = new FormData();
      for (const file of files) form.append("files", file, file.name);
      const xhr = new XMLHttpRequest();
      xhr.open("POST", "/documents");
      for (const [name, value] of Object.entries(authHeaders())) xhr.setRequestHeader(name, value);
      xhr.responseType = "text";
      xhr.upload.addEventListener("progress", (e) => {
        if (e.lengthComputable) progress.value = e.loaded / e.total;
      });
      xhr.addEventListener("load", () => {
        let body = null;
        try {
          body = JSON.parse(xhr.responseText);
        } catch {
          // not JSON
        }
        resolve({ status: xhr.status, body });
      });
      xhr.addEventListener("error", () => reject(
          new Error("the upload did not complete (the server cannot be reached, or it closed " +
            "the connection: too large an upload?)"),
        ));
      xhr.addEventListener("abort", () => reject(new Error("the upload was aborted")));
      xhr.send(form);
    });
  }

  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  /** Poll GET /jobs/{id} until the job is done or failed; resolves to the final job. */
  async function follow(job) {
    for (;;) {
      if (job.state === "done" || job.state === "failed") return job;
      if (typeof job.progress === "number") progress.value = job.progress;
      const pct = typeof job.progress === "number" ? ` ${Math.round(job.progress * 100)}%` : "";
      say(`Indexing: ${job.state === "queued" ? "queued" : "running"}${pct}…`);
      await sleep(POLL_MS);
      const res = await fetch(`/jobs/${encodeURIComponent(job.id)}`, { cache: "no-store" });
      if (!res.ok) throw new Error((await errorOf(res)).message);
      job = await res.json();
    }
  }

  const VERBS = { added: "added", replaced: "replaced", unchanged: "unchanged" };
  function summary(documents) {
    if (!documents || !documents.length) return "Nothing was added.";
    const lines = documents.map((d) => {
      const chunks = typeof d.chunks === "number" ? `, ${d.chunks} chunks` : "";
      // e.g. PDF pages without text: scans are not searchable, and the user should know
      const noticed = Array.isArray(d.warnings) && d.warnings.length ? ` (${d.warnings.join("; ")})` : "";
      return `“${d.title || d.doc_id}” (${d.doc_id}): ${VERBS[d.status] || String(d.status)}${chunks}${noticed}`;
    });
    const head = documents.length === 1 ? "Uploaded 1 document:" : `Uploaded ${documents.length} documents:`;
    return [head, ...lines].join("\n");
  }

  async function upload(fileList) {
    const files = Array.from(fileList || []);
    if (!files.length || uploading) return;
    setBusy(true);
    const names = files.map((f) => f.name).join(", ");
    say(`Uploading ${names}…`);
    try {
      const { status, body } = await post(files);
      if (status === 202 && body && body.job) {
        const job = await follow(body.job);
        if (job.state === "failed") {
          const message = (job.error && job.error.message) || "the indexing job failed";
          say(`Upload failed: ${message}`, "error");
        } else {
          say(summary(job.documents), "ok");
        }
      } else if (status >= 200 && status < 300) {
        say(summary(body && body.documents), "ok");
      } else {
        const err = body && body.error;
        const message = (err && typeof err.message === "string" && err.message) || `HTTP ${status}`;
        say(`Upload failed: ${message}`, "error");
      }
    } catch (exc) {
      say(`Upload failed: ${exc.message || exc}`, "error");
    } finally {
      setBusy(false);
      fileInput.value = "";
      await refresh();
    }
  }

  fileInput.addEventListener("change", () => upload(fileInput.files));

  // Drag and drop onto the zone; a file dropped elsewhere must not navigate away from the page.
  for (const type of ["dragover", "drop"]) {
    window.addEventListener(type, (e) => {
      if (e.dataTransfer && Array.from(e.dataTransfer.types || []).includes("Files")) {
        e.preventDefault();
      }
    });
  }
  drop.addEventListener("dragenter", (e) => {
    e.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragover", (e) => {
    e.preventDefault();
    if (e.dataTransfer) e.dataTransfer.dropEffect = "copy";
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", (e) => {
    if (!drop.contains(e.relatedTarget)) drop.classList.remove("over");
  });
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer) upload(e.dataTransfer.files);
  });

  refresh();
})();
