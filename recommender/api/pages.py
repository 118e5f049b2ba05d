"""The demo page: one article of the corpus with its "You May Also Like" box."""

from __future__ import annotations

import html

from ..recommend import Recommender
from .render import safe_url

_PICKER_LIMIT = 500

_STYLE = """
body{font-family:Georgia,serif;margin:0;background:#fafafa;color:#111}
header{background:#111;color:#fff;padding:.8em 1.5em;font:700 1.3em system-ui,sans-serif}
main{max-width:46em;margin:1.5em auto;padding:0 1em}
form{font:.9em system-ui,sans-serif;margin-bottom:1.5em}
select{max-width:100%}
.meta{color:#666;font:.85em system-ui,sans-serif}
.lead{font-size:1.15em;line-height:1.5}
.hero{width:100%;height:auto;aspect-ratio:16/9;object-fit:cover;background:#ddd}
footer{font:.85em system-ui,sans-serif;color:#666;max-width:46em;margin:2em auto;padding:0 1em}
"""


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def demo_page(rec: Recommender | None, article_id: str | None) -> str:
    """The demo page; without a model it says how to train one."""
    if rec is None or len(rec) == 0:
        body = (
            "<main><h1>No model loaded</h1><p>Train one with <code>recommender train --corpus FILE</code> "
            "and reload the service.</p></main>"
        )
        return _frame("recommender demo", body)
    shown = rec.rows()[:_PICKER_LIMIT].tolist()
    index = rec.index_of.get(article_id or "", shown[0])
    meta = rec.metadata(index)
    options = []
    for i in shown:
        m = rec.metadata(i)
        selected = " selected" if i == index else ""
        label = f"{m.get('section') or ''} · {m.get('title') or m['id']}".strip(" ·")
        options.append(f'<option value="{_e(m["id"])}"{selected}>{_e(label[:110])}</option>')
    image = safe_url(meta.get("image"))
    hero = f'<img class="hero" src="{_e(image)}" alt="">' if image else ""
    notice = (
        f'<p class="meta">No article {_e(article_id)!s} in this model; showing the first one.</p>'
        if article_id and article_id not in rec.index_of
        else ""
    )
    body = f"""<main>
<form method="get" action="/"><label>Article:
<select name="article" id="article-picker" onchange="this.form.submit()">{"".join(options)}</select></label>
<noscript><button type="submit">Show</button></noscript></form>
{notice}
<article id="demo-article">{hero}
<h1>{_e(meta.get("title"))}</h1>
<p class="meta">{_e(meta.get("section"))} · {_e(meta.get("published_at"))} · {_e(meta.get("author"))}</p>
<p class="lead">{_e(meta.get("excerpt"))}</p>
</article>
<div data-related-article="{_e(meta["id"])}" data-limit="3"></div>
</main>
<footer>Model {_e(rec.version)} · {len(rec)} articles · <a href="/docs">API docs</a> ·
<a href="/v1/articles/{_e(meta["id"])}/related?limit=3">this box as JSON</a></footer>
<script src="/widget.js" async></script>"""
    return _frame(f"{meta.get('title')} - recommender demo", body)


def _frame(title: str, body: str) -> str:
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head>"
        f"<body><header>The Demo Gazette</header>{body}</body></html>"
    )
