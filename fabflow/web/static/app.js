/* fabflow UI: what every page shares. No framework; DOM built with el() so that data from the
   API is always inserted as text, never parsed as HTML. */
"use strict";

const ff = (() => {
  const csrf = document.querySelector('meta[name="csrf-token"]')?.content || "";

  class ApiError extends Error {
    constructor(status, body) {
      super(body?.message || `HTTP ${status}`);
      this.status = status;
      this.code = body?.code;
      this.problems = body?.problems || [];
    }
  }

  /* fetch() for the JSON API: the session cookie goes along, unsafe methods carry the CSRF
     token, a 401 (session gone, key revoked) sends the browser to sign in. */
  async function api(method, path, body, raw = false) {
    const headers = { Accept: "application/json" };
    if (method !== "GET") headers["X-CSRF-Token"] = csrf;
    let payload;
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      payload = raw ? body : JSON.stringify(body);
    }
    const response = await fetch(path, { method, headers, body: payload, credentials: "same-origin" });
    if (response.status === 401) {
      location.assign("/signin?next=" + encodeURIComponent(location.pathname + location.search));
      throw new ApiError(401, { message: "signed out" });
    }
    const data = response.status === 204 ? null : await response.json().catch(() => null);
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (key === "class") node.className = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    append(node, children);
    return node;
  }

  function append(node, children) {
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  const STATES = {
    pending: ["◷", "Pending"],
    running: ["▶", "Running"],
    waiting: ["⏸", "Waiting"],
    succeeded: ["✓", "Succeeded"],
    failed: ["✖", "Failed"],
    cancelled: ["⊘", "Cancelled"],
  };
  const OUTCOMES = {
    success: ["✓", "Success"],
    error: ["✖", "Error"],
    timeout: ["⏱", "Timeout"],
    waiting: ["⏸", "Waiting"],
  };

  function badge(kind, table, prefix) {
    const [icon, word] = table[kind] || ["•", kind || "unknown"];
    return el("span", { class: `badge ${prefix}-${kind}` }, el("span", { class: "icon", "aria-hidden": "true" }, icon), word);
  }
  const stateBadge = (state) => badge(state, STATES, "s");
  const outcomeBadge = (outcome) => badge(outcome, OUTCOMES, "o");

  function bytes(n) {
    if (n === null || n === undefined) return "–";
    if (n < 1024) return `${n} B`;
    if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
    return `${(n / 1024 / 1024).toFixed(2)} MB`;
  }
  function duration(ms) {
    if (ms === null || ms === undefined) return "–";
    return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
  }
  function when(iso) {
    if (!iso) return "–";
    const d = new Date(iso);
    return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
  }
  function timeEl(iso) {
    return el("time", { datetime: iso || "" }, when(iso));
  }
  const number = (n, digits = 0) =>
    n === null || n === undefined ? "–" : Number(n).toLocaleString(undefined, { maximumFractionDigits: digits });

  /* Why a failed execution failed: its lastError, else its last attempt that did not succeed
     (an execution that ends without an error path may carry no lastError). */
  function failureOf(execution) {
    if (!execution || execution.state !== "failed") return null;
    if (execution.lastError) return execution.lastError;
    const attempt = [...(execution.attempts || [])].reverse().find((a) => a.outcome && a.outcome !== "success");
    return attempt ? { stepDefinitionId: attempt.stepDefinitionId, ...(attempt.error || { type: attempt.outcome, message: "" }) } : null;
  }

  /* An error's type (the short stable word a step raises, kept for onError's templates and
     the API) in an operator's words; a type not listed here (a plugin's) reads as itself. */
  const ERROR_WORDS = {
    http_status: "HTTP error",
    timeout: "Timed out",
    connection: "Could not connect",
    tls: "Secure connection failed",
    outbound_refused: "Address not allowed",
    header_injection: "Unsafe header",
    options: "Invalid step options",
    template: "Template error",
    recipient: "Invalid recipient",
    smtp: "Mail server error",
    parameters: "Invalid parameters",
    mesh_check: "Model check failed",
    render: "Model did not render",
    worker_crashed: "Production worker crashed",
    storage: "Storage error",
    secrets: "Secret unavailable",
    expression: "Choice expression error",
    rejected: "Rejected",
    callback: "Failed by callback",
    internal: "Internal error",
    error: "Error",
  };
  const errorWord = (type) => ERROR_WORDS[type] || String(type || "error").replaceAll("_", " ");

  /* The browser may be reached through another host name than FABFLOW_PUBLIC_URL: links to our
     own API are made relative so the session cookie always goes along. */
  function local(url) {
    try {
      const u = new URL(url, location.href);
      return u.pathname + u.search;
    } catch {
      return url;
    }
  }

  function toast(message, bad = false) {
    const box = document.getElementById("toast");
    const item = el("div", { class: bad ? "bad" : "" }, message);
    box.append(item);
    setTimeout(() => item.remove(), bad ? 8000 : 4000);
  }

  /* A confirmation in the page's <dialog>; resolves true only on the confirm button. */
  function confirm(title, text, okLabel = "Confirm", danger = false) {
    const dialog = document.getElementById("confirm");
    dialog.querySelector("#confirm-title").textContent = title;
    dialog.querySelector("#confirm-text").textContent = text;
    const ok = dialog.querySelector("#confirm-ok");
    ok.textContent = okLabel;
    ok.className = danger ? "danger" : "primary";
    dialog.returnValue = "";
    dialog.showModal();
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    });
  }

  /* Server-sent events of the tenant's orders; the indicator says whether we are live. A new
     stream starts after the newest event at the time it opens, so handlers.open reloads what
     the page shows: whatever changed between the page's first load and the stream's start. */
  function live(handlers, indicator) {
    const source = new EventSource("/api/orders/stream");
    source.addEventListener("open", () => handlers.open?.());
    const show = (on, text) => {
      if (!indicator) return;
      indicator.dataset.on = String(on);
      indicator.textContent = text;
    };
    source.addEventListener("open", () => show(true, "Live"));
    source.addEventListener("error", () => show(false, "Reconnecting…"));
    source.addEventListener("order", (e) => handlers.order?.(JSON.parse(e.data)));
    source.addEventListener("counts", (e) => handlers.counts?.(JSON.parse(e.data)));
    // The session's key was revoked: the stream ended, and so did the session.
    source.addEventListener("revoked", () => {
      source.close();
      location.assign("/signin?next=" + encodeURIComponent(location.pathname + location.search));
    });
    window.addEventListener("pagehide", () => source.close());
    return source;
  }

  /* Run fn at most once per `ms`, and once more after the last call (live refreshes). */
  function throttle(fn, ms) {
    let timer = null;
    let again = false;
    return function run() {
      if (timer) {
        again = true;
        return;
      }
      fn();
      timer = setTimeout(() => {
        timer = null;
        if (again) {
          again = false;
          run();
        }
      }, ms);
    };
  }

  function debounce(fn, ms) {
    let timer = null;
    return (...args) => {
      clearTimeout(timer);
      timer = setTimeout(() => fn(...args), ms);
    };
  }

  return {
    api, ApiError, el, append, stateBadge, outcomeBadge, bytes, duration, when, timeEl, number,
    local, toast, confirm, live, throttle, debounce, failureOf, errorWord, STATES,
  };
})();
