/* A flow as an SVG drawing: steps as boxes in layers from the first step down, success edges
   solid green, error edges dashed red (each also labelled, so colour is never the only cue),
   steps no path reaches drawn dashed and grey with "never reached". Given a run (the order
   page), each step is filled by its state, named in words with an icon, the edges taken are
   drawn bold and a step is a button that shows its attempts. */
"use strict";

const flowDiagram = (() => {
  const NS = "http://www.w3.org/2000/svg";
  const W = 200;
  const H = 64;
  const GAP_X = 36;
  const GAP_Y = 64;
  const PAD = 24;
  const SIDE = 56; // room left and right of the boxes for edges that skip layers
  const LANE = 10; // between two such edges' lanes
  const LANE_IN = 16; // from the boxes to the nearest lane
  const CORNER = 8;
  const COLOURS = { success: "#1a7f37", error: "#b42318", choice: "#0550ae" };
  // A step's state in a run: its fill, and its border and words (each at least 4.5:1 on
  // its fill), with an icon so that colour is never the only cue.
  const STATES = {
    succeeded: { icon: "✓", word: "succeeded", fill: "#e6f4ea", ink: "#116329" },
    failed: { icon: "✖", word: "failed", fill: "#fdecea", ink: "#b42318" },
    running: { icon: "▶", word: "running", fill: "#e7f0fb", ink: "#0b5cad" },
    queued: { icon: "◷", word: "queued", fill: "#e7f0fb", ink: "#0b5cad" },
    waiting: { icon: "⏸", word: "waiting", fill: "#fff4d6", ink: "#8a5a00" },
    retrying: { icon: "↻", word: "retrying", fill: "#fff4d6", ink: "#8a5a00" },
    cancelled: { icon: "⊘", word: "cancelled", fill: "#eef0f2", ink: "#57606a" },
    not_reached: { icon: "○", word: "not reached", fill: "#ffffff", ink: "#57606a" },
  };

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) if (v !== null && v !== undefined) node.setAttribute(k, v);
    for (const c of children) if (c !== null && c !== undefined) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return node;
  }

  /* Longest-path layers: every edge points down, whatever order the steps are listed in. */
  function layers(graph) {
    const ids = graph.nodes.map((n) => n.id);
    const layer = new Map(ids.map((id) => [id, 0]));
    for (let pass = 0; pass < ids.length; pass++) {
      let moved = false;
      for (const e of graph.edges) {
        if (!layer.has(e.from) || !layer.has(e.to) || e.from === e.to) continue;
        if (layer.get(e.to) < layer.get(e.from) + 1) {
          layer.set(e.to, layer.get(e.from) + 1);
          moved = true;
        }
      }
      if (!moved) break; // a cycle (invalid flow) stops after ids.length passes
    }
    return layer;
  }

  /* Boxes in rows by layer, centred; the edges that skip a layer (or go up) each get a lane of
     their own outside the boxes: errors on the right, the others on the left. */
  function positions(graph) {
    const layer = layers(graph);
    const rows = [];
    const ordered = [...graph.nodes].sort((a, b) => Number(a.unreachable) - Number(b.unreachable));
    for (const node of ordered) (rows[layer.get(node.id)] ||= []).push(node.id);
    const long = graph.edges.filter((e) => layer.has(e.from) && layer.has(e.to) && layer.get(e.to) - layer.get(e.from) !== 1);
    const leftward = long.filter((e) => e.kind !== "error");
    const rightward = long.filter((e) => e.kind === "error");
    const margin = (count) => PAD + Math.max(SIDE, LANE_IN + count * LANE);
    const widest = Math.max(1, ...rows.map((r) => (r ? r.length : 0)));
    const inner = widest * W + (widest - 1) * GAP_X;
    const left = margin(leftward.length);
    const width = left + inner + margin(rightward.length);
    const place = new Map();
    rows.forEach((row, y) => {
      if (!row) return;
      const rowWidth = row.length * W + (row.length - 1) * GAP_X;
      const start = left + (inner - rowWidth) / 2;
      row.forEach((id, i) => place.set(id, { x: start + i * (W + GAP_X), y: PAD + y * (H + GAP_Y) }));
    });
    const lanes = new Map([
      ...leftward.map((e, k) => [e, { x: left - LANE_IN - k * LANE, k }]),
      ...rightward.map((e, k) => [e, { x: left + inner + LANE_IN + k * LANE, k }]),
    ]);
    return { place, lanes, width, height: PAD * 2 + rows.length * H + (rows.length - 1) * GAP_Y };
  }

  function clip(text, max) {
    const s = String(text ?? "");
    return s.length > max ? s.slice(0, max - 1) + "…" : s;
  }

  function defs() {
    // A marker grows with its line: a bold (taken) edge's is drawn smaller to look the same.
    const marker = (kind, taken = false) =>
      svg(
        "marker",
        { id: `arrow-${kind}${taken ? "-taken" : ""}`, viewBox: "0 0 10 10", refX: "9", refY: "5", markerWidth: taken ? "3.4" : "7", markerHeight: taken ? "3.4" : "7", orient: "auto-start-reverse" },
        svg("path", { d: "M0,0 L10,5 L0,10 z", fill: COLOURS[kind] }),
      );
    const kinds = ["success", "error", "choice"];
    return svg("defs", {}, ...kinds.map((k) => marker(k)), ...kinds.map((k) => marker(k, true)));
  }

  function box(node, at, run) {
    if (run) return runBox(node, at, run);
    const lost = node.unreachable;
    return svg(
      "g",
      { class: "node", "data-step": node.id, "data-unreachable": String(lost), transform: `translate(${at.x},${at.y})` },
      svg("title", {}, `${node.id} (${node.type}) sets status "${node.successStatus}"${lost ? "; never reached" : ""}`),
      svg("rect", {
        width: W, height: H, rx: 6,
        fill: lost ? "#eef0f2" : "#ffffff",
        stroke: lost ? "#57606a" : "#1b1f24",
        "stroke-width": node.first ? 2.5 : 1.2,
        "stroke-dasharray": lost ? "5 4" : null,
      }),
      svg("text", { x: 10, y: 20, "font-weight": "700", "font-size": 13, fill: "#1b1f24" }, (node.first ? "▶ " : "") + clip(node.id, 24)),
      svg("text", { x: 10, y: 37, "font-size": 11.5, fill: "#57606a" }, clip(node.type, 30)),
      svg("text", { x: 10, y: 54, "font-size": 11.5, fill: lost ? "#b42318" : "#1b1f24" }, lost ? "⚠ never reached" : node.successStatus ? "→ " + clip(node.successStatus, 26) : "(sets no status)"),
    );
  }

  const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

  function stateOf(node, run) {
    const step = run.steps.get(node.id) || { state: "not_reached", attempts: 0 };
    return { ...step, look: STATES[step.state] || { icon: "•", word: step.state, fill: "#ffffff", ink: "#1b1f24" } };
  }

  /* A step of a run: a button (click, Enter or Space) that shows its attempts. */
  function runBox(node, at, run) {
    const { state, attempts, look } = stateOf(node, run);
    const said = `${look.word}${attempts ? `, ${plural(attempts, "attempt")}` : ""}`;
    const group = svg(
      "g",
      {
        class: "node", "data-step": node.id, "data-state": state, transform: `translate(${at.x},${at.y})`,
        role: "button", tabindex: "0", "aria-label": `${node.id} (${node.type}): ${said}. Show its attempts`,
      },
      svg("title", {}, `${node.id} (${node.type}): ${said}`),
      svg("rect", {
        width: W, height: H, rx: 6, fill: look.fill, stroke: look.ink,
        "stroke-width": state === "not_reached" ? 1.2 : 2.5, "stroke-dasharray": state === "not_reached" ? "5 4" : null,
      }),
      svg("text", { x: 10, y: 20, "font-weight": "700", "font-size": 13, fill: "#1b1f24" }, (node.first ? "▶ " : "") + clip(node.id, 24)),
      svg("text", { x: 10, y: 37, "font-size": 11.5, fill: "#57606a" }, clip(node.type, 30)),
      svg("text", { class: "state", x: 10, y: 54, "font-size": 11.5, "font-weight": "600", fill: look.ink }, `${look.icon} ${said}`),
    );
    const pick = () => run.onStep?.(node.id);
    group.addEventListener("click", pick);
    group.addEventListener("keydown", (e) => {
      if (e.key !== "Enter" && e.key !== " ") return;
      e.preventDefault();
      pick();
    });
    return group;
  }

  /* A path through `points` in straight lines, each corner rounded. */
  function rounded(points) {
    const toward = (from, to, r) => {
      const len = Math.hypot(to.x - from.x, to.y - from.y) || 1;
      return { x: from.x + ((to.x - from.x) * r) / len, y: from.y + ((to.y - from.y) * r) / len };
    };
    let d = `M${points[0].x},${points[0].y}`;
    for (let i = 1; i < points.length - 1; i++) {
      const [p, q, n] = [points[i - 1], points[i], points[i + 1]];
      const r = Math.min(CORNER, Math.hypot(q.x - p.x, q.y - p.y) / 2, Math.hypot(n.x - q.x, n.y - q.y) / 2);
      const a = toward(q, p, r);
      const b = toward(q, n, r);
      d += ` L${a.x},${a.y} Q${q.x},${q.y} ${b.x},${b.y}`;
    }
    const last = points[points.length - 1];
    return `${d} L${last.x},${last.y}`;
  }

  /* Every edge leaves the bottom of its step (success left of centre, error right) and
     arrives at the top of its target. To the next layer it curves down through the gap
     between the rows; a longer one (or one going up) runs along the gap below its step, down
     or up its own lane outside the boxes, then along the gap above its target: so no edge is
     ever drawn under a box. A choice's branches all leave from one point, so each one's label
     sits at its target, right of the arrow's head (the `stack`-th label arriving there goes
     one line higher). */
  function edge(e, layout, stack = 0, run = null) {
    const { place, lanes, height } = layout;
    const a = place.get(e.from);
    const b = place.get(e.to);
    if (!a || !b) return null;
    const ok = e.kind !== "error"; // a choice's branches run on the left, as successes
    const text = e.kind === "choice" ? clip(e.label === "otherwise" ? "otherwise" : `when ${e.label}`, 34) : ok ? "ok" : "error";
    const sx = a.x + W / 2 + (ok ? -W / 5 : W / 5);
    const tx = b.x + W / 2 + (ok ? -W / 10 : W / 10);
    const lane = lanes.get(e);
    let d;
    if (!lane) {
      const bend = (b.y - a.y - H) / 2;
      d = `M${sx},${a.y + H} C${sx},${a.y + H + bend} ${tx},${b.y - bend} ${tx},${b.y - 2}`;
    } else {
      const stagger = ((lane.k % 3) - 1) * 5; // edges sharing a gap do not share a line
      const below = a.y + H + (a.y + H + PAD >= height ? PAD : GAP_Y) / 2 + stagger;
      const above = b.y - (b.y <= PAD ? PAD : GAP_Y) / 2 + stagger;
      d = rounded([
        { x: sx, y: a.y + H }, { x: sx, y: below }, { x: lane.x, y: below },
        { x: lane.x, y: above }, { x: tx, y: above }, { x: tx, y: b.y - 2 },
      ]);
    }
    let label = { x: sx + (ok ? -6 : 6), y: a.y + H + 16, anchor: ok ? "end" : "start" };
    if (e.kind === "choice") label = { x: b.x + W / 2 - W / 10 + 6, y: b.y - 6 - 13 * stack, anchor: "start" };
    const taken = run ? run.path.has(pathKey(e)) : null;
    return svg(
      "g",
      { class: `edge ${e.kind}${taken ? " taken" : ""}`, "data-from": e.from, "data-to": e.to, "data-kind": e.kind, "data-taken": taken === null ? null : String(taken) },
      svg("path", {
        d, fill: "none", stroke: COLOURS[e.kind], "stroke-width": taken ? 4.5 : run ? 1.4 : 2.2,
        "stroke-dasharray": e.kind === "error" ? "7 5" : e.kind === "choice" ? "2 3" : null, "marker-end": `url(#arrow-${e.kind}${taken ? "-taken" : ""})`,
      }),
      svg(
        "text",
        // Over a run's bold edges a label keeps a white halo, so that it stays legible.
        { x: label.x, y: label.y, "font-size": 11, fill: COLOURS[e.kind], "text-anchor": label.anchor, ...(run ? { stroke: "#ffffff", "stroke-width": 3, "paint-order": "stroke" } : {}) },
        svg("title", {}, e.label || ""),
        text,
      ),
    );
  }

  function describe(graph) {
    const parts = [`${graph.nodes.length} steps`];
    const how = (e) => (e.kind === "choice" ? (e.label === "otherwise" ? "otherwise" : `when ${e.label}`) : e.kind === "success" ? "on success" : "on error");
    for (const e of graph.edges) parts.push(`${e.from} ${how(e)} goes to ${e.to}`);
    const lost = graph.nodes.filter((n) => n.unreachable).map((n) => n.id);
    if (lost.length) parts.push(`never reached: ${lost.join(", ")}`);
    return parts.join("; ");
  }

  function describeRun(graph, run) {
    const states = graph.nodes.map((n) => `${n.id} ${stateOf(n, run).look.word}`);
    const taken = graph.edges.filter((e) => run.path.has(pathKey(e))).map((e) => `${e.from} to ${e.to}`);
    return `${states.join(", ")}; path taken: ${taken.join(", ") || "none yet"}`;
  }

  const pathKey = (e) => `${e.kind}\u0000${e.from}\u0000${e.to}`;

  /* A run to draw over the flow: `steps` as the order's run lists them ({stepDefinitionId,
     state, attempts}), `path` its edges taken ({from, to, kind}), `onStep(id)` on a click. */
  function runOf(steps, path, onStep) {
    return { steps: new Map(steps.map((s) => [s.stepDefinitionId, s])), path: new Set(path.map(pathKey)), onStep };
  }

  /* Draw `graph` ({nodes, edges} from POST /api/flows/validate, or graphOf) into `container`;
     with `run` (runOf), drawn as that run. */
  function draw(container, graph, run = null) {
    const layout = positions(graph);
    const { place, width, height } = layout;
    const drawing = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, "font-family": "system-ui, sans-serif" }, defs());
    const arriving = new Map(); // choice labels already drawn at each target
    for (const e of graph.edges) {
      const stack = e.kind === "choice" ? arriving.get(e.to) || 0 : 0;
      if (e.kind === "choice") arriving.set(e.to, stack + 1);
      drawing.append(edge(e, layout, stack, run) || "");
    }
    for (const node of graph.nodes) drawing.append(box(node, place.get(node.id), run));
    container.replaceChildren(drawing);
    const label = run ? "The run drawn: " + describeRun(graph, run) : "Diagram of the flow: " + describe(graph);
    container.setAttribute("aria-label", label);
  }

  /* The steps reached from `start` along the edges `follow` accepts. */
  function reach(start, edges, follow = () => true) {
    const seen = new Set(start === undefined ? [] : [start]);
    const todo = [...seen];
    while (todo.length) {
      const from = todo.pop();
      for (const e of edges) {
        if (e.from !== from || seen.has(e.to) || !follow(e)) continue;
        seen.add(e.to);
        todo.push(e.to);
      }
    }
    return seen;
  }

  /* A stored (so valid) flow version's steps as the graph validate answers: the same nodes
     and edges, in the same order. */
  function graphOf(steps) {
    const edges = [];
    for (const s of steps) {
      const id = s.stepDefinitionId;
      if (s.type === "choice") {
        for (const r of s.options?.rules || []) edges.push({ from: id, to: r.next, kind: "choice", label: r.when });
        if (s.options?.otherwise) edges.push({ from: id, to: s.options.otherwise, kind: "choice", label: "otherwise" });
      }
      if (s.onSuccess) edges.push({ from: id, to: s.onSuccess, kind: "success" });
      if (s.onError) edges.push({ from: id, to: s.onError, kind: "error" });
    }
    const reached = reach(steps[0]?.stepDefinitionId, edges);
    const nodes = steps.map((s, i) => ({
      id: s.stepDefinitionId, type: s.type, successStatus: s.successStatus || "", first: i === 0, unreachable: !reached.has(s.stepDefinitionId),
    }));
    return { nodes, edges };
  }

  return { draw, runOf, graphOf, reach };
})();
