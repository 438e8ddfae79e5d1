/* The flow editor: a textarea with line numbers, checked as you type by POST /api/flows/validate.
   Each problem's JSON Pointer is mapped to a place in the text by a small parser that records
   where every value (and every object member's key) starts; the line is marked in the gutter and
   the problem, listed with its line, moves the cursor there when pressed. */
"use strict";

/* JSON text -> Map(pointer -> {start, end, key}) of offsets; stops quietly at the first error
   (the server reports malformed JSON with its line and column). */
const jsonPlaces = (() => {
  const escape = (s) => s.replace(/~/g, "~0").replace(/\//g, "~1");

  function parse(text) {
    const places = new Map();
    let i = 0;
    const ws = () => {
      while (i < text.length && " \t\r\n".includes(text[i])) i++;
    };
    const fail = () => {
      throw new SyntaxError(`at ${i}`);
    };
    function string() {
      if (text[i] !== '"') fail();
      const start = i++;
      while (i < text.length && text[i] !== '"') i += text[i] === "\\" ? 2 : 1;
      if (i >= text.length) fail();
      i++;
      return JSON.parse(text.slice(start, i));
    }
    function value(pointer, key) {
      ws();
      const start = i;
      const c = text[i];
      if (c === "{") object(pointer);
      else if (c === "[") array(pointer);
      else if (c === '"') string();
      else {
        const m = /^(-?\d+(\.\d+)?([eE][+-]?\d+)?|true|false|null)/.exec(text.slice(i, i + 64));
        if (!m) fail();
        i += m[0].length;
      }
      places.set(pointer, { start, end: i, key: key ?? start });
    }
    function object(pointer) {
      i++;
      ws();
      if (text[i] === "}") return void i++;
      for (;;) {
        ws();
        const keyAt = i;
        const name = string();
        ws();
        if (text[i] !== ":") fail();
        i++;
        value(`${pointer}/${escape(name)}`, keyAt);
        ws();
        if (text[i] === ",") i++;
        else if (text[i] === "}") return void i++;
        else fail();
      }
    }
    function array(pointer) {
      i++;
      ws();
      if (text[i] === "]") return void i++;
      for (let n = 0; ; n++) {
        value(`${pointer}/${n}`);
        ws();
        if (text[i] === ",") i++;
        else if (text[i] === "]") return void i++;
        else fail();
      }
    }
    try {
      value("");
    } catch {
      /* keep the places found before the error */
    }
    return places;
  }
  return parse;
})();

(() => {
  const { api, el, debounce } = ff;
  const root = document.getElementById("flow");
  const flowId = root.dataset.flowId;
  const source = document.getElementById("source");
  const gutter = document.getElementById("gutter");
  const problemsList = document.getElementById("problems");
  const status = document.getElementById("check-status");
  const diagram = document.getElementById("diagram");
  const note = document.getElementById("diagram-note");
  const saveButton = document.getElementById("save");
  let checks = 0; // only the newest answer is shown
  let drawn = false;
  let savedText = null; // the text as loaded or last saved: anything else is unsaved work
  const unsaved = () => savedText !== null && source.value !== savedText;

  const EXAMPLE = {
    name: "New flow",
    description: "",
    steps: [
      { stepDefinitionId: "generate", type: "generate-production-files", successStatus: "Files ready", options: { fileFormat: "stl" }, onSuccess: "notify", onError: "error" },
      { stepDefinitionId: "notify", type: "send-email", successStatus: "Done", options: { recipients: ["shop@example.com"], subject: "Order {{ order.id }} is ready", message: "Files are ready." }, onError: "error" },
      { stepDefinitionId: "error", type: "send-email", successStatus: "Failed", options: { recipients: ["shop@example.com"], subject: "Order {{ order.id }} failed", message: "{{ error.message }}" } },
    ],
  };

  function lineOf(offset) {
    let line = 1;
    for (let k = 0; k < offset && k < source.value.length; k++) if (source.value.charCodeAt(k) === 10) line++;
    return line;
  }

  function offsetOfLine(line, column = 1) {
    let offset = 0;
    for (let l = 1; l < line; l++) {
      const next = source.value.indexOf("\n", offset);
      if (next < 0) break;
      offset = next + 1;
    }
    return offset + column - 1;
  }

  /* Where a problem is: its pointer's place, else its nearest existing parent's, else the line
     and column a "malformed JSON" message names. */
  function locate(problem, places) {
    const m = /line (\d+), column (\d+)/.exec(problem.message);
    if (m && !problem.pointer) {
      const start = offsetOfLine(Number(m[1]), Number(m[2]));
      return { start, end: start + 1 };
    }
    let pointer = problem.pointer || "";
    while (!places.has(pointer) && pointer) pointer = pointer.slice(0, pointer.lastIndexOf("/"));
    const place = places.get(pointer);
    if (!place) return { start: 0, end: 0 };
    const exact = pointer === (problem.pointer || "");
    return exact ? { start: place.key, end: place.end } : { start: place.start, end: place.start + 1 };
  }

  function drawGutter(marks = new Map()) {
    const count = source.value.split("\n").length;
    const rows = [];
    for (let n = 1; n <= count; n++) {
      const mark = marks.get(n);
      rows.push(el("div", { class: mark ? mark.severity : null, dataset: { line: n }, title: mark ? mark.messages.join("\n") : null }, mark ? `${mark.severity === "error" ? "✖" : "⚠"} ${n}` : n));
    }
    gutter.replaceChildren(...rows);
    gutter.scrollTop = source.scrollTop;
  }

  function goTo(place) {
    source.focus();
    source.setSelectionRange(place.start, place.end);
    const lineHeight = parseFloat(getComputedStyle(source).lineHeight) || 18;
    source.scrollTop = Math.max(0, (lineOf(place.start) - 4) * lineHeight);
    gutter.scrollTop = source.scrollTop;
  }

  function showProblems(problems) {
    const places = jsonPlaces(source.value);
    const marks = new Map();
    const items = problems.map((problem) => {
      const place = locate(problem, places);
      const line = lineOf(place.start);
      const severity = problem.severity === "warning" ? "warning" : "error";
      const mark = marks.get(line) || { severity, messages: [] };
      if (severity === "error") mark.severity = "error";
      mark.messages.push(problem.message);
      marks.set(line, mark);
      return el(
        "li",
        { class: severity, dataset: { line, pointer: problem.pointer } },
        el(
          "button",
          { type: "button", onclick: () => goTo(place) },
          el("span", { class: "where" }, `${severity === "error" ? "✖ Error" : "⚠ Warning"} · line ${line}`),
          el("span", {}, ` ${problem.pointer || "(document)"}: ${problem.message}`),
        ),
      );
    });
    problemsList.replaceChildren(...items);
    drawGutter(marks);
  }

  function showGraph(graph) {
    diagram.classList.toggle("stale", !graph);
    if (graph) {
      flowDiagram.draw(diagram, graph);
      drawn = true;
      note.textContent = "";
    } else {
      note.textContent = drawn ? "The diagram shows the last version that loaded: fix the errors to update it." : "The diagram appears once the flow loads.";
    }
  }

  async function check() {
    const mine = ++checks;
    status.textContent = "Checking…";
    try {
      const result = await api("POST", "/api/flows/validate", source.value || "null", true);
      if (mine !== checks) return;
      const errors = result.problems.filter((p) => p.severity !== "warning").length;
      status.className = result.valid ? "valid" : "muted";
      status.textContent = result.valid ? `✓ Valid${result.problems.length ? `, ${result.problems.length} warning(s)` : ""}` : `✖ ${errors} problem(s) to fix`;
      status.dataset.valid = String(result.valid);
      showProblems(result.problems);
      showGraph(result.graph);
    } catch (error) {
      if (mine === checks) status.textContent = `Could not check: ${error.message}`;
    }
  }

  async function save() {
    const newId = document.getElementById("flow-id");
    if (newId && !newId.reportValidity()) return;
    const id = flowId || newId.value.trim();
    saveButton.disabled = true;
    try {
      const saved = flowId
        ? await api("PUT", `/api/flows/${encodeURIComponent(id)}`, source.value, true)
        : await api("POST", `/api/flows?id=${encodeURIComponent(id)}`, source.value, true);
      ff.toast(`Saved ${saved.id} version ${saved.currentVersion}`);
      savedText = source.value;
      if (!flowId) location.assign(`/flows/${encodeURIComponent(saved.id)}?saved=${saved.currentVersion}`);
      else await loadVersions(saved.currentVersion);
      status.textContent = `✓ Saved as version ${saved.currentVersion}`;
    } catch (error) {
      const taken = error.status === 409 && !flowId;
      ff.toast(taken ? `Not saved: a flow “${id}” exists already. Open it from All flows to save a new version of it, or choose another id.` : `Not saved: ${error.message}`, true);
      if (error.problems?.length) showProblems(error.problems);
    } finally {
      saveButton.disabled = false;
    }
  }

  function editable(flow) {
    return JSON.stringify({ name: flow.name, description: flow.description || "", steps: flow.steps }, null, 2);
  }

  async function loadVersions(current) {
    const { versions } = await api("GET", `/api/flows/${encodeURIComponent(flowId)}/versions`);
    const list = document.getElementById("versions");
    list.replaceChildren(
      ...versions.map((v) =>
        el("li", {}, el("button", { type: "button", "aria-pressed": String(v.version === current), dataset: { version: v.version }, onclick: () => openVersion(v.version) }, `v${v.version} · ${ff.when(v.createdAt)}`)),
      ),
    );
  }

  async function openVersion(version) {
    const flow = await api("GET", `/api/flows/${encodeURIComponent(flowId)}/versions/${version}`);
    if (unsaved() && !(await ff.confirm("Discard your changes?", `Your edits are not saved; opening version ${version} replaces them.`, "Discard and open", true))) return;
    source.value = editable(flow);
    savedText = source.value;
    await loadVersions(version);
    status.textContent = `Version ${version} loaded; saving makes it the newest version.`;
    edited();
  }

  async function start() {
    if (flowId) {
      const flow = await api("GET", `/api/flows/${encodeURIComponent(flowId)}`);
      source.value = editable(flow);
      await loadVersions(flow.currentVersion);
    } else {
      source.value = JSON.stringify(EXAMPLE, null, 2);
    }
    savedText = source.value;
    edited();
  }

  const edited = () => {
    drawGutter();
    check();
  };
  const later = debounce(check, 300);
  source.addEventListener("input", () => {
    drawGutter();
    later();
  });
  source.addEventListener("scroll", () => (gutter.scrollTop = source.scrollTop));
  source.addEventListener("keydown", (e) => {
    // Tab indents (two spaces); Escape then Tab leaves the editor, so keyboard users are not trapped.
    if (e.key === "Tab" && !e.shiftKey && !source.dataset.escaped) {
      e.preventDefault();
      source.setRangeText("  ", source.selectionStart, source.selectionEnd, "end");
      source.dispatchEvent(new Event("input"));
    }
    if (e.key === "Escape") source.dataset.escaped = "1";
    else if (e.key !== "Tab") delete source.dataset.escaped;
  });
  saveButton.addEventListener("click", save);

  /* Unsaved edits are never dropped silently: leaving through a link of the page asks first,
     and the browser asks on reload, close or typing another address. */
  window.addEventListener("beforeunload", (e) => {
    if (!unsaved()) return;
    e.preventDefault();
    e.returnValue = "";
  });
  document.addEventListener("click", async (e) => {
    const link = e.target.closest("a[href]");
    if (!link || !unsaved() || e.defaultPrevented || link.target || e.ctrlKey || e.metaKey || e.shiftKey) return;
    e.preventDefault();
    if (await ff.confirm("Leave without saving?", "Your changes to this flow are not saved: they are lost if you leave.", "Leave", true)) {
      savedText = null; // the browser must not ask a second time
      location.assign(link.href);
    }
  });
  start().catch((error) => ff.toast(`Could not load the flow: ${error.message}`, true));
})();
