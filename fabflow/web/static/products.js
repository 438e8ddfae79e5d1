/* The product catalogue: a form per product generated from its parameter JSON Schema, and a
   preview of the part built on the server from those parameters. */
"use strict";

(() => {
  const { api, el, number } = ff;
  const box = document.getElementById("products");

  function input(product, key, schema, required) {
    const id = `p-${product.name}-${key}`;
    const label = humanise(key);
    const hint = [schema.description, range(schema)].filter(Boolean).join(" ");
    const common = { id, name: key, "aria-describedby": hint ? `${id}-hint` : null, dataset: { type: schema.type || "string" } };
    let control;
    if (schema.type === "boolean") {
      control = el("input", { ...common, type: "checkbox", checked: schema.default === true });
      return el("div", { class: "field wide" }, el("div", { class: "check" }, control, el("label", { for: id }, label)), hintEl(id, hint), errorEl(id));
    }
    if (Array.isArray(schema.enum)) {
      control = el("select", common, schema.enum.map((v) => el("option", { value: v, selected: v === schema.default }, v)));
    } else if (schema.type === "number" || schema.type === "integer") {
      control = el("input", { ...common, type: "number", step: schema.type === "integer" ? "1" : "any", min: schema.minimum, max: schema.maximum, value: schema.default, required });
    } else {
      control = el("input", { ...common, type: "text", maxlength: schema.maxLength, minlength: schema.minLength, value: schema.default ?? (key === "text" ? "Ada" : null), required });
    }
    return el("div", { class: schema.type === "string" ? "field wide" : "field" }, el("label", { for: id }, label), control, hintEl(id, hint), errorEl(id));
  }

  // Schema titles are generated from Python names ("Cornerradius"): the camelCase key reads better.
  const humanise = (key) => key.replace(/([a-z0-9])([A-Z])/g, "$1 $2").replace(/^./, (c) => c.toUpperCase()).replace(/ ([A-Z])(?=[a-z])/g, (m) => m.toLowerCase());
  const range = (s) => (s.minimum !== undefined && s.maximum !== undefined ? `(${s.minimum}–${s.maximum})` : "");
  const hintEl = (id, hint) => (hint ? el("span", { class: "hint", id: `${id}-hint` }, hint) : null);
  const errorEl = (id) => el("span", { class: "field-error", id: `${id}-error`, role: "alert" });

  /* Only a value the user gave (or the default) is sent; an empty optional field is left out. */
  function values(form) {
    const params = {};
    for (const control of form.querySelectorAll("[data-type]")) {
      const type = control.dataset.type;
      if (type === "boolean") params[control.name] = control.checked;
      else if (control.value === "") continue;
      else if (type === "number" || type === "integer") params[control.name] = Number(control.value);
      else params[control.name] = control.value;
    }
    return params;
  }

  function clearErrors(form) {
    for (const span of form.querySelectorAll(".field-error")) span.textContent = "";
    for (const c of form.querySelectorAll("[aria-invalid]")) c.removeAttribute("aria-invalid");
  }

  async function preview(product, form, out) {
    clearErrors(form);
    out.replaceChildren(el("p", { class: "muted" }, "Building the part…"));
    try {
      const result = await api("POST", `/api/products/${encodeURIComponent(product.name)}/preview`, values(form));
      out.replaceChildren(...result.parts.map(part));
    } catch (error) {
      out.replaceChildren(el("p", { class: "alert", role: "alert" }, `✖ ${error.message}`));
      for (const p of error.problems || []) {
        const key = p.pointer.replace(/^\//, "");
        const control = form.elements[key];
        if (!control) continue;
        control.setAttribute("aria-invalid", "true");
        document.getElementById(`${control.id}-error`).textContent = p.message;
      }
    }
  }

  function part(p) {
    const size = p.sizeMm.map((v) => number(v, 1)).join(" × ") + " mm";
    return el(
      "figure",
      { class: "part", dataset: { part: p.part } },
      el("img", { src: `data:image/png;base64,${p.png}`, alt: `Preview of the ${p.part}`, width: "320", height: "320" }),
      el(
        "figcaption",
        {},
        el("strong", {}, p.part),
        el("dl", { class: "facts" },
          el("div", {}, el("dt", {}, "Triangles"), el("dd", { dataset: { stat: "triangles" } }, number(p.triangles))),
          el("div", {}, el("dt", {}, "Volume"), el("dd", { dataset: { stat: "volume" } }, `${number(p.volumeMm3, 1)} mm³`)),
          el("div", {}, el("dt", {}, "Size"), el("dd", { dataset: { stat: "size" } }, size)),
        ),
      ),
    );
  }

  function card(product) {
    const schema = product.parametersSchema || {};
    const required = new Set(schema.required || []);
    const out = el("div", { class: "preview-out", "aria-live": "polite" });
    const form = el(
      "form",
      { "aria-label": `${product.title} parameters`, novalidate: true },
      Object.entries(schema.properties || {}).map(([key, s]) => input(product, key, s, required.has(key))),
      el("div", { class: "wide" }, el("button", { type: "submit", class: "primary" }, "Preview")),
    );
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      preview(product, form, out);
    });
    return el(
      "section",
      { class: "panel product", id: `product-${product.name}`, "aria-labelledby": `product-${product.name}-h` },
      el("h2", { id: `product-${product.name}-h` }, product.title, " ", el("code", { class: "muted" }, product.name)),
      el("p", { class: "muted" }, product.description),
      form,
      out,
    );
  }

  api("GET", "/api/products")
    .then(({ products }) => box.replaceChildren(...products.map(card)))
    .catch((error) => box.replaceChildren(el("p", { class: "alert" }, `Could not load the catalogue: ${error.message}`)));
})();
