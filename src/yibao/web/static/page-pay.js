// 医保移动支付 and 住院服务: bills a hospital posted, paid in the app with the password; admission by phone, running
// costs of a stay and its settlement after discharge. A page of its own (see addService in app.js).
(() => {
  const { $, api, esc, say, clearMessages, state, showView, showHome, addService, whoIsCurrent } = window.yibao;
  let selected = null;

  const KIND = { outpatient: "门诊", inpatient: "住院", pharmacy: "购药" };

  async function loadOrders() {
    let rows;
    try {
      rows = await api("/api/v1/me/pay-orders");
    } catch (e) { say("pay-result", e.message, "error"); return; }
    $("pay-list").innerHTML = rows.length ? rows.map((o) => `
      <div class="entry" data-order="${esc(o.pay_ord_id)}">
        <div class="entry-head"><b>${esc(o.fixmedins_name)} · ${esc(KIND[o.kind] || "")}</b><span class="state${o.ord_stas === "presettled" ? "" : " off"}">${esc(o.ord_stas_name)}</span></div>
        <div>${esc(o.psn_name)} · 费用合计 ${esc(o.medfee_sumamt)} 元</div>
        <div class="muted">统筹基金 ${esc(o.fund_pay_sumamt)} 元 · 个人账户 ${esc(o.acct_pay)} 元 · 个人自付 <b>${esc(o.psn_cash_pay)}</b> 元</div>
        ${o.reason ? `<div class="muted">${esc(o.reason)}</div>` : ""}
        ${o.ord_stas === "presettled" || o.ord_stas === "failed" ? `<button type="button" class="link" data-pay="${esc(o.pay_ord_id)}">${o.ord_stas === "failed" ? "重新支付" : "去支付"}</button>` : ""}
      </div>`).join("") : `<p class="hint">暂无待支付账单</p>`;
    $("pay-list").querySelectorAll("[data-pay]").forEach((b) => b.addEventListener("click", () => {
      const order = rows.find((o) => o.pay_ord_id === b.dataset.pay);
      selected = order.pay_ord_id;
      $("pay-summary").textContent = `${order.fixmedins_name}：统筹基金支付 ${order.fund_pay_sumamt} 元，个人账户支付 ${order.acct_pay} 元，需自付 ${order.psn_cash_pay} 元。`;
      // 信用就医: offered when the person has an active agreement with some limit left; the bank advances the own-money
      // part, what is over the available limit is paid by 移动支付
      const offer = order.credit_offer || {};
      $("pay-methods").hidden = !offer.available;
      $("pay-method-mobile").checked = true;
      $("pay-credit-hint").textContent = offer.available
        ? `${offer.bank_name}可用额度 ${offer.available} 元：自付部分由银行先行垫付，出院后按期还款；超出额度的部分以移动支付付款。` : "";
      $("pay-password").value = "";
      $("pay-form").hidden = false;
      $("pay-password").focus();
    }));
  }

  async function loadAdmission() {
    let seen;
    try {
      seen = await api(`/api/v1/people/${encodeURIComponent(state.current)}/admission`);
    } catch (e) { say("adm-result", e.message, "error"); return; }
    if (!$("adm-hospital").options.length) {
      $("adm-hospital").innerHTML = seen.hospitals.map((h) => `<option value="${esc(h.code)}">${esc(h.name)}</option>`).join("");
    }
    $("adm-requests").innerHTML = seen.requests.map((r) => `
      <div class="entry"><div class="entry-head"><b>入院申请 · ${esc(r.fixmedins_name)}</b><span class="state">${esc(r.status_name)}</span></div>
        <div class="muted">${esc(r.dept_name)} · ${esc(r.req_time)}</div></div>`).join("");
    $("adm-stays").innerHTML = seen.stays.map((s) => `
      <div class="entry" data-stay="${esc(s.mdtrt_id)}"><div class="entry-head"><b>住院 · ${esc(s.fixmedins_name)}</b><span class="state">${esc(s.status_name)}</span></div>
        <div>已发生费用 <b class="running">${esc(s.running_total)}</b> 元（${esc(s.lines)} 项）</div>
        <div class="muted">${esc(s.begntime)} 入院${s.endtime ? ` · ${esc(s.endtime)} 出院` : ""}</div>
        ${s.pay_method_name ? `<div class="muted paid-how">手机结算 · ${esc(s.pay_method_name)}${Number(s.credit_adv_amt) > 0 ? ` · 银行垫付 ${esc(s.credit_adv_amt)} 元` : ""}</div>` : ""}
        ${s.status === "discharged" && !["presettled", "paying"].includes(s.ord_stas) ? `<button type="button" class="link" data-bill="${esc(s.mdtrt_id)}">出院结算</button>` : ""}
      </div>`).join("");
    $("adm-stays").querySelectorAll("[data-bill]").forEach((b) => b.addEventListener("click", async () => {
      clearMessages();
      try {
        await api(`/api/v1/people/${encodeURIComponent(state.current)}/stays/${encodeURIComponent(b.dataset.bill)}/bill`, { method: "POST", body: {} });
        say("pay-result", "已生成出院结算账单，请确认支付", "ok");
      } catch (e) { say("adm-result", e.message, "error"); }
      await Promise.all([loadOrders(), loadAdmission()]);
    }));
  }

  async function showPay() {
    clearMessages();
    showView("view-pay");
    $("pay-form").hidden = true;
    $("adm-who").textContent = whoIsCurrent();
    await Promise.all([loadOrders(), loadAdmission()]);
  }

  $("close-pay").addEventListener("click", () => showHome().catch((e) => say("pay-result", e.message, "error")));
  $("pay-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    clearMessages();
    const button = $("pay-confirm");
    button.disabled = true;  // one tap, one payment
    try {
      const method = $("pay-methods").hidden || !$("pay-method-credit").checked ? "mobile" : "credit";
      const done = await api(`/api/v1/me/pay-orders/${encodeURIComponent(selected)}/pay`, { method: "POST", body: { password: $("pay-password").value, method } });
      if (done.ord_stas === "paid") {
        const byBank = done.method === "credit" ? `（${done.method_name}：银行垫付 ${done.credit_adv_amt} 元，移动支付 ${done.channel_amt} 元）` : "";
        say("pay-result", `支付成功：费用合计 ${done.medfee_sumamt} 元，医保基金支付 ${done.fund_pay_sumamt} 元，个人账户支付 ${done.acct_pay} 元，个人自付 ${done.psn_cash_pay} 元${byBank}`, "ok");
        $("pay-form").hidden = true;
      } else {
        say("pay-result", `支付未成功：${done.reason || "请稍后重试"}，医保结算已撤销，可重新支付`, "error");
      }
    } catch (e) { say("pay-result", e.message, "error"); }
    $("pay-password").value = "";
    button.disabled = false;
    await Promise.all([loadOrders(), loadAdmission()]);
  });
  $("pay-cancel-order").addEventListener("click", async () => {
    clearMessages();
    try {
      await api(`/api/v1/me/pay-orders/${encodeURIComponent(selected)}/cancel`, { method: "POST", body: {} });
      say("pay-result", "订单已取消", "ok");
      $("pay-form").hidden = true;
    } catch (e) { say("pay-result", e.message, "error"); }
    await loadOrders();
  });
  $("adm-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    clearMessages();
    try {
      await api(`/api/v1/people/${encodeURIComponent(state.current)}/admission-requests`, { method: "POST",
        body: { fixmedins_code: $("adm-hospital").value, dept_name: $("adm-dept").value.trim(), reason: $("adm-reason").value.trim() } });
      say("adm-result", "入院申请已提交，请等待医院确认", "ok");
      $("adm-reason").value = "";
    } catch (e) { say("adm-result", e.message, "error"); }
    await loadAdmission();
  });

  addService({ title: "医保移动支付 · 住院服务", hint: "手机上确认医保结算并支付自付部分；线上申请入院、查看住院费用、出院结算", button: "去支付", open: showPay });
})();
