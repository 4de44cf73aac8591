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
    say("#job-status", `job ${job.id}: ${job.state}, ${job.seen}/${job.total} photos`);
    await new Promise((r) => setTimeout(r, 1000));
    try { job = await apiJson(`/v1/jobs/${job.id}`); } catch (e) { say("#job-status", explain(e), true); return; }
  }
  bar.value = job.progress;
  say("#job-status", `job ${job.id}: ${job.state}; ${job.photos_enrolled} photos enrolled, ` +
      `${job.photos_skipped_known} already known, ${job.problems} problems` + (job.error ? ` (${job.error})` : ""),
      job.state !== "finished");
  loadPeople();
}

document.addEventListener("DOMContentLoaded", () => {
  initKey();
  initIdentify();
  $("#refresh").addEventListener("click", loadPeople);
  $("#add-form").addEventListener("submit", addPerson);
  $("#job-form").addEventListener("submit", startJob);
  loadModel().then(loadPeople);
});
