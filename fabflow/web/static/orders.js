/* Orders: filters and sort in the URL (so a view can be shared), counts that follow the
   filters, compact rows, relative times, bulk retry and cancel, live updates. */
"use strict";

(() => {
  const { api, el, stateBadge, throttle, debounce } = ff;
  const form = document.getElementById("filters");
  const tbody = document.querySelector("#orders tbody");
  const more = document.getElementById("more");
  const empty = document.getElementById("empty");
  const countsBox = document.getElementById("counts");
  // What the URL holds. from/to are days (the browser's), sent as createdAfter/createdBefore.
  const FILTERS = ["q", "state", "status", "flowId", "from", "to", "waitingFor", "health", "sort"];
  const DEFAULT_SORT = "-created";
  const FIRST_DESCENDING = new Set(["created", "updated"]); // a first click shows the newest
  const PAGE = 50;
  let shown = 0; // rows on screen: a live refresh reloads that many
  let cursor = null;
  let known = new Map(); // order id -> updatedAt, to flash rows that changed
  let lastCounts = {};
  const statuses = new Set();

  /* The page's state as URL parameters: what the form shows (the default sort left out). */
  function filters() {
    const params = new URLSearchParams();
    for (const name of FILTERS) {
      const value = fieldValue(form.elements[name]);
      if (value && !(name === "sort" && value === DEFAULT_SORT)) params.set(name, value);
    }
    return params;
  }

  /* The API's filters for the page's state: days become instants at the browser's midnight,
     "to" included (the API's createdBefore is exclusive). */
  function apiFilters() {
    const params = filters();
    params.delete("sort");
    for (const [name, api, days] of [["from", "createdAfter", 0], ["to", "createdBefore", 1]]) {
      const day = params.get(name);
      params.delete(name);
      if (day) params.set(api, midnight(day, days).toISOString());
    }
    return params;
  }

  function midnight(day, plusDays) {
    const [y, m, d] = day.split("-").map(Number);
    return new Date(y, m - 1, d + plusDays);
  }

  /* The URL's filters, applied once the flows are listed (a flow filter set before its option
     exists would be dropped while the link still shows it). A value a select does not offer
     (?state=bogus) is said, not silently ignored. */
  function fromUrl() {
    const params = new URLSearchParams(location.search);
    const unknown = [];
    for (const name of FILTERS) {
      const field = form.elements[name];
      const wanted = params.get(name) || (name === "sort" ? DEFAULT_SORT : "");
      setField(field, wanted);
      if (field.tagName === "SELECT" && wanted && field.value !== wanted) {
        unknown.push(`${name}=${wanted}`);
        setField(field, name === "sort" ? DEFAULT_SORT : "");
      }
      if (field.type === "date" && wanted && field.value !== wanted) unknown.push(`${name}=${wanted}`);
    }
    if (unknown.length) ff.toast(`Ignored filter${unknown.length > 1 ? "s" : ""} this list does not know: ${unknown.join(", ")}`, true);
  }

  /* A checkbox filter ("Waiting for you") is its value when ticked, nothing otherwise. */
  function fieldValue(field) {
    if (field.type === "checkbox") return field.checked ? field.value : "";
    return field.value.trim();
  }

  function setField(field, value) {
    if (field.type === "checkbox") field.checked = value === field.value;
    else field.value = value;
  }

  async function load(append = false, limit = PAGE) {
    const params = apiFilters();
    params.set("sort", form.elements.sort.value || DEFAULT_SORT);
    params.set("limit", String(Math.min(200, Math.max(limit, PAGE))));
    if (append && cursor) params.set("cursor", cursor);
    const page = await api("GET", "/api/orders?" + params);
    cursor = page.nextCursor;
    render(page.orders, append);
    counts(page.counts);
    unhealthyCount(page.healthCounts);
    bulkButtons();
    sortHeaders();
    more.hidden = !cursor;
  }

  function render(orders, append) {
    const previous = known;
    // A live refresh rebuilds the rows: keep the keyboard focus on the same order's link.
    const focused = document.activeElement?.closest?.("tr[data-order-id]")?.dataset.orderId;
    if (!append) {
      tbody.replaceChildren();
      known = new Map();
    }
    for (const order of orders) {
      const changed = previous.has(order.id) && previous.get(order.id) !== order.updatedAt;
      tbody.append(row(order, changed));
      known.set(order.id, order.updatedAt);
      if (order.status) statuses.add(order.status);
    }
    if (focused) tbody.querySelector(`tr[data-order-id="${CSS.escape(focused)}"] a`)?.focus();
    shown = tbody.rows.length;
    empty.hidden = shown > 0;
    document.getElementById("known-statuses").replaceChildren(...[...statuses].sort().map((s) => el("option", { value: s })));
  }

  /* One line per order: what it is, where its run is, and when it last moved. */
  function row(order, changed) {
    const execution = order.execution || {};
    const state = execution.state || "pending";
    const unhealthy = order.health?.state === "unhealthy";
    const customer = order.customer || {};
    return el(
      "tr",
      {
        class: [state === "failed" && "failed", unhealthy && "unhealthy", changed && "flash"].filter(Boolean).join(" ") || null,
        dataset: { orderId: order.id, state, health: order.health?.state || "healthy" },
      },
      el(
        "td",
        { class: "order", "data-label": "Order" },
        el("a", { href: `/orders/${encodeURIComponent(order.id)}`, class: "mono" }, order.id),
        order.externalId ? el("span", { class: "ext", title: "External id" }, order.externalId) : null,
      ),
      el("td", { class: "customer", "data-label": "Customer", title: customer.email || null }, customer.name || customer.email || "–"),
      el("td", { class: "flow", "data-label": "Flow" }, `${order.flowId} v${order.flowVersion}`),
      el("td", { class: "status", "data-label": "Status" }, order.status || el("span", { class: "muted" }, "none yet")),
      el("td", { class: "state", "data-label": "Execution" }, stateBadge(state), unhealthyBadge(order, unhealthy), whereItIs(execution, unhealthy)),
      el("td", { class: "when", "data-label": "Created" }, relativeTime(order.createdAt)),
      el("td", { class: "when", "data-label": "Updated" }, relativeTime(order.updatedAt)),
    );
  }

  function unhealthyBadge(order, unhealthy) {
    if (!unhealthy) return null;
    const reason = order.health.reason || "";
    return [
      el("span", { class: "badge h-unhealthy", title: reason }, el("span", { class: "icon", "aria-hidden": "true" }, "⚠"), "Unhealthy"),
      el("span", { class: "warn-reason", title: reason }, reason),
    ];
  }

  /* The current step, and the last error (a failed order's, or a failing step's retried;
     an unhealthy order's reason says it already). */
  function whereItIs(execution, unhealthy) {
    const error = unhealthy ? null : lastError(execution);
    const step = execution.currentStep;
    const parts = [];
    if (step && execution.state !== "succeeded") parts.push(el("span", { class: "step mono", title: "Current step" }, step));
    if (error) {
      const text = `${error.stepDefinitionId}: ${error.message || error.type || "error"}`;
      parts.push(el("span", { class: "err", title: text }, text));
    }
    return parts.length ? el("span", { class: "where" }, parts) : null;
  }

  function lastError(execution) {
    const failure = ff.failureOf(execution);
    if (failure || execution.state === "succeeded" || execution.state === "cancelled") return failure;
    const latest = (execution.attempts || []).at(-1);
    const failed = [...(execution.attempts || [])].reverse().find((a) => a.error);
    // A step being retried: its last failed attempt is the one before the queued retry.
    if (!failed || !latest || latest.stepDefinitionId !== failed.stepDefinitionId) return null;
    return { stepDefinitionId: failed.stepDefinitionId, ...failed.error };
  }

  /* "3 min ago", the exact time on hover; kept current by tick(). */
  function relativeTime(iso) {
    if (!iso) return "–";
    return el("time", { datetime: iso, title: ff.when(iso), dataset: { rel: "" } }, ago(iso));
  }

  const UNITS = [
    ["year", 365 * 86400],
    ["month", 30 * 86400],
    ["day", 86400],
    ["hour", 3600],
    ["minute", 60],
    ["second", 1],
  ];
  const words = new Intl.RelativeTimeFormat(undefined, { numeric: "auto", style: "short" });

  function ago(iso) {
    const seconds = (new Date(iso).getTime() - Date.now()) / 1000;
    if (Math.abs(seconds) < 10) return "just now";
    const [unit, size] = UNITS.find(([, s]) => Math.abs(seconds) >= s) || UNITS.at(-1);
    return words.format(Math.round(seconds / size), unit);
  }

  function tick() {
    for (const time of tbody.querySelectorAll("time[data-rel]")) time.textContent = ago(time.dateTime);
  }

  /* The orders going badly, with the filter that shows them only. */
  function unhealthyCount(healthCounts) {
    const n = healthCounts?.unhealthy ?? 0;
    const box = document.getElementById("unhealthy-count");
    box.hidden = n === 0 && !form.elements.health.checked;
    box.querySelector(".n").textContent = String(n);
  }

  function counts(byState) {
    lastCounts = byState;
    const current = form.elements.state.value;
    const total = Object.values(byState).reduce((a, b) => a + b, 0);
    const buttons = [countButton("", "All", total, current === "")];
    for (const [state, [icon, word]] of Object.entries(ff.STATES)) {
      buttons.push(countButton(state, `${icon} ${word}`, byState[state] || 0, current === state));
    }
    countsBox.replaceChildren(...buttons);
    const filtered = [...apiFilters().keys()].some((k) => k !== "state");
    document.getElementById("counts-note").textContent = filtered
      ? "Counts follow the filters: each state counts the orders the other filters keep."
      : "Counts of all the tenant's orders, by execution state.";
  }

  function countButton(state, label, n, pressed) {
    return el(
      "button",
      {
        type: "button",
        class: state ? `badge s-${state}` : "badge",
        "aria-pressed": String(pressed),
        dataset: { state },
        onclick: () => {
          form.elements.state.value = state;
          changed();
        },
      },
      label,
      " ",
      el("span", { class: "n" }, String(n)),
    );
  }

  /* "Retry all N" on a view of failed or cancelled orders, "Cancel all N" on one of orders
     not ended: N is the state's count under the filters, the API acts on the same filters. */
  const RETRYABLE = new Set(["failed", "cancelled"]);
  const CANCELLABLE = new Set(["pending", "running", "waiting"]);

  function bulkButtons() {
    const state = form.elements.state.value;
    const n = lastCounts[state] || 0;
    const retry = document.getElementById("bulk-retry");
    const cancel = document.getElementById("bulk-cancel");
    retry.hidden = !(RETRYABLE.has(state) && n > 0);
    cancel.hidden = !(CANCELLABLE.has(state) && n > 0);
    for (const button of [retry, cancel]) button.querySelector(".n").textContent = String(n);
    const bar = document.getElementById("bulk");
    bar.hidden = retry.hidden && cancel.hidden;
    document.getElementById("bulk-hint").textContent = n > 1000 ? "At most 1,000 at once: narrow the filters." : "";
  }

  async function bulk(action) {
    const state = form.elements.state.value;
    const n = lastCounts[state] || 0;
    const verb = action === "retry" ? "Retry" : "Cancel";
    const what = `${n} ${state} order${n === 1 ? "" : "s"}`;
    const text = action === "retry" ? `Run the failed step of ${what} again, then continue their flows.` : `Cancel ${what}. A running step loses its lease.`;
    if (!(await ff.confirm(`${verb} all ${n}?`, text, `${verb} all ${n}`, action === "cancel"))) return;
    const filter = Object.fromEntries(apiFilters());
    const result = await api("POST", `/api/orders/bulk/${action}`, { filter });
    const done = action === "retry" ? "Retried" : "Cancelled";
    const reasons = [...new Set(result.skipped.map((s) => s.reason))].slice(0, 2).join("; ");
    ff.toast(`${done} ${result.actedCount} of ${result.matched}` + (result.skippedCount ? `; skipped ${result.skippedCount}: ${reasons}` : "."));
    load(false, shown).catch(fail);
  }

  /* Column headers sort (the same as the "Sort by" box): a second click reverses. */
  function sortHeaders() {
    const sort = form.elements.sort.value || DEFAULT_SORT;
    const key = sort.replace(/^-/, "");
    for (const th of document.querySelectorAll("#orders th[data-sort]")) {
      if (th.dataset.sort === key) th.setAttribute("aria-sort", sort.startsWith("-") ? "descending" : "ascending");
      else th.removeAttribute("aria-sort");
    }
    const label = form.elements.sort.selectedOptions[0]?.textContent || "";
    document.getElementById("orders-caption").textContent = `Orders, ${label.toLowerCase()}`;
  }

  function sortBy(key) {
    const current = form.elements.sort.value || DEFAULT_SORT;
    let next = FIRST_DESCENDING.has(key) ? `-${key}` : key;
    if (current.replace(/^-/, "") === key) next = current.startsWith("-") ? key : `-${key}`;
    form.elements.sort.value = next;
    changed();
  }

  async function loadFlows() {
    const { flows } = await api("GET", "/api/flows?archived=true");
    const select = form.elements.flowId;
    for (const flow of flows) select.append(el("option", { value: flow.id }, flow.name && flow.name !== flow.id ? `${flow.id} (${flow.name})` : flow.id));
  }

  function changed() {
    const params = filters();
    history.replaceState(null, "", params.size ? "?" + params : location.pathname);
    load().catch(fail);
  }

  function fail(error) {
    ff.toast(`Could not load orders: ${error.message}`, true);
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    changed();
  });
  form.addEventListener("change", (e) => {
    if (e.target.name !== "q") changed();
  });
  form.elements.q.addEventListener("input", debounce(changed, 250));
  form.addEventListener("reset", () => setTimeout(changed, 0));
  more.addEventListener("click", () => load(true).catch(fail));
  for (const th of document.querySelectorAll("#orders th[data-sort]")) {
    th.querySelector("button").addEventListener("click", () => sortBy(th.dataset.sort));
  }
  document.getElementById("bulk-retry").addEventListener("click", () => bulk("retry").catch(fail));
  document.getElementById("bulk-cancel").addEventListener("click", () => bulk("cancel").catch(fail));
  setInterval(tick, 15_000);

  const refresh = throttle(() => load(false, shown).catch(fail), 700);
  loadFlows()
    .catch(fail)
    .finally(() => {
      fromUrl();
      load().catch(fail);
    });
  // The stream's counts are the whole tenant's: the list reloads its own, under its filters.
  ff.live({ order: refresh, open: refresh, counts: refresh }, document.getElementById("live"));
})();
