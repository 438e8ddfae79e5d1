/* The 3D view of a part (STL, OBJ or 3MF): turn it with the mouse or the keys, zoom, and read its
   bounding box in millimetres. An ES module loaded only when someone opens a view, and three.js
   (vendored by `make vendor`, never from a CDN) only then too, so no list page grows.

   toggleViewer(button, box, source, options) opens a view under a "View in 3D" button and closes
   it again; mountViewer(box, source, options) is the view itself and answers { close, ready }.
   `source` is a URL read with the page's session cookie, or a function answering a fetch()
   Response (a POST, say); options: { format: "stl" | "stl-ascii" | "obj" | "3mf", name }
   (without format, the URL's file extension says). */

const VENDOR = "/static/vendor/three/";
const TURN = Math.PI / 12; // 15° per arrow key
const ZOOM = 1.25; // per + or − key
const open = new Set(); // views not closed yet, so one whose page part was replaced is freed
const toggled = new WeakMap(); // box -> the view toggleViewer opened in it

// Each format's loader, loaded with three.js when a file of that format is first opened.
const LOADERS = { stl: "STLLoader.js", "stl-ascii": "STLLoader.js", obj: "OBJLoader.js", "3mf": "3MFLoader.js" };

async function loadThree(format) {
  const files = ["three.module.js", "OrbitControls.js", LOADERS[format]];
  const [THREE, controls, loader] = await Promise.all(files.map((f) => import(VENDOR + f)));
  return { THREE, ...controls, ...loader };
}

function node(tag, attrs = {}, text = "") {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) element.setAttribute(key, value);
  element.textContent = text;
  return element;
}

const mm = (n) => n.toLocaleString(undefined, { maximumFractionDigits: 1 });
const formatOf = (source, format) => (format || (typeof source === "string" ? source.split("?")[0].split(".").pop() : "stl")).toLowerCase();

async function readSource(source) {
  const response = typeof source === "function" ? await source() : await fetch(source, { credentials: "same-origin" });
  if (response.status === 401) throw new Error("you were signed out: reload the page to sign in again");
  if (!response.ok) {
    const body = await response.json().catch(() => null);
    throw new Error(body?.message || `the file could not be read (HTTP ${response.status})`);
  }
  return response.arrayBuffer();
}

/* The part as a three.js object: an STL's one mesh, or an OBJ's or a 3MF's group of meshes,
   all in the view's material. */
function partObject(lib, data, material) {
  const { THREE } = lib;
  if (lib.STLLoader) return new THREE.Mesh(new lib.STLLoader().parse(data), material);
  const group = lib.OBJLoader ? new lib.OBJLoader().parse(new TextDecoder().decode(data)) : new lib.ThreeMFLoader().parse(data);
  group.traverse((child) => {
    if (!child.isMesh) return;
    for (const used of [child.material].flat()) used?.dispose?.();
    child.material = material;
    if (!child.geometry.attributes.normal) child.geometry.computeVertexNormals();
  });
  return group;
}

/* A camera looking at the part from the front, right and above (Z is up, as on a printer's
   bed), far enough back to see all of it. */
function frame(lib, camera, controls, box) {
  const { THREE } = lib;
  const centre = box.getCenter(new THREE.Vector3());
  const radius = Math.max(box.getBoundingSphere(new THREE.Sphere()).radius, 0.5);
  const distance = (radius / Math.sin(THREE.MathUtils.degToRad(camera.fov / 2))) * 1.05;
  camera.near = distance / 100;
  camera.far = distance * 100;
  camera.position.copy(centre).add(new THREE.Vector3(0.9, -1.4, 1).normalize().multiplyScalar(distance));
  camera.updateProjectionMatrix();
  controls.target.copy(centre);
  controls.minDistance = radius * 0.3;
  controls.maxDistance = distance * 8;
  controls.update();
  controls.saveState();
}

function turn(lib, camera, controls, key) {
  const { THREE } = lib;
  const offset = camera.position.clone().sub(controls.target);
  if (key === "ArrowLeft" || key === "ArrowRight") {
    offset.applyAxisAngle(camera.up, key === "ArrowLeft" ? TURN : -TURN);
  } else {
    const side = offset.clone().cross(camera.up).normalize();
    const turned = offset.clone().applyAxisAngle(side, key === "ArrowUp" ? -TURN : TURN);
    const tilt = turned.angleTo(camera.up);
    if (tilt > 0.05 && tilt < Math.PI - 0.05) offset.copy(turned); // never over the top
  }
  camera.position.copy(controls.target).add(offset);
  controls.update();
}

function zoom(camera, controls, factor) {
  const offset = camera.position.clone().sub(controls.target).multiplyScalar(factor);
  const length = Math.min(Math.max(offset.length(), controls.minDistance), controls.maxDistance);
  camera.position.copy(controls.target).add(offset.setLength(length));
  controls.update();
}

function keyed(lib, camera, controls, event) {
  if (event.altKey || event.ctrlKey || event.metaKey) return false;
  if (event.key.startsWith("Arrow")) turn(lib, camera, controls, event.key);
  else if (event.key === "+" || event.key === "=") zoom(camera, controls, 1 / ZOOM);
  else if (event.key === "-" || event.key === "_") zoom(camera, controls, ZOOM);
  else if (event.key === "0" || event.key === "Home") controls.reset();
  else return false;
  return true;
}

/* The scene around a part: soft light from above, a light that follows the camera, and a
   grid on the bed under the part (10 mm squares, 1 mm for a small one). */
function stage(lib, part, box) {
  const { THREE } = lib;
  const scene = new THREE.Scene();
  scene.background = new THREE.Color(0xf6f8fa);
  const camera = new THREE.PerspectiveCamera(35, 1, 0.1, 1000);
  camera.up.set(0, 0, 1);
  const lamp = new THREE.DirectionalLight(0xffffff, 2.4); // from the upper left of the view,
  lamp.position.set(-1, 1.5, 0.5); // so raised text and edges cast their shades
  lamp.target.position.set(0, 0, -1); // it shines where the camera looks
  camera.add(lamp, lamp.target);
  scene.add(camera, new THREE.HemisphereLight(0xffffff, 0x8090a0, 0.9), part);
  const size = box.getSize(new THREE.Vector3());
  const step = Math.max(size.x, size.y) > 30 ? 10 : 1;
  const cells = Math.ceil((Math.max(size.x, size.y) * 1.4) / step);
  const grid = new THREE.GridHelper(cells * step, cells, 0xb8c0cc, 0xdde2e8);
  grid.rotation.x = Math.PI / 2; // into the XY plane: the printer's bed
  grid.position.set((box.min.x + box.max.x) / 2, (box.min.y + box.max.y) / 2, box.min.z);
  scene.add(grid);
  return { scene, camera };
}

function dispose(scene) {
  scene.traverse((object) => {
    object.geometry?.dispose();
    for (const material of [object.material].flat()) material?.dispose();
  });
}

function problem(box, text) {
  box.replaceChildren(node("p", { class: "alert viewer-problem", role: "alert" }, `The 3D view cannot open: ${text}.`));
}

/* The view of `source` drawn in `box`. `ready` settles once the part is drawn (with its size
   in mm) or the reason it is not is shown in the box; it never rejects. */
export function mountViewer(box, source, { format, name = "the part" } = {}) {
  const state = { closed: false, release: () => {} };
  const view = {
    close() {
      if (state.closed) return;
      state.closed = true;
      open.delete(view);
      state.release();
      box.replaceChildren();
    },
  };
  Object.assign(view, { box, state });
  closeDetached();
  open.add(view);
  box.replaceChildren(node("p", { class: "muted" }, "Loading the 3D view…"));
  view.ready = draw(box, source, formatOf(source, format), name, state).catch((error) => {
    if (!state.closed) problem(box, error.message);
    return null;
  });
  return view;
}

async function draw(box, source, format, name, state) {
  if (!LOADERS[format]) throw new Error(`a ${format.toUpperCase()} file cannot be shown in 3D (STL, OBJ and 3MF can)`);
  let lib;
  try {
    lib = await loadThree(format);
  } catch {
    throw new Error("its three.js files are missing on this server (`make vendor` installs them)");
  }
  const data = await readSource(source);
  if (state.closed) return null;
  const { THREE } = lib;
  const material = new THREE.MeshStandardMaterial({ color: 0x5b8fd0, roughness: 0.55, metalness: 0.05 });
  const part = partObject(lib, data, material);
  const bounds = new THREE.Box3().setFromObject(part);
  if (bounds.isEmpty()) throw new Error("the file has no triangles");
  const { scene, camera } = stage(lib, part, bounds);
  let renderer;
  try {
    renderer = new THREE.WebGLRenderer({ antialias: true });
  } catch {
    dispose(scene);
    throw new Error("this browser cannot draw 3D here (WebGL is off or unavailable)");
  }
  const size = bounds.getSize(new THREE.Vector3());
  const controls = new lib.OrbitControls(camera, canvasOf(renderer, name, size));
  frame(lib, camera, controls, bounds);
  const render = () => state.closed || renderer.render(scene, camera);
  controls.addEventListener("change", render);
  renderer.domElement.addEventListener("keydown", (event) => {
    if (keyed(lib, camera, controls, event)) event.preventDefault();
  });
  const frameBox = node("div", { class: "viewer-stage" });
  frameBox.append(renderer.domElement);
  box.replaceChildren(panel(frameBox, size, controls));
  const watch = new ResizeObserver(() => fit(frameBox, renderer, camera, render, state));
  watch.observe(frameBox);
  state.release = () => {
    watch.disconnect();
    controls.dispose();
    dispose(scene);
    renderer.dispose();
    renderer.forceContextLoss(); // give the browser its WebGL context back now, not at GC
  };
  fit(frameBox, renderer, camera, render, state);
  return { sizeMm: [size.x, size.y, size.z] };
}

function canvasOf(renderer, name, size) {
  renderer.setPixelRatio(Math.min(window.devicePixelRatio || 1, 2));
  const canvas = renderer.domElement;
  canvas.className = "viewer-canvas";
  canvas.tabIndex = 0;
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", `3D view of ${name}, ${mm(size.x)} by ${mm(size.y)} by ${mm(size.z)} mm. Arrow keys turn it, plus and minus zoom, 0 resets the view.`);
  return canvas;
}

/* The canvas with the bounding box under it, a line on how to move it and "Reset view". */
function panel(frameBox, size, controls) {
  const reset = node("button", { type: "button" }, "Reset view");
  reset.addEventListener("click", () => controls.reset());
  const measured = node("p", { class: "viewer-size" });
  const text = `${mm(size.x)} × ${mm(size.y)} × ${mm(size.z)} mm`;
  measured.append(node("span", { class: "muted" }, "Bounding box (X × Y × Z): "), node("strong", { "data-stat": "bbox" }, text));
  const help = node("p", { class: "muted viewer-help" }, "Drag to turn, scroll or pinch to zoom, right-drag to move. Keys, once the view has focus: arrows turn, + and − zoom, 0 resets.");
  const shell = node("div", { class: "viewer" });
  shell.append(frameBox, measured, help, reset);
  return shell;
}

/* The drawing as big as its box, drawn again; a view whose box left the page is closed. */
function fit(frameBox, renderer, camera, render, state) {
  if (!frameBox.isConnected) return state.shown && closeDetached();
  state.shown = true;
  const { width, height } = frameBox.getBoundingClientRect();
  if (width < 1 || height < 1) return;
  renderer.setSize(width, height, false);
  camera.aspect = width / height;
  camera.updateProjectionMatrix();
  render();
}

/* A view whose box left the page (the page was redrawn) frees its WebGL context. */
function closeDetached() {
  for (const view of [...open]) if (view.state.shown && !view.box.isConnected) view.close();
}

/* Open the view in `box` and turn `button` into its "Close 3D view", or close it again. */
export function toggleViewer(button, box, source, options = {}) {
  const shown = toggled.get(box);
  if (shown) {
    shown.close();
    toggled.delete(box);
    button.setAttribute("aria-expanded", "false");
    button.textContent = button.dataset.label || "View in 3D";
    return null;
  }
  button.dataset.label ??= button.textContent;
  button.setAttribute("aria-expanded", "true");
  button.textContent = "Close 3D view";
  const view = mountViewer(box, source, options);
  toggled.set(box, view);
  return view;
}
