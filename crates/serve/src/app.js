// The live view: asks the server for the selected study and waits (long polling: the answer
// comes when the database changes, or after at most 10 s), then redraws its trials, claims
// and curves and logs each trial's change of state. No reload; a lost connection (the server
// or the network) is retried and said so. ETags make an unchanged answer a 304.
"use strict";
const params = new URLSearchParams(location.search);
const token = params.get("token");
const waitS = params.get("wait_s");
const POLL_MS = 1000;
const seen = {};
const events = [];
const etags = {};
let selected = decodeURIComponent(location.hash.slice(1));
let shownStudy = "";

function url(path) {
  return token ? path + (path.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token) : path;
}

async function getJson(path) {
  const headers = {};
  if (etags[path]) headers["If-None-Match"] = etags[path].tag;
  const r = await fetch(url(path), { headers });
  if (r.status === 304) return etags[path].doc;
  if (!r.ok) throw new Error(path + ": " + r.status + " " + (await r.text()));
  const doc = await r.json();
  etags[path] = { tag: r.headers.get("ETag"), doc };
  return doc;
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children) e.append(c === null || c === undefined ? "" : c);
  return e;
}

function secs(s) {
  if (s === null || s === undefined) return "";
  s = Math.round(s);
  if (s < 60) return s + " s";
  if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
  return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
}

function num(x) { return x === null || x === undefined ? "" : x.toFixed(2); }

function trialRow(t) {
  let detail = "";
  if (t.status === "running") {
    detail = (t.device || "") + (t.step !== null ? " · step " + t.step + (t.total_steps ? "/" + t.total_steps : "") : "")
      + " · " + secs(t.elapsed_s) + (t.left_s !== null ? " · about " + secs(t.left_s) + " left" : "");
  } else if (t.status === "succeeded") {
    detail = "EM " + num(t.em) + " · F1 " + num(t.f1) + " · " + secs(t.elapsed_s);
  } else if (t.shared_with) {
    detail = "same runs as " + t.shared_with;
  }
  const row = el("tr", { "data-trial": t.trial, "data-status": t.status },
    el("td", {}, t.variant), el("td", {}, String(t.seed)),
    el("td", { class: "state " + t.status }, t.status.replace(/_/g, " ")),
    el("td", {}, detail), el("td", {}, t.trial.slice(0, 12)));
  if (t.error) row.children[3].append(el("div", { class: "err" }, t.error));
  return row;
}

function renderStudy(d) {
  const box = el("div", { id: "study" });
  box.append(el("h2", {}, d.name), el("p", {}, d.description || ""));
  if (d.report) box.append(el("p", {}, el("a", { href: url("/report/" + encodeURIComponent(d.name)) }, "static report")));
  const head = el("tr", {}, ...["variant", "seed", "state", "", "trial"].map((h) => el("th", {}, h)));
  box.append(el("h2", {}, "Trials"), el("table", { id: "trials" }, head, ...d.trials.map(trialRow)));
  if (d.claims.length) {
    const ch = el("tr", {}, ...["comparison", "claim", "verdict", "pairs", "repeated interval", "p (Holm)", "why"].map((h) => el("th", {}, h)));
    const rows = d.claims.map((c) => el("tr", { class: "claim" }, el("td", {}, c.comparison), el("td", {}, c.claim),
      el("td", { class: "verdict" }, c.verdict), el("td", {}, c.pairs), el("td", {}, c.interval), el("td", {}, c.p), el("td", {}, c.why)));
    box.append(el("h2", {}, "Claims"), el("table", { id: "claims" }, ch, ...rows));
  }
  if (d.curves.length) {
    box.append(el("h2", {}, "Curves"));
    for (const c of d.curves) {
      const src = url("/api/studies/" + encodeURIComponent(d.name) + "/curves/" + c.metric + "?v=" + d.version);
      box.append(el("figure", { "data-metric": c.metric }, el("img", { src, alt: c.title })));
    }
  }
  document.getElementById("study").replaceWith(box);
}

function renderList(list) {
  const box = el("div", { id: "studies" });
  for (const s of list.studies) {
    const n = Object.entries(s.counts).map(([k, v]) => v + " " + k.replace(/_/g, " ")).join(", ");
    const a = el("a", { href: "#" + encodeURIComponent(s.name), class: s.name === selected ? "sel" : "" }, s.name);
    box.append(a, el("span", {}, " (" + n + ") "));
  }
  document.getElementById("studies").replaceWith(box);
}

// Appends "variant seed N: old → new" for each trial whose state changed since the last
// answer (nothing on the first one).
function logChanges(d) {
  const first = !(d.name in seen);
  const mine = seen[d.name] || (seen[d.name] = {});
  for (const t of d.trials) {
    const key = t.variant + "/" + t.seed;
    if (!first && mine[key] !== t.status) {
      events.unshift(new Date().toLocaleTimeString() + "  " + t.variant + " seed " + t.seed + ": " + (mine[key] || "new") + " → " + t.status);
    }
    mine[key] = t.status;
  }
  events.length = Math.min(events.length, 100);
  const box = el("ol", { id: "events", reversed: "" }, ...events.map((e) => el("li", {}, e)));
  document.getElementById("events").replaceWith(box);
}

let shownVersion = "";
async function tick() {
  try {
    const list = await getJson("/api/studies");
    if (!selected && list.studies.length) selected = list.studies[0].name;
    renderList(list);
    if (selected) {
      let path = "/api/studies/" + encodeURIComponent(selected);
      if (shownVersion && shownStudy === selected) {
        path += "?wait=" + encodeURIComponent(shownVersion) + (waitS ? "&wait_s=" + encodeURIComponent(waitS) : "");
      }
      const d = await getJson(path);
      logChanges(d);
      if (d.version !== shownVersion || d.name !== shownStudy) {
        renderStudy(d);
        shownVersion = d.version;
        shownStudy = d.name;
      }
    }
    document.getElementById("status").textContent = "updated " + new Date().toLocaleTimeString() + " (every " + POLL_MS / 1000 + " s)";
  } catch (e) {
    document.getElementById("status").textContent = "cannot reach the server (" + e.message + "); retrying";
  }
  setTimeout(tick, POLL_MS);
}

window.addEventListener("hashchange", () => { selected = decodeURIComponent(location.hash.slice(1)); shownVersion = ""; });
tick();
