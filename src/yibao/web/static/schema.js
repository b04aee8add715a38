// Starts Swagger UI on /schema from this server's own files (the Content-Security-Policy allows no inline script).
"use strict";
window.addEventListener("load", () => {
  const box = document.getElementById("swagger-container");
  // validatorUrl null: Swagger UI would otherwise send the document to an outside validator
  window.ui = SwaggerUIBundle({ url: box.dataset.spec, dom_id: "#swagger-container", deepLinking: true, validatorUrl: null,
                                 presets: [SwaggerUIBundle.presets.apis] });
});
