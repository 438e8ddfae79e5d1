/* The product catalogue: a form per product generated from its parameter JSON Schema, and a
   preview of the part built on the server from those parameters, with a 3D view of it (viewer.js). */
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
    const choices = options(schema);
    if (choices) {
      control = el("select", common, choices.map(([v, label]) => el("option", { value: String(v), selected: v === schema.default, dataset: { json: JSON.stringify(v) } }, label)));
      common.dataset.type = "choice";
      control.dataset.type = "choice";
    } else if (schema.type === "array") {
      control = el("input", { ...common, type: "text", inputmode: "decimal", value: (schema.default || []).join(", "), "aria-label": `${label}, numbers separated by commas` });
    } else if (schema.type === "number" || schema.type === "integer") {
      control = el("input", { ...common, type: "number", step: schema["x-step"] ?? (schema.type === "integer" ? "1" : "any"), min: schema.minimum, max: schema.maximum, value: schema.default, required });
    } else {
      control = el("input", { ...common, type: "text", maxlength: schema.maxLength, minlength: schema.minLength, value: schema.default ?? (key === "text" ? "Ada" : null), required });
    }
    return el("div", { class: schema.type === "string" ? "field wide" : "field" }, el("label", { for: id }, label), control, hintEl(id, hint), errorEl(id));
  }

  /* A dropdown's [value, label] pairs: from "enum" with the labels a model gives ("x-enumLabels"),
     or from "oneOf" of {"const", "title"}; null when the parameter is not a dropdown. */
  function options(schema) {
    if (Array.isArray(schema.oneOf) && schema.oneOf.every((o) => "const" in o)) {
      return schema.oneOf.map((o) => [o.const, o.title ?? String(o.const)]);
    }
    if (Array.isArray(schema.enum)) return schema.enum.map((v) => [v, String(v)]);
    return null;
  }

  // Schema titles are generated from Python names ("Cornerradius"): the camelCase key reads better.
  const humanise = (key) => key.replace(/_/g, " ").replace(/([a-z0-9])([A-Z])/g, "$1 $2").replace(/^./, (c) => c.toUpperCase()).replace(/ ([A-Z])(?=[a-z])/g, (m) => m.toLowerCase());
  const range = (s) => (s.minimum !== undefined && s.maximum !== undefined ? `(${s.minimum}–${s.maximum})` : "");
  const hintEl = (id, hint) => (hint ? el("span", { class: "hint", id: `${id}-hint` }, hint) : null);
  const errorEl = (id) => el("span", { class: "field-error", id: `${id}-error`, role: "alert" });

  /* Only a value the user gave (or the default) is sent; an empty optional field is left out. */
  function values(form) {
    const params = {};
    for (const control of form.querySelectorAll("[data-type]")) {
      const type = control.dataset.type;
      if (type === "boolean") params[control.name] = control.checked;
      else if (type === "choice") params[control.name] = JSON.parse(control.selectedOptions[0].dataset.json);
      else if (control.value === "") continue;
      else if (type === "array") params[control.name] = control.value.split(",").map((v) => Number(v.trim()));
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
      const params = values(form);
      const result = await api("POST", `/api/products/${encodeURIComponent(product.name)}/preview`, params);
      out.replaceChildren(...result.parts.map((p) => part(p, product, params)));
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

  function part(p, product, params) {
    const size = p.sizeMm.map((v) => number(v, 1)).join(" × ") + " mm";
    const stl = `/api/products/${encodeURIComponent(product.name)}/preview/${encodeURIComponent(p.part)}.stl`;
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
        view3d(stl, params, p.part),
      ),
    );
  }

  /* "View in 3D": the part these parameters make, as STL, turned in the browser. The viewer
     (and three.js behind it) loads only when a person opens it. */
  const VIEWER = new URL(`viewer.js${new URL(document.currentScript.src).search}`, document.currentScript.src).href;
  function view3d(url, params, name) {
    const box = el("div", { class: "viewer-slot" });
    const read = () => fetch(url, { method: "POST", credentials: "same-origin", body: JSON.stringify(params),
      headers: { "Content-Type": "application/json", "X-CSRF-Token": document.querySelector('meta[name="csrf-token"]')?.content || "" } });
    const open = (button) => import(VIEWER)
      .then((viewer) => viewer.toggleViewer(button, box, read, { format: "stl", name }))
      .catch(() => box.replaceChildren(el("p", { class: "alert", role: "alert" }, "The 3D view cannot open: its script did not load.")));
    const button = el("button", { type: "button", "aria-expanded": "false", onclick: (e) => open(e.currentTarget) }, "View in 3D");
    return el("div", { class: "view3d" }, button, box);
  }

  /* A model's Customizer tabs become fieldsets; a product with one tab (or none) stays flat. */
  function fields(product, schema, required) {
    const entries = Object.entries(schema.properties || {});
    const tabs = (schema["x-tabs"] || []).filter((t) => t);
    if (tabs.length < 2) return entries.map(([key, s]) => input(product, key, s, required.has(key)));
    return (schema["x-tabs"] || []).map((tab) =>
      el("fieldset", { class: "wide tab" }, el("legend", {}, tab || "Parameters"),
        entries.filter(([, s]) => (s["x-tab"] || "") === tab).map(([key, s]) => input(product, key, s, required.has(key)))));
  }

  function card(product) {
    const schema = product.parametersSchema || {};
    const required = new Set(schema.required || []);
    const out = el("div", { class: "preview-out", "aria-live": "polite" });
    const form = el(
      "form",
      { "aria-label": `${product.title} parameters`, novalidate: true },
      fields(product, schema, required),
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
      product.kind === "openscad"
        ? el("p", { class: "muted", dataset: { kind: "openscad" } }, `OpenSCAD model, version ${product.version} · parts: ${product.parts.join(", ")}`)
        : null,
      el("p", { class: "muted" }, product.description),
      form,
      out,
    );
  }

  function load() {
    return api("GET", "/api/products")
      .then(({ products }) => box.replaceChildren(...products.map(card)))
      .catch((error) => box.replaceChildren(el("p", { class: "alert" }, `Could not load the catalogue: ${error.message}`)));
  }

  /* -- adding a model: a drop zone (files, a folder or a zip) and a name ------------------- */

  const zone = document.getElementById("drop");
  const picked = { files: [] }; // [relative path, File]
  const uploadForm = document.getElementById("upload");
  const chosen = document.getElementById("upload-files");
  const result = document.getElementById("upload-result");

  async function entries(entry, prefix = "") {
    if (entry.isFile) return [[prefix + entry.name, await new Promise((ok, no) => entry.file(ok, no))]];
    const reader = entry.createReader();
    const found = [];
    for (;;) {
      const batch = await new Promise((ok, no) => reader.readEntries(ok, no));
      if (!batch.length) break;
      for (const child of batch) found.push(...(await entries(child, `${prefix}${entry.name}/`)));
    }
    return found;
  }

  function choose(files) {
    picked.files = files;
    const scad = files.find(([path]) => path.endsWith(".scad"));
    const name = uploadForm.elements.name;
    if (scad && !name.value) {
      const stem = files.length > 1 && scad[0].includes("/") ? scad[0].split("/")[0] : scad[0].split("/").pop().replace(/\.scad$/, "");
      name.value = stem.toLowerCase().replace(/[^a-z0-9_-]+/g, "-").replace(/^[-_]+|[-_]+$/g, "");
    }
    chosen.textContent = files.length ? files.map(([path]) => path).join(", ") : "No files chosen";
  }

  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", async (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    const items = [...e.dataTransfer.items].map((i) => i.webkitGetAsEntry?.()).filter(Boolean);
    const files = items.length ? (await Promise.all(items.map((i) => entries(i)))).flat() : [...e.dataTransfer.files].map((f) => [f.name, f]);
    choose(files);
  });
  for (const input of uploadForm.querySelectorAll('input[type="file"]')) {
    input.addEventListener("change", () => choose([...input.files].map((f) => [f.webkitRelativePath || f.name, f])));
  }

  async function send(method, path, form) {
    const response = await fetch(path, {
      method,
      body: form,
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRF-Token": document.querySelector('meta[name="csrf-token"]')?.content || "" },
    });
    const data = await response.json().catch(() => null);
    if (!response.ok) throw new ff.ApiError(response.status, data);
    return data;
  }

  async function upload(asVersion) {
    const name = uploadForm.elements.name.value.trim();
    if (!picked.files.length || !name) {
      result.replaceChildren(el("p", { class: "alert", role: "alert" }, "Choose the model's files and give the product a name."));
      return;
    }
    const form = new FormData();
    if (!asVersion) form.append("name", name);
    for (const [path, file] of picked.files) form.append("files", file, path);
    result.replaceChildren(el("p", { class: "muted" }, "Checking the model: reading its parameters and rendering it with its defaults…"));
    try {
      const product = asVersion
        ? await send("PUT", `/api/products/${encodeURIComponent(name)}`, form)
        : await send("POST", "/api/products", form);
      const made = Object.entries(product.renderers).map(([part, how]) => `${part} (${how})`).join(", ");
      result.replaceChildren(el("p", { class: "done", role: "status" }, `✔ ${product.name} version ${product.version} added: ${made}.`));
      await load();
    } catch (error) {
      const again = error.status === 409 && !asVersion
        ? el("button", { type: "button", onclick: () => upload(true) }, `Add as a new version of ${name}`)
        : null;
      result.replaceChildren(
        el("div", { class: "alert", role: "alert" },
          el("strong", {}, `✖ ${error.message}`),
          error.problems.length ? el("ul", { class: "problems" }, error.problems.map((p) => el("li", {}, el("code", {}, p.pointer || "/"), " ", p.message))) : null,
          again),
      );
    }
  }

  uploadForm.addEventListener("submit", (e) => {
    e.preventDefault();
    upload(false);
  });

  load();
})();
