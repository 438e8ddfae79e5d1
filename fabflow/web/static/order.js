/* One order: what happened, why it failed, its files, and the operator's actions. */
"use strict";

(() => {
  const { api, el, stateBadge, outcomeBadge, timeEl, duration, bytes, number, local, throttle } = ff;
  const root = document.getElementById("order");
  const orderId = root.dataset.orderId;
  const path = `/api/orders/${encodeURIComponent(orderId)}`;
  let steps = null; // step ids of the order's flow version, for "Rerun from"
  let busy = false;
  let chosenStep = null; // kept across live refreshes, which rebuild the page
  const openOutputs = new Set(); // steps whose "Output" the operator opened, kept likewise

  async function load() {
    const order = await api("GET", path);
    if (steps === null) steps = await flowSteps(order).catch(() => []);
    const focused = document.activeElement?.id;
    announce(order);
    root.replaceChildren(...view(order));
    root.setAttribute("aria-busy", "false");
    if (focused) document.getElementById(focused)?.focus();
  }

  /* The page is rebuilt on every change; only the state change is read out to screen readers. */
  let lastState = null;
  function announce(order) {
    const state = order.execution?.state;
    if (lastState !== null && state !== lastState) {
      document.getElementById("announce").textContent = `Order ${ff.STATES[state]?.[1] || state}; status ${order.status || "none"}`;
    }
    lastState = state;
  }

  async function flowSteps(order) {
    const flow = await api("GET", `/api/flows/${encodeURIComponent(order.flowId)}/versions/${order.flowVersion}`);
    return flow.steps.map((s) => s.stepDefinitionId);
  }

  function view(order) {
    const execution = order.execution || { state: "pending", attempts: [] };
    return [
      header(order, execution),
      failure(execution),
      health(order, execution),
      ffConfirmation.panel(order, load),
      actions(execution),
      el("div", { class: "grid2" }, history(order), lines(order)),
      timeline(execution, order.steps || {}),
      files(order),
    ].filter(Boolean); // replaceChildren would write a null as the text "null"
  }

  function header(order, execution) {
    const customer = order.customer || {};
    const facts = [
      ["Status", order.status || "none yet"],
      ["External id", order.externalId || "–"],
      ["Customer", [customer.name, customer.email].filter(Boolean).join(" · ") || "–"],
      ["Flow", `${order.flowId} version ${order.flowVersion}`],
      ["Current step", execution.currentStep || "–"],
      ["Created", timeEl(order.createdAt)],
      ["Updated", timeEl(order.updatedAt)],
    ];
    return el(
      "section",
      { class: "panel", "aria-labelledby": "order-h" },
      el("div", { class: "detail-head" }, el("h1", { id: "order-h", class: "mono" }, order.id), el("span", { id: "state" }, stateBadge(execution.state))),
      el("dl", { class: "facts" }, facts.map(([k, v]) => el("div", {}, el("dt", {}, k), el("dd", { dataset: { fact: k } }, v)))),
    );
  }

  function failure(execution) {
    const error = ff.failureOf(execution);
    if (!error) return null;
    return el(
      "div",
      { class: "alert", role: "alert", id: "failure" },
      el("strong", {}, `✖ Failed at step “${error.stepDefinitionId}”`),
      `${error.type}: ${error.message}`,
    );
  }

  /* An order that is not ended but is not going well: why, when the next attempt runs, and
     (while a retry waits out its backoff) Retry now. */
  function health(order, execution) {
    const h = order.health;
    if (!h || h.state !== "unhealthy") return null;
    const attempts = execution.attempts || [];
    const last = attempts[attempts.length - 1];
    const retryQueued = last && last.outcome === "queued" && last.attempt > 1;
    return el(
      "div",
      { class: "alert warn", role: "status", id: "health" },
      el("strong", {}, "⚠ Unhealthy"),
      el("span", { class: "reason" }, h.reason || ""),
      h.nextAttemptAt ? el("span", {}, "Next attempt ", timeEl(h.nextAttemptAt)) : null,
      retryQueued ? el("button", { type: "button", id: "retry-now", class: "primary", onclick: retryNow }, "↻ Retry now") : null,
    );
  }

  async function retryNow() {
    if (busy) return;
    busy = true;
    try {
      await api("POST", path + "/retry-now");
      ff.toast("Retry now: the next attempt runs at once");
      await load();
    } catch (error) {
      ff.toast(`Retry now refused: ${error.message}`, true);
    } finally {
      busy = false;
    }
  }

  function actions(execution) {
    const state = execution.state;
    const ended = ["succeeded", "failed", "cancelled"].includes(state); // a waiting order may be cancelled
    const preferred = chosenStep ?? ff.failureOf(execution)?.stepDefinitionId; // the failed step
    const select = el(
      "select",
      { id: "rerun-step", onchange: (e) => (chosenStep = e.target.value) },
      (steps || []).map((id) => el("option", { value: id, selected: id === preferred }, id)),
    );
    return el(
      "section",
      { class: "panel", "aria-labelledby": "actions-h" },
      el("h2", { id: "actions-h", class: "visually-hidden" }, "Actions"),
      el(
        "div",
        { class: "actions" },
        el("button", { type: "button", id: "retry", class: "primary", disabled: !(state === "failed" || state === "cancelled"), onclick: retry }, "↻ Retry failed step"),
        el("div", { class: "field" }, el("label", { for: "rerun-step" }, "Rerun from step"), select),
        el("button", { type: "button", id: "rerun", disabled: !ended || !(steps || []).length, onclick: () => rerun(select.value) }, "Rerun"),
        el("span", { class: "spacer" }),
        el("button", { type: "button", id: "cancel", class: "danger", disabled: ended, onclick: cancel }, "⊘ Cancel order"),
      ),
    );
  }

  async function act(title, text, label, danger, method, suffix, body) {
    if (busy || !(await ff.confirm(title, text, label, danger))) return;
    busy = true;
    try {
      await api(method, path + suffix, body);
      ff.toast(`${label}: done`);
      await load();
    } catch (error) {
      ff.toast(`${label} refused: ${error.message}`, true);
    } finally {
      busy = false;
    }
  }

  const retry = () => act("Retry this order?", "The failed step runs again, then the flow continues.", "Retry", false, "POST", "/retry");
  const rerun = (step) =>
    act(`Rerun from “${step}”?`, `The flow runs again from step “${step}”; side effects of later steps happen again.`, "Rerun", false, "POST", "/rerun", { stepDefinitionId: step });
  const cancel = () => act("Cancel this order?", "The execution stops; a running step loses its lease. You can retry it later.", "Cancel order", true, "POST", "/cancel");

  function history(order) {
    const items = (order.statusHistory || []).map((h) =>
      el("li", {}, el("strong", {}, h.status), " after step ", el("code", {}, h.stepDefinitionId), " · ", timeEl(h.at)),
    );
    return el(
      "section",
      { class: "panel", "aria-labelledby": "history-h" },
      el("h2", { id: "history-h" }, "Status history"),
      items.length ? el("ol", { id: "history" }, items) : el("p", { class: "muted" }, "No status set yet."),
    );
  }

  function lines(order) {
    return el(
      "section",
      { class: "panel lines", "aria-labelledby": "lines-h" },
      el("h2", { id: "lines-h" }, "Lines"),
      (order.lines || []).map((line) =>
        el(
          "div",
          {},
          el("h3", {}, `Line ${line.id}: ${line.quantity} × ${line.product}`),
          el("dl", {}, Object.entries(line.parameters || {}).map(([k, v]) => [el("dt", {}, k), el("dd", {}, JSON.stringify(v))])),
        ),
      ),
    );
  }

  /* Each step's output (what later steps read as steps.<id>) goes under its latest attempt. */
  function timeline(execution, outputs) {
    const attempts = execution.attempts || [];
    const last = new Map(attempts.map((a, i) => [a.stepDefinitionId, i]));
    const items = attempts.map((a, i) => attempt(a, last.get(a.stepDefinitionId) === i ? outputs[a.stepDefinitionId] : undefined));
    return el(
      "section",
      { class: "panel", "aria-labelledby": "timeline-h" },
      el("h2", { id: "timeline-h" }, "Attempts"),
      attempts.length ? el("ol", { class: "timeline", id: "attempts" }, items) : el("p", { class: "muted" }, "No step has run yet."),
    );
  }

  /* A choice's attempt: which rule matched and where the order went. */
  function route(a) {
    const d = a.details || {};
    if (a.type !== "choice" || !d.next) return null;
    const why = d.rule === null || d.rule === undefined ? "no rule matched: otherwise" : [`rule ${d.rule + 1}: `, el("code", {}, d.when)];
    return el("p", { class: "route", dataset: { next: d.next } }, "Routed (", why, ") → ", el("strong", {}, d.next));
  }

  function output(step, value) {
    if (value === undefined || value === null) return null;
    const toggled = (event) => (event.target.open ? openOutputs.add(step) : openOutputs.delete(step));
    const attrs = { class: "output", open: openOutputs.has(step), ontoggle: toggled };
    return el("details", attrs, el("summary", {}, "Output"), el("pre", {}, JSON.stringify(value, null, 2)));
  }

  const DETAIL_LABELS = {
    httpStatus: "HTTP status",
    smtpReply: "SMTP reply",
    smtpCode: "SMTP code",
    latencyMs: "Latency (ms)",
    files: "Files",
    lines: "Lines",
    messageId: "Message-ID",
    outbox: "Written to",
    recipients: "Recipients",
    prompt: "Prompt",
    link: "Link",
  };
  const LONG_DETAILS = new Set(["responseExcerpt"]);

  function attempt(a, out) {
    const outcome = a.outcome || "running";
    const details = a.details || {};
    const routed = a.type === "choice";
    const shown = Object.entries(details).filter(([k, v]) => !routed && !LONG_DETAILS.has(k) && v !== null && typeof v !== "object" && k !== "responseTruncated");
    return el(
      "li",
      { class: outcome, dataset: { step: a.stepDefinitionId, outcome } },
      el(
        "div",
        { class: "head" },
        el("strong", {}, a.stepDefinitionId),
        el("span", { class: "muted" }, `${a.type} · attempt ${a.attempt}`),
        a.outcome ? outcomeBadge(a.outcome) : el("span", { class: "badge s-running" }, "▶ Running"),
        el("span", {}, duration(a.durationMs)),
        el("span", { class: "muted" }, timeEl(a.startedAt)),
      ),
      a.error ? el("p", { class: "reason" }, el("strong", {}, `${a.error.type}: `), a.error.message) : null,
      ffConfirmation.resolution(a),
      shown.length ? el("dl", {}, shown.map(([k, v]) => el("div", { dataset: { detail: k } }, el("dt", {}, `${DETAIL_LABELS[k] || k}:`), el("dd", {}, String(v))))) : null,
      route(a),
      details.responseExcerpt ? el("details", {}, el("summary", {}, "Response"), el("pre", {}, details.responseExcerpt)) : null,
      output(a.stepDefinitionId, out),
    );
  }

  function files(order) {
    const list = order.files || [];
    return el(
      "section",
      { class: "panel", "aria-labelledby": "files-h" },
      el("h2", { id: "files-h" }, "Production files"),
      list.length ? el("div", { class: "files", id: "files" }, list.map(file)) : el("p", { class: "muted" }, "No files yet."),
    );
  }

  function file(f) {
    const size = f.bbox ? f.bbox.max.map((hi, i) => number(hi - f.bbox.min[i], 1)).join(" × ") + " mm" : "–";
    const facts = [
      ["Line", f.line],
      ["Size", bytes(f.bytes)],
      ["Triangles", number(f.triangles)],
      ["Volume", f.volumeMm3 === undefined ? "–" : `${number(f.volumeMm3, 1)} mm³`],
      ["Dimensions", size],
      ["SHA-256", el("code", { class: "sha", title: f.sha256 }, (f.sha256 || "").slice(0, 16) + "…")],
    ];
    return el(
      "article",
      { class: "file", dataset: { name: f.name, sha256: f.sha256 } },
      f.previewUrl ? el("img", { src: local(f.previewUrl), alt: `Preview of ${f.name}`, loading: "lazy", width: "256", height: "256" }) : null,
      el("h3", {}, f.name),
      el("dl", {}, facts.map(([k, v]) => [el("dt", {}, k), el("dd", {}, v)])),
      el("a", { class: "button", href: local(f.url), download: f.name }, `⬇ Download ${(f.format || "").toUpperCase()}`),
    );
  }

  const refresh = throttle(() => load().catch((e) => ff.toast(`Could not refresh: ${e.message}`, true)), 500);
  load().catch((error) => {
    root.replaceChildren(el("p", { class: "alert", role: "alert" }, error.status === 404 ? `No order ${orderId}.` : `Could not load the order: ${error.message}`));
  });
  ff.live({ order: (event) => event.orderId === orderId && refresh(), open: refresh });
})();
