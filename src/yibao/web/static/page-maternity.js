// 生育津贴: the allowances of the person shown (me or a bound family member), how each was counted, when it is paid,
// and the account benefits are paid to (only the person names it, with the consumption password).
"use strict";

(() => {
  const { $, api, esc, say, clearMessages, state, showView, showHome, addService, whoIsCurrent } = window.yibao;
  const path = () => `/api/v1/people/${encodeURIComponent(state.current)}`;

  function render(data) {
    const rows = data.allowances;
    $("maternity-list").innerHTML = rows.length ? rows.map((a) => `
      <div class="entry" data-allowance="${esc(a.setl_id)}">
        <div class="entry-head"><b>${esc(a.birth_date)} 生育</b><span class="state${a.status === "paid" || a.status === "scheduled" ? "" : " off"}">${esc(a.status_name)}</span></div>
        ${a.days ? `<div>津贴 <b class="amount">${esc(a.amount)}</b> 元 · ${esc(String(a.days))} 天</div>
        <div class="muted">${esc(a.steps)}</div>
        <div class="muted">计发基数 ${esc(a.monthly_wage)} 元/月（${esc(a.wage_basis)}）÷ 30 × ${esc(String(a.days))} 天</div>` : ""}
        ${a.reason ? `<div class="error-text">${esc(a.reason)}</div>` : ""}
        ${a.status === "scheduled" ? `<div class="muted">预计 ${esc(a.due_on)} 发放</div>` : ""}
        ${a.waiting_because ? `<div class="error-text">${esc(a.waiting_because)}</div>` : ""}
        ${a.status === "paid" ? `<div class="ok-text">已于 ${esc(a.paid_at)} 发放至尾号 ${esc(a.account_tail)} 的账户</div>` : ""}
      </div>`).join("") : `<p class="hint">暂无生育津贴记录</p>`;
    const account = data.account;
    $("benefit-account").textContent = account.account_tail
      ? `${account.bank_name} 尾号 ${account.account_tail}（${account.updated_at} 登记）` : "尚未登记待遇发放账户";
    // only the person names their own account
    $("benefit-form").hidden = state.current !== state.me.psn_no;
  }

  async function load() {
    try {
      render(await api(`${path()}/maternity`));
    } catch (e) { say("maternity-result", e.message, "error"); }
  }

  async function open() {
    showView("view-maternity");
    $("maternity-who").textContent = `（${whoIsCurrent()}）`;
    await load();
  }

  $("close-maternity").addEventListener("click", () => showHome().catch((e) => say("maternity-result", e.message, "error")));
  $("benefit-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    clearMessages();
    const body = { bank_name: $("benefit-bank").value.trim(), account_no: $("benefit-number").value.trim(),
                   password: $("benefit-password").value };
    try {
      await api(`${path()}/benefit-account`, { method: "PUT", body });
      $("benefit-password").value = "";
      $("benefit-number").value = "";
      say("maternity-result", "待遇发放账户已保存", "ok");
    } catch (e) { say("maternity-result", e.message, "error"); }
    await load();
  });

  addService({ title: "生育津贴", hint: "生育住院结算后自动核定，按期发放，无需申请", button: "查看", open });
})();
