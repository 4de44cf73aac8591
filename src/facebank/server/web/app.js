// facebank web page: plain JavaScript over the REST API (no build step).
// The API key is asked for once and kept in localStorage; every call sends it as X-API-Key.
"use strict";

const $ = (sel) => document.querySelector(sel);
const KEY_STORE = "facebank.key";
const state = { key: localStorage.getItem(KEY_STORE) || "", file: null, model: null };

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, props);
  for (const c of children) node.append(c);  // strings become text nodes: names are never HTML
  return node;
}

function say(target, message, isError = false) {
  const node = $(target);
  node.textContent = message;
  node.classList.toggle("error", isError);
}

class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

async function api(path, options = {}) {
  const headers = new Headers(options.headers || {});
  if (state.key) headers.set("X-API-Key", state.key);
  const res = await fetch(path, { ...options, headers });
  if (!res.ok) {
    let err = { code: `http_${res.status}`, message: res.statusText };
    try { const body = await res.json(); if (body && body.error) err = body.error; } catch (_) { /* not JSON */ }
    if (res.status === 401) say("#key-state", "a valid API key is needed", true);
    throw new ApiError(res.status, err.code, err.message);
  }
  return res;
}
const apiJson = async (path, options) => (await api(path, options)).json();
const enc = encodeURIComponent;
const explain = (e) => (e instanceof ApiError ? `${e.message} (${e.code})` : String(e));

// ---- key and model ----------------------------------------------------------------------------
function initKey() {
  $("#key").value = state.key;
  say("#key-state", state.key ? "key saved in this browser" : "no key yet");
  $("#key-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    state.key = $("#key").value.trim();
    if (state.key) localStorage.setItem(KEY_STORE, state.key); else localStorage.removeItem(KEY_STORE);
    say("#key-state", state.key ? "key saved in this browser" : "key removed");
    loadPeople();
  });
}

async function loadModel() {
  try {
    const m = await apiJson("/v1/model");
    state.model = m;
    $("#model").textContent = `${m.detector} + ${m.embedder} · ${m.model_id || "models loading"} · v${m.version}`;
    $("#threshold").value = m.threshold;
    $("#threshold-value").textContent = Number(m.threshold).toFixed(2);
  } catch (e) {
    $("#model").textContent = `server not reachable: ${explain(e)}`;
  }
}

// ---- identify ---------------------------------------------------------------------------------
async function identify(file) {
  state.file = file;
  const threshold = $("#threshold").value;
  say("#identify-status", `identifying ${file.name}…`);
  $("#faces").replaceChildren();
  const form = new FormData();
  form.append("photo", file, file.name);
  let result;
  try {
    result = await apiJson(`/v1/identify?threshold=${enc(threshold)}`, { method: "POST", body: form });
  } catch (e) {
    say("#identify-status", explain(e), true);
    return;
  }
  await drawResult(file, result);
  const faces = result.faces;
  const known = faces.filter((f) => f.name).length;
  say("#identify-status", faces.length
    ? `${faces.length} face(s), ${known} known · threshold ${result.threshold.toFixed(2)} · ${result.seconds.toFixed(2)} s`
    : "no face found");
  for (const f of faces) {
    const d = f.distance === null ? "" : ` (distance ${f.distance.toFixed(3)})`;
    const who = f.name ? el("span", { className: "name" }, f.name)
                       : el("span", { className: "name" }, "unknown");
    const extra = f.name ? d : (f.candidate ? ` nearest: ${f.candidate}${d}` : "");
    $("#faces").append(el("li", { className: f.name ? "face known" : "face unknown" }, who, extra,
                          el("span", { className: "muted" }, ` at [${f.box.join(", ")}]`)));
  }
}

async function drawResult(file, result) {
  const canvas = $("#canvas");
  const ctx = canvas.getContext("2d");
  const W = result.photo.width, H = result.photo.height;
  const scale = Math.min(760, Math.max(W, 480)) / W;  // small photos are shown larger
  canvas.width = Math.round(W * scale);
  canvas.height = Math.round(H * scale);
  try {
    const bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
    ctx.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  } catch (_) {  // a format the browser cannot show (e.g. TIFF): boxes on grey
    ctx.fillStyle = "#cfd8dc";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
  }
  const line = Math.max(2, Math.round(canvas.width / 250));
  ctx.font = `${Math.max(12, Math.round(canvas.width / 40))}px system-ui, sans-serif`;
  ctx.textBaseline = "top";
  for (const f of result.faces) {
    const [x1, y1, x2, y2] = f.box.map((v) => v * scale);
    const color = f.name ? "#28c850" : "#e63c32";
    ctx.lineWidth = line;
    ctx.strokeStyle = color;
    ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    const label = `${f.name || "unknown"}${f.distance === null ? "" : " " + f.distance.toFixed(2)}`;
    const tw = ctx.measureText(label).width + 2 * line;
    const th = parseInt(ctx.font, 10) + 2 * line;
    const ty = y1 - th >= 0 ? y1 - th : y2;
    ctx.fillStyle = color;
    ctx.fillRect(x1, ty, tw, th);
    ctx.fillStyle = "#fff";
    ctx.fillText(label, x1 + line, ty + line);
  }
}

function initIdentify() {
  const drop = $("#drop");
  $("#photo").addEventListener("change", (ev) => { if (ev.target.files[0]) identify(ev.target.files[0]); });
  drop.addEventListener("dragover", (ev) => { ev.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (ev) => {
    ev.preventDefault();
    drop.classList.remove("over");
    if (ev.dataTransfer.files[0]) identify(ev.dataTransfer.files[0]);
  });
  let timer = null;
  $("#threshold").addEventListener("input", (ev) => {
    $("#threshold-value").textContent = Number(ev.target.value).toFixed(2);
    clearTimeout(timer);
    if (state.file) timer = setTimeout(() => identify(state.file), 300);
  });
}

// ---- people -----------------------------------------------------------------------------------
async function loadPeople() {
  let data;
  try {
    data = await apiJson("/v1/people");
  } catch (e) {
    say("#people-status", explain(e), true);
    return;
  }
  say("#people-status", data.total ? `${data.total} people (click a name for their photos)` : "nobody yet");
  $("#people").replaceChildren(...data.people.map(personItem));
}

function personItem(p) {
  const thumbs = el("div", { className: "thumbs", hidden: true });
  const name = el("span", { className: "name", title: "show photos" }, p.name);
  const li = el("li", {},
    el("div", { className: "head" }, name,
       el("span", { className: "counts" }, ` ${p.photos} photos · ${p.faces} faces`),
       el("button", { type: "button", className: "small", onclick: () => renamePerson(p.name) }, "rename"),
       el("button", { type: "button", className: "small", onclick: () => deletePerson(p.name) }, "delete")),
    thumbs);
  li.dataset.name = p.name;
  name.addEventListener("click", () => {
    thumbs.hidden = !thumbs.hidden;
    if (!thumbs.hidden && !thumbs.childElementCount) showPhotos(p.name, thumbs);
  });
  return li;
}

async function blobUrl(path) {
  const res = await api(path);
  return URL.createObjectURL(await res.blob());
}

async function showPhotos(name, box) {
  let person;
  try {
    person = await apiJson(`/v1/people/${enc(name)}`);
  } catch (e) {
    box.replaceChildren(el("span", { className: "status error" }, explain(e)));
    return;
  }
  for (const ph of person.photo_list) {
    const img = el("img", { alt: `${name}: ${ph.status}`, title: ph.reason || ph.status });
    const del = el("button", { type: "button", title: "remove this photo",
                               onclick: () => deletePhoto(name, ph.sha256) }, "×");
    box.append(el("div", { className: ph.status === "ok" ? "thumb" : "thumb bad" }, img, del));
    blobUrl(ph.face_url ? `${ph.face_url}?size=160` : ph.image_url)
      .then((url) => { img.src = url; })
      .catch(() => { img.alt = "photo not available"; });
  }
  if (!person.photo_list.length) box.append(el("span", { className: "muted" }, "no photos"));
}

async function renamePerson(old) {
  const name = prompt(`New name for ${old}:`, old);
  if (!name || name === old) return;
  try {
    await api(`/v1/people/${enc(old)}`, { method: "PATCH", headers: { "Content-Type": "application/json" },
                                           body: JSON.stringify({ name }) });
    loadPeople();
  } catch (e) { say("#people-status", explain(e), true); }
}

async function deletePerson(name) {
  if (!confirm(`Remove ${name} and all their photos?`)) return;
  try {
    await api(`/v1/people/${enc(name)}`, { method: "DELETE" });
    say("#people-status", `removed ${name}`);
    loadPeople();
  } catch (e) { say("#people-status", explain(e), true); }
}

async function deletePhoto(name, sha) {
  if (!confirm(`Remove this photo of ${name}?`)) return;
  try {
    await api(`/v1/people/${enc(name)}/photos/${sha}`, { method: "DELETE" });
    loadPeople();
  } catch (e) { say("#people-status", explain(e), true); }
}

async function addPerson(ev) {
  ev.preventDefault();
  const name = $("#new-name").value.trim();
  const files = [...$("#new-photos").files];
  if (!name || !files.length) return;
  say("#add-status", `adding ${name} from ${files.length} photo(s)…`);
  try {
    try {
      await api("/v1/people", { method: "POST", headers: { "Content-Type": "application/json" },
                                body: JSON.stringify({ name }) });
    } catch (e) {
      if (!(e instanceof ApiError && e.code === "person_exists")) throw e;  // adding to someone known
    }
    const form = new FormData();
    for (const f of files) form.append("photos", f, f.name);
    const r = await apiJson(`/v1/people/${enc(name)}/photos`, { method: "POST", body: form });
    const bad = r.photos.filter((p) => p.outcome !== "enrolled");
    say("#add-status", `${r.person.name}: ${r.faces_added} face(s) added` +
        (bad.length ? `; ${bad.map((p) => `${p.filename}: ${p.reason || p.outcome}`).join("; ")}` : ""),
        r.faces_added === 0);
    $("#add-form").reset();
    loadPeople();
  } catch (e) { say("#add-status", explain(e), true); }
}

async function startJob(ev) {
  ev.preventDefault();
  const folder = $("#job-folder").value.trim();
  const person = $("#job-person").value.trim() || null;
  let job;
  try {
    job = await apiJson("/v1/jobs", { method: "POST", headers: { "Content-Type": "application/json" },
                                      body: JSON.stringify({ folder, person }) });
  } catch (e) { say("#job-status", explain(e), true); return; }
  const bar = $("#job-progress");
  bar.hidden = false;
  while (job.state === "queued" || job.state === "running") {
    bar.value = job.progress;
    say("#job-status", `job ${job.id}: ${job.state}, ${job.processed}/${job.total} photos`);
    await new Promise((r) => setTimeout(r, 1000));
    try { job = await apiJson(`/v1/jobs/${job.id}`); } catch (e) { say("#job-status", explain(e), true); return; }
  }
  bar.value = job.progress;
  say("#job-status", `job ${job.id}: ${job.state}; ${job.photos_enrolled} photos enrolled, ` +
      `${job.photos_skipped_known} already known, ${job.problems} problems` + (job.error ? ` (${job.error})` : ""),
      job.state !== "finished");
  loadPeople();
}

// ---- views (tabs) ------------------------------------------------------------------------------
function showView(id) {
  for (const tab of document.querySelectorAll("#tabs [data-view]")) {
    const on = tab.dataset.view === id;
    tab.setAttribute("aria-selected", String(on));
    $(`#${tab.dataset.view}`).hidden = !on;
  }
  if (id === "people-view") loadPeopleView();
}

// ---- people view: named people, clusters of unnamed faces, merging, photos with... --------------
const CLUSTER_PAGE = 40;   // clusters per request
const CLUSTER_FACES = 12;  // thumbnails per cluster row
const ALONE_FACES = 60;    // faces seen once shown
const pv = { selected: [], clusters: [], offset: 0, total: 0, swapped: false, hidden: false };

// thumbnails need the key header, so they are fetched as blobs, and only once they scroll into view
const lazy = "IntersectionObserver" in window ? new IntersectionObserver((entries) => {
  for (const e of entries) {
    if (!e.isIntersecting) continue;
    lazy.unobserve(e.target);
    loadThumb(e.target);
  }
}, { rootMargin: "200px" }) : null;

function loadThumb(img) {
  blobUrl(img.dataset.src)
    .then((url) => { img.src = url; })
    .catch(() => { img.alt = "not available"; img.classList.add("missing"); });
}

function thumbImg(src, alt) {
  const img = el("img", { alt, width: 80, height: 80 });
  img.dataset.src = src;
  if (lazy) lazy.observe(img); else loadThumb(img);
  return img;
}

async function loadPeopleView() {
  pv.selected = [];
  updateMergeBar();
  await Promise.all([loadNamed(), loadClusters(true), loadLastAction()]);
}

// the last action (what Undo takes back), shown beside the button
async function loadLastAction() {
  let data;
  try { data = await apiJson("/v1/actions?limit=1"); } catch (e) { $("#undo").hidden = true; return; }
  const last = data.actions[0];
  $("#undo").hidden = false;
  $("#undo").disabled = !last;
  $("#undo-last").textContent = last ? `last: ${last.summary}` : "";
}

async function undoLast() {
  try {
    const r = await postJson("/v1/undo", { steps: 1 });
    say("#pv-status", `undone: ${r.undone.join(", ")}`);
  } catch (e) { say("#pv-status", explain(e), true); }
  $("#person-faces").hidden = true;
  await loadPeopleView();
  loadPeople();
}

const hiddenParam = () => (pv.hidden ? "&hidden=true" : "");

async function loadNamed() {
  let data;
  try {
    data = await apiJson(`/v1/people?${hiddenParam()}`);
  } catch (e) { say("#pv-status", explain(e), true); return; }
  $("#named").replaceChildren(...data.people.map(namedCard));
  if (!data.total) $("#named").append(el("li", { className: "muted" }, "nobody named yet"));
  filterPeople();
}

function namedCard(p) {
  const img = el("img", { alt: p.name, width: 80, height: 80 });
  const box = el("input", { type: "checkbox", title: "select to merge" });
  const face = el("button", { type: "button", className: "face-button", title: `show ${p.name}'s faces` }, img);
  const hide = el("button", { type: "button", className: "small hide",
                              title: p.hidden ? "list this person again" : "hide: still recognised, not listed" },
                  p.hidden ? "unhide" : "hide");
  hide.addEventListener("click", () => hideItem(`/v1/people/${enc(p.name)}/hide`, !p.hidden, p.name));
  const li = el("li", { className: "card" + (p.hidden ? " hidden-item" : "") }, face,
    el("label", {}, box, el("span", { className: "name" }, p.name)),
    el("span", { className: "muted count" }, `${p.faces} face${p.faces === 1 ? "" : "s"}`), hide);
  li.dataset.person = p.name;
  box.addEventListener("change", () => select({ kind: "person", name: p.name }, box.checked, li));
  face.addEventListener("click", () => showPersonFaces(p.name));
  // the cover: the face the user chose, else the best-quality face nearest the person's centre
  apiJson(`/v1/people/${enc(p.name)}/cover`).then((f) => {
    img.dataset.src = `${f.image_url}?size=160`;
    img.dataset.face = f.id;
    if (lazy) lazy.observe(img); else loadThumb(img);
  }).catch(() => { img.alt = "no photo"; });
  return li;
}

async function showPersonFaces(name) {
  const panel = $("#person-faces");
  if (!panel.hidden && panel.dataset.person === name) { panel.hidden = true; return; }
  panel.dataset.person = name;
  panel.hidden = false;
  let data;
  try { data = await apiJson(`/v1/faces?person=${enc(name)}&limit=1000`); } catch (e) {
    panel.replaceChildren(el("span", { className: "status error" }, explain(e)));
    return;
  }
  const count = el("span", { className: "panel-count" }, faceCount(data.total));
  const gone = () => {  // a face left the person: the card and this heading count it at once
    data.total -= 1;
    const card = document.querySelector(`#named li[data-person='${CSS.escape(name)}'] .count`);
    if (card) card.textContent = faceCount(data.total);
    count.textContent = faceCount(data.total);
  };
  const thumbs = el("div", { className: "thumbs" }, ...data.faces.map((f) => {
    const node = faceThumb(f, gone);
    const cover = el("button", { type: "button", className: "out cover", title: "show this face for " + name }, "★");
    cover.addEventListener("click", async () => {
      try { await postJson(`/v1/people/${enc(name)}/cover`, { face: f.id }); } catch (e) { say("#pv-status", explain(e), true); return; }
      say("#pv-status", `face ${f.id} is now ${name}'s cover`);
      const img = document.querySelector(`#named li[data-person='${CSS.escape(name)}'] img`);
      if (img) { img.dataset.src = `${f.image_url}?size=160`; img.dataset.face = f.id; loadThumb(img); }
    });
    const move = el("button", { type: "button", className: "out move", title: "this is someone else: move the face" }, "→");
    move.addEventListener("click", async () => {
      const to = (prompt("Who is this?") || "").trim();
      if (!to || to === name) return;
      try { await postJson(`/v1/faces/${f.id}/move`, { name: to }); } catch (e) { say("#pv-status", explain(e), true); return; }
      node.remove();
      gone();
      say("#pv-status", `face ${f.id} moved to ${to}`);
      loadNamed();
    });
    const pick = el("input", { type: "checkbox", className: "pick", title: "select (then move the selected)" });
    node.append(cover, move, pick);
    return node;
  }));
  // multi-select: tick faces, then move them all to someone (one undoable action)
  const bulk = el("button", { type: "button", className: "small bulk-move" }, "move selected…");
  bulk.addEventListener("click", async () => {
    const picked = [...thumbs.querySelectorAll("input.pick:checked")].map((b) => b.closest(".thumb"));
    if (!picked.length) { say("#pv-status", "tick the faces to move first", true); return; }
    const to = (prompt(`Who are these ${picked.length} faces?`) || "").trim();
    if (!to || to === name) return;
    try {
      await postJson("/v1/faces/move", { faces: picked.map((n) => Number(n.dataset.face)), name: to });
    } catch (e) { say("#pv-status", explain(e), true); return; }
    for (const n of picked) { n.remove(); gone(); }
    say("#pv-status", `${picked.length} face(s) moved to ${to}`);
    loadNamed();
  });
  const when = el("button", { type: "button", className: "small show-timeline" }, "timeline");
  when.addEventListener("click", () => showTimeline(name, panel));
  panel.replaceChildren(el("h3", {}, `${name}: `, count, " ", bulk, " ", when, " ",
                           el("span", { className: "muted" }, "(× takes a wrong face out; ★ makes it the cover; → moves it)")),
                        thumbs);
}

// a person's photos by date: year headings, pages loaded as the end of the grid comes into view
async function showTimeline(name, panel) {
  const box = el("div", { className: "timeline" });
  const more = el("div", { className: "timeline-more" });
  panel.replaceChildren(el("h3", {}, `${name}: photos by date `,
                           el("button", { type: "button", className: "small", onclick: () => { panel.hidden = true; } }, "close")),
                        box, more);
  let offset = 0, year = undefined, grid = null, total = Infinity, busy = false;
  const page = async () => {
    if (busy || offset >= total) return;
    busy = true;
    let data;
    try { data = await apiJson(`/v1/people/${enc(name)}/timeline?limit=${TIMELINE_PAGE}&offset=${offset}`); } catch (e) {
      box.append(el("span", { className: "status error" }, explain(e))); busy = false; return;
    }
    total = data.total;
    offset += data.photos.length;
    for (const ph of data.photos) {
      if (ph.year !== year || !grid) {
        year = ph.year;
        grid = el("div", { className: "thumbs" });
        box.append(el("h4", { className: "year" }, year === null ? "date unknown" : String(year)), grid);
      }
      const node = el("div", { className: "thumb", title: ph.taken_at || "date unknown" },
                      thumbImg(`${ph.face_url}?size=160`, `${name}, ${ph.taken_at || "date unknown"}`));
      node.dataset.sha = ph.sha256;
      grid.append(node);
    }
    more.textContent = offset < total ? `${offset} of ${total} photos` : `${total} photos`;
    busy = false;
    // the end of the grid still in view: the observer will not fire again, so load on
    if (offset < total && more.getBoundingClientRect().top < window.innerHeight + 200) setTimeout(page, 0);
  };
  if ("IntersectionObserver" in window) {
    new IntersectionObserver((es) => { if (es.some((e) => e.isIntersecting)) page(); }).observe(more);
  }
  await page();
}

const TIMELINE_PAGE = 12;

const faceCount = (n) => `${n} face${n === 1 ? "" : "s"}`;

async function hideItem(path, hidden, what) {
  try { await postJson(path, { hidden }); } catch (e) { say("#pv-status", explain(e), true); return; }
  say("#pv-status", hidden ? `${what} hidden (still recognised; tick "show hidden" to see it)` : `${what} listed again`);
  await loadPeopleView();
}

function filterPeople() {
  const q = $("#people-search").value.trim().toLocaleLowerCase();
  for (const li of document.querySelectorAll("#named li[data-person]")) {
    li.hidden = q !== "" && !li.dataset.person.toLocaleLowerCase().includes(q);
  }
}

async function loadClusters(reset) {
  if (reset) { pv.offset = 0; pv.clusters = []; $("#clusters").replaceChildren(); }
  let data;
  try {
    data = await apiJson(`/v1/clusters?limit=${CLUSTER_PAGE}&offset=${pv.offset}&faces=${CLUSTER_FACES}${hiddenParam()}`);
  } catch (e) { say("#clusters-status", explain(e), true); return; }
  pv.total = data.total;
  pv.offset += data.clusters.length;
  pv.clusters.push(...data.clusters);
  $("#clusters").append(...data.clusters.map(clusterRow));
  $("#clusters-count").textContent = `· ${data.total} group(s), ${data.unassigned} unnamed face(s) in all`;
  if (!data.total) say("#clusters-status", data.unassigned
    ? "no groups: run 'facebank cluster' on the server after a scan"
    : "no unnamed faces (scan a photo library with 'facebank scan', then 'facebank cluster')");
  else say("#clusters-status", "");
  $("#clusters-more").hidden = pv.offset >= pv.total;
  if (reset) { loadAlone(); loadFlagged(); loadBorderline(); }
  $("#accept-bar").hidden = !document.querySelector("#clusters input.accept-pick");
  updateAcceptBar();
}

// "are these the same person?": groups whose faces are split about a named person; yes names the
// group that person (a merge), no keeps them apart for good (a cannot-link: never asked again)
async function loadBorderline() {
  let data;
  try { data = await apiJson("/v1/clusters/borderline?limit=5&faces=6"); } catch (e) { $("#same-person").hidden = true; return; }
  $("#same-person").hidden = !data.pairs.length;
  $("#same-person-pairs").replaceChildren(...data.pairs.map((p) => {
    const cover = el("img", { alt: p.candidate, width: 80, height: 80 });
    apiJson(`/v1/people/${enc(p.candidate)}/cover`).then((f) => {
      cover.dataset.src = `${f.image_url}?size=160`;
      loadThumb(cover);
    }).catch(() => { cover.alt = "no photo"; });
    const yes = el("button", { type: "button", className: "small yes", title: `name group #${p.cluster} ${p.candidate}` },
                   "✓ same person");
    const no = el("button", { type: "button", className: "small no", title: "keep them apart for good" }, "✗ not the same");
    const li = el("li", { className: "pair" },
      el("div", { className: "thumbs" }, ...p.faces.map((f) => thumbImg(`${f.image_url}?size=160`, `face ${f.id}`))),
      el("span", { className: "versus" }, "↔"),
      el("div", { className: "card" }, cover, el("span", { className: "name" }, p.candidate)),
      el("div", { className: "question" },
         el("span", {}, `Is group #${p.cluster} (${p.size} face${p.size === 1 ? "" : "s"}) ${p.candidate}? ` +
            `${p.agree} of ${p.faces_used} faces say so`), yes, no));
    li.dataset.cluster = p.cluster;
    li.dataset.pair = `${p.cluster}:${p.candidate}`;
    yes.addEventListener("click", () => nameCluster(p.cluster, p.candidate));
    no.addEventListener("click", () => rejectCluster(p.cluster, p.candidate));
    return li;
  }));
}

// faces flagged low quality or "not a face?": kept, in no cluster, shown collapsed
async function loadFlagged() {
  let data;
  try { data = await apiJson(`/v1/flagged-faces?limit=${ALONE_FACES}`); } catch (e) { $("#flagged").hidden = true; return; }
  $("#flagged").hidden = !data.total;
  const count = $("#flagged-count");
  count.textContent = `${data.total}`;
  $("#flagged-faces").replaceChildren(...data.faces.map((f) => {
    const what = f.flag === "not_face" ? "not a face?" : "low quality";
    const node = el("div", { className: "thumb flagged", title: `face ${f.id}: ${what}` },
                    thumbImg(`${f.image_url}?size=160`, `face ${f.id}`), el("span", { className: "flag" }, what));
    node.dataset.face = f.id;
    const del = el("button", { type: "button", className: "out", title: "not a face: delete it for good" }, "🗑");
    del.addEventListener("click", async () => {
      try { await postJson(`/v1/faces/${f.id}/not-a-face`, {}); } catch (e) { say("#pv-status", explain(e), true); return; }
      node.remove();
      data.total -= 1;
      count.textContent = `${data.total}`;
      say("#pv-status", `face ${f.id} deleted: not a face (a rescan will not bring it back)`);
    });
    node.append(del);
    return node;
  }));
}

// faces seen once: in no cluster; each can be given a name on its own
async function loadAlone() {
  let data;
  try { data = await apiJson(`/v1/faces?alone=true&limit=${ALONE_FACES}`); } catch (e) {
    say("#clusters-status", explain(e), true);
    return;
  }
  const box = $("#alone");
  box.hidden = !data.total;
  $("#alone-count").textContent = `${data.total}` + (data.total > data.faces.length ? ` (first ${data.faces.length})` : "");
  $("#alone-faces").replaceChildren(...data.faces.map((f) => {
    const node = el("div", { className: "thumb" }, thumbImg(`${f.image_url}?size=160`, `face ${f.id}`));
    node.dataset.face = f.id;
    const give = el("button", { type: "button", className: "out", title: "name this face" }, "✎");
    give.addEventListener("click", async () => {
      const name = (prompt("Who is this?") || "").trim();
      if (!name) return;
      try {
        await postJson(`/v1/faces/${f.id}/move`, { name });
      } catch (e) { say("#pv-status", explain(e), true); return; }
      node.remove();
      say("#pv-status", `face ${f.id} named ${name}`);
      loadNamed();
    });
    node.append(give);
    if (f.suggested) {  // this face's own suggestion: yes moves it to that person, no rejects it
      const yes = el("button", { type: "button", className: "small yes", title: `yes: this is ${f.suggested}` }, "✓");
      const no = el("button", { type: "button", className: "small no", title: `no: not ${f.suggested} (never suggested again)` }, "✗");
      yes.addEventListener("click", async () => {
        try { await postJson(`/v1/faces/${f.id}/move`, { name: f.suggested }); } catch (e) { say("#pv-status", explain(e), true); return; }
        node.remove();
        say("#pv-status", `face ${f.id} is ${f.suggested} now`);
        loadAlone();
        loadNamed();
      });
      no.addEventListener("click", async () => {
        try { await postJson(`/v1/faces/${f.id}/reject`, { name: f.suggested }); } catch (e) { say("#pv-status", explain(e), true); return; }
        say("#pv-status", `face ${f.id} is not ${f.suggested}: never suggested again`);
        loadAlone();
      });
      node.append(el("span", { className: "face-suggestion" }, `${f.suggested}? `, yes, no));
    }
    return node;
  }));
}

function clusterRow(c) {
  const li = el("li", { className: "cluster" });
  li.dataset.cluster = c.id;
  const box = el("input", { type: "checkbox", title: "select to merge" });
  box.addEventListener("change", () => select({ kind: "cluster", id: c.id, size: c.size }, box.checked, li));
  const name = el("input", { type: "text", className: "cluster-name", maxLength: 200,
                             placeholder: c.suggested ? `${c.suggested}?` : "who is this?",
                             value: "" });
  const form = el("form", { className: "name-form" }, name,
                  el("button", { type: "submit" }, "Name"));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    nameCluster(c.id, name.value.trim() || c.suggested || "");
  });
  const hide = el("button", { type: "button", className: "small hide",
                              title: c.hidden ? "list this group again" : "hide this group" }, c.hidden ? "unhide" : "hide");
  hide.addEventListener("click", () => hideItem(`/v1/clusters/${c.id}/hide`, !c.hidden, `group #${c.id}`));
  if (c.hidden) li.classList.add("hidden-item");
  const head = el("div", { className: "head" }, box,
    el("span", { className: "cluster-id", title: `the id 'facebank people name ${c.id} NAME' takes` }, `#${c.id}`),
    el("span", { className: "size" }, `${c.size} face${c.size === 1 ? "" : "s"}`), hide,
    c.suggested ? suggestionBox(c) : "",
    form);
  const size = head.querySelector(".size");
  const faces = el("div", { className: "thumbs" }, ...c.faces.map((f) => faceThumb(f, () => {
    c.size -= 1;
    size.textContent = `${c.size} face${c.size === 1 ? "" : "s"}`;
  })));
  if (c.size > c.faces.length) {
    const more = el("button", { type: "button", className: "more small", title: "show all faces of the group" },
                    `+${c.size - c.faces.length}`);
    more.addEventListener("click", async () => {
      let all;
      try { all = await apiJson(`/v1/faces?cluster=${c.id}&limit=1000`); } catch (e) { say("#clusters-status", explain(e), true); return; }
      const shown = new Set(c.faces.map((f) => f.id));
      more.replaceWith(...all.faces.filter((f) => !shown.has(f.id)).map((f) => faceThumb(f, () => {
        c.size -= 1;
        size.textContent = `${c.size} face${c.size === 1 ? "" : "s"}`;
      })));
    });
    faces.append(more);
  }
  li.append(head, faces);
  return li;
}

// "looks like X — k of n faces agree": accept (name the group X), reject (never suggested again),
// or tick it and accept all ticked suggestions at once
function agreement(c) {
  return c.agree === null || c.agree === undefined || !c.faces_used ? ""
    : ` — ${c.agree} of ${c.faces_used} face${c.faces_used === 1 ? "" : "s"} agree`;
}

function suggestionBox(c) {
  const tick = el("input", { type: "checkbox", className: "accept-pick", title: `tick to accept with others: ${c.suggested}` });
  tick.dataset.cluster = c.id;
  tick.dataset.name = c.suggested;
  tick.addEventListener("change", updateAcceptBar);
  const score = c.score === null || c.score === undefined ? "" : ` (score ${Number(c.score).toFixed(3)}, lower = more alike)`;
  return el("span", { className: "suggested", title: `from all the group's faces${score}` }, tick,
            el("span", { className: "suggestion-text" }, `looks like ${c.suggested}${agreement(c)} `),
            el("button", { type: "button", className: "small yes", title: `yes: name them ${c.suggested}`,
                           onclick: () => nameCluster(c.id, c.suggested) }, "✓ yes"),
            el("button", { type: "button", className: "small no", title: `no: these faces are not ${c.suggested} (never suggested again)`,
                           onclick: () => rejectCluster(c.id, c.suggested) }, "✗ no"));
}

async function rejectCluster(id, name) {
  try {
    const r = await postJson(`/v1/clusters/${id}/reject`, { name });
    say("#pv-status", `group #${id} is not ${r.person}: never suggested for its ${r.faces} face(s) again`);
  } catch (e) { say("#pv-status", explain(e), true); return; }
  await loadClusters(true);
}

function updateAcceptBar() {
  const n = document.querySelectorAll("#clusters input.accept-pick:checked").length;
  $("#accept-ticked").disabled = !n;
  $("#accept-ticked").textContent = n ? `accept ${n} ticked suggestion${n === 1 ? "" : "s"}` : "accept ticked suggestions";
}

function tickAllSuggestions() {
  for (const b of document.querySelectorAll("#clusters input.accept-pick")) b.checked = true;
  updateAcceptBar();
}

async function acceptTicked() {
  const ticked = [...document.querySelectorAll("#clusters input.accept-pick:checked")]
    .map((b) => ({ id: Number(b.dataset.cluster), name: b.dataset.name }));
  if (!ticked.length) return;
  let faces = 0;
  const failed = [];
  for (const t of ticked) {  // one naming per group: each is its own undoable action
    try { faces += (await postJson(`/v1/clusters/${t.id}/name`, { name: t.name })).faces_named; } catch (e) {
      failed.push(`#${t.id}: ${explain(e)}`);
    }
  }
  say("#pv-status", `${ticked.length - failed.length} group(s) accepted, ${faces} face(s) named` +
      (failed.length ? `; not accepted: ${failed.join("; ")}` : ""), failed.length > 0);
  await Promise.all([loadNamed(), loadClusters(true)]);
  updateAcceptBar();
  loadPeople();
}

// a face thumbnail with a × that takes the face out of its cluster or person
function faceThumb(f, onOut) {
  const out = el("button", { type: "button", className: "out", title: "not this person: take the face out" }, "×");
  const node = el("div", { className: "thumb" }, thumbImg(`${f.image_url}?size=160`, `face ${f.id}`), out);
  node.dataset.face = f.id;
  out.addEventListener("click", async () => {
    try {
      await postJson(`/v1/faces/${f.id}/move`, { name: null });
    } catch (e) { say("#pv-status", explain(e), true); return; }
    node.remove();
    say("#pv-status", `face ${f.id} taken out: back among the unnamed faces, in no group yet`);
    onOut();
    loadAlone();
  });
  return node;
}

const postJson = async (path, body) => {
  const out = await apiJson(path, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  if (path !== "/v1/undo" && $("#undo")) loadLastAction();  // what Undo would take back now
  return out;
};

async function nameCluster(id, name) {
  if (!name) { say("#pv-status", "type a name first", true); return; }
  try {
    const r = await postJson(`/v1/clusters/${id}/name`, { name });
    say("#pv-status", `${r.faces_named} face(s) named ${r.person.name}` +
        (r.created ? " (new person)" : " (added to the existing person)"));
    await Promise.all([loadNamed(), loadClusters(true)]);
    loadPeople();
  } catch (e) { say("#pv-status", explain(e), true); }
}

function label(item) {
  return item.kind === "person" ? item.name : `the group of ${item.size} face(s)`;
}

function select(item, on, node) {
  const same = (a) => a.kind === item.kind && (a.kind === "person" ? a.name === item.name : a.id === item.id);
  pv.selected = pv.selected.filter((a) => !same(a));
  if (on) pv.selected.push({ ...item, node });
  node.classList.toggle("selected", on);
  while (pv.selected.length > 2) {  // keep the last two
    const old = pv.selected.shift();
    old.node.classList.remove("selected");
    old.node.querySelector("input[type=checkbox]").checked = false;
  }
  pv.swapped = false;
  updateMergeBar();
}

// what a merge of the two selected would do: [kind, from, into]
function mergePlan() {
  if (pv.selected.length !== 2) return null;
  let [a, b] = pv.selected;
  if (pv.swapped) [a, b] = [b, a];
  if (a.kind === "person" && b.kind === "person") return { kind: "people", from: a, into: b };
  if (a.kind === "cluster" && b.kind === "cluster") return { kind: "clusters", from: a, into: b };
  const person = a.kind === "person" ? a : b;
  const cluster = a.kind === "person" ? b : a;
  return { kind: "cluster-to-person", from: cluster, into: person };
}

function updateMergeBar() {
  const plan = mergePlan();
  $("#mergebar").hidden = !plan;
  if (!plan) return;
  $("#merge-name").hidden = plan.kind !== "clusters";
  $("#merge-swap").hidden = plan.kind !== "people";
  $("#merge-text").textContent = plan.kind === "people"
    ? `Merge ${plan.from.name} into ${plan.into.name} (${plan.from.name}'s faces become ${plan.into.name}'s)`
    : plan.kind === "clusters" ? "Merge the two groups as one person:"
      : `Add ${label(plan.from)} to ${plan.into.name}`;
}

async function mergeSelected() {
  const plan = mergePlan();
  if (!plan) return;
  try {
    if (plan.kind === "people") {
      const r = await postJson(`/v1/people/${enc(plan.from.name)}/merge`, { into: plan.into.name });
      say("#pv-status", `${plan.from.name} merged into ${r.person.name}: ${r.faces_moved} face(s) moved`);
    } else if (plan.kind === "cluster-to-person") {
      const r = await postJson(`/v1/clusters/${plan.from.id}/name`, { name: plan.into.name });
      say("#pv-status", `${r.faces_named} face(s) added to ${r.person.name}`);
    } else {
      const name = $("#merge-name").value.trim();
      if (!name) { say("#pv-status", "type the name of the person in both groups", true); return; }
      let n = 0;
      for (const c of [plan.into, plan.from]) n += (await postJson(`/v1/clusters/${c.id}/name`, { name })).faces_named;
      say("#pv-status", `${n} face(s) named ${name}`);
      $("#merge-name").value = "";
    }
  } catch (e) { say("#pv-status", explain(e), true); }
  await loadPeopleView();
  loadPeople();
}

function clearSelection() {
  for (const a of pv.selected) {
    a.node.classList.remove("selected");
    a.node.querySelector("input[type=checkbox]").checked = false;
  }
  pv.selected = [];
  updateMergeBar();
}

async function photosWith(ev) {
  ev.preventDefault();
  const names = $("#with-names").value.split(",").map((s) => s.trim()).filter(Boolean);
  if (!names.length) return;
  const query = names.map((n) => `with=${enc(n)}`).join("&");
  let data;
  try { data = await apiJson(`/v1/photos?${query}`); } catch (e) { say("#with-status", explain(e), true); return; }
  say("#with-status", `${data.total} photo(s) with ${names.join(" and ")}` +
      (data.total > data.photos.length ? ` (first ${data.photos.length} shown)` : ""));
  $("#with-photos").replaceChildren(...data.photos.map((ph) =>
    el("div", { className: "thumb wide", title: `${ph.width}×${ph.height}, ${ph.faces} face(s)` },
       thumbImg(ph.image_url, `photo with ${names.join(", ")}`))));
}

function initPeopleView() {
  for (const tab of document.querySelectorAll("#tabs [data-view]")) {
    tab.addEventListener("click", () => showView(tab.dataset.view));
  }
  $("#people-view-refresh").addEventListener("click", loadPeopleView);
  $("#clusters-more").addEventListener("click", () => loadClusters(false));
  $("#merge-go").addEventListener("click", mergeSelected);
  $("#merge-clear").addEventListener("click", clearSelection);
  $("#merge-swap").addEventListener("click", () => { pv.swapped = !pv.swapped; updateMergeBar(); });
  $("#with-form").addEventListener("submit", photosWith);
  $("#people-search").addEventListener("input", filterPeople);
  $("#undo").addEventListener("click", undoLast);
  $("#accept-ticked").addEventListener("click", acceptTicked);
  $("#tick-all").addEventListener("click", tickAllSuggestions);
  $("#show-hidden").addEventListener("change", () => { pv.hidden = $("#show-hidden").checked; loadPeopleView(); });
}

document.addEventListener("DOMContentLoaded", () => {
  initKey();
  initIdentify();
  initPeopleView();
  $("#refresh").addEventListener("click", loadPeople);
  $("#add-form").addEventListener("submit", addPerson);
  $("#job-form").addEventListener("submit", startJob);
  loadModel().then(loadPeople);
});
