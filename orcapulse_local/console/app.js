// The local console: a stand-in for the OrcaPulse front end, calling the product's HTTP API with a
// dev JWT. Plain DOM, no build step.
"use strict";

const state = {
  token: null, cursors: [null], page: 0, integrations: [], sources: new Map(),
  // The person whose timeline is open: their lead id, the cursor of the next page, and a counter
  // that lets a stale answer (another person clicked meanwhile) be dropped.
  timeline: { leadId: null, cursor: null, request: 0 },
};
const TIMELINE_PAGE = 5;
const $ = (id) => document.getElementById(id);

// Words for the API's codes. Capture sources come with their labels from GET /platforms; these
// codes have none there.
const INTEGRATION_STATUS = { active: "Active", needs_reauth: "Needs reconnecting", revoked: "Revoked" };
const LEAD_STATUS = { new: "New", qualified: "Qualified", routed: "Routed", dismissed: "Dismissed" };
const REVOKED_REASON = {
  unknown: "TikTok gave no reason",
  user_disconnected: "the account owner disconnected the app at TikTok",
  account_deleted: "the TikTok account was deleted",
  age_changed: "the account holder's age changed",
  account_banned: "the TikTok account was banned",
  developer_revoked: "the app's developer revoked access",
};
const CALLBACK_REASON = {
  access_denied: "Deny was pressed on TikTok's page",
  invalid_state: "the connect link expired or was already used",
  missing_scope: "a permission the product needs was unticked on TikTok's page",
  token_exchange_failed: "TikTok did not exchange the code for a token",
  profile_fetch_failed: "TikTok did not send the account's profile",
  internal_error: "something went wrong in the product",
};
const WEBHOOK_ANSWER = {
  accepted: "accepted: it is in the leads below",
  duplicate: "duplicate: the product already had this event",
  ignored: "ignored: no lead from this event or for this account",
};
const EVENT_NAME = {
  "comment.update": "Comment",
  im_receive_msg: "Direct message",
  im_receive_high_intent_comment: "High-intent comment",
  "authorization.removed": "Disconnect notice",
};
const NEEDS_ACTION = new Set(["revoked", "needs_reauth"]);
const INTERACTION_KIND = {
  comment: "Comment",
  dm: "Direct message",
  high_intent_comment: "High-intent comment",
  lead_form: "Lead form",
};
const SOURCE_STATE = { present: "On TikTok", deleted: "Deleted on TikTok", hidden: "Hidden on TikTok" };

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
  $("banner-text").textContent = text;
  $("banner").className = `banner ${kind}`;
  $("banner").hidden = false;
}

// A banner speaks about the last action: the next one, or another workspace, clears it.
function clearBanner() {
  $("banner").hidden = true;
  $("banner-text").textContent = "";
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
    throw new Error(`${message} (HTTP ${response.status})`);
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
function accountName(item) {
  return item.display_name || item.open_id;
}

function statusCell(item) {
  const badge = el("span", { class: `badge ${item.status}`, "data-testid": "integration-status" },
    INTEGRATION_STATUS[item.status] || item.status);
  if (item.status === "revoked") {
    const why = REVOKED_REASON[item.revoked_reason] || REVOKED_REASON.unknown;
    return el("td", {}, badge, el("div", { class: "note" }, why));
  }
  if (item.status === "needs_reauth") {
    return el("td", {}, badge, el("div", { class: "note" }, "TikTok no longer accepts its token"));
  }
  return el("td", {}, badge);
}

// The kind of account (DESIGN §8) and what it gives: only business accounts get comments and DMs.
const ACCOUNT_KIND = { personal: "Personal (Login Kit)", business: "Business", ads: "Ads" };

function kindCell(item) {
  const kind = item.account_type || "personal";
  return el("td", { "data-testid": "integration-kind" },
    el("span", { class: "badge kind" }, ACCOUNT_KIND[kind] || kind),
    el("div", { class: "note", "data-testid": "integration-capabilities" }, (item.capabilities || []).join(", ")));
}

function actionsCell(item) {
  if (NEEDS_ACTION.has(item.status)) {
    return el("td", { class: "actions" },
      el("button", { class: "primary", "data-testid": "reconnect", onclick: () => connect(item) }, "Reconnect"),
      el("button", { class: "danger", "data-testid": "remove", onclick: () => disconnect(item, "Remove") }, "Remove"));
  }
  return el("td", { class: "actions" },
    el("button", { class: "danger", "data-testid": "disconnect", onclick: () => disconnect(item, "Disconnect") },
      "Disconnect"));
}

async function loadIntegrations() {
  const body = await api("/integrations?platform=tiktok");
  state.integrations = body.items || [];
  const rows = $("integrations").querySelector("tbody");
  rows.replaceChildren(...state.integrations.map((item) => el("tr", { "data-integration": item.integration_id },
    el("td", {}, el("div", { class: "account" }, avatar(accountName(item)),
      el("div", {}, el("div", {}, item.display_name || "—"), el("code", { class: "note" }, item.open_id)))),
    kindCell(item),
    statusCell(item),
    el("td", {}, when(item.connected_at)),
    el("td", {}, when(item.last_event_at, "minute")),
    actionsCell(item),
  )));
  const none = state.integrations.length === 0;
  $("integrations").hidden = none;
  $("integrations-empty").hidden = !none;
  fillAccountSelects();
}

function fillAccountSelects() {
  const target = $("event-account");
  const chosen = target.value;
  $("send-event").disabled = state.integrations.length === 0;
  if (state.integrations.length === 0) {
    target.replaceChildren(el("option", { value: "" }, "No account connected yet"));
    target.disabled = true;
  } else {
    target.replaceChildren(...state.integrations.map((item) => el("option", { value: item.open_id },
      item.status === "active" ? accountName(item) : `${accountName(item)} (${INTEGRATION_STATUS[item.status]})`)));
    target.disabled = false;
    if (state.integrations.some((item) => item.open_id === chosen)) target.value = chosen;
  }
  const filter = $("f-integration");
  const filtered = filter.value;
  filter.replaceChildren(el("option", { value: "" }, "any"),
    ...state.integrations.map((item) => el("option", { value: item.integration_id }, accountName(item))));
  if (state.integrations.some((item) => item.integration_id === filtered)) filter.value = filtered;
}

function avatar(name) {
  // Initials rather than the TikTok avatar URL: the console loads nothing from outside.
  const initials = (name || "?").split(/\s+/).map((w) => w[0]).join("").slice(0, 2).toUpperCase();
  return el("span", { class: "avatar", title: name || "" }, initials);
}

// Reconnecting is connecting again: the product keeps the integration's id for the same account.
async function connect(item, accountType) {
  clearBanner();
  const kind = accountType || item?.account_type || "personal";
  try {
    const body = await api(`/integrations/tiktok/oauth/start?account_type=${encodeURIComponent(kind)}`);
    if (item) sessionStorage.setItem("orcapulse.reconnecting", item.integration_id);
    else sessionStorage.removeItem("orcapulse.reconnecting");
    window.location.assign(body.authorize_url);
  } catch (error) {
    banner(`Could not start connecting: ${error.message}`, "error");
  }
}

async function disconnect(item, verb) {
  clearBanner();
  const name = accountName(item);
  if (!window.confirm(`${verb} ${name}? Its token is revoked at TikTok and deleted here; its leads stay.`)) return;
  try {
    const body = await api(`/integrations/tiktok/${encodeURIComponent(item.integration_id)}`, { method: "DELETE" });
    banner(body.revoked
      ? `${name} is disconnected: TikTok revoked the access, and the token is deleted.`
      : `${name} is removed. TikTok did not confirm a revoke (the access had already ended there); the token is deleted.`,
    "ok");
  } catch (error) {
    banner(`${verb} failed: ${error.message}`, "error");
  }
  await refresh();
}

// -- test events ----------------------------------------------------------------------------------
async function sendEvent(event) {
  event.preventDefault();
  clearBanner();
  const result = $("event-result");
  const openId = $("event-account").value;
  if (!openId) { result.textContent = "Connect a TikTok account first: events are sent to one of yours."; return; }
  result.textContent = "Sending…";
  const kind = $("event-kind").value;
  const payload = { event: kind === "held" ? "comment" : kind, open_id: openId, text: $("event-text").value };
  if (kind === "held") payload.hold = true;
  const author = $("event-author").value.trim();
  if (author) payload.author = author;
  const response = await fetch("/local/tiktok/webhooks", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(payload),
  });
  const body = await response.json();
  if (!response.ok) { result.textContent = `Not sent: ${body?.error?.message || response.status}`; return; }
  if (payload.hold) {
    result.textContent = "Comment posted at TikTok, its webhook dropped: only the business catch-up can find it.";
    return;
  }
  const answer = body.response?.status;
  const said = body.event === "authorization.removed" && answer === "accepted"
    ? "accepted: the account now shows as revoked"
    : WEBHOOK_ANSWER[answer] || `HTTP ${body.status} ${answer ?? JSON.stringify(body.response)}`;
  result.textContent = `${EVENT_NAME[body.event] || body.event} sent; the product's webhook answered ${said}.`;
  await refresh();
}

async function runCatchup() {
  clearBanner();
  const result = $("catchup-result");
  result.textContent = "Running…";
  const response = await fetch("/local/schedules/BusinessCatchupFunction/run", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: "{}",
  });
  const body = await response.json();
  const report = body.result;
  result.textContent = response.ok && body.ok && report
    ? `Catch-up: ${report.integrations} business account(s), ${report.comments_seen} comment(s) seen, ` +
      `${report.leads_created} new, ${report.duplicates} already captured.`
    : `Catch-up failed: ${body?.error?.message || body?.error || response.status}`;
  await refresh();
}

// -- leads ------------------------------------------------------------------------------------------
function filters() {
  const query = new URLSearchParams({ platform: "tiktok" });
  for (const id of ["f-integration", "f-source", "f-status", "f-limit"]) {
    const field = $(id);
    if (field.value) query.set(field.name, field.value);
  }
  const cursor = state.cursors[state.page];
  if (cursor) query.set("cursor", cursor);
  return query;
}

function filtered() {
  return ["f-integration", "f-source", "f-status"].some((id) => $(id).value);
}

function leadAccount(lead) {
  const item = state.integrations.find((i) => i.integration_id === lead.integration_id);
  return item ? accountName(item) : el("span", { class: "note", title: lead.integration_id }, "disconnected account");
}

function personName(lead) {
  // A lead-form person is known by the contact details they typed, not a TikTok handle.
  return lead.author?.username || lead.author?.id || lead.contact?.name || lead.contact?.email || "unknown person";
}

function sourceLabel(source) {
  return state.sources.get(source) || source;
}

function emptyLeads(text) {
  $("leads").hidden = true;
  $("leads-empty").textContent = text;
  $("leads-empty").hidden = false;
}

function personRow(lead) {
  const count = Number(lead.interaction_count || 0);
  const row = el("tr", { class: "person", "data-lead": lead.lead_id, onclick: () => openTimeline(lead.lead_id) },
    el("td", { class: "nowrap" }, el("button", {
      type: "button", class: "link", "data-testid": "lead-person",
      title: `Show what ${personName(lead)} did`, "aria-controls": "timeline",
    }, personName(lead))),
    el("td", { class: "nowrap", "data-testid": "lead-account" }, leadAccount(lead)),
    el("td", { class: "sources nowrap", "data-testid": "lead-sources" },
      ...(lead.capture_sources?.length ? lead.capture_sources : [lead.capture_source]).map((source) =>
        el("span", { class: "badge", "data-testid": "lead-source" }, sourceLabel(source)))),
    el("td", { class: "count", "data-testid": "lead-count", title: `${count} interaction${count === 1 ? "" : "s"}` }, count),
    el("td", { "data-testid": "lead-activity" }, when(lead.last_activity_at, "minute")),
    el("td", { class: "message", "data-testid": "lead-message" }, lead.message || ""),
    el("td", { class: "status" },
      el("span", { class: `badge ${lead.status}`, "data-testid": "lead-status" }, LEAD_STATUS[lead.status] || lead.status),
      lead.high_intent ? el("span", { class: "badge hot", "data-testid": "lead-intent" }, "High intent") : ""),
  );
  if (lead.lead_id === state.timeline.leadId) row.classList.add("selected");
  return row;
}

async function loadLeads() {
  const rows = $("leads").querySelector("tbody");
  let body;
  try {
    body = await api(`/social-leads?${filters()}`);
  } catch (error) {
    rows.replaceChildren();
    emptyLeads(`Could not list leads: ${error.message}`);
    return;
  }
  const items = body.items || [];
  rows.replaceChildren(...items.map(personRow));
  if (items.length > 0) {
    $("leads").hidden = false;
    $("leads-empty").hidden = true;
  } else if (filtered() || state.page > 0) {
    emptyLeads("No leads match these filters.");
  } else if (state.integrations.length === 0) {
    emptyLeads("No leads yet. Connect a TikTok account to start: the people who comment and write to it become leads here.");
  } else {
    emptyLeads("No leads yet. Send a test comment or direct message above, and its writer appears here.");
  }
  state.cursors[state.page + 1] = body.next_cursor || null;
  $("next").disabled = !body.next_cursor;
  $("prev").disabled = state.page === 0;
  $("page").textContent = `page ${state.page + 1}`;
}

// -- one person's timeline ----------------------------------------------------------------------------
function interactionItem(interaction) {
  const sourceState = interaction.source_state || "present";
  return el("li", { "data-testid": "interaction", "data-interaction": interaction.interaction_id },
    el("div", { class: "meta" },
      el("span", { class: "badge kind", "data-testid": "interaction-kind" },
        INTERACTION_KIND[interaction.kind] || interaction.kind),
      when(interaction.occurred_at),
      el("span", { class: `badge state-${sourceState}`, "data-testid": "interaction-state" },
        SOURCE_STATE[sourceState] || sourceState),
      interaction.high_intent ? el("span", { class: "badge hot" }, "High intent") : ""),
    el("div", { class: "text", "data-testid": "interaction-message" },
      interaction.message || el("span", { class: "note" }, "(no text)")),
    formAnswers(interaction.form_fields));
}

// A lead form's answers, question by question (every field the form sent).
function formAnswers(fields) {
  if (!fields || !Object.keys(fields).length) return "";
  return el("dl", { class: "answers", "data-testid": "form-answers" },
    ...Object.entries(fields).flatMap(([field, value]) => [el("dt", {}, field), el("dd", {}, value)]));
}

function markSelected() {
  for (const row of $("leads").querySelectorAll("tbody tr")) {
    row.classList.toggle("selected", row.dataset.lead === state.timeline.leadId);
  }
}

function closeTimeline() {
  state.timeline = { leadId: null, cursor: null, request: state.timeline.request + 1 };
  $("timeline").hidden = true;
  $("interactions").replaceChildren();
  markSelected();
}

// Opens (or reloads from its newest interaction) the timeline of a person.
async function openTimeline(leadId, { scroll = true } = {}) {
  const request = state.timeline.request + 1;
  state.timeline = { leadId, cursor: null, request };
  markSelected();
  $("timeline").hidden = false;
  $("timeline-empty").hidden = true;
  $("timeline-more").hidden = true;
  let lead;
  try {
    lead = await api(`/social-leads/${encodeURIComponent(leadId)}`);
  } catch (error) {
    if (request !== state.timeline.request) return;
    $("timeline-title").textContent = "A person";
    $("timeline-summary").textContent = "";
    $("interactions").replaceChildren();
    $("timeline-empty").textContent = `Could not open this person: ${error.message}`;
    $("timeline-empty").hidden = false;
    return;
  }
  if (request !== state.timeline.request) return;
  // The person as they are now: their row in the list too, if it shows them.
  const row = $("leads").querySelector(`tbody tr[data-lead="${CSS.escape(lead.lead_id)}"]`);
  if (row) row.replaceWith(personRow(lead));
  const count = Number(lead.interaction_count || 0);
  const account = leadAccount(lead);
  $("timeline-title").replaceChildren(`What ${personName(lead)} did`);
  $("timeline-summary").replaceChildren(
    `${count} interaction${count === 1 ? "" : "s"} with `, account,
    ` · first seen `, when(lead.first_seen_at, "minute"), ` · last active `, when(lead.last_activity_at, "minute"),
    ` · ${LEAD_STATUS[lead.status] || lead.status}`);
  $("interactions").replaceChildren();
  await showLifecycle(leadId, request);
  await loadInteractions(request);
  if (scroll && request === state.timeline.request) $("timeline").scrollIntoView({ block: "nearest" });
}

async function loadInteractions(request) {
  const { leadId, cursor } = state.timeline;
  const query = new URLSearchParams({ limit: String(TIMELINE_PAGE) });
  if (cursor) query.set("cursor", cursor);
  $("timeline-more").disabled = true;
  let body;
  try {
    body = await api(`/social-leads/${encodeURIComponent(leadId)}/interactions?${query}`);
  } catch (error) {
    if (request !== state.timeline.request) return;
    $("timeline-empty").textContent = `Could not load what this person did: ${error.message}`;
    $("timeline-empty").hidden = false;
    return;
  } finally {
    $("timeline-more").disabled = false;
  }
  if (request !== state.timeline.request) return;
  $("interactions").append(...(body.items || []).map(interactionItem));
  state.timeline.cursor = body.next_cursor || null;
  $("timeline-more").hidden = !body.next_cursor;
  const none = $("interactions").children.length === 0;
  $("timeline-empty").textContent = none ? "No interactions to show for this person." : "";
  $("timeline-empty").hidden = !none;
}

// -- lifecycle: qualify, route, dismiss, reopen, assign, label (PATCH with If-Match) ---------------
// The statuses each status may move to (DESIGN §9); the server refuses the rest with 409 anyway.
const NEXT_STATUS = { new: ["qualified", "dismissed"], qualified: ["routed", "dismissed"], dismissed: ["new"], routed: [] };
const lifecycle = { leadId: null, etag: null };

// GET the lead for its ETag (the version the person sees is the one a change is sent against).
async function showLifecycle(leadId, request) {
  const response = await fetch(`/social-leads/${encodeURIComponent(leadId)}`, {
    headers: { Authorization: `Bearer ${state.token}` },
  });
  if (request !== state.timeline.request || !response.ok) return;
  renderLifecycle(leadId, await response.json(), response.headers.get("ETag"));
}

function renderLifecycle(leadId, lead, etag) {
  Object.assign(lifecycle, { leadId, etag });
  $("lc-status").textContent = LEAD_STATUS[lead.status] || lead.status;
  $("lc-status").className = `badge ${lead.status}`;
  for (const button of $("lifecycle").querySelectorAll("[data-lc-status]")) {
    button.disabled = !(NEXT_STATUS[lead.status] || []).includes(button.dataset.lcStatus);
  }
  $("lc-assignee").value = lead.assignee || "";
  $("lc-labels").value = (lead.labels || []).join(", ");
}

async function changeLead(change, done) {
  clearBanner();
  const { leadId, etag } = lifecycle;
  if (!leadId) return;
  const response = await fetch(`/social-leads/${encodeURIComponent(leadId)}`, {
    method: "PATCH",
    headers: { Authorization: `Bearer ${state.token}`, "Content-Type": "application/json", "If-Match": etag || "" },
    body: JSON.stringify(change),
  });
  let body = null;
  try { body = await response.json(); } catch (_) { /* empty body */ }
  if (response.status === 412) {
    $("lc-result").textContent = "Someone changed this person meanwhile: shown as they are now. Try again.";
    await showLifecycle(leadId, state.timeline.request);
    return;
  }
  if (!response.ok) {
    $("lc-result").textContent = `Not changed: ${body?.error?.message || response.statusText} (HTTP ${response.status})`;
    return;
  }
  // The person's row, the timeline's summary and this block show the lead as it is now; the block
  // is drawn once, from that reload, so nothing typed after it appears is overwritten.
  await loadLeads();
  if (state.timeline.leadId === leadId) await openTimeline(leadId, { scroll: false });
  else renderLifecycle(leadId, body, response.headers.get("ETag"));
  $("lc-result").textContent = done;
}

function setUpLifecycle() {
  for (const button of $("lifecycle").querySelectorAll("[data-lc-status]")) {
    button.addEventListener("click", () => {
      const status = button.dataset.lcStatus;
      changeLead({ status }, `Now ${LEAD_STATUS[status]}.`);
    });
  }
  $("lc-assign-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const assignee = $("lc-assignee").value.trim() || null;
    changeLead({ assignee }, assignee ? `Assigned to ${assignee}.` : "Unassigned.");
  });
  $("lc-labels-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const labels = [...new Set($("lc-labels").value.split(",").map((label) => label.trim()).filter(Boolean))];
    changeLead({ labels }, labels.length ? `Labels: ${labels.join(", ")}.` : "No labels.");
  });
}
// -- end of lifecycle -------------------------------------------------------------------------------

async function loadPlatforms() {
  const body = await api("/platforms");
  const tiktok = (body.items || []).find((platform) => platform.id === "tiktok");
  // Only what this console can capture: TikTok's sources this deployment produces.
  for (const source of tiktok?.capture_sources || []) {
    state.sources.set(source.id, source.label);
    if (!source.reserved) $("f-source").append(el("option", { value: source.id }, source.label));
  }
  for (const status of body.lead_statuses || []) {
    $("f-status").append(el("option", { value: status }, LEAD_STATUS[status] || status));
  }
}

// ISO 8601 UTC as "2026-11-25 08:00:05 UTC", or to the minute where that is what is kept.
function when(iso, precision = "second") {
  if (!iso) return "—";
  const [date, time = ""] = iso.replace("Z", "").split("T");
  const shown = precision === "minute" ? time.slice(0, 5) : time.slice(0, 8);
  return el("time", { datetime: iso, title: iso }, `${date} ${shown} UTC`);
}

async function refresh() {
  // Leads name their account: integrations first.
  await loadIntegrations();
  await loadLeads();
  // An open timeline may have gained an interaction.
  if (state.timeline.leadId) await openTimeline(state.timeline.leadId, { scroll: false });
}

// -- merge and erase (docs/lifecycle-merge-erase.md) -----------------------------------------------------
// Kept apart from the rest. A merge offers the other people of the open person's account, from the
// listing; an erasure asks for confirmation first, then the person is gone from every view.
async function openMerge() {
  const leadId = state.timeline.leadId;
  if (!leadId) return;
  clearBanner();
  let others;
  try {
    const lead = await api(`/social-leads/${encodeURIComponent(leadId)}`);
    const query = new URLSearchParams({ integration_id: lead.integration_id, limit: "100" });
    others = ((await api(`/social-leads?${query}`)).items || []).filter((item) => item.lead_id !== leadId);
  } catch (error) {
    banner(`Could not list the people to merge: ${error.message}`, "error");
    return;
  }
  $("merge-choices").replaceChildren(...(others.length ? others.map((item) => el("li", {},
    el("label", {},
      el("input", { type: "checkbox", value: item.lead_id, "data-testid": "merge-choice" }),
      ` ${personName(item)} · ${Number(item.interaction_count || 0)} interaction(s) · ${item.message || ""}`)))
    : [el("li", { class: "note" }, "No other person of this account to merge.")]));
  $("merge-form").dataset.lead = leadId;
  $("merge-form").hidden = false;
}

async function submitMerge(event) {
  event.preventDefault();
  const leadId = $("merge-form").dataset.lead;
  const ids = [...$("merge-choices").querySelectorAll("input:checked")].map((box) => box.value);
  if (!leadId || leadId !== state.timeline.leadId || ids.length === 0) {
    banner("Tick the people to merge into the person shown.", "error");
    return;
  }
  let merged;
  try {
    merged = await api(`/social-leads/${encodeURIComponent(leadId)}/merge`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ lead_ids: ids }),
    });
  } catch (error) {
    banner(`Merging failed: ${error.message}`, "error");
    return;
  }
  $("merge-form").hidden = true;
  await refresh();
  banner(`Merged ${ids.length} lead${ids.length === 1 ? "" : "s"} into ${personName(merged)}: ` +
    `${merged.interaction_count} interactions now.`, "ok");
}

async function eraseLead() {
  const leadId = state.timeline.leadId;
  if (!leadId) return;
  clearBanner();
  const name = $("timeline-title").textContent.replace(/^What (.*) did$/, "$1");
  if (!window.confirm(`Erase ${name} and everything they did? Nothing of them is kept; this cannot be undone.`)) return;
  try {
    await api(`/social-leads/${encodeURIComponent(leadId)}`, { method: "DELETE" });
  } catch (error) {
    banner(`Erasing failed: ${error.message}`, "error");
    return;
  }
  $("merge-form").hidden = true;
  closeTimeline();
  await loadLeads();
  banner(`Erased ${name}: nothing of them is kept.`, "ok");
}

$("merge-open").addEventListener("click", openMerge);
$("merge-form").addEventListener("submit", submitMerge);
$("erase-lead").addEventListener("click", eraseLead);
// -- end of merge and erase ---------------------------------------------------------------------------------

// -- start ------------------------------------------------------------------------------------------------
function showCallbackOutcome(params) {
  const status = params.get("status");
  const reconnecting = sessionStorage.getItem("orcapulse.reconnecting");
  sessionStorage.removeItem("orcapulse.reconnecting");
  if (status === "connected") {
    const id = params.get("integration_id");
    const item = state.integrations.find((i) => i.integration_id === id);
    const name = item ? accountName(item) : id;
    banner(id === reconnecting
      ? `TikTok account reconnected: ${name} is active again.`
      : `TikTok account connected: ${name}. Send it a test event below.`, "ok");
  } else if (status === "error") {
    const reason = params.get("reason");
    banner(`Connecting failed: ${CALLBACK_REASON[reason] || reason}. Press Connect TikTok to try again.`, "error");
  }
}

async function main() {
  const saved = JSON.parse(localStorage.getItem("orcapulse.identity") || "{}");
  $("workspace").value = saved.workspace || "ws-local";
  $("user").value = saved.user || "user-local";
  const callback = new URLSearchParams(window.location.search);
  if (callback.get("status")) window.history.replaceState({}, "", "/");
  $("identity").addEventListener("submit", async (event) => {
    event.preventDefault();
    clearBanner();
    $("event-result").textContent = "";
    await signIn();
    state.cursors = [null]; state.page = 0;
    for (const id of ["f-integration", "f-source", "f-status"]) $(id).value = "";
    closeTimeline();
    await refresh();
  });
  $("banner-close").addEventListener("click", clearBanner);
  $("timeline-close").addEventListener("click", closeTimeline);
  $("timeline-more").addEventListener("click", () => loadInteractions(state.timeline.request));
  setUpLifecycle();
  $("connect").addEventListener("click", () => connect(null, "personal"));
  $("connect-business").addEventListener("click", () => connect(null, "business"));
  $("run-catchup").addEventListener("click", runCatchup);
  $("test-event").addEventListener("submit", sendEvent);
  $("filters").addEventListener("submit", (event) => {
    event.preventDefault();
    clearBanner();
    state.cursors = [null]; state.page = 0;
    loadLeads();
  });
  $("next").addEventListener("click", () => { clearBanner(); state.page += 1; loadLeads(); });
  $("prev").addEventListener("click", () => { clearBanner(); state.page = Math.max(0, state.page - 1); loadLeads(); });
  await signIn();
  try {
    await loadPlatforms();
    await refresh();
    showCallbackOutcome(callback);
  } catch (error) {
    banner(`Could not reach the product's API: ${error.message}`, "error");
  }
  document.body.dataset.ready = "true";
}

main();
