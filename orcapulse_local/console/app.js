// The local console: a stand-in for the OrcaPulse front end, calling the product's HTTP API with a
// dev JWT. Plain DOM, no build step.
"use strict";

const state = { token: null, cursors: [null], page: 0, integrations: [], platforms: null };
const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child instanceof Node ? child : String(child ?? ""));
  return node;
}

function banner(text, kind) {
  const box = $("banner");
  box.textContent = text;
  box.className = `banner ${kind}`;
  box.hidden = false;
}

async function api(path, options = {}) {
  const response = await fetch(path, {
    ...options,
    headers: { Authorization: `Bearer ${state.token}`, ...(options.headers || {}) },
  });
  let body = null;
  try { body = await response.json(); } catch (_) { /* empty body */ }
  if (!response.ok) {
    const message = body?.error?.message || body?.message || response.statusText;
    throw new Error(`${response.status} ${message}`);
  }
  return body;
}

async function signIn() {
  const workspace = $("workspace").value.trim() || "ws-local";
  const user = $("user").value.trim() || "user-local";
  localStorage.setItem("orcapulse.identity", JSON.stringify({ workspace, user }));
  const response = await fetch("/local/dev-token", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ workspace, user }),
  });
  state.token = (await response.json()).token;
}

// -- integrations ---------------------------------------------------------------------------
async function loadIntegrations() {
  const body = await api("/integrations?platform=tiktok");
  state.integrations = body.items || [];
  const rows = $("integrations").querySelector("tbody");
  rows.replaceChildren(...state.integrations.map((item) => el("tr", { "data-integration": item.integration_id },
    el("td", {}, el("span", { class: "account" }, avatar(item.display_name), item.display_name || "—")),
    el("td", {}, el("code", {}, item.open_id)),
    el("td", {}, el("span", { class: `badge ${item.status}`, "data-testid": "integration-status" }, item.status)),
    el("td", {}, when(item.connected_at)),
    el("td", {}, when(item.last_event_at)),
    el("td", {}, item.status === "revoked" ? "" : el("button", {
      class: "danger", "data-testid": "disconnect", onclick: () => disconnect(item),
    }, "Disconnect")),
  )));
  $("integrations-empty").hidden = state.integrations.length > 0;
  const select = $("event-account");
  const chosen = select.value;
  select.replaceChildren(...state.integrations.map((item) =>
    el("option", { value: item.open_id }, `${item.display_name || item.open_id} (${item.status})`)));
  if (chosen) select.value = chosen;
}

function avatar(name) {
  // Initials rather than the TikTok avatar URL: the console loads nothing from outside.
  const initials = (name || "?").split(/\s+/).map((w) => w[0]).join("").slice(0, 2).toUpperCase();
  return el("span", { class: "badge", title: name || "" }, initials);
}

async function connect() {
  try {
    const body = await api("/integrations/tiktok/oauth/start");
    window.location.assign(body.authorize_url);
  } catch (error) {
    banner(`Could not start connecting: ${error.message}`, "error");
  }
}

async function disconnect(item) {
  if (!window.confirm(`Disconnect ${item.display_name || item.open_id}?`)) return;
  try {
    const body = await api(`/integrations/tiktok/${encodeURIComponent(item.integration_id)}`, { method: "DELETE" });
    banner(`Disconnected ${item.display_name || item.open_id} — token revoked at TikTok: ${body.revoked}`, "ok");
  } catch (error) {
    banner(`Disconnect failed: ${error.message}`, "error");
  }
  await refresh();
}

// -- test events ----------------------------------------------------------------------------------
async function sendEvent(event) {
  event.preventDefault();
  const result = $("event-result");
  const openId = $("event-account").value;
  if (!openId) { result.textContent = "Connect an account first."; return; }
  result.textContent = "Sending…";
  const response = await fetch("/local/tiktok/webhooks", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ event: $("event-kind").value, open_id: openId, text: $("event-text").value }),
  });
  const body = await response.json();
  if (!response.ok) { result.textContent = `Not sent: ${body?.error?.message || response.status}`; return; }
  const answer = body.response?.status ?? JSON.stringify(body.response);
  result.textContent = `${body.event} delivered → webhook answered ${body.status} ${answer}`;
  await refresh();
}

// -- leads ------------------------------------------------------------------------------------------
function filters() {
  const query = new URLSearchParams();
  for (const id of ["f-platform", "f-source", "f-status", "f-limit"]) {
    const field = $(id);
    if (field.value) query.set(field.name, field.value);
  }
  const cursor = state.cursors[state.page];
  if (cursor) query.set("cursor", cursor);
  return query;
}

async function loadLeads() {
  const rows = $("leads").querySelector("tbody");
  let body;
  try {
    body = await api(`/social-leads?${filters()}`);
  } catch (error) {
    rows.replaceChildren();
    $("leads-empty").textContent = `Could not list leads: ${error.message}`;
    $("leads-empty").hidden = false;
    return;
  }
  const items = body.items || [];
  rows.replaceChildren(...items.map((lead) => el("tr", { "data-lead": lead.lead_id },
    el("td", {}, when(lead.captured_at)),
    el("td", {}, el("span", { class: "badge", "data-testid": "lead-source" }, lead.capture_source)),
    el("td", {}, lead.author?.username || lead.author?.id || "—"),
    el("td", { class: "message", "data-testid": "lead-message" }, lead.message || ""),
    el("td", {}, el("span", { class: `badge ${lead.status}` }, lead.status)),
    el("td", {}, lead.high_intent ? "high" : ""),
  )));
  $("leads-empty").textContent = "No leads match.";
  $("leads-empty").hidden = items.length > 0;
  state.cursors[state.page + 1] = body.next_cursor || null;
  $("next").disabled = !body.next_cursor;
  $("prev").disabled = state.page === 0;
  $("page").textContent = `page ${state.page + 1}`;
}

async function loadPlatforms() {
  const body = await api("/platforms");
  const platformSelect = $("f-platform");
  const sourceSelect = $("f-source");
  for (const platform of body.items || []) {
    platformSelect.append(el("option", { value: platform.id }, platform.label));
    for (const source of platform.capture_sources || []) {
      sourceSelect.append(el("option", { value: source.id }, `${platform.label}: ${source.label}`));
    }
  }
  for (const status of body.lead_statuses || []) $("f-status").append(el("option", { value: status }, status));
}

function when(iso) {
  return iso ? iso.replace("T", " ").replace("Z", " UTC") : "—";
}

async function refresh() {
  await Promise.all([loadIntegrations(), loadLeads()]);
}

// -- start ------------------------------------------------------------------------------------------------
function showCallbackOutcome() {
  const params = new URLSearchParams(window.location.search);
  const status = params.get("status");
  if (status === "connected") banner(`TikTok account connected (integration ${params.get("integration_id")}).`, "ok");
  else if (status === "error") banner(`Connecting failed: ${params.get("reason")}.`, "error");
  if (status) window.history.replaceState({}, "", "/");
}

async function main() {
  const saved = JSON.parse(localStorage.getItem("orcapulse.identity") || "{}");
  $("workspace").value = saved.workspace || "ws-local";
  $("user").value = saved.user || "user-local";
  showCallbackOutcome();
  $("identity").addEventListener("submit", async (event) => {
    event.preventDefault();
    await signIn();
    state.cursors = [null]; state.page = 0;
    await refresh();
  });
  $("connect").addEventListener("click", connect);
  $("test-event").addEventListener("submit", sendEvent);
  $("filters").addEventListener("submit", (event) => {
    event.preventDefault();
    state.cursors = [null]; state.page = 0;
    loadLeads();
  });
  $("next").addEventListener("click", () => { state.page += 1; loadLeads(); });
  $("prev").addEventListener("click", () => { state.page = Math.max(0, state.page - 1); loadLeads(); });
  await signIn();
  try { await loadPlatforms(); } catch (error) { banner(`Could not load platforms: ${error.message}`, "error"); }
  await refresh();
  document.body.dataset.ready = "true";
}

main();
