/* One order: its run drawn on its flow, what happened (attempts and the operators' actions, in
   order), why it failed, its data and files, and the operator's actions. */
"use strict";

(() => {
  const { api, el, stateBadge, outcomeBadge, timeEl, duration, bytes, number, local, throttle } = ff;
  const root = document.getElementById("order");
  const orderId = root.dataset.orderId;
  const path = `/api/orders/${encodeURIComponent(orderId)}`;
  const flows = new Map(); // version -> the flow at that version (versions never change)
  let busy = false;
  let current = null; // the order as last loaded
  let pickedStep = null; // the step whose attempts the operator asked to see, kept across refreshes
  const openOutputs = new Set(); // steps whose "Output" the operator opened, kept likewise
  const openResponses = new Set(); // attempts whose "Response" the operator opened, likewise

  async function load() {
    const [order, events] = await Promise.all([api("GET", path), api("GET", path + "/events").then((b) => b.events, () => [])]);
    current = order;
    const flow = await flowOf(order.flowVersion).catch(() => null);
    const focused = document.activeElement?.id;
    const focusedStep = document.activeElement?.closest?.("#run-diagram .node")?.dataset.step;
    const scrolled = document.getElementById("run-diagram")?.scrollLeft;
    announce(order);
    root.replaceChildren(...view(order, flow, events));
    root.setAttribute("aria-busy", "false");
    if (focused) document.getElementById(focused)?.focus();
    if (focusedStep) root.querySelector(`#run-diagram .node[data-step="${CSS.escape(focusedStep)}"]`)?.focus();
    scrollRun(scrolled);
  }

  /* On a narrow screen the drawing scrolls sideways: first show the step that needs the
     operator (failed, running, waiting), then keep where they scrolled across refreshes. */
  function scrollRun(scrolled) {
    const box = document.getElementById("run-diagram");
    if (!box || box.scrollWidth <= box.clientWidth) return;
    if (scrolled !== undefined) {
      box.scrollLeft = scrolled;
      return;
    }
    const needing = ["failed", "running", "waiting", "retrying", "queued"].map((s) => `.node[data-state="${s}"]`).join(", ");
    const node = box.querySelector(needing) || box.querySelector(".node");
    const [n, b] = [node.getBoundingClientRect(), box.getBoundingClientRect()];
    box.scrollLeft += n.left + n.width / 2 - (b.left + b.width / 2);
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

  async function flowOf(version) {
    if (!flows.has(version)) {
      flows.set(version, api("GET", `/api/flows/${encodeURIComponent(current.flowId)}/versions/${version}`));
    }
    return flows.get(version).catch((error) => {
      flows.delete(version); // try again next time
      throw error;
    });
  }

  function view(order, flow, events) {
    const execution = order.execution || { state: "pending", attempts: [] };
    return [
      header(order, execution, flow),
      failure(execution),
      health(order, execution),
      ffConfirmation.panel(order, load),
      actions(execution),
      runPanel(order, flow),
      el("div", { class: "grid2" }, history(order), lines(order)),
      dataPanel(order),
      timeline(execution, order.steps || {}, events),
      files(order),
    ].filter(Boolean); // replaceChildren would write a null as the text "null"
  }

  /* The flow's name, linked to its editor, and its version (and the latest, when newer). */
  function flowFact(order, flow) {
    const href = `/flows/${encodeURIComponent(order.flowId)}`;
    const newer = flow && flow.currentVersion !== order.flowVersion ? ` (latest: ${flow.currentVersion})` : "";
    return [el("a", { href, id: "flow-link" }, flow?.name || order.flowId), ` · version ${order.flowVersion}${newer}`];
  }

  function header(order, execution, flow) {
    const customer = order.customer || {};
    const facts = [
      ["Status", order.status || "none yet"],
      ["External id", order.externalId || "–"],
      ["Customer", [customer.name, customer.email].filter(Boolean).join(" · ") || "–"],
      ["Flow", flowFact(order, flow)],
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
      errorType(error.type, "span"),
      error.message ? `: ${error.message}` : "",
    );
  }

  /* An error's type in words; the word the API and onError's templates use on hover. */
  function errorType(type, tag) {
    return el(tag, { class: "error-type", title: type ? `Error type: ${type}` : null, dataset: { errorType: type || "" } }, ff.errorWord(type));
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
    return el(
      "section",
      { class: "panel", "aria-labelledby": "actions-h" },
      el("h2", { id: "actions-h", class: "visually-hidden" }, "Actions"),
      el(
        "div",
        { class: "actions" },
        el("button", { type: "button", id: "retry", class: "primary", disabled: !(state === "failed" || state === "cancelled"), onclick: retry }, "↻ Retry failed step"),
        el("button", { type: "button", id: "rerun", disabled: !ended, onclick: rerun }, "⟳ Rerun…"),
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
  async function rerun() {
    if (busy || !current) return;
    try {
      await ffRerun.open(current, flowOf, load);
    } catch (error) {
      ff.toast(`Could not open the rerun: ${error.message}`, true);
    }
  }
  const cancel = () => act("Cancel this order?", "The execution stops; a running step loses its lease. You can retry it later.", "Cancel order", true, "POST", "/cancel");

  /* The order's run drawn on its flow version: each step by its state, the path taken bold; a
     step is a button that shows its attempts in the timeline. */
  function runPanel(order, flow) {
    const drawing = el("div", { class: "diagram run-diagram", id: "run-diagram", role: "group" });
    const note = el("p", { class: "muted", id: "run-note", role: "status" });
    if (flow && order.run) {
      const run = flowDiagram.runOf(order.run.steps, order.run.path, showAttempts);
      flowDiagram.draw(drawing, flowDiagram.graphOf(flow.steps), run);
      // Scaled to the screen, but never below three quarters of its size: a phone scrolls it.
      const svg = drawing.querySelector("svg");
      svg.style.minWidth = `${Math.round(Number(svg.getAttribute("width")) * 0.75)}px`;
    } else {
      note.textContent = "The order's flow could not be loaded: its run is not drawn.";
    }
    return el(
      "section",
      { class: "panel", "aria-labelledby": "run-h" },
      el("h2", { id: "run-h" }, "The run"),
      el("p", { class: "legend" }, "Each step says how it went; bold arrows are the path this order took. Select a step to see its attempts."),
      drawing,
      note,
    );
  }

  function showAttempts(stepId) {
    pickedStep = stepId;
    const items = [...root.querySelectorAll("#attempts li[data-step]")];
    for (const li of items) li.classList.toggle("picked", li.dataset.step === stepId);
    const mine = items.filter((li) => li.dataset.step === stepId);
    const note = document.getElementById("run-note");
    if (!mine.length) {
      note.textContent = `“${stepId}” has not run for this order.`;
      return;
    }
    note.textContent = `“${stepId}”: ${mine.length} attempt${mine.length === 1 ? "" : "s"}, marked in the timeline below.`;
    const latest = mine[mine.length - 1];
    const still = matchMedia("(prefers-reduced-motion: reduce)").matches;
    latest.scrollIntoView({ block: "center", behavior: still ? "auto" : "smooth" });
    latest.focus({ preventScroll: true });
  }

  function dataPanel(order) {
    const data = order.data || {};
    const shown = Object.keys(data).length
      ? el("pre", { class: "data", id: "order-data" }, JSON.stringify(data, null, 2))
      : el("p", { class: "muted", id: "order-data" }, "No data.");
    return el(
      "section",
      { class: "panel", "aria-labelledby": "data-h" },
      el("h2", { id: "data-h" }, "Data"),
      el("p", { class: "muted" }, "What the order carries for templates (order.data). Rerun changes it."),
      shown,
    );
  }

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

  /* The attempts, and between them the operators' actions each came after; a retry or a rerun
     starts a new run, whose attempts count from 1 again. Each step's output (what later steps
     read as steps.<id>) goes under its latest attempt. */
  function timeline(execution, outputs, events) {
    const attempts = execution.attempts || [];
    const last = new Map(attempts.map((a, i) => [a.stepDefinitionId, i]));
    const before = placed(attempts, events.filter(isAction));
    const runs = 1 + events.filter((e) => RESTARTS.has(e.kind)).length;
    const items = [];
    let run = 1;
    for (let i = 0; i <= attempts.length; i++) {
      for (const e of before[i]) {
        if (RESTARTS.has(e.kind)) run++;
        items.push(action(e, run));
      }
      const a = attempts[i];
      if (a) items.push(attempt(a, last.get(a.stepDefinitionId) === i ? outputs[a.stepDefinitionId] : undefined, runs > 1 ? run : null));
    }
    return el(
      "section",
      { class: "panel", "aria-labelledby": "timeline-h" },
      el("h2", { id: "timeline-h" }, "Attempts and actions"),
      attempts.length ? el("ol", { class: "timeline", id: "attempts" }, items) : el("p", { class: "muted" }, "No step has run yet."),
    );
  }

  const RESTARTS = new Set(["retried", "rerun"]);
  const ACTIONS = {
    retried: ["↻", (d) => ["Retried ", el("code", {}, d.stepDefinitionId)]],
    rerun: ["⟳", (d) => ["Rerun from ", el("code", {}, d.stepDefinitionId)]],
    retry_now: ["⏩", (d) => ["Retry now: ", el("code", {}, d.stepDefinitionId), ` attempt ${d.attempt}`]],
    cancelled: ["⊘", () => ["Cancelled"]],
  };

  /* A wait a person ended: its step's success or failure, resolved by them (not a callback). */
  const personal = (e) => ["step_succeeded", "step_failed"].includes(e.kind) && e.data?.resolvedBy && e.data.resolvedBy !== "callback";
  const isAction = (e) => e.kind in ACTIONS || personal(e);

  /* For each attempt index (and one past the last), the actions that go just before it: an
     action goes after every attempt that had ended by its time (a cancel ends the open attempt
     at its own time, a rerun's attempt ends after it). */
  function placed(attempts, actions) {
    const slots = attempts.map(() => []).concat([[]]);
    const ends = attempts.map((a) => (a.endedAt ? Date.parse(a.endedAt) : Infinity));
    for (const e of actions) {
      const at = Date.parse(e.at);
      let slot = 0;
      ends.forEach((end, i) => {
        if (end <= at) slot = i + 1;
      });
      slots[slot].push(e);
    }
    return slots;
  }

  /* [icon, what was done, who did it] of an operator's action. */
  function told(e) {
    const d = e.data || {};
    if (personal(e)) {
      const yes = e.kind === "step_succeeded";
      return [yes ? "✓" : "✖", [yes ? "Confirmed " : "Rejected ", el("code", {}, d.stepDefinitionId)], d.resolvedBy];
    }
    const [icon, what] = ACTIONS[e.kind];
    return [icon, what(d), d.by];
  }

  function action(e, run) {
    const d = e.data || {};
    const [icon, what, by] = told(e);
    const moved = d.flowVersion ? el("p", { class: "moved" }, `Flow version ${d.flowVersion.from} → ${d.flowVersion.to}`) : null;
    const patch = d.dataPatch ? el("p", { class: "patch" }, "Data patch: ", el("code", {}, JSON.stringify(d.dataPatch))) : null;
    return el(
      "li",
      { class: "event", dataset: { kind: e.kind, eventId: e.id } },
      el(
        "div",
        { class: "head" },
        el("span", { class: "icon", "aria-hidden": "true" }, icon),
        el("strong", {}, what),
        RESTARTS.has(e.kind) ? el("span", { class: "badge o-run" }, `Run ${run}`) : null,
        d.bulk ? el("span", { class: "muted" }, "(bulk action)") : null,
        by ? el("span", { class: "by" }, "by ", el("strong", {}, by)) : el("span", { class: "muted" }, "by an unrecorded actor"),
        el("span", { class: "muted" }, timeEl(e.at)),
      ),
      moved,
      patch,
    );
  }

  const OPEN_OUTCOMES = { queued: ["◷", "Queued"], running: ["▶", "Running"], cancelled: ["⊘", "Cancelled"] };

  /* An attempt's badge: how it ended, or that it has not (queued, running), never a success. */
  function attemptBadge(a) {
    const outcome = a.outcome || "running";
    if (!(outcome in OPEN_OUTCOMES)) return outcomeBadge(outcome);
    const [icon, word] = outcome === "queued" && a.attempt > 1 ? ["↻", "Retry queued"] : OPEN_OUTCOMES[outcome];
    return el("span", { class: `badge o-${outcome}` }, el("span", { class: "icon", "aria-hidden": "true" }, icon), word);
  }

  /* A choice's attempt: which rule matched and where the order went. */
  function route(a) {
    const d = a.details || {};
    if (a.type !== "choice" || !d.next) return null;
    const why = d.rule === null || d.rule === undefined ? "no rule matched: otherwise" : [`rule ${d.rule + 1}: `, el("code", {}, d.when)];
    return el("p", { class: "route", dataset: { next: d.next } }, "Routed (", why, ") → ", el("strong", {}, d.next));
  }

  function response(attemptId, excerpt) {
    if (!excerpt) return null;
    const toggled = (event) => (event.target.open ? openResponses.add(attemptId) : openResponses.delete(attemptId));
    const attrs = { class: "response", open: openResponses.has(attemptId), ontoggle: toggled };
    return el("details", attrs, el("summary", {}, "Response"), el("pre", {}, excerpt));
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
    outbox: "Saved in the outbox as",
    ms: "Took (ms)",
    recipients: "Recipients",
    prompt: "Prompt",
    link: "Link",
  };
  const LONG_DETAILS = new Set(["responseExcerpt"]);

  function attempt(a, out, run) {
    const outcome = a.outcome || "running";
    const details = a.details || {};
    const routed = a.type === "choice";
    const shown = Object.entries(details).filter(([k, v]) => !routed && !LONG_DETAILS.has(k) && v !== null && typeof v !== "object" && k !== "responseTruncated");
    const picked = a.stepDefinitionId === pickedStep ? "picked" : "";
    return el(
      "li",
      { class: `${outcome} ${picked}`.trim(), id: `attempt-${a.id}`, tabindex: "-1", dataset: { step: a.stepDefinitionId, outcome, run: run ?? 1 } },
      el(
        "div",
        { class: "head" },
        el("strong", {}, a.stepDefinitionId),
        el("span", { class: "muted" }, `${a.type} · ${run ? `run ${run} · ` : ""}attempt ${a.attempt}`),
        attemptBadge(a),
        el("span", {}, duration(a.durationMs)),
        el("span", { class: "muted" }, timeEl(a.startedAt)),
      ),
      a.error ? el("p", { class: "reason" }, errorType(a.error.type, "strong"), a.error.message ? `: ${a.error.message}` : "") : null,
      ffConfirmation.resolution(a),
      shown.length ? el("dl", {}, shown.map(([k, v]) => el("div", { dataset: { detail: k } }, el("dt", {}, `${DETAIL_LABELS[k] || k}:`), el("dd", {}, k === "outbox" ? String(v).split(/[\\/]/).pop() : String(v))))) : null,
      route(a),
      response(a.id, details.responseExcerpt),
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

  /* A file's card is built once per file (name and content): a live refresh puts the same
     card back, so an open 3D view stays open. */
  const fileCards = new Map();
  function file(f) {
    const id = `${f.name}:${f.sha256}`;
    if (!fileCards.has(id)) fileCards.set(id, fileCard(f));
    return fileCards.get(id);
  }

  function fileCard(f) {
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
      view3d(f),
    );
  }

  /* "View in 3D" under an STL, OBJ or 3MF file; viewer.js and three.js load only when opened. */
  function view3d(f) {
    if (!["stl", "stl-ascii", "obj", "3mf"].includes(f.format)) return null;
    const box = el("div", { class: "viewer-slot" });
    const open = (button) =>
      import("/static/viewer.js")
        .then((viewer) => viewer.toggleViewer(button, box, local(f.url), { format: f.format, name: f.name }))
        .catch(() => box.replaceChildren(el("p", { class: "alert", role: "alert" }, "The 3D view cannot open: its script did not load.")));
    return el("div", { class: "view3d" }, el("button", { type: "button", "aria-expanded": "false", onclick: (e) => open(e.currentTarget) }, "View in 3D"), box);
  }

  const refresh = throttle(() => load().catch((e) => ff.toast(`Could not refresh: ${e.message}`, true)), 500);
  load().catch((error) => {
    root.replaceChildren(el("p", { class: "alert", role: "alert" }, error.status === 404 ? `No order ${orderId}.` : `Could not load the order: ${error.message}`));
  });
  ff.live({ order: (event) => event.orderId === orderId && refresh(), open: refresh });
})();
