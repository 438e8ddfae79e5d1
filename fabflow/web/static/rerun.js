/* The order page's rerun dialog: from which step, on which flow version (the order's own, or
   the flow's latest when it differs), and with the order's data fixed first. The operator edits
   the data as JSON; only what changed is sent, as a JSON merge patch (RFC 7386). The dialog is
   the confirmation, and it warns when the step runs only on an error path. */
"use strict";

const ffRerun = (() => {
  const { api, el } = ff;
  const dialog = document.getElementById("rerun-dialog");
  const form = dialog.querySelector("form");
  const version = document.getElementById("rerun-version");
  const step = document.getElementById("rerun-step");
  const data = document.getElementById("rerun-data");
  const patchOut = document.getElementById("rerun-patch");
  const problem = document.getElementById("rerun-problem");
  const warning = document.getElementById("rerun-warning");
  const ok = document.getElementById("rerun-ok");
  let ctx = null; // {order, flowOf, done, original}

  const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
  const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

  /* The JSON merge patch that turns `before` into `after` (objects merge key by key; a key
     gone becomes null; anything else is replaced whole). */
  function mergePatch(before, after) {
    if (!isObject(before) || !isObject(after)) return after;
    const patch = {};
    for (const key of Object.keys(before)) if (!(key in after)) patch[key] = null;
    for (const [key, value] of Object.entries(after)) {
      if (!(key in before)) patch[key] = value;
      else if (!same(before[key], value)) patch[key] = mergePatch(before[key], value);
    }
    return patch;
  }

  /* The steps only an error path reaches: no path of successes and choices from the first
     step leads to them (as the server decides it). Rerun, such a step runs as error handling
     (a failure email, a "Failed" status) and the order ends failed. */
  function errorOnly(steps) {
    const graph = flowDiagram.graphOf(steps);
    const normal = flowDiagram.reach(steps[0]?.stepDefinitionId, graph.edges, (e) => e.kind !== "error");
    return new Set(steps.map((s) => s.stepDefinitionId).filter((id) => !normal.has(id)));
  }

  /* The data typed, or {error} saying what is wrong with it. */
  function parsed() {
    let value;
    try {
      value = JSON.parse(data.value);
    } catch (error) {
      return { error: `The data is not valid JSON: ${error.message}. Fix it, or close the dialog to keep the order as it is.` };
    }
    if (!isObject(value)) return { error: "The data must be a JSON object, such as {\"name\": \"Ada\"}." };
    return { value };
  }

  function showPatch() {
    const typed = parsed();
    data.setAttribute("aria-invalid", String(Boolean(typed.error)));
    if (typed.error) {
      patchOut.textContent = "";
      return typed;
    }
    problem.textContent = "";
    const patch = mergePatch(ctx.original, typed.value);
    patchOut.replaceChildren(
      ...(Object.keys(patch).length ? ["Sent as a merge patch: ", el("code", {}, JSON.stringify(patch))] : ["The data is unchanged: none is sent."]),
    );
    return { ...typed, patch };
  }

  async function chosenFlow() {
    const wanted = version.value === "latest" ? version.dataset.latest : ctx.order.flowVersion;
    return ctx.flowOf(Number(wanted));
  }

  async function fillSteps() {
    const flow = await chosenFlow();
    const onErrorOnly = errorOnly(flow.steps);
    const kept = step.value || step.dataset.preferred;
    step.replaceChildren(
      ...flow.steps.map((s) => {
        const id = s.stepDefinitionId;
        const note = onErrorOnly.has(id) ? " (error path only)" : "";
        return el("option", { value: id, selected: id === kept, dataset: { errorOnly: String(onErrorOnly.has(id)) } }, id + note);
      }),
    );
    warn(flow);
  }

  function warn(flow) {
    const picked = step.selectedOptions[0];
    const risky = picked?.dataset.errorOnly === "true";
    warning.hidden = !risky;
    ok.className = risky ? "danger" : "primary";
    ok.textContent = risky ? "Rerun anyway" : "Rerun";
    if (!risky) return;
    const status = flow.steps.find((s) => s.stepDefinitionId === step.value)?.successStatus;
    const failed = ctx.order.execution?.state === "failed";
    warning.textContent =
      `⚠ “${step.value}” runs only when a step fails: no path of successes leads to it. ` +
      `Rerunning it runs that error handling again (its emails and calls)` +
      (status ? `, sets the status “${status}”` : "") +
      ` and ends the order failed` +
      (failed ? "." : `, although it ${ctx.order.execution?.state === "succeeded" ? "succeeded" : "did not fail"}.`);
  }

  async function open(order, flowOf, done) {
    const own = await flowOf(order.flowVersion);
    ctx = { order, flowOf, done, original: order.data || {} };
    const latest = own.currentVersion;
    version.dataset.latest = String(latest);
    version.replaceChildren(
      el("option", { value: "own" }, `Version ${order.flowVersion} (this order's)`),
      latest !== order.flowVersion ? el("option", { value: "latest" }, `Version ${latest} (the flow's latest)`) : null,
    );
    version.disabled = latest === order.flowVersion;
    step.value = "";
    step.dataset.preferred = ff.failureOf(order.execution)?.stepDefinitionId || "";
    data.value = JSON.stringify(ctx.original, null, 2);
    problem.textContent = "";
    await fillSteps();
    showPatch();
    dialog.showModal();
  }

  async function submit() {
    const typed = showPatch();
    if (typed.error) {
      problem.textContent = typed.error;
      data.focus();
      return;
    }
    const body = { stepDefinitionId: step.value };
    if (version.value === "latest") body.flowVersion = "latest";
    if (Object.keys(typed.patch).length) body.data = typed.patch;
    ok.disabled = true;
    try {
      await api("POST", `/api/orders/${encodeURIComponent(ctx.order.id)}/rerun`, body);
      dialog.close("done");
      ff.toast(`Rerun from “${body.stepDefinitionId}”: started`);
      await ctx.done();
    } catch (error) {
      const where = (error.problems || []).map((p) => `${p.pointer || ""}: ${p.message}`).join("; ");
      problem.textContent = `Rerun refused: ${where || error.message}`;
    } finally {
      ok.disabled = false;
    }
  }

  form.addEventListener("submit", (event) => {
    if (event.submitter?.value !== "ok") return; // "Keep as is" closes the dialog
    event.preventDefault();
    submit();
  });
  version.addEventListener("change", () => fillSteps().catch((e) => (problem.textContent = `Could not load that version: ${e.message}`)));
  step.addEventListener("change", () => chosenFlow().then(warn));
  data.addEventListener("input", ff.debounce(showPatch, 200));

  return { open, mergePatch, errorOnly };
})();
