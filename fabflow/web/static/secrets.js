/* The tenant's secrets: names and times listed (the API never answers with a value), a form
   that sets or replaces one, and delete after a confirmation. */
"use strict";

(() => {
  const { api, el, timeEl, toast, confirm } = ff;
  const tbody = document.querySelector("#secrets tbody");
  const form = document.getElementById("secret-form");
  const nameInput = document.getElementById("secret-name");
  const valueInput = document.getElementById("secret-value");

  function row(secret) {
    const replace = () => {
      nameInput.value = secret.name;
      valueInput.value = "";
      valueInput.focus();
    };
    const remove = async () => {
      const ok = await confirm(
        `Delete secret ${secret.name}?`,
        "Steps whose templates read it fail from now on.",
        "Delete",
        true,
      );
      if (!ok) return;
      try {
        await api("DELETE", `/api/secrets/${encodeURIComponent(secret.name)}`);
        toast(`Secret ${secret.name} deleted`);
        await load();
      } catch (error) {
        toast(`Could not delete ${secret.name}: ${error.message}`, true);
      }
    };
    return el(
      "tr",
      { dataset: { name: secret.name } },
      el("td", { class: "mono" }, secret.name),
      el("td", {}, el("code", {}, `{{ secrets.${secret.name} }}`)),
      el("td", {}, timeEl(secret.createdAt)),
      el("td", {}, timeEl(secret.updatedAt)),
      el(
        "td",
        {},
        el("button", { type: "button", onclick: replace, "aria-label": `Replace ${secret.name}` }, "Replace"),
        " ",
        el("button", { type: "button", class: "danger", onclick: remove, "aria-label": `Delete ${secret.name}` }, "Delete"),
      ),
    );
  }

  async function load() {
    const { secrets } = await api("GET", "/api/secrets");
    tbody.replaceChildren(...secrets.map(row));
    document.getElementById("empty").hidden = secrets.length > 0;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = nameInput.value.trim();
    nameInput.setAttribute("aria-invalid", String(!nameInput.checkValidity()));
    valueInput.setAttribute("aria-invalid", String(!valueInput.value));
    if (!nameInput.checkValidity() || !valueInput.value) {
      toast("Give a valid name and a value.", true);
      return;
    }
    try {
      await api("PUT", `/api/secrets/${encodeURIComponent(name)}`, { value: valueInput.value });
      toast(`Secret ${name} saved`);
      form.reset();  // the value leaves the page as soon as it is stored
      await load();
    } catch (error) {
      toast(`Could not save ${name}: ${error.message}`, true);
    } finally {
      valueInput.value = "";
    }
  });

  load().catch((error) => toast(`Could not load secrets: ${error.message}`, true));
})();
