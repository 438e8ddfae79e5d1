/* The tenant's webhooks: add one (its secret shown once), enable or disable, delete after a
   confirmation, and a delivery log per webhook with "Send again". */
"use strict";

(() => {
  const { api, el, timeEl, toast, confirm } = ff;
  const tbody = document.querySelector("#webhooks tbody");
  const form = document.getElementById("webhook-form");
  const urlInput = document.getElementById("webhook-url");
  const eventsBox = document.getElementById("webhook-events");
  const log = document.getElementById("deliveries");
  let shown = null; // the webhook whose deliveries are listed

  function row(hook) {
    const toggle = async () => {
      try {
        await api("PATCH", `/api/webhooks/${hook.id}`, { enabled: !hook.enabled });
        await load();
      } catch (error) {
        toast(`Could not change the webhook: ${error.message}`, true);
      }
    };
    const remove = async () => {
      const ok = await confirm(`Delete the webhook to ${hook.url}?`, "Its delivery log goes too; what was not sent is not sent.", "Delete", true);
      if (!ok) return;
      try {
        await api("DELETE", `/api/webhooks/${hook.id}`);
        toast("Webhook deleted");
        if (shown === hook.id) { shown = null; log.hidden = true; }
        await load();
      } catch (error) {
        toast(`Could not delete the webhook: ${error.message}`, true);
      }
    };
    return el(
      "tr",
      { dataset: { id: hook.id } },
      el("td", { class: "mono" }, hook.url),
      el("td", {}, hook.events.join(", ")),
      el("td", {}, hook.enabled ? "Yes" : "No"),
      el("td", {}, timeEl(hook.createdAt)),
      el(
        "td",
        {},
        el("button", { type: "button", onclick: () => showDeliveries(hook.id) }, "Deliveries"),
        " ",
        el("button", { type: "button", onclick: toggle }, hook.enabled ? "Disable" : "Enable"),
        " ",
        el("button", { type: "button", class: "danger", onclick: remove, "aria-label": `Delete the webhook to ${hook.url}` }, "Delete"),
      ),
    );
  }

  function deliveryRow(d) {
    const again = async () => {
      try {
        await api("POST", `/api/webhooks/${shown}/deliveries/${d.id}/resend`);
        toast("It will be sent again");
        await showDeliveries(shown);
      } catch (error) {
        toast(`Could not send again: ${error.message}`, true);
      }
    };
    return el(
      "tr",
      { dataset: { id: String(d.id), state: d.state } },
      el("td", {}, el("span", {}, d.type), el("br"), el("code", { class: "mono" }, d.eventId)),
      el("td", {}, el("a", { href: `/orders/${encodeURIComponent(d.orderId)}` }, d.orderId)),
      el("td", { class: "state" }, d.state),
      el("td", {}, String(d.attempts)),
      el("td", {}, d.statusCode === null ? "–" : String(d.statusCode)),
      el("td", {}, d.latencyMs === null ? "–" : `${Math.round(d.latencyMs)} ms`),
      el("td", { class: "mono" }, d.error || d.response || ""),
      el("td", {}, d.nextAttemptAt ? timeEl(d.nextAttemptAt) : "–"),
      el("td", {}, el("button", { type: "button", onclick: again }, "Send again")),
    );
  }

  async function showDeliveries(id) {
    shown = id;
    const { deliveries } = await api("GET", `/api/webhooks/${id}/deliveries`);
    log.hidden = false;
    log.querySelector("tbody").replaceChildren(...deliveries.map(deliveryRow));
    document.getElementById("no-deliveries").hidden = deliveries.length > 0;
  }

  async function load() {
    const { webhooks, eventTypes } = await api("GET", "/api/webhooks");
    if (!eventsBox.querySelector("input")) {
      for (const type of eventTypes) {
        const id = `event-${type.replace(".", "-")}`;
        eventsBox.append(el("label", { for: id }, el("input", { type: "checkbox", id, value: type, checked: true }), ` ${type}`), " ");
      }
    }
    tbody.replaceChildren(...webhooks.map(row));
    document.getElementById("empty").hidden = webhooks.length > 0;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const events = [...eventsBox.querySelectorAll("input:checked")].map((i) => i.value);
    urlInput.setAttribute("aria-invalid", String(!urlInput.checkValidity()));
    if (!urlInput.checkValidity() || !events.length) {
      toast("Give an http(s) URL and at least one event.", true);
      return;
    }
    try {
      const made = await api("POST", "/api/webhooks", { url: urlInput.value.trim(), events });
      document.getElementById("new-secret-value").textContent = made.secret;
      document.getElementById("new-secret").hidden = false;
      toast("Webhook added");
      form.reset();
      await load();
    } catch (error) {
      toast(`Could not add the webhook: ${error.message}`, true);
    }
  });

  load().catch((error) => toast(`Could not load webhooks: ${error.message}`, true));
})();
