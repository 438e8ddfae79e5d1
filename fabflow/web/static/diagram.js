/* A flow as an SVG drawing: steps as boxes in layers from the first step down, success edges
   solid green, error edges dashed red (each also labelled, so colour is never the only cue),
   steps no path reaches drawn dashed and grey with "never reached". */
"use strict";

const flowDiagram = (() => {
  const NS = "http://www.w3.org/2000/svg";
  const W = 200;
  const H = 64;
  const GAP_X = 36;
  const GAP_Y = 64;
  const PAD = 24;
  const SIDE = 56; // room left and right of the boxes for edges that skip layers
  const COLOURS = { success: "#1a7f37", error: "#b42318", choice: "#0550ae" };

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

  function positions(graph) {
    const layer = layers(graph);
    const rows = [];
    const ordered = [...graph.nodes].sort((a, b) => Number(a.unreachable) - Number(b.unreachable));
    for (const node of ordered) (rows[layer.get(node.id)] ||= []).push(node.id);
    const widest = Math.max(1, ...rows.map((r) => (r ? r.length : 0)));
    const width = PAD * 2 + 2 * SIDE + widest * W + (widest - 1) * GAP_X; // lanes for long edges
    const place = new Map();
    rows.forEach((row, y) => {
      if (!row) return;
      const rowWidth = row.length * W + (row.length - 1) * GAP_X;
      const left = (width - rowWidth) / 2;
      row.forEach((id, i) => place.set(id, { x: left + i * (W + GAP_X), y: PAD + y * (H + GAP_Y) }));
    });
    return { place, width, height: PAD * 2 + rows.length * H + (rows.length - 1) * GAP_Y };
  }

  function clip(text, max) {
    const s = String(text ?? "");
    return s.length > max ? s.slice(0, max - 1) + "…" : s;
  }

  function defs() {
    const marker = (kind) =>
      svg(
        "marker",
        { id: `arrow-${kind}`, viewBox: "0 0 10 10", refX: "9", refY: "5", markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse" },
        svg("path", { d: "M0,0 L10,5 L0,10 z", fill: COLOURS[kind] }),
      );
    return svg("defs", {}, marker("success"), marker("error"), marker("choice"));
  }

  function box(node, at) {
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

  /* Edges to the next layer curve straight down; longer ones (and any going up) run down the
     right-hand side (error) or left-hand side (success) so they never cross a box. A choice's
     branches all leave from one point, so each one's label sits at its target, right of the
     arrow's head (the `stack`-th label arriving there goes one line higher). */
  function edge(e, place, width, stack = 0) {
    const a = place.get(e.from);
    const b = place.get(e.to);
    if (!a || !b) return null;
    const ok = e.kind !== "error"; // a choice's branches run on the left, as successes
    const text = e.kind === "choice" ? clip(e.label === "otherwise" ? "otherwise" : `when ${e.label}`, 34) : ok ? "ok" : "error";
    const adjacent = b.y - a.y > 0 && b.y - a.y <= H + GAP_Y;
    let d;
    let label;
    if (adjacent) {
      const sx = a.x + W / 2 + (ok ? -W / 5 : W / 5);
      const tx = b.x + W / 2 + (ok ? -W / 10 : W / 10);
      const bend = (b.y - a.y - H) / 2;
      d = `M${sx},${a.y + H} C${sx},${a.y + H + bend} ${tx},${b.y - bend} ${tx},${b.y - 2}`;
      label = { x: sx + (ok ? -6 : 6), y: a.y + H + 16, anchor: ok ? "end" : "start" };
    } else {
      const side = ok ? Math.min(a.x, b.x) : Math.max(a.x, b.x) + W;
      const lane = ok ? PAD / 2 + 4 : width - PAD / 2 - 4;
      const sy = a.y + H / 2;
      const ty = b.y + H / 2 + (ok ? -8 : 8);
      d = `M${side},${sy} C${lane},${sy} ${lane},${ty} ${side + (ok ? -2 : 2)},${ty}`;
      label = { x: ok ? side - 6 : side + 6, y: sy - 6, anchor: ok ? "end" : "start" };
    }
    if (e.kind === "choice") label = { x: b.x + W / 2 - W / 10 + 6, y: b.y - 6 - 13 * stack, anchor: "start" };
    return svg(
      "g",
      { class: `edge ${e.kind}`, "data-from": e.from, "data-to": e.to, "data-kind": e.kind },
      svg("path", {
        d, fill: "none", stroke: COLOURS[e.kind], "stroke-width": 2.2,
        "stroke-dasharray": e.kind === "error" ? "7 5" : e.kind === "choice" ? "2 3" : null, "marker-end": `url(#arrow-${e.kind})`,
      }),
      svg("text", { x: label.x, y: label.y, "font-size": 11, fill: COLOURS[e.kind], "text-anchor": label.anchor }, svg("title", {}, e.label || ""), text),
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

  /* Draw `graph` ({nodes, edges} from POST /api/flows/validate) into `container`. */
  function draw(container, graph) {
    const { place, width, height } = positions(graph);
    const drawing = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, "font-family": "system-ui, sans-serif" }, defs());
    const arriving = new Map(); // choice labels already drawn at each target
    for (const e of graph.edges) {
      const stack = e.kind === "choice" ? arriving.get(e.to) || 0 : 0;
      if (e.kind === "choice") arriving.set(e.to, stack + 1);
      drawing.append(edge(e, place, width, stack) || "");
    }
    for (const node of graph.nodes) drawing.append(box(node, place.get(node.id)));
    container.replaceChildren(drawing);
    container.setAttribute("aria-label", "Diagram of the flow: " + describe(graph));
  }

  return { draw };
})();
