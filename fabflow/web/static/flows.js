/* The tenant's flows, newest first, each linking to its editor. */
"use strict";

(() => {
  const { api, el, timeEl } = ff;
  const tbody = document.querySelector("#flows tbody");
  const archived = document.getElementById("show-archived");

  async function load() {
    const { flows } = await api("GET", `/api/flows?archived=${archived.checked}`);
    tbody.replaceChildren(
      ...flows.map((f) =>
        el(
          "tr",
          { dataset: { flowId: f.id } },
          el("td", {}, el("a", { href: `/flows/${encodeURIComponent(f.id)}`, class: "mono" }, f.id)),
          el("td", {}, f.name || "–", f.description ? el("div", { class: "muted" }, f.description) : null),
          el("td", {}, `v${f.currentVersion}`),
          el("td", {}, timeEl(f.updatedAt)),
          el("td", {}, f.archived ? el("span", { class: "badge s-cancelled" }, "⊘ Archived") : el("span", { class: "badge s-succeeded" }, "✓ Active")),
        ),
      ),
    );
    document.getElementById("empty").hidden = flows.length > 0;
  }

  archived.addEventListener("change", () => load().catch(fail));
  const fail = (error) => ff.toast(`Could not load flows: ${error.message}`, true);
  load().catch(fail);
})();
