"""The latent map as one self-contained HTML page (plotly.js inline, no server)."""

from __future__ import annotations

from skavae._files import atomic_path
from skavae._plotting._latent_map import import_plotly, plot_latent_map

PLOT_ID = "skavae-map"

_STYLE = """
body { font-family: sans-serif; margin: 0; display: flex; }
#skavae-main { flex: 1 1 auto; min-width: 0; }
#skavae-side { flex: 0 0 260px; padding: 10px; border-left: 1px solid #ddd;
  font-size: 13px; order: 2; }
#skavae-side img { width: 112px; height: 112px; image-rendering: pixelated;
  border: 1px solid #ccc; background: #000; }
#skavae-side img:not([src]), #skavae-side img[src=""] { visibility: hidden; }
#skavae-side button { margin: 2px 0; width: 100%; }
.skavae-pair { display: flex; gap: 6px; }
.skavae-pair div { text-align: center; }
"""

_PANEL = """
<div id="skavae-side">
  <b>Hover</b> <span id="skavae-hover-text">a point</span><br>
  <img id="skavae-hover-img" alt="thumbnail"><br><br>
  <b>Clicked</b> <span id="skavae-click-text">none</span>
  <div class="skavae-pair">
    <div><img id="skavae-click-input" alt="object"><br>object</div>
    <div><img id="skavae-click-decoded" alt="decoded"><br>decoded</div>
  </div><br>
  <b>Selection</b> (lasso or box): <span id="skavae-count">0</span> rows<br>
  <button id="skavae-csv" onclick="skavaeExport('csv')" disabled>
    Export selection as CSV</button>
  <button id="skavae-star" onclick="skavaeExport('star')" disabled>
    Export selection as STAR</button>
</div>
"""

# Vanilla JS: the data of the page are fig.layout.meta.skavae.
_SCRIPT = """
var skavaeSelected = [];
function skavaePng(b64) { return b64 ? 'data:image/png;base64,' + b64 : ''; }
function skavaeData() {
  return document.getElementById('%(id)s').layout.meta.skavae;
}
function skavaePicture(kind, row) {
  var S = skavaeData();
  var k = S.pic_of.length ? S.pic_of[row] : -1;
  if (k < 0) { return ''; }
  return skavaePng(kind === 'decoded' ? S.decoded[k] : S.thumbs[k]);
}
function skavaeRows(event) {
  var rows = [];
  if (!event || !event.points) { return rows; }
  event.points.forEach(function (p) {  // training-map points have no row
    if (typeof p.customdata === 'number') { rows.push(p.customdata); }
  });
  rows.sort(function (a, b) { return a - b; });
  return rows.filter(function (v, i) { return i === 0 || rows[i - 1] !== v; });
}
function skavaeSelectionText(kind, rows) {
  var S = skavaeData();
  if (kind === 'csv') {
    return S.csv_header + '\\n' +
      rows.map(function (r) { return S.csv_rows[r]; }).join('\\n') + '\\n';
  }
  return S.star_head +
    rows.map(function (r) { return S.star_rows[r]; }).join('\\n') + '\\n' +
    S.star_tail;
}
function skavaeExport(kind) {
  var text = skavaeSelectionText(kind, skavaeSelected);
  var blob = new Blob([text], {type: kind === 'csv' ? 'text/csv' : 'text/plain'});
  var a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = 'selection.' + kind;
  document.body.appendChild(a);
  a.click();
  setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 0);
}
function skavaeSetSelection(rows) {
  skavaeSelected = rows;
  document.getElementById('skavae-count').textContent = rows.length;
  document.getElementById('skavae-csv').disabled = rows.length === 0;
  document.getElementById('skavae-star').disabled = rows.length === 0;
}
function skavaeExplorer(gd) {
  gd.on('plotly_hover', function (event) {
    var row = event.points[0].customdata;
    document.getElementById('skavae-hover-text').textContent = '#' + row;
    document.getElementById('skavae-hover-img').src =
      skavaePicture('thumb', row);
  });
  gd.on('plotly_click', function (event) {
    var row = event.points[0].customdata;
    document.getElementById('skavae-click-text').textContent = '#' + row;
    document.getElementById('skavae-click-input').src =
      skavaePicture('thumb', row);
    document.getElementById('skavae-click-decoded').src =
      skavaePicture('decoded', row);
  });
  gd.on('plotly_selected', function (event) {
    skavaeSetSelection(skavaeRows(event));
  });
  gd.on('plotly_deselect', function () { skavaeSetSelection([]); });
}
"""


def latent_map_html(fig, *, title="skavae latent map"):
    """The HTML text of the page of a :func:`plot_latent_map` figure."""
    import_plotly()
    meta = fig.layout.meta
    if not isinstance(meta, dict) or "skavae" not in meta:
        raise ValueError(
            "fig must be a figure of plot_latent_map (its layout.meta holds the "
            "explorer's data)."
        )
    body = fig.to_html(
        full_html=False,
        include_plotlyjs=True,
        div_id=PLOT_ID,
        default_width="100%",
        default_height="95vh",
        config={"displaylogo": False, "scrollZoom": True},
        post_script="skavaeExplorer(document.getElementById('{plot_id}'));",
    )
    from html import escape

    return (
        "<!DOCTYPE html>\n<html>\n<head>\n<meta charset='utf-8'>\n"
        f"<title>{escape(title)}</title>\n<style>{_STYLE}</style>\n"
        f"<script>{_SCRIPT % {'id': PLOT_ID}}</script>\n</head>\n<body>\n"
        # the panel first (shown on the right): plotly sizes the map to what
        # is left of the window when its inline script runs
        f"{_PANEL}\n<div id='skavae-main'>{body}</div>\n</body>\n</html>\n"
    )


def write_latent_map(path, model, X=None, y=None, *, title=None, **kwargs):
    """Write the interactive latent map as ONE self-contained HTML file.

    The page embeds plotly.js (no server, no network: it works offline and
    can be mailed or archived) and the map of :func:`plot_latent_map`: the
    buttons switch the colouring (class / prediction / unknown), hovering a
    point shows its thumbnail, clicking shows the object and the object
    decoded from its latent side by side, and a lasso or box selection is
    exported from the browser as CSV or RELION STAR (particle-list input: the
    original rows with the results).

    Parameters
    ----------
    path : str or path-like
        The ``.html`` file to write (atomically).
    model : fitted AffinityVAE, None or plotly Figure
        As in :func:`plot_latent_map`; or a figure it returned (then give
        neither ``X`` nor other arguments).
    X, y : array-like
        As in :func:`plot_latent_map`.
    title : str or None, default=None
        Title of the page.
    **kwargs
        Passed to :func:`plot_latent_map`.

    Returns
    -------
    path : str

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from skavae.plotting import write_latent_map
    >>> Z = np.random.RandomState(0).normal(size=(12, 2))
    >>> path = os.path.join(tempfile.mkdtemp(), "map.html")
    >>> _ = write_latent_map(path, None, Z, np.repeat(["a", "b"], 6),
    ...                      method="none", thumbnails=False)
    >>> "plotly" in open(path).read(200_000)
    True
    """
    import os

    go = import_plotly()
    if isinstance(model, go.Figure):
        if X is not None or y is not None or kwargs:
            raise ValueError(
                "write_latent_map(path, fig) takes the figure only; give model and "
                "X to draw a new map."
            )
        fig = model
    else:
        if X is None:
            raise ValueError("X is missing: write_latent_map(path, model, X, y).")
        fig = plot_latent_map(model, X, y, **kwargs)
    text = latent_map_html(fig, title=title or "skavae latent map")
    path = os.fspath(path)
    with (
        atomic_path(path, suffix=".html") as tmp,
        open(tmp, "w", encoding="utf-8") as fh,
    ):
        fh.write(text)
    return path
