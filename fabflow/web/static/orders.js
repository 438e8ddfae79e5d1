/* Orders: filters in the URL (so a view can be shared), counts per state, live updates. */
"use strict";

(() => {
  const { api, el, stateBadge, timeEl, throttle, debounce } = ff;
  const form = document.getElementById("filters");
  const tbody = document.querySelector("#orders tbody");
  const more = document.getElementById("more");
  const empty = document.getElementById("empty");
  const countsBox = document.getElementById("counts");
  const FILTERS = ["q", "state", "status", "flowId", "waitingFor", "health"];
  const PAGE = 50;
  let shown = 0; // rows on screen: a live refresh reloads that many
  let cursor = null;
  let known = new Map(); // order id -> updatedAt, to flash rows that changed
  const statuses = new Set();

  function filters() {
    const params = new URLSearchParams();
    for (const name of FILTERS) {
      const value = fieldValue(form.elements[name]);
      if (value) params.set(name, value);
    }
    return params;
  }

  /* The URL's filters, applied once the flows are listed (a flow filter set before its option
     exists would be dropped while the link still shows it). A value a select does not offer
     (?state=bogus) is said, not silently ignored. */
  function fromUrl() {
    const params = new URLSearchParams(location.search);
    const unknown = [];
    for (const name of FILTERS) {
      const field = form.elements[name];
      const wanted = params.get(name) || "";
      setField(field, wanted);
      if (field.tagName === "SELECT" && wanted && field.value !== wanted) unknown.push(`${name}=${wanted}`);
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
    const params = filters();
    params.set("limit", String(Math.min(200, Math.max(limit, PAGE))));
    if (append && cursor) params.set("cursor", cursor);
    const page = await api("GET", "/api/orders?" + params);
    cursor = page.nextCursor;
    render(page.orders, append);
    counts(page.counts);
    unhealthyCount(page.healthCounts);
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

  function row(order, changed) {
    const execution = order.execution || {};
    const state = execution.state || "pending";
    const failed = state === "failed";
    const error = ff.failureOf(execution);
    const unhealthy = order.health?.state === "unhealthy";
    const customer = order.customer || {};
    return el(
      "tr",
      {
        class: [failed && "failed", unhealthy && "unhealthy", changed && "flash"].filter(Boolean).join(" ") || null,
        dataset: { orderId: order.id, state, health: order.health?.state || "healthy" },
      },
      el("td", {}, el("a", { href: `/orders/${encodeURIComponent(order.id)}`, class: "mono" }, order.id)),
      el("td", {}, order.externalId || "–"),
      el("td", {}, customer.name || "–", customer.email ? el("div", { class: "muted" }, customer.email) : null),
      el("td", { class: "hide-narrow" }, `${order.flowId} v${order.flowVersion}`),
      el("td", { class: "status" }, order.status || el("span", { class: "muted" }, "none yet")),
      el(
        "td",
        { class: "state" },
        stateBadge(state),
        unhealthy ? el("span", { class: "badge h-unhealthy", title: order.health.reason || "" }, el("span", { class: "icon", "aria-hidden": "true" }, "⚠"), "Unhealthy") : null,
        unhealthy ? el("span", { class: "warn-reason" }, order.health.reason || "") : null,
        error ? el("span", { class: "err" }, `${error.stepDefinitionId}: ${error.message}`) : null,
      ),
      el("td", { class: "hide-narrow" }, timeEl(order.updatedAt)),
    );
  }

  /* The orders going badly, with the filter that shows them only. */
  function unhealthyCount(healthCounts) {
    const n = healthCounts?.unhealthy ?? 0;
    const box = document.getElementById("unhealthy-count");
    box.hidden = n === 0 && !form.elements.health.checked;
    box.querySelector(".n").textContent = String(n);
  }

  function counts(byState) {
    const current = form.elements.state.value;
    const total = Object.values(byState).reduce((a, b) => a + b, 0);
    const buttons = [countButton("", "All", total, current === "")];
    for (const [state, [icon, word]] of Object.entries(ff.STATES)) {
      buttons.push(countButton(state, `${icon} ${word}`, byState[state] || 0, current === state));
    }
    countsBox.replaceChildren(...buttons);
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

  const refresh = throttle(() => load(false, shown).catch(fail), 700);
  loadFlows()
    .catch(fail)
    .finally(() => {
      fromUrl();
      load().catch(fail);
    });
  ff.live({ order: refresh, open: refresh, counts }, document.getElementById("live"));
})();
