// 医保接口调试台: sign in (an institution answers a challenge with HMAC-SHA256 under its secret, which never leaves the
// browser; staff with a password), the newest messages with filters, one message's request, answer and field-level
// warnings, and "copy as curl". No inline script or style: the server's Content-Security-Policy allows only files.
// Everything a message holds comes from HIS systems: it is put into the page as text, never as markup.
"use strict";

const $ = (id) => document.getElementById(id);
const TOKEN = "yb.console.token";
const state = { me: null, before: 0, selected: null };

const KINDS = { unknown: "未定义字段", format: "格式", empty: "建议填写" };
const FLAGS = { msgid_reused: ["同一 msgid 不同报文", "flag"], retry: ["重发（返回首次应答）", "retry"] };
const STATUS = { 400: "输入有误", 401: "请重新登录", 404: "没有找到", 409: "无法完成", 429: "尝试过于频繁，请稍后再试", 500: "服务出错了，请稍后再试" };

// -- the API ---------------------------------------------------------------------------------------------

class Problem extends Error {
  constructor(status, body) {
    super((body && body.detail) || STATUS[status] || `HTTP ${status}`);
    this.status = status;
    this.field = body && body.field;
  }
}

async function api(path, options = {}) {
  const headers = { Accept: "application/json" };
  const token = sessionStorage.getItem(TOKEN);
  if (token) headers.Authorization = `Bearer ${token}`;
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const reply = await fetch(`/console/api${path}`, {
    method: options.method || "GET", headers, body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  if (reply.status === 204) return null;
  const body = await reply.json().catch(() => null);
  if (!reply.ok) {
    if (reply.status === 429) throw new Problem(429, { detail: STATUS[429] });
    throw new Problem(reply.status, body);
  }
  return body;
}

function hex(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
}

// hex(HMAC-SHA256(secret, "yibao-console\n" + access_key + "\n" + challenge)): what the platform checks (console/service.py)
async function answerChallenge(secret, accessKey, challenge) {
  if (!window.crypto || !window.crypto.subtle) throw new Error("浏览器不支持 WebCrypto：请通过 HTTPS 打开调试台");
  const encoder = new TextEncoder();
  const key = await crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return hex(await crypto.subtle.sign("HMAC", key, encoder.encode(`yibao-console\n${accessKey}\n${challenge}`)));
}

// -- sign-in ---------------------------------------------------------------------------------------------

function chooseTab(staff) {
  $("tab-institution").setAttribute("aria-selected", String(!staff));
  $("tab-staff").setAttribute("aria-selected", String(staff));
  $("institution-form").hidden = staff;
  $("staff-form").hidden = !staff;
  $("login-error").textContent = "";
}

async function signIn(body, form) {
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  $("login-error").textContent = "";
  try {
    const session = await api("/sessions", { method: "POST", body });
    sessionStorage.setItem(TOKEN, session.token);
    form.reset();
    await start();
  } catch (error) {
    $("login-error").textContent = error.message;
  } finally {
    button.disabled = false;
  }
}

$("tab-institution").addEventListener("click", () => chooseTab(false));
$("tab-staff").addEventListener("click", () => chooseTab(true));

$("institution-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const accessKey = $("access-key").value.trim();
  const secret = $("secret").value.trim();
  if (!accessKey || !secret) { $("login-error").textContent = "请填写 access key 和 secret"; return; }
  try {
    const { challenge } = await api("/challenge", { method: "POST", body: { access_key: accessKey } });
    const answer = await answerChallenge(secret, accessKey, challenge);
    await signIn({ access_key: accessKey, challenge, answer }, event.target);
  } catch (error) {
    $("login-error").textContent = error.message;
  }
});

$("staff-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const staff = $("staff-name").value.trim();
  const password = $("staff-password").value;
  if (!staff || !password) { $("login-error").textContent = "请填写用户名和密码"; return; }
  await signIn({ staff, password }, event.target);
});

$("sign-out").addEventListener("click", async () => {
  try { await api("/sessions/current", { method: "DELETE" }); } catch (_) { /* signed out either way */ }
  sessionStorage.removeItem(TOKEN);
  showLogin();
});

function showLogin() {
  state.me = null;
  $("view-main").hidden = true;
  $("view-login").hidden = false;
  $("sign-out").hidden = true;
  $("who").textContent = "";
}

// -- the list --------------------------------------------------------------------------------------------

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function badge(parent, text, kind) {
  const span = document.createElement("span");
  span.className = `badge ${kind}`;
  span.textContent = text;
  parent.appendChild(span);
}

function filters() {
  const query = new URLSearchParams();
  const put = (name, value) => { if (value) query.set(name, value); };
  put("infno", $("f-infno").value.trim());
  put("msgid", $("f-msgid").value.trim());
  put("outcome", $("f-outcome").value);
  if (state.me && state.me.kind === "staff") put("fixmedins_code", $("f-code").value.trim());
  return query;
}

async function loadMessages(more = false) {
  const query = filters();
  query.set("limit", "50");
  if (more && state.before) query.set("before", String(state.before));
  $("main-error").textContent = "";
  try {
    const found = await api(`/messages?${query}`);
    const body = $("message-rows");
    if (!more) body.replaceChildren();
    for (const m of found) body.appendChild(messageRow(m));
    state.before = found.length ? found[found.length - 1].id : state.before;
    $("more").hidden = found.length < 50;
    const shown = body.children.length;
    $("list-status").textContent = shown ? `显示最近 ${shown} 条报文（点击一行查看详情）` : "没有符合条件的报文";
  } catch (error) {
    failed(error);
  }
}

function messageRow(m) {
  const row = document.createElement("tr");
  row.dataset.id = String(m.id);
  row.dataset.infno = m.infno;
  row.dataset.infcode = String(m.infcode);
  cell(row, m.at.slice(5));
  if (state.me.kind === "staff") cell(row, m.fixmedins_code, "mono").title = m.fixmedins_name || "";
  cell(row, m.name ? `${m.infno} ${m.name}` : m.infno);
  cell(row, m.msgid, "mono");
  const outcome = cell(row, m.infcode === 0 ? "成功" : `失败 ${m.err_msg}`, m.infcode === 0 ? "ok" : "bad");
  outcome.title = m.err_msg;
  cell(row, m.duration_ms.toFixed(1), "num");
  cell(row, m.scheme);
  const hints = cell(row, "");
  hints.className = "hints";
  if (m.warnings) badge(hints, `${m.warnings} 条字段提示`, "warn");
  for (const flag of m.flags) if (FLAGS[flag]) badge(hints, FLAGS[flag][0], FLAGS[flag][1]);
  row.addEventListener("click", () => showMessage(m.id));
  return row;
}

async function loadInstitutions() {
  const rows = await api("/institutions");
  const body = $("institution-rows");
  body.replaceChildren();
  for (const inst of rows) {
    const row = document.createElement("tr");
    row.dataset.code = inst.fixmedins_code;
    cell(row, inst.fixmedins_code, "mono");
    cell(row, inst.fixmedins_name);
    cell(row, String(inst.messages), "num");
    cell(row, String(inst.refused), "num");
    cell(row, inst.last_at || "");
    row.addEventListener("click", () => { $("f-code").value = inst.fixmedins_code; loadMessages(); });
    body.appendChild(row);
  }
  $("institutions").hidden = false;
}

// -- one message -----------------------------------------------------------------------------------------

function meta(list, label, value) {
  const dt = document.createElement("dt");
  dt.textContent = label;
  const dd = document.createElement("dd");
  dd.textContent = value;
  list.append(dt, dd);
  return dd;
}

async function showMessage(id) {
  $("main-error").textContent = "";
  try {
    const m = await api(`/messages/${id}`);
    state.selected = m;
    for (const row of $("message-rows").children) row.classList.toggle("selected", row.dataset.id === String(id));
    $("d-title").textContent = `${m.infno} ${m.name || ""} · ${m.infcode === 0 ? "成功" : "失败"}`;
    const list = $("d-meta");
    list.replaceChildren();
    meta(list, "时间", m.at);
    meta(list, "机构", m.fixmedins_code);
    meta(list, "msgid", m.msgid);
    meta(list, "infcode", String(m.infcode));
    if (m.err_msg) meta(list, "err_msg", m.err_msg).className = "bad";
    meta(list, "耗时", `${m.duration_ms.toFixed(1)} ms（平台内处理时间）`);
    meta(list, "签名方式", `${m.scheme}（access key ${m.access_key}）`);
    meta(list, "来源地址", m.ip || "—");
    if (m.flags.length) {
      const dd = meta(list, "msgid 提示", "");
      for (const flag of m.flags) if (FLAGS[flag]) badge(dd, FLAGS[flag][0], FLAGS[flag][1]);
    }
    const findings = $("d-findings");
    findings.replaceChildren();
    for (const f of m.findings) {
      const item = document.createElement("li");
      item.dataset.kind = f.kind;
      badge(item, KINDS[f.kind] || f.kind, f.kind === "unknown" ? "flag" : "warn");
      const path = document.createElement("span");
      path.className = "path";
      path.textContent = f.path;
      item.append(path, document.createTextNode(`：${f.message}`));
      findings.appendChild(item);
    }
    if (!m.findings.length) {
      const item = document.createElement("li");
      item.textContent = "没有字段提示";
      findings.appendChild(item);
    }
    $("d-request").textContent = m.request;
    $("d-request-note").textContent = m.request_truncated ? `（共 ${m.request_size} 字节，只保存了前 64 KiB）` : "";
    $("d-response").textContent = m.response;
    $("d-response-note").textContent = m.response_truncated ? "（只保存了前 64 KiB）" : "";
    $("copy-curl").disabled = m.request_truncated;
    $("curl-status").textContent = "";
    $("curl-text").hidden = true;
    $("curl-text").value = "";
    $("detail").hidden = false;
    $("detail").scrollIntoView({ block: "nearest" });
  } catch (error) {
    failed(error);
  }
}

async function copyText(text) {
  if (navigator.clipboard && navigator.clipboard.writeText) {
    try { await navigator.clipboard.writeText(text); return true; } catch (_) { /* fall back below */ }
  }
  const area = $("curl-text");
  area.hidden = false;
  area.select();
  return document.execCommand && document.execCommand("copy");
}

$("copy-curl").addEventListener("click", async () => {
  if (!state.selected) return;
  const button = $("copy-curl");
  button.disabled = true;
  $("curl-status").textContent = "";
  try {
    const made = await api(`/messages/${state.selected.id}/curl`, { method: "POST" });
    $("curl-text").value = made.command;
    $("curl-text").hidden = false;
    const copied = await copyText(made.command);
    const minutes = Math.max(1, Math.floor(made.valid_s / 60));
    const notes = made.notes.length ? `；${made.notes.join("；")}` : "";
    $("curl-status").textContent = `${copied ? "已复制" : "请手动复制下面的命令"}：${made.scheme} 签名，${minutes} 分钟内有效，同一 msgid 重发会得到首次应答${notes}`;
  } catch (error) {
    $("curl-status").textContent = error.message;
  } finally {
    button.disabled = state.selected.request_truncated;
  }
});

// -- start -----------------------------------------------------------------------------------------------

function failed(error) {
  if (error instanceof Problem && error.status === 401) {
    sessionStorage.removeItem(TOKEN);
    showLogin();
    $("login-error").textContent = "登录已过期，请重新登录";
    return;
  }
  $("main-error").textContent = error.message;
}

$("filters").addEventListener("submit", (event) => { event.preventDefault(); loadMessages(); });
$("f-clear").addEventListener("click", () => { $("filters").reset(); loadMessages(); });
$("more").addEventListener("click", () => loadMessages(true));

async function start() {
  if (!sessionStorage.getItem(TOKEN)) { showLogin(); return; }
  try {
    state.me = await api("/me");
  } catch (error) {
    sessionStorage.removeItem(TOKEN);
    showLogin();
    return;
  }
  const staff = state.me.kind === "staff";
  $("who").textContent = staff ? `平台人员 ${state.me.staff}` : `${state.me.fixmedins_code}（access key ${state.me.access_key}）`;
  $("sign-out").hidden = false;
  $("view-login").hidden = true;
  $("view-main").hidden = false;
  $("detail").hidden = true;
  $("f-code-row").hidden = !staff;
  for (const th of document.querySelectorAll(".staff-only")) th.hidden = !staff;
  $("institutions").hidden = true;
  if (staff) await loadInstitutions().catch(failed);
  document.dispatchEvent(new CustomEvent("console:signed-in", { detail: state.me }));
  await loadMessages();
}

start();
