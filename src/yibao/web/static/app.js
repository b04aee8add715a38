// 医保码 web app: sign in or activate, the live QR code with its countdown, family switcher,
// balance, records, contributions, account movements, family binding, large-font mode, filing care away from home.
// No inline script or style anywhere: the server's Content-Security-Policy allows only files.
"use strict";

const $ = (id) => document.getElementById(id);
const store = {
  get token() { return localStorage.getItem("yb.token"); },
  set token(v) { v ? localStorage.setItem("yb.token", v) : localStorage.removeItem("yb.token"); },
  get device() { return localStorage.getItem("yb.device"); },
  set device(v) { localStorage.setItem("yb.device", v); },
};
// face: the face captured for one ID number ({certno, face}); it counts only once the platform has checked it
const state = { me: null, current: null, timer: null, remaining: 0, face: null, approving: null };

// One page at a time: every page is a <section id="view-…"> directly under <main>.
function showView(id) {
  document.querySelectorAll("main > section").forEach((section) => { section.hidden = section.id !== id; });
  if (id !== "view-home") clearInterval(state.timer);
}

function esc(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

// -- messages: the server's refusals become plain Chinese ----------------------------------------------
// The server names the reason in `title` (and the input in `field`); its `detail` is for developers and may be
// English, so it is shown only when it is Chinese.
const REASONS = {
  "wrong-password": (p) => { const left = /(\d+)\s*attempt/.exec(p.detail || ""); return left ? `消费密码错误，还可尝试${left[1]}次` : "消费密码错误"; },
  "locked": (p) => {
    const until = /(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2})/.exec(p.detail || "");
    return until ? `消费密码错误次数过多，已锁定至${until[2]}，可稍后再试或刷脸重置密码` : "消费密码错误次数过多，已暂时锁定，请稍后再试";
  },
  "no-password": () => "尚未设置消费密码，请重新激活医保码",
  "real-name": () => "身份证号与姓名不一致，或未查到参保信息",
  "liveness": () => "刷脸未通过：未检测到真人，请重新刷脸",
  "face": () => "刷脸未通过：与本人照片不符，请重新刷脸",
  "minor": () => "未成年人的医保码由监护人在“亲情账户”中添加",
  "not-activated": () => "医保码尚未激活，请先刷脸激活",
  "device": () => "本机尚未激活医保码，请刷脸激活",
  "session": () => "登录已过期，请重新登录",
  "revoked": () => "本机的医保码已停用，请重新激活",
  "family": (p) => (p.field === "certno" ? "未成年人只能由同一户口簿的监护人添加" : "只能查看本人或已绑定家庭成员的信息"),
  "channel": () => "激活渠道暂不可用，请稍后再试",
  "Conflict": (p) => (p.field === "certno" ? "已添加过这位家庭成员，或正在等待对方确认" : ""),
  "NotFound": (p) => (["id", "binding_id"].includes(p.field) ? "该申请已处理或不存在" : p.field === "device_id" ? "未找到这台设备" : ""),
  "InputError": (p) => (p.field === "certno" && /yourself/.test(p.detail || "") ? "不能添加自己" : ""),
};
const FIELDS = {
  certno: "身份证号有误，请核对",
  name: "请填写正确的姓名",
  password: "消费密码为6位数字，且不能是相同或连续的数字",
  relation: "请选择与对方的关系",
  face: "请先刷脸认证",
  liveness: "刷脸未通过，请重新刷脸",
  chnl_id: "激活渠道暂不可用，请稍后再试",
  psn_cert_type: "仅支持居民身份证激活",
  device_id: "本机尚未激活医保码，请刷脸激活",
};
const STATUS = {
  400: "输入有误，请检查后重试",
  401: "请重新登录",
  403: "未通过验证，无法继续",
  404: "未找到相关信息",
  409: "操作未完成，请刷新后重试",
  413: "内容太多，请删减后重试",
  500: "服务出错了，请稍后再试",
};

// Chinese means: some CJK and no Latin words (the short tokens people know, like QR, may stay).
function isChinese(text) {
  return /[\u3400-\u9fff]/.test(text) && !/[A-Za-z]{2,}/.test(text.replace(/\b(QR|ID)\b/g, ""));
}

function retrySeconds(retryAfter) {
  if (!retryAfter) return null;
  if (/^\d+$/.test(retryAfter.trim())) return Math.max(1, parseInt(retryAfter, 10));
  const when = Date.parse(retryAfter);  // Retry-After may also be an HTTP date
  return Number.isNaN(when) ? null : Math.max(1, Math.ceil((when - Date.now()) / 1000));
}

function problemMessage(problem, retryAfter) {
  const status = Number(problem.status) || 0;
  if (status === 429) {
    const seconds = retrySeconds(retryAfter);
    return seconds ? `操作过于频繁，请于${seconds}秒后再试` : "操作过于频繁，请稍后再试";
  }
  // YibaoError puts the field in front of its message ("password: …"): that prefix is not for people
  const detail = String(problem.detail || "").replace(/^[A-Za-z_][\w.]*(?:,\s*[\w.]+)*:\s*/, "").trim();
  if (detail && isChinese(detail)) return detail;
  const reason = REASONS[problem.title] && REASONS[problem.title](problem);
  if (reason) return reason;
  if (status === 400 || status === 422) {
    const field = String(problem.field || "").split(",").map((f) => f.trim().split(".").pop()).find((f) => FIELDS[f]);
    if (field) return FIELDS[field];
  }
  if (STATUS[status]) return STATUS[status];
  if (status >= 500) return "服务暂时不可用，请稍后再试";
  return "操作未成功，请稍后再试";
}

// Messages belong to one screen and one attempt: cleared when the screen changes and before each new try.
function clearMessages() {
  document.querySelectorAll(".msg").forEach((m) => { m.textContent = ""; m.classList.remove("error-text", "ok-text"); });
}

function say(id, text, kind = "") {
  const el = $(id);
  el.textContent = text;
  el.classList.toggle("error-text", kind === "error");
  el.classList.toggle("ok-text", kind === "ok");
}

class ApiError extends Error {}

async function api(path, { method = "GET", body } = {}) {
  const headers = { "content-type": "application/json" };
  if (store.token) headers.authorization = `Bearer ${store.token}`;
  let reply;
  try {
    reply = await fetch(path, { method, headers, body: body ? JSON.stringify(body) : undefined });
  } catch {
    throw new ApiError("网络连接失败，请检查网络后重试");
  }
  if (reply.status === 204) return null;
  const data = await reply.json().catch(() => ({}));
  if (!reply.ok) {
    const problem = { status: reply.status, title: data.title, detail: data.detail, field: data.field };
    const error = new ApiError(problemMessage(problem, reply.headers.get("retry-after")));
    Object.assign(error, problem);
    if (reply.status === 401 && store.token) await expired(error.message);
    throw error;
  }
  return data;
}

// -- ID numbers (GB 11643): checked here first, so a typo is caught before any face check -----------------
function validCertno(certno) {
  if (!/^\d{17}[\dX]$/.test(certno)) return false;
  const weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
  const sum = weights.reduce((acc, w, i) => acc + w * Number(certno[i]), 0);
  if ("10X98765432"[sum % 11] !== certno[17]) return false;
  const [y, m, d] = [certno.slice(6, 10), certno.slice(10, 12), certno.slice(12, 14)].map(Number);
  const birth = new Date(Date.UTC(y, m - 1, d));
  return birth.getUTCFullYear() === y && birth.getUTCMonth() === m - 1 && birth.getUTCDate() === d;
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

$("activate-toggle").addEventListener("click", () => { $("login-error").textContent = ""; showActivation($("activate-extra").hidden); });

function forgetFace() {
  state.face = null;
  say("face-status", "");
}
// a face belongs to the ID number it was taken for
$("certno").addEventListener("input", () => { if (state.face) forgetFace(); });

$("face-button").addEventListener("click", async () => {
  forgetFace();
  $("login-error").textContent = "";
  const certno = $("certno").value.trim().toUpperCase();
  if (!certno) { say("face-status", "请先输入身份证号", "error"); return; }
  if (!validCertno(certno)) { say("face-status", "身份证号有误，请核对后再刷脸", "error"); return; }
  say("face-status", "正在刷脸…");
  try {
    // The demo's "camera": the deterministic real-person provider's face for this ID number.
    const taken = await api(`/api/v1/demo/face?certno=${encodeURIComponent(certno)}`);
    state.face = { certno, face: taken.face };
    // not a success yet: only the platform can tell whether the face is this person's
    say("face-status", "已采集人脸，激活时由平台核验");
  } catch (e) {
    say("face-status", e.status === 404 ? "网页版暂不能刷脸，请在手机医保App中激活" : e.message, "error");
  }
});

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("login-error").textContent = "";
  const certno = $("certno").value.trim().toUpperCase(), name = $("name").value.trim(), password = $("password").value;
  const activating = !$("activate-extra").hidden;
  if (!validCertno(certno)) { say("login-error", "身份证号有误，请核对"); return; }
  if (!name) { say("login-error", "请填写姓名"); return; }
  if (!/^\d{6}$/.test(password)) { say("login-error", "消费密码为6位数字"); return; }
  if (activating && (!state.face || state.face.certno !== certno)) { say("login-error", "请先刷脸认证"); return; }
  $("login-button").disabled = true;
  try {
    let session;
    if (activating) {
      session = await api("/api/v1/activations", { method: "POST", body: {
        chnl_id: $("channel").value, certno, name, password, face: state.face.face, liveness: 0.98, device_label: navigator.userAgent.slice(0, 80) } });
      store.device = session.device_id;
    } else {
      if (!store.device) { showActivation(true); say("login-error", "本机尚未激活医保码，请刷脸激活"); return; }
      session = await api("/api/v1/sessions", { method: "POST", body: { certno, name, password, device_id: store.device } });
    }
    store.token = session.token;
    $("password").value = "";
    state.face = null;
    await showHome();
  } catch (e) {
    if (["device", "not-activated"].includes(e.title)) showActivation(true);
    if (["face", "liveness"].includes(e.title)) { state.face = null; say("face-status", "刷脸未通过，请重新刷脸", "error"); }
    say("login-error", e.message);
  } finally {
    $("login-button").disabled = false;
  }
});

async function showLogin(message = "") {
  clearInterval(state.timer);
  clearMessages();
  state.face = null;
  showView("view-login");
  $("sign-out").hidden = true;
  // shown before anything is fetched: the form must work even when the channel list is slow or fails
  showActivation(!store.device);
  if (message) say("login-error", message);
  try {
    // This page is the platform's own channel; other channels (apps, WeChat, Alipay, banks) activate through their own clients.
    const channels = (await api("/api/v1/channels")).filter((c) => c.kind === "platform_web");
    $("channel").innerHTML = channels.map((c) => `<option value="${esc(c.chnl_id)}">${esc(c.chnl_name)}</option>`).join("");
    $("channel-row").hidden = channels.length < 2;  // one channel is no choice: no list to read
  } catch (e) {
    say("login-error", e.message);
  }
}

async function expired(message) {
  store.token = null;
  state.me = null;
  await showLogin(message);
}

async function signOut() {
  const token = store.token;
  store.token = null;
  state.me = null;
  if (token) fetch("/api/v1/sessions/current", { method: "DELETE", headers: { authorization: `Bearer ${token}` } }).catch(() => {});
  await showLogin();
}
$("sign-out").addEventListener("click", signOut);

// -- home --------------------------------------------------------------------------------------
async function showHome() {
  state.me = await api("/api/v1/me");
  clearMessages();
  showView("view-home");
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
  $("home-error").textContent = "";
  renderSwitcher();
  try {
    const card = await api(`/api/v1/people/${encodeURIComponent(psn)}`);
    $("qr-name").textContent = card.name;
    $("qr-certno").textContent = card.certno;
    $("balance").textContent = card.balance === null ? "无个人账户" : `¥ ${Number(card.balance).toFixed(2)}`;
    // each name wraps as a whole (大字版 on a narrow phone)
    $("enrolments").innerHTML = card.enrolments.filter((e) => e.status === "1")
      .map((e) => `<span class="phrase">${esc(insuranceName(e.insutype, e.insutype_name))}</span>`).join(" · ");
  } catch (e) {
    if (state.me) say("home-error", e.message);
    return;
  }
  await refreshCode();
  await loadTab(document.querySelector(".tabs [aria-selected=true]").dataset.tab);
}

async function refreshCode() {
  clearInterval(state.timer);
  const psn = state.current;
  try {
    const code = await api(`/api/v1/people/${encodeURIComponent(psn)}/codes`, { method: "POST" });
    if (psn !== state.current) return;
    const box = $("qr");
    box.innerHTML = code.svg;
    box.dataset.code = code.code;
    box.dataset.psn = code.psn_no;
    state.remaining = code.ttl_s;
  } catch (e) {
    if (!state.me) return;  // signed out meanwhile
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
  clearMessages();
  document.querySelectorAll(".tabs button").forEach((x) => x.setAttribute("aria-selected", String(x === b)));
  document.querySelectorAll(".tab").forEach((t) => { t.hidden = t.id !== `tab-${b.dataset.tab}`; });
  await loadTab(b.dataset.tab);
}));

const KIND = { outpatient: "门诊", inpatient: "住院", pharmacy: "药店" };
// insurance types by name, never by code (the national code table's names)
const INSUTYPES = { "310": "职工基本医疗保险", "320": "公务员医疗补助", "330": "大额医疗费用补助", "340": "离休人员医疗保障",
  "390": "城乡居民基本医疗保险", "392": "城乡居民大病医疗保险", "399": "其他特殊人员医疗保障", "410": "长期照护保险", "510": "生育保险" };

function insuranceName(code, name) {
  return INSUTYPES[code] || (name && isChinese(name) ? name : "其他险种");
}

function monthName(period) {
  const m = /^(\d{4})-?(\d{2})$/.exec(String(period || ""));
  return m ? `${m[1]}年${Number(m[2])}月` : String(period || "");
}

async function loadTab(tab) {
  const psn = state.current;
  try {
    if (tab === "records") {
      const rows = await api(`/api/v1/people/${encodeURIComponent(psn)}/settlements`);
      $("tab-records").innerHTML = rows.length ? `<table><tr><th>时间</th><th>机构</th><th class="num">总额</th><th class="num">基金</th><th class="num">个人</th></tr>${
        rows.map((r) => `<tr><td>${esc(r.time.slice(0, 16))}<br><span class="muted">${esc(KIND[r.kind] || "")}${r.reversal ? " 撤销" : ""}${r.reversed ? " 已撤销" : ""}</span></td>
          <td>${esc(r.institution)}</td><td class="num">${esc(r.total)}</td><td class="num">${esc(r.funds)}</td>
          <td class="num">${esc((Number(r.account) + Number(r.cash)).toFixed(2))}</td></tr>`).join("")}</table>` : `<p class="hint">暂无就诊记录</p>`;
    } else if (tab === "contributions") {
      const rows = await api(`/api/v1/people/${encodeURIComponent(psn)}/contributions`);
      // one entry per month and insurance: the names are long, a table would squeeze them on a phone
      $("tab-contributions").innerHTML = rows.length ? rows.map((r) => `<div class="entry">
          <div class="entry-head"><span>${esc(monthName(r.period))}</span><b>${esc(insuranceName(r.insutype, r.insutype_name))}</b></div>
          <div class="muted"><span class="phrase">单位 ¥${esc(r.employer)}</span> · <span class="phrase">个人 ¥${esc(r.personal)}</span> · <span class="phrase">划入账户 ¥${esc(r.to_account)}</span></div>
        </div>`).join("") : `<p class="hint">暂无缴费记录</p>`;
    } else if (tab === "account") {
      const acct = await api(`/api/v1/people/${encodeURIComponent(psn)}/account`);
      $("tab-account").innerHTML = acct.balance === null ? `<p class="hint">城乡居民医保没有个人账户</p>` :
        `<p>余额 <b>¥ ${esc(acct.balance)}</b></p>${acct.movements.map((m) =>
          `<div class="row"><span>${esc(m.time.slice(0, 10))} ${esc(String(m.what).replace(/^(\d{4})(\d{2}) /, (_, y, mo) => `${y}年${Number(mo)}月`))}${m.for_family ? "（家人共济）" : ""}</span><b>${esc(m.amount)}</b></div>`).join("")}`;
    } else if (tab === "family") {
      renderFamily();
    }
  } catch (e) {
    if (state.me) say("home-error", e.message);
  }
}

function renderFamily() {
  if (!state.me) return;
  $("family-list").innerHTML = state.me.family.length ? `<h2>已绑定</h2>${state.me.family.map((m) =>
    `<div class="row"><span>${esc(m.relation_name)} ${esc(m.name)} <span class="muted">${m.status === "pending" ? "待对方确认" : ""}</span></span>
     <button type="button" class="secondary" data-unbind="${esc(m.id)}">解除</button></div>`).join("")}` : "";
  $("family-requests").innerHTML = state.me.requests.length ? `<h2>待我确认</h2>${state.me.requests.map((r) =>
    `<div class="row"><span>${esc(r.holder_name)} 申请添加您为家庭成员</span><button type="button" class="secondary" data-approve="${esc(r.id)}" data-holder="${esc(r.holder_name)}">同意</button></div>`).join("")}` : "";
  document.querySelectorAll("[data-unbind]").forEach((b) => b.addEventListener("click", async () => {
    clearMessages();
    try {
      await api(`/api/v1/me/family/${b.dataset.unbind}`, { method: "DELETE" });
      await showHome();
      say("bind-result", "已解除", "ok");
    } catch (e) { if (state.me) say("bind-result", e.message, "error"); }
  }));
  document.querySelectorAll("[data-approve]").forEach((b) => b.addEventListener("click", () => openApprove(b.dataset.approve, b.dataset.holder)));
}

// Approving lets someone else show my code and see my records: it takes my consumption password.
function openApprove(id, holder) {
  clearMessages();
  state.approving = id;
  $("approve-text").textContent = `${holder} 申请添加您为家庭成员。同意后，对方可以为您出示医保码、查看您的医保记录。请输入消费密码确认。`;
  $("approve-password").value = "";
  $("approve-dialog").showModal();
  $("approve-password").focus();
}

function closeApprove() {
  state.approving = null;
  $("approve-password").value = "";
  $("approve-error").textContent = "";
  if ($("approve-dialog").open) $("approve-dialog").close();
}
$("approve-cancel").addEventListener("click", closeApprove);
$("approve-dialog").addEventListener("cancel", () => { state.approving = null; $("approve-password").value = ""; });

$("approve-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("approve-error").textContent = "";
  const password = $("approve-password").value;
  if (!/^\d{6}$/.test(password)) { say("approve-error", "消费密码为6位数字"); return; }
  $("approve-confirm").disabled = true;
  try {
    await api(`/api/v1/me/family/${state.approving}/approve`, { method: "POST", body: { password } });
    closeApprove();
    await showHome();
    say("bind-result", "已同意，对方已成为您的家庭成员", "ok");
  } catch (e) {
    $("approve-password").value = "";
    if ($("approve-dialog").open) say("approve-error", e.message);
  } finally {
    $("approve-confirm").disabled = false;
  }
});

$("bind-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  clearMessages();
  const certno = $("bind-certno").value.trim().toUpperCase(), name = $("bind-name").value.trim();
  if (!validCertno(certno)) { say("bind-result", "身份证号有误，请核对", "error"); return; }
  if (!name) { say("bind-result", "请填写姓名", "error"); return; }
  try {
    const result = await api("/api/v1/me/family", { method: "POST", body: { certno, name, relation: $("bind-relation").value } });
    $("bind-certno").value = "";
    $("bind-name").value = "";
    await showHome();
    say("bind-result", result.status === "active" ? "已添加" : "已发送，等待对方在医保码中确认", "ok");
  } catch (e) { if (state.me) say("bind-result", e.message, "error"); }
});

// -- 异地就医备案 -----------------------------------------------------------------------------------
// region names of the demo's places (others are shown by their code)
const REGIONS = { "440000": "广东省", "440300": "广东省深圳市", "370000": "山东省", "370100": "山东省济南市", "110000": "北京市" };
const regionName = (code) => (REGIONS[code] ? `${REGIONS[code]}（${code}）` : code);

async function showFiling() {
  clearInterval(state.timer);
  clearMessages();
  showView("view-filing");
  $("filing-who").textContent = whoIsCurrent();
  try {
    const options = await api("/api/v1/filing-options");
    $("filing-type").innerHTML = options.types.map((t) => `<option value="${esc(t.code)}">${esc(t.name)}</option>`).join("");
    $("filing-region").innerHTML = options.regions.map((r) => `<option value="${esc(r)}">${esc(regionName(r))}</option>`).join("");
  } catch (e) { say("filing-result", e.message, "error"); }
  await loadFilings();
}

async function loadFilings() {
  let rows;
  try {
    rows = await api(`/api/v1/people/${encodeURIComponent(state.current)}/filings`);
  } catch (e) { say("filing-result", e.message, "error"); return; }
  $("filing-list").innerHTML = rows.length ? rows.map((f) => `
    <div class="entry" data-filing="${esc(f.trt_dcla_detl_sn)}">
      <div class="entry-head"><b>${esc(f.filing_type_name)}</b><span class="state${f.state === "有效" ? "" : " off"}">${esc(f.state)}</span></div>
      <div>备案地：${esc(regionName(f.target_admdvs))}</div>
      <div class="muted">${esc(f.begndate)} 至 ${esc(f.enddate || "长期")} · ${f.full_ratio ? "按参保地待遇结算" : "统筹基金支付比例降低"}${f.source ? ` · ${esc(f.source)}办理` : ""}</div>
      ${f.may_cancel ? `<button type="button" class="link" data-cancel-filing="${esc(f.trt_dcla_detl_sn)}">撤销备案</button>` : ""}
    </div>`).join("") : `<p class="hint">暂无备案</p>`;
  // two steps, no pop-up: the first tap asks, the second cancels
  $("filing-list").querySelectorAll("[data-cancel-filing]").forEach((b) => b.addEventListener("click", async () => {
    if (b.dataset.armed !== "1") { b.dataset.armed = "1"; b.textContent = "确认撤销"; return; }
    clearMessages();
    try {
      await api(`/api/v1/people/${encodeURIComponent(state.current)}/filings/${encodeURIComponent(b.dataset.cancelFiling)}/cancel`,
                { method: "POST", body: {} });
      say("filing-result", "已撤销", "ok");
    } catch (e) { say("filing-result", e.message, "error"); }
    await loadFilings();
  }));
}

$("open-filing").addEventListener("click", () => showFiling());
$("close-filing").addEventListener("click", () => showHome().catch((e) => say("filing-result", e.message, "error")));
$("filing-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  clearMessages();
  const body = { filing_type: $("filing-type").value, target_admdvs: $("filing-region").value, begndate: $("filing-begin").value,
                 enddate: $("filing-end").value, reason: $("filing-reason").value.trim() };
  try {
    const made = await api(`/api/v1/people/${encodeURIComponent(state.current)}/filings`, { method: "POST", body });
    say("filing-result", `备案成功，${made.begndate} 至 ${made.enddate || "长期"}有效`, "ok");
    $("filing-reason").value = "";
  } catch (e) { say("filing-result", e.message, "error"); }
  await loadFilings();
});

// -- pages in their own files -------------------------------------------------------------------
// A page script (page-*.js, loaded after this file) adds its entry to the home page's service list with
// yibao.addService and uses the helpers below; it never reaches into another page's elements.
function addService({ title, hint, button, open }) {
  const card = document.createElement("div");
  card.className = "card link-card";
  card.innerHTML = `<div><b>${esc(title)}</b><div class="muted">${esc(hint)}</div></div>`;
  const go = document.createElement("button");
  go.type = "button";
  go.className = "secondary";
  go.textContent = button;
  go.addEventListener("click", () => { clearMessages(); Promise.resolve(open()).catch((e) => say("home-error", e.message, "error")); });
  card.append(go);
  $("services").append(card);
}
const whoIsCurrent = () => (state.current === state.me.psn_no ? "本人"
  : (state.me.family.find((m) => m.psn_no === state.current) || {}).name || "");
window.yibao = { $, api, esc, say, clearMessages, state, showView, showHome, addService, whoIsCurrent };

// -- start -------------------------------------------------------------------------------------
applyFont(localStorage.getItem("yb.large") === "1");
(store.token ? showHome().catch((e) => (store.token ? showLogin(e.message) : null)) : showLogin());
