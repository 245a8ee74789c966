"""``bench serve``: one local page to search an index (Flask, bound to 127.0.0.1 by default).

Routes:

* ``/``: the page: a text box, the ranked gallery with scores, a click shows an image larger.
* ``/api/search?q=TEXT&topk=N&rerank=K``: the ranking as JSON (what the page calls).
* ``/image/<row>``: the image of one gallery row. Only rows of the index are served, by their
  number: no path from the request ever reaches the file system.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Any

from benchmark.search.search import Searcher
from toreid.errors import ToreidError

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>toreid search: {name}</title>
<style>
 body {{ font-family: sans-serif; margin: 1.5em; background: #fafafa; }}
 form {{ display: flex; gap: .5em; margin-bottom: 1em; }}
 #query {{ flex: 1; font-size: 1.1em; padding: .4em; }}
 #results {{ display: flex; flex-wrap: wrap; gap: .8em; }}
 figure {{ margin: 0; text-align: center; background: #fff; padding: .3em;
          border: 1px solid #ddd; cursor: zoom-in; }}
 figure img {{ height: 192px; width: 96px; object-fit: contain; display: block; }}
 figcaption {{ font-size: .8em; }}
 #viewer {{ position: fixed; inset: 0; background: rgba(0,0,0,.8); display: none;
           align-items: center; justify-content: center; cursor: zoom-out; }}
 #viewer img {{ max-height: 90vh; max-width: 90vw; image-rendering: auto; }}
 #status {{ color: #555; margin-bottom: .5em; }}
</style></head>
<body>
<h1>Search {count} images</h1>
<p>Index <code>{name}</code>, model <code>{model}</code>: the global first stage, then the
full similarity on the top {rerank}.</p>
<form id="form"><input id="query" name="q" autocomplete="off"
 placeholder="a woman in a red coat carrying a black bag">
<button id="go" type="submit">Search</button></form>
<div id="status"></div>
<div id="results"></div>
<div id="viewer"><img id="large" alt=""></div>
<script>
const form = document.getElementById("form"), results = document.getElementById("results");
const statusLine = document.getElementById("status"), viewer = document.getElementById("viewer");
form.addEventListener("submit", async (event) => {{
  event.preventDefault();
  const q = document.getElementById("query").value;
  statusLine.textContent = "searching...";
  const response = await fetch("api/search?q=" + encodeURIComponent(q));
  const body = await response.json();
  results.replaceChildren();
  if (!response.ok) {{ statusLine.textContent = body.error; return; }}
  statusLine.textContent = body.hits.length + " results in " +
    (1000 * Object.values(body.seconds).reduce((a, b) => a + b, 0)).toFixed(0) + " ms";
  for (const hit of body.hits) {{
    const figure = document.createElement("figure");
    figure.className = "hit"; figure.dataset.row = hit.row; figure.dataset.rank = hit.rank;
    const img = document.createElement("img");
    img.src = "image/" + hit.row; img.alt = hit.path; img.title = hit.path;
    const caption = document.createElement("figcaption");
    caption.textContent = "#" + hit.rank + "  " + hit.score.toFixed(3);
    figure.append(img, caption);
    figure.addEventListener("click", () => {{
      document.getElementById("large").src = img.src; viewer.style.display = "flex"; }});
    results.append(figure);
  }}
}});
viewer.addEventListener("click", () => {{ viewer.style.display = "none"; }});
</script></body></html>
"""


def make_app(searcher: Searcher, *, topk: int = 20, rerank: int = 100) -> Any:
    """The Flask application over one loaded index."""
    from flask import Flask, Response, jsonify, request

    app = Flask("toreid-search")
    record = searcher.index.record
    page = PAGE.format(name=_escape(searcher.index.folder.name), count=searcher.index.count,
                       model=_escape(str(record.get("model", "?"))), rerank=rerank)

    @app.get("/")
    def home() -> Response:
        return Response(page, mimetype="text/html")

    @app.get("/api/search")
    def api_search() -> Any:
        text = request.args.get("q", "")
        try:
            k = int(request.args.get("topk", topk))
            r = int(request.args.get("rerank", rerank))
            result = searcher.search(text, topk=k, rerank=r)
        except ValueError:
            return jsonify({"error": "topk and rerank must be integers"}), 400
        except ToreidError as exc:
            return jsonify({"error": str(exc)}), 400
        return jsonify(result.record())

    @app.get("/image/<int:row>")
    def image(row: int) -> Any:
        if not 0 <= row < len(searcher.entries):
            return jsonify({"error": f"no gallery row {row}"}), 404
        path = Path(searcher.entries[row]["path"])
        if not path.is_file():
            return jsonify({"error": f"{path}: image file not found"}), 404
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return Response(path.read_bytes(), mimetype=kind)

    return app


def _escape(text: str) -> str:
    import html

    return html.escape(text, quote=True)
