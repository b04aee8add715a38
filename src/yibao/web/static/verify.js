// 公开的票据查验页：扫描票据上的二维码即来到这里（无需登录）。按票据代码、号码和校验码查验，或粘贴票据数据验证签名。
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const view = window.yibaoBill;

  function problem(reply, data) {
    if (reply.status === 429) return "查验过于频繁，请稍后再试";
    if (reply.status === 400 || reply.status === 422) return (data && /[\u3400-\u9fff]/.test(data.detail || "") ? data.detail.replace(/^[\w.]+:\s*/, "") : "输入有误，请检查后重试");
    return "服务暂时不可用，请稍后再试";
  }

  async function call(path, options) {
    let reply;
    try { reply = await fetch(path, options); } catch { throw new Error("网络连接失败，请检查网络后重试"); }
    const data = await reply.json().catch(() => null);
    if (!reply.ok) throw new Error(problem(reply, data));
    return data;
  }

  function show(html) { $("verify-result").innerHTML = html; $("verify-error").textContent = ""; }
  function fail(message) { $("verify-result").innerHTML = ""; $("verify-error").textContent = message; }

  async function byNumber() {
    const params = new URLSearchParams({ code: $("verify-code").value.trim(), number: $("verify-number").value.trim(), check: $("verify-check").value.trim() });
    if (![...params.values()].every(Boolean)) { fail("请填写票据代码、票据号码和校验码"); return; }
    try { show(view.verdict(await call(`/api/v1/bills/verify?${params}`))); } catch (e) { fail(e.message); }
  }

  async function byContent() {
    let held;
    try { held = JSON.parse($("verify-content").value); } catch { fail("票据数据格式有误，请粘贴完整的票据数据"); return; }
    if (!held || typeof held !== "object" || !held.document || !held.signature) { fail("票据数据应包含票据内容和签名"); return; }
    try {
      show(view.verdict(await call("/api/v1/bills/verify", { method: "POST", headers: { "content-type": "application/json" },
                                                             body: JSON.stringify({ document: held.document, signature: held.signature }) })));
    } catch (e) { fail(e.message); }
  }

  $("verify-form").addEventListener("submit", (event) => { event.preventDefault(); byNumber(); });
  $("verify-content-form").addEventListener("submit", (event) => { event.preventDefault(); byContent(); });
  const query = new URLSearchParams(location.search);
  $("verify-code").value = query.get("code") || "";
  $("verify-number").value = query.get("number") || "";
  $("verify-check").value = query.get("check") || "";
  if (query.get("code") && query.get("number") && query.get("check")) byNumber();
})();
