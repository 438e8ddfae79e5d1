/* The tenant's audit trail (GET /api/audit), newest first, each event said in words with a
   link to what it is about, and "Show older" to page back. */
"use strict";

(() => {
  const { api, el, timeEl, toast } = ff;
  const tbody = document.querySelector("#activity tbody");
  const older = document.getElementById("older");
  let cursor = null;

  const flowLink = (d) => el("a", { href: `/flows/${encodeURIComponent(d.flowId)}` }, d.flowId);
  const key = (d) => [el("code", {}, d.keyId), d.label ? ` (${d.label})` : ""];
  const count = (n) => `${n} order${n === 1 ? "" : "s"}`;

  function bulk(verb, d) {
    const filter = Object.entries(d.filter || {}).map(([k, v]) => `${k} ${v}`).join(", ");
    const skipped = d.skipped ? `, ${d.skipped} skipped` : "";
    return `${verb} ${count(d.acted)} of ${d.matched}${skipped}${filter ? ` (filter: ${filter})` : ""}`;
  }

  const SAID = {
    flow_saved: (d) => ["Saved flow ", flowLink(d), ` as version ${d.version}`],
    flow_restored: (d) => ["Restored flow ", flowLink(d), ` (version ${d.version})`],
    flow_archived: (d) => ["Archived flow ", flowLink(d)],
    key_created: (d) => ["Created API key ", ...key(d)],
    key_revoked: (d) => ["Revoked API key ", ...key(d)],
    secret_created: (d) => ["Set secret ", el("code", {}, d.name)],
    secret_replaced: (d) => ["Replaced secret ", el("code", {}, d.name)],
    secret_deleted: (d) => ["Deleted secret ", el("code", {}, d.name)],
    bulk_retry: (d) => bulk("Retried", d),
    bulk_cancel: (d) => bulk("Cancelled", d),
  };

  function row(event) {
    const said = SAID[event.kind];
    return el(
      "tr",
      { dataset: { kind: event.kind } },
      el("td", {}, timeEl(event.at)),
      el("td", {}, ...(said ? [].concat(said(event.data)) : [event.kind, " ", event.subject])),
      el("td", {}, event.by || "—"),
    );
  }

  async function load(more = false) {
    const query = more && cursor ? `?before=${cursor}` : "";
    try {
      const page = await api("GET", `/api/audit${query}`);
      if (!more) tbody.replaceChildren();
      tbody.append(...page.events.map(row));
      cursor = page.nextCursor;
      older.hidden = !cursor;
      document.getElementById("empty").hidden = tbody.children.length > 0;
    } catch (error) {
      toast(`Could not load the activity: ${error.message}`, true);
    }
  }

  older.addEventListener("click", () => load(true));
  load();
})();
