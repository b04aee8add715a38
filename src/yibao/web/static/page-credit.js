// 信用就医: sign a credit agreement with a partner bank, see the limit, the bank's advances and their repayment plans,
// repay what is due. Uses only window.yibao (app.js) and its own <section id="view-credit">.
"use strict";
(() => {
  const { $, api, esc, say, clearMessages, state, showView, showHome, addService, whoIsCurrent } = window.yibao;
  const base = () => `/api/v1/people/${encodeURIComponent(state.current)}/credit`;

  function agreementCard(page) {
    const a = page.agreement;
    const mine = state.current === state.me.psn_no;
    if (!a || a.status === "closed" || a.status === "refused") {
      const before = a && a.status === "refused" ? `<p class="hint">上次申请（${esc(a.bank_name)}）未通过：${esc(a.reason)}</p>` : "";
      $("credit-agreement").innerHTML = `<h2>未开通</h2>${before}<p class="hint">${mine ? "签约后即可使用信用就医。" : "信用就医须由本人签约。"}</p>`;
      return mine;
    }
    const terms = page.terms;
    const plan = terms ? `<div class="muted">还款规则：垫付后${esc(terms.grace_days)}天免息，之后分${esc(terms.instalments)}期、每${esc(terms.period_days)}天一期；${terms.account_may_repay ? `个人账户每年最多还款${esc(terms.account_repay_cap)}元` : "参保地政策不允许个人账户还款，从银行卡扣款"}</div>` : "";
    $("credit-agreement").innerHTML = `
      <div class="entry-head"><h2>${esc(a.bank_name)}</h2><span class="state${a.status === "active" ? "" : " off"}">${esc(a.state)}</span></div>
      <div>信用额度：${esc(a.limit)}元 · 可用额度：<b id="credit-available">${esc(a.available)}</b>元</div>
      <div class="muted">${a.auto_account ? "到期优先从个人账户自动还款" : "到期从银行卡扣款"}</div>
      ${plan}
      ${a.status === "suspended" && mine ? `<button id="credit-repay" type="button" class="primary">立即还款</button>` : ""}`;
    const repay = $("credit-repay");
    if (repay) repay.addEventListener("click", () => repayNow());
    return false;
  }

  function render(page) {
    const signup = agreementCard(page);
    $("credit-signup").hidden = !signup || !page.banks.length;
    if (signup && !page.banks.length) $("credit-agreement").insertAdjacentHTML("beforeend", `<p class="hint">暂无合作银行，请留意医保经办机构通知。</p>`);
    $("credit-bank").innerHTML = page.banks.map((b) => `<option value="${esc(b.bank_code)}">${esc(b.bank_name)}</option>`).join("");
    const t = page.totals;
    $("credit-totals").textContent = `累计垫付${t.advanced}元，已还${t.repaid}元，待还${t.outstanding}元${Number(t.overdue) > 0 ? `，其中逾期${t.overdue}元` : ""}`;
    $("credit-list").innerHTML = page.advances.length ? page.advances.map((d) => `
      <div class="entry" data-advance="${esc(d.advance_no)}">
        <div class="entry-head"><b>垫付${esc(d.amount)}元</b><span class="state${d.status === "open" ? "" : " off"}">${esc(d.state)}</span></div>
        <div class="muted">${esc(d.advanced_at)} · 个人自付${esc(d.cash)}元</div>
        <table class="plan">${d.schedule.map((i) => `
          <tr class="instalment"><td>第${esc(i.seq)}期</td><td>${esc(i.due_date)}</td><td>${esc(i.amount)}元</td>
          <td class="state${i.status === "overdue" ? " off" : ""}">${esc(i.state)}</td></tr>`).join("")}
        </table>
      </div>`).join("") : `<p class="hint">暂无垫付记录</p>`;
  }

  async function load() {
    render(await api(base()));
  }

  async function repayNow() {
    clearMessages();
    try {
      const done = await api(`${base()}/repay`, { method: "POST", body: {} });
      render(done);
      say("credit-result", done.still_overdue ? "银行卡扣款未成功，请确认余额后再试" : `已还款${done.repaid}元`, done.still_overdue ? "error" : "ok");
    } catch (e) { say("credit-result", e.message, "error"); }
  }

  async function open() {
    clearMessages();
    showView("view-credit");
    $("credit-list").innerHTML = "";
    $("credit-agreement").textContent = `正在查询${whoIsCurrent()}的信用就医……`;
    try { await load(); } catch (e) { say("credit-result", e.message, "error"); }
  }

  $("credit-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    clearMessages();
    try {
      const page = await api(base(), { method: "POST", body: { bank_code: $("credit-bank").value, auto_account: $("credit-auto").value === "1",
        password: $("credit-password").value } });
      $("credit-password").value = "";
      render(page);
      const a = page.agreement;
      say("credit-result", a.status === "active" ? `签约成功，信用额度${a.limit}元` : a.status === "refused" ? `银行未批准：${a.reason}` : "已提交，等待银行审核",
          a.status === "active" ? "ok" : "error");
    } catch (e) { say("credit-result", e.message, "error"); }
  });
  $("close-credit").addEventListener("click", () => showHome().catch((e) => say("credit-result", e.message, "error")));

  addService({ title: "信用就医", hint: "住院免押金，出院由银行先垫付、分期还款", button: "去办理", open });
})();
