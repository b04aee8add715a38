// 医保码 web app: sign in or activate, the live QR code with its countdown, family switcher,
// balance, records, contributions, account movements, family binding, large-font mode.
"use strict";

const $ = (id) => document.getElementById(id);
const store = {
  get token() { return localStorage.getItem("yb.token"); },
  set token(v) { v ? localStorage.setItem("yb.token", v) : localStorage.removeItem("yb.token"); },
  get device() { return localStorage.getItem("yb.device"); },
  set device(v) { localStorage.setItem("yb.device", v); },
};
const state = { me: null, current: null, timer: null, remaining: 0, face: "" };

function esc(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

async function api(path, { method = "GET", body } = {}) {
  const headers = { "content-type": "application/json" };
  if (store.token) headers.authorization = `Bearer ${store.token}`;
  const reply = await fetch(path, { method, headers, body: body ? JSON.stringify(body) : undefined });
  if (reply.status === 204) return null;
  const data = await reply.json().catch(() => ({}));
  if (!reply.ok) {
    if (reply.status === 401 && path !== "/api/v1/sessions") signOut();
    const error = new Error(data.detail || `HTTP ${reply.status}`);
    error.title = data.title;
    throw error;
  }
  return data;
}

// -- large font --------------------------------------------------------------------------------
function applyFont(large) {
  document.documentElement.classList.toggle("large", large);
  document.body.classList.toggle("large", large);
  $("font-toggle").setAttribute("aria-pressed", String(large));
  $("font-toggle").textContent = large ? "标准版" : "大字版";
  localStorage.setItem("yb.large", large ? "1" : "0");
}
$("font-toggle").addEventListener("click", () => applyFont(!document.body.classList.contains("large")));

// -- sign in / activate ------------------------------------------------------------------------
function showActivation(show) {
  $("activate-extra").hidden = !show;
  $("login-button").textContent = show ? "激活并登录" : "登录";
}

$("activate-toggle").addEventListener("click", () => showActivation($("activate-extra").hidden));

$("face-button").addEventListener("click", async () => {
  // The demo's "camera": the deterministic real-person provider's face for this ID number.
  const certno = $("certno").value.trim();
  if (!certno) { $("face-status").textContent = "请先输入身份证号"; return; }
  try {
    state.face = (await api(`/api/v1/demo/face?certno=${encodeURIComponent(certno)}`)).face;
    $("face-status").textContent = "刷脸完成 ✓";
  } catch (e) { $("face-status").textContent = e.message; }
});

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("login-error").textContent = "";
  const certno = $("certno").value.trim().toUpperCase(), name = $("name").value.trim(), password = $("password").value;
  try {
    let session;
    if (!$("activate-extra").hidden) {
      session = await api("/api/v1/activations", { method: "POST", body: {
        chnl_id: $("channel").value, certno, name, password, face: state.face, liveness: 0.98, device_label: navigator.userAgent.slice(0, 80) } });
      store.device = session.device_id;
    } else {
      if (!store.device) { showActivation(true); throw new Error("本机尚未激活医保码，请刷脸激活"); }
      session = await api("/api/v1/sessions", { method: "POST", body: { certno, name, password, device_id: store.device } });
    }
    store.token = session.token;
    $("password").value = "";
    await showHome();
  } catch (e) {
    if (["device", "not-activated"].includes(e.title)) showActivation(true);
    $("login-error").textContent = e.message;
  }
});

async function showLogin() {
  clearInterval(state.timer);
  $("view-home").hidden = true;
  $("view-login").hidden = false;
  $("sign-out").hidden = true;
  // This page is the platform's own channel; other channels (apps, WeChat, Alipay, banks) activate through their own clients.
  const channels = (await api("/api/v1/channels")).filter((c) => c.kind === "platform_web");
  $("channel").innerHTML = channels.map((c) => `<option value="${esc(c.chnl_id)}">${esc(c.chnl_name)}</option>`).join("");
  showActivation(!store.device);
}

async function signOut() {
  const token = store.token;
  store.token = null;
  if (token) fetch("/api/v1/sessions/current", { method: "DELETE", headers: { authorization: `Bearer ${token}` } });
  await showLogin();
}
$("sign-out").addEventListener("click", signOut);

// -- home --------------------------------------------------------------------------------------
async function showHome() {
  state.me = await api("/api/v1/me");
  $("view-login").hidden = true;
  $("view-home").hidden = false;
  $("sign-out").hidden = false;
  renderSwitcher();
  await selectPerson(state.current && canSee(state.current) ? state.current : state.me.psn_no);
  renderFamily();
}

function canSee(psn) {
  return psn === state.me.psn_no || state.me.family.some((m) => m.psn_no === psn && m.status === "active");
}

function renderSwitcher() {
  const people = [{ psn_no: state.me.psn_no, label: `本人 ${state.me.name}` }].concat(
    state.me.family.filter((m) => m.status === "active").map((m) => ({ psn_no: m.psn_no, label: `${m.relation_name} ${m.name}` })));
  $("family-switcher").innerHTML = people.map((p) =>
    `<button type="button" data-psn="${esc(p.psn_no)}" aria-current="${p.psn_no === state.current}">${esc(p.label)}</button>`).join("");
  $("family-switcher").querySelectorAll("button").forEach((b) => b.addEventListener("click", () => selectPerson(b.dataset.psn)));
}

async function selectPerson(psn) {
  state.current = psn;
  renderSwitcher();
  const card = await api(`/api/v1/people/${psn}`);
  $("qr-name").textContent = card.name;
  $("qr-certno").textContent = card.certno;
  $("balance").textContent = card.balance === null ? "无个人账户" : `¥ ${Number(card.balance).toFixed(2)}`;
  $("enrolments").textContent = card.enrolments.filter((e) => e.status === "1").map((e) => e.insutype_name).join(" · ");
  await refreshCode();
  await loadTab(document.querySelector(".tabs [aria-selected=true]").dataset.tab);
}

async function refreshCode() {
  clearInterval(state.timer);
  const psn = state.current;
  try {
    const code = await api(`/api/v1/people/${psn}/codes`, { method: "POST" });
    if (psn !== state.current) return;
    const box = $("qr");
    box.innerHTML = code.svg;
    box.dataset.code = code.code;
    box.dataset.psn = code.psn_no;
    state.remaining = code.ttl_s;
  } catch (e) {
    $("qr").textContent = e.message;
    state.remaining = 10;
  }
  $("countdown").textContent = state.remaining;
  state.timer = setInterval(() => {
    state.remaining -= 1;
    $("countdown").textContent = Math.max(state.remaining, 0);
    if (state.remaining <= 0) refreshCode();
  }, 1000);
}
$("refresh").addEventListener("click", refreshCode);

// -- tabs --------------------------------------------------------------------------------------
document.querySelectorAll(".tabs button").forEach((b) => b.addEventListener("click", async () => {
  document.querySelectorAll(".tabs button").forEach((x) => x.setAttribute("aria-selected", String(x === b)));
  document.querySelectorAll(".tab").forEach((t) => { t.hidden = t.id !== `tab-${b.dataset.tab}`; });
  await loadTab(b.dataset.tab);
}));

const KIND = { outpatient: "门诊", inpatient: "住院", pharmacy: "药店" };

async function loadTab(tab) {
  const psn = state.current;
  if (tab === "records") {
    const rows = await api(`/api/v1/people/${psn}/settlements`);
    $("tab-records").innerHTML = rows.length ? `<table><tr><th>时间</th><th>机构</th><th class="num">总额</th><th class="num">基金</th><th class="num">个人</th></tr>${
      rows.map((r) => `<tr><td>${esc(r.time.slice(0, 16))}<br><span class="muted">${esc(KIND[r.kind] || "")}${r.reversal ? " 撤销" : ""}${r.reversed ? " 已撤销" : ""}</span></td>
        <td>${esc(r.institution)}</td><td class="num">${esc(r.total)}</td><td class="num">${esc(r.funds)}</td>
        <td class="num">${esc((Number(r.account) + Number(r.cash)).toFixed(2))}</td></tr>`).join("")}</table>` : `<p class="hint">暂无就诊记录</p>`;
  } else if (tab === "contributions") {
    const rows = await api(`/api/v1/people/${psn}/contributions`);
    $("tab-contributions").innerHTML = rows.length ? `<table><tr><th>期间</th><th>险种</th><th class="num">单位</th><th class="num">个人</th><th class="num">划入账户</th></tr>${
      rows.map((r) => `<tr><td>${esc(r.period)}</td><td>${esc(r.insutype)}</td><td class="num">${esc(r.employer)}</td>
        <td class="num">${esc(r.personal)}</td><td class="num">${esc(r.to_account)}</td></tr>`).join("")}</table>` : `<p class="hint">暂无缴费记录</p>`;
  } else if (tab === "account") {
    const acct = await api(`/api/v1/people/${psn}/account`);
    $("tab-account").innerHTML = acct.balance === null ? `<p class="hint">城乡居民医保没有个人账户</p>` :
      `<p>余额 <b>¥ ${esc(acct.balance)}</b></p>${acct.movements.map((m) =>
        `<div class="row"><span>${esc(m.time.slice(0, 10))} ${esc(m.what)}${m.for_family ? "（家人共济）" : ""}</span><b>${esc(m.amount)}</b></div>`).join("")}`;
  } else if (tab === "family") {
    renderFamily();
  }
}

function renderFamily() {
  if (!state.me) return;
  $("family-list").innerHTML = state.me.family.length ? `<h2>已绑定</h2>${state.me.family.map((m) =>
    `<div class="row"><span>${esc(m.relation_name)} ${esc(m.name)} <span class="muted">${m.status === "pending" ? "待对方确认" : ""}</span></span>
     <button type="button" class="secondary" data-unbind="${m.id}">解除</button></div>`).join("")}` : "";
  $("family-requests").innerHTML = state.me.requests.length ? `<h2>待我确认</h2>${state.me.requests.map((r) =>
    `<div class="row"><span>${esc(r.holder_name)} 申请添加您为家庭成员</span><button type="button" class="secondary" data-approve="${r.id}">同意</button></div>`).join("")}` : "";
  document.querySelectorAll("[data-unbind]").forEach((b) => b.addEventListener("click", async () => {
    await api(`/api/v1/me/family/${b.dataset.unbind}`, { method: "DELETE" });
    await showHome();
  }));
  document.querySelectorAll("[data-approve]").forEach((b) => b.addEventListener("click", async () => {
    await api(`/api/v1/me/family/${b.dataset.approve}/approve`, { method: "POST" });
    await showHome();
  }));
}

$("bind-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    const result = await api("/api/v1/me/family", { method: "POST", body: {
      certno: $("bind-certno").value.trim().toUpperCase(), name: $("bind-name").value.trim(), relation: $("bind-relation").value } });
    $("bind-result").textContent = result.status === "active" ? "已添加" : "已发送，等待对方在医保码中确认";
    $("bind-certno").value = "";
    $("bind-name").value = "";
    await showHome();
  } catch (e) { $("bind-result").textContent = e.message; }
});

// -- start -------------------------------------------------------------------------------------
applyFont(localStorage.getItem("yb.large") === "1");
(store.token ? showHome().catch(showLogin) : showLogin());
