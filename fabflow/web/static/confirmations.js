/* Orders that wait for a person (a manual-confirmation step): the prompt with Confirm and
   Reject on the order page, and who answered, and when, on the step's attempt. */
"use strict";

const ffConfirmation = (() => {
  const { api, el, timeEl } = ff;
  let busy = false;

  /* The attempt that waits for a confirmation now, if the execution waits on one. */
  function waitingAttempt(execution) {
    if (execution?.state !== "waiting") return null;
    return (execution.attempts || []).find((a) => a.outcome === "waiting" && a.wait?.kind === "confirmation") || null;
  }

  /* The panel of an order that waits for a confirmation; null for any other order. */
  function panel(order, reload) {
    const attempt = waitingAttempt(order.execution);
    if (!attempt) return null;
    const details = attempt.details || {};
    const told = (details.assignees || []).join(", ");
    return el(
      "section",
      { class: "panel confirmation", id: "confirmation", "aria-labelledby": "confirmation-h" },
      el("h2", { id: "confirmation-h" }, el("span", { "aria-hidden": "true" }, "⏸ "), "Waiting for a confirmation"),
      el("p", { class: "prompt", id: "confirmation-prompt" }, details.prompt || "Confirm or reject this order."),
      el(
        "p",
        { class: "muted" },
        `Step “${attempt.stepDefinitionId}”`,
        told ? ` · told ${told}` : "",
        " · without an answer it times out ",
        timeEl(attempt.wait.until),
      ),
      el(
        "div",
        { class: "actions" },
        el("button", { type: "button", id: "confirm-order", class: "primary", onclick: () => confirmOrder(order, attempt, reload) }, "✓ Confirm"),
        el("button", { type: "button", id: "reject-order", class: "danger", onclick: () => rejectOrder(order, reload) }, "✖ Reject…"),
      ),
    );
  }

  async function confirmOrder(order, attempt, reload) {
    const text = `The flow continues after step “${attempt.stepDefinitionId}”.`;
    if (busy || !(await ff.confirm("Confirm this order?", text, "Confirm"))) return;
    await answer(order, "confirm", {}, "Confirmed", reload);
  }

  async function rejectOrder(order, reload) {
    if (busy) return;
    const comment = await askComment();
    if (comment === null) return;
    await answer(order, "reject", { comment }, "Rejected", reload);
  }

  /* The rejection dialog: resolves the comment, or null when the person keeps the order waiting. */
  function askComment() {
    const dialog = document.getElementById("reject");
    const field = dialog.querySelector("#reject-comment");
    field.value = "";
    dialog.returnValue = "";
    dialog.showModal();
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok" ? field.value.trim() : null), { once: true });
    });
  }

  async function answer(order, verb, body, done, reload) {
    busy = true;
    try {
      await api("POST", `/api/orders/${encodeURIComponent(order.id)}/${verb}`, body);
      ff.toast(`${done}: order ${order.id}`);
      await reload();
    } catch (error) {
      ff.toast(`${done === "Confirmed" ? "Confirm" : "Reject"} refused: ${error.message}`, true);
      await reload().catch(() => {});
    } finally {
      busy = false;
    }
  }

  /* Who answered a person's wait, when, and what they said; null for other attempts. */
  function resolution(attempt) {
    const wait = attempt.wait;
    if (wait?.kind !== "confirmation" || !wait.resolution) return null;
    const r = wait.resolution;
    const word = r.outcome === "success" ? "Confirmed" : "Rejected";
    const at = r.at;
    return el(
      "p",
      { class: "resolution", dataset: { resolution: r.outcome } },
      `${word} by ${r.by || "someone"} · `,
      timeEl(at),
      r.outcome === "success" && r.message ? ` · “${r.message}”` : "",
    );
  }

  return { panel, resolution };
})();
