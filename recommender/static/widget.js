/* "You May Also Like" widget. Embed with:
 *   <div data-related-article="ARTICLE-ID" data-limit="3"></div>
 *   <script src="https://YOUR-SERVICE/widget.js" async></script>
 * It fetches the related list from the service that served this script and
 * renders it with DOM methods only (text is never parsed as HTML). When the
 * service cannot be reached or answers with an error, it renders nothing. */
(function () {
  "use strict";
  var script = document.currentScript;
  var base = script && script.src ? new URL(script.src, document.baseURI).origin : window.location.origin;
  var CSS = ".yml-box{font-family:system-ui,sans-serif;border-top:3px solid #222;margin:2em 0;padding-top:.5em;max-width:46em}" +
    ".yml-heading{font-size:1.1em;margin:.2em 0 .8em;text-transform:uppercase;letter-spacing:.05em}" +
    ".yml-list{list-style:none;margin:0;padding:0}.yml-item{display:flex;gap:.8em;margin:0 0 1em}" +
    ".yml-image{width:120px;height:68px;object-fit:cover;flex:none;background:#eee}" +
    ".yml-link{color:#0b4f8a;text-decoration:none;font-weight:600}.yml-link:hover{text-decoration:underline}" +
    ".yml-excerpt{margin:.3em 0 0;color:#444;font-size:.92em;line-height:1.35}";

  function safeUrl(value) {
    if (typeof value !== "string") return null;
    var url = value.replace(/^ +| +$/g, "");
    // Browsers drop control characters and read "\\" as "/": "/\\evil.example" would open another site.
    if (!url || /[\\\u0000-\u001f\u007f-\u009f]/.test(url)) return null;
    if (/^https?:\/\//i.test(url)) return url;
    if (url.charAt(0) === "/" && url.charAt(1) !== "/") return base + url;
    return null;
  }

  function excerpt(text, max) {
    var flat = String(text || "").replace(/\s+/g, " ").trim();
    if (flat.length <= max) return flat;
    var cut = flat.slice(0, max - 1);
    var space = cut.lastIndexOf(" ");
    if (space > max / 2) cut = cut.slice(0, space);
    return cut.replace(/[\s,;:.\-\u2013\u2014]+$/, "") + "\u2026";
  }

  function el(tag, cls) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    return node;
  }

  function addStyle() {
    if (document.getElementById("yml-style")) return;
    var style = el("style");
    style.id = "yml-style";
    style.textContent = CSS;
    document.head.appendChild(style);
  }

  function render(target, items) {
    if (!items || !items.length) return;
    addStyle();
    var box = el("aside", "yml-box");
    var heading = el("h2", "yml-heading");
    heading.textContent = "You May Also Like";
    box.appendChild(heading);
    var list = el("ul", "yml-list");
    items.forEach(function (item) {
      var li = el("li", "yml-item");
      var image = safeUrl(item.image);
      if (image) {
        var img = el("img", "yml-image");
        img.setAttribute("src", image);
        img.setAttribute("alt", "");
        img.setAttribute("loading", "lazy");
        li.appendChild(img);
      }
      var text = el("div", "yml-text");
      var url = safeUrl(item.url);
      var link = el(url ? "a" : "span", "yml-link");
      if (url) link.setAttribute("href", url);
      var title = el("span", "yml-title");
      title.textContent = String(item.title || item.id || "");
      link.appendChild(title);
      text.appendChild(link);
      var p = el("p", "yml-excerpt");
      p.textContent = excerpt(item.excerpt, 100);
      text.appendChild(p);
      li.appendChild(text);
      list.appendChild(li);
    });
    box.appendChild(list);
    target.textContent = "";
    target.appendChild(box);
  }

  function load(target) {
    var id = target.getAttribute("data-related-article");
    if (!id || target.getAttribute("data-yml-done")) return;
    target.setAttribute("data-yml-done", "1");
    var limit = parseInt(target.getAttribute("data-limit") || "3", 10);
    if (!(limit >= 1 && limit <= 50)) limit = 3;
    var url = base + "/v1/articles/" + encodeURIComponent(id) + "/related?limit=" + limit;
    fetch(url, { headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) { if (data) render(target, data.items); })
      .catch(function () { /* unreachable service: render nothing */ });
  }

  function start() {
    var targets = document.querySelectorAll("[data-related-article]");
    for (var i = 0; i < targets.length; i++) load(targets[i]);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
