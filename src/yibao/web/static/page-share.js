// 保医通：授权商业保险公司读取指定的结算记录（一事一授权），可随时撤销。
// The person picks an insurer, the settlements (or a date range) and an end date, and signs with the 6-digit password;
// the app shows the authorisation code to give the insurer, lists every authorisation and revokes one in two taps.
(() => {
  const { $, api, esc, say, clearMessages, state, showView, showHome, addService, whoIsCurrent } = window.yibao;
  const STATES = { "有效": "", "已撤销": " off", "已过期": " off" };

  const isoDay = (offset) => {
    const d = new Date(Date.now() + offset * 86400000 + 8 * 3600000);  // Beijing date
    return d.toISOString().slice(0, 10);
  };

  async function open() {
    clearInterval(state.timer);
    clearMessages();
    showView("view-share");
    $("share-who").textContent = whoIsCurrent();
    $("share-until").value = isoDay(30);
    $("share-until").min = isoDay(0);
    $("share-password").value = "";
    try {
      const options = await api("/api/v1/share-options");
      $("share-until").max = isoDay(options.max_days);
      $("share-insurer").innerHTML = options.insurers.length
        ? options.insurers.map((i) => `<option value="${esc(i.insurer_code)}">${esc(i.insurer_name)}</option>`).join("")
        : `<option value="">暂无可授权的保险公司</option>`;
      const rows = await api(`/api/v1/people/${encodeURIComponent(state.current)}/settlements`);
      const standing = rows.filter((s) => !s.reversal && !s.reversed);
      $("share-settlements").innerHTML = standing.length ? standing.map((s) => `
        <label class="row"><span><input type="checkbox" value="${esc(s.setl_id)}" data-share-setl>
          ${esc(s.time.slice(0, 10))} ${esc(s.institution)}</span><span class="num">${esc(s.total)}元</span></label>`).join("")
        : `<p class="hint">暂无结算记录</p>`;
    } catch (e) { say("share-result", e.message, "error"); }
    showScope();
    await load();
  }

  function showScope() {
    const byRange = $("share-scope").value === "range";
    $("share-settlements").hidden = byRange;
    $("share-range").hidden = !byRange;
  }

  async function load() {
    let rows;
    try {
      rows = await api(`/api/v1/people/${encodeURIComponent(state.current)}/consents`);
    } catch (e) { say("share-result", e.message, "error"); return; }
    $("share-list").innerHTML = rows.length ? rows.map((c) => `
      <div class="entry" data-consent="${esc(c.consent_id)}">
        <div class="entry-head"><b>${esc(c.insurer_name)}</b><span class="state${STATES[c.state] ?? " off"}">${esc(c.state)}</span></div>
        <div>授权码：<span class="code">${esc(c.consent_id)}</span></div>
        <div class="muted">${c.scope === "range" ? `${esc(c.range_begin)} 至 ${esc(c.range_end)}的` : ""}结算 ${c.setl_ids.length} 笔 · 有效期至 ${esc(c.valid_until)} · 保险公司已读取 ${c.reads} 次${c.purpose ? ` · ${esc(c.purpose)}` : ""}</div>
        ${c.may_revoke ? `<button type="button" class="link" data-revoke-consent="${esc(c.consent_id)}">撤销授权</button>` : ""}
      </div>`).join("") : `<p class="hint">暂无授权</p>`;
    // two steps, no pop-up: the first tap asks, the second revokes
    $("share-list").querySelectorAll("[data-revoke-consent]").forEach((b) => b.addEventListener("click", async () => {
      if (b.dataset.armed !== "1") { b.dataset.armed = "1"; b.textContent = "确认撤销"; return; }
      clearMessages();
      try {
        await api(`/api/v1/people/${encodeURIComponent(state.current)}/consents/${encodeURIComponent(b.dataset.revokeConsent)}/revoke`,
                  { method: "POST", body: {} });
        say("share-result", "已撤销授权，保险公司不能再读取", "ok");
      } catch (e) { say("share-result", e.message, "error"); }
      await load();
    }));
  }

  $("share-scope").addEventListener("change", showScope);
  $("close-share").addEventListener("click", () => showHome().catch((e) => say("share-result", e.message, "error")));
  $("share-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    clearMessages();
    const byRange = $("share-scope").value === "range";
    const picked = [...document.querySelectorAll("[data-share-setl]:checked")].map((c) => c.value);
    if (!byRange && !picked.length) { say("share-result", "请至少选择一笔结算记录", "error"); return; }
    const body = { insurer_code: $("share-insurer").value, valid_until: $("share-until").value, purpose: $("share-purpose").value.trim(),
                   password: $("share-password").value, setl_ids: byRange ? [] : picked,
                   begin_date: byRange ? $("share-begin").value : "", end_date: byRange ? $("share-end").value : "" };
    try {
      const made = await api(`/api/v1/people/${encodeURIComponent(state.current)}/consents`, { method: "POST", body });
      say("share-result", `授权成功，授权码 ${made.consent_id}，请告知保险公司。有效期至 ${made.valid_until}`, "ok");
      $("share-password").value = "";
      document.querySelectorAll("[data-share-setl]:checked").forEach((c) => { c.checked = false; });
    } catch (e) { say("share-result", e.message, "error"); }
    await load();
  });

  addService({ title: "保医通 · 商业保险理赔授权", hint: "授权保险公司读取您选定的结算记录，理赔无需纸质材料，可随时撤销",
               button: "去授权", open });
})();
