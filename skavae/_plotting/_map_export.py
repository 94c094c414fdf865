"""The export tables of the interactive latent map: CSV and STAR rows.

:func:`export_data` gathers, for the explorer page's JavaScript, the pictures
and the CSV / RELION STAR row of every object so that a lasso selection can
be written from the browser without a server.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pandas as pd


def _star_value(value):
    text = str(value)
    if text == "" or any(ch.isspace() for ch in text):
        return '"' + text.replace('"', "'") + '"'
    return text


def _star_lines(frame):
    """``(header, rows)`` of a one-block RELION STAR table."""
    header = ["", "data_particles", "", "loop_"]
    header += [f"_{c} #{i + 1}" for i, c in enumerate(frame.columns)]
    cols = []
    for c in frame.columns:
        v = frame[c].to_numpy()
        if v.dtype.kind == "f":
            cols.append([f"{x:.6g}" for x in v])
        else:
            cols.append([_star_value(x) for x in v])
    rows = [" ".join(r) for r in zip(*cols)]
    return "\n".join(header) + "\n", rows


def _particle_star_lines(particles, predictions, unknown, Z, classes=None):
    """STAR text of the particle rows split into (prefix, rows, suffix).

    Written with :func:`skavae.io.write_particles` (the input rows with their
    columns, optics blocks and the results), then cut at the particle loop's
    rows so that the browser can keep the selected ones.
    """
    from skavae.io import write_particles
    from skavae.io._writer import class_order

    folder = tempfile.mkdtemp(prefix="skavae-map-")
    path = os.path.join(folder, "rows.star")
    try:
        write_particles(
            path,
            particles,
            predictions=predictions,
            classes=None if predictions is None else class_order(classes, predictions),
            unknown=unknown,
            latents=Z,
        )
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().split("\n")
    finally:
        if os.path.exists(path):
            os.remove(path)
        os.rmdir(folder)
    n = len(particles)
    for start, line in enumerate(lines):  # noqa: B007 (used below)
        if line.strip() == "data_particles":
            break
    else:
        start = 0
    k = start + 1
    while k < len(lines) and not lines[k].strip().startswith("loop_"):
        k += 1
    k += 1
    while k < len(lines) and (lines[k].startswith("_") or not lines[k].strip()):
        k += 1
    rows = lines[k : k + n]
    if len(rows) != n or any(not r.strip() for r in rows):
        raise ValueError(
            "particles: could not lay out the particle rows as a STAR loop "
            f"({len(rows)} rows for {n} particles)."
        )
    return "\n".join(lines[:k]) + "\n", rows, "\n".join(lines[k + n :])


def export_data(
    E, Z, y, predictions, unknown, particles, shown, thumbs, decodes, classes=None
):
    """Pictures and the CSV / STAR rows of every sample, for the page's JS.

    ``classes`` (the model's ``classes_``) number the predicted classes in
    the STAR rows as ``skavae evaluate`` does.
    """
    n = len(Z)
    table = pd.DataFrame({"index": np.arange(n), "map_x": E[:, 0], "map_y": E[:, 1]})
    for name, values in (("label", y), ("prediction", predictions)):
        if values is not None:
            table[name] = np.asarray(values).astype(str)
    if unknown is not None:
        table["unknown"] = np.asarray(unknown).astype(int)
    for d in range(Z.shape[1]):
        table[f"z{d}"] = Z[:, d]
    csv = table
    if particles is not None:
        csv = pd.concat([particles.reset_index(drop=True), table], axis=1)
    csv_lines = csv.to_csv(index=False, float_format="%.6g", lineterminator="\n")
    csv_lines = csv_lines.rstrip("\n").split("\n")
    if particles is not None:
        star_head, star_rows, star_tail = _particle_star_lines(
            particles,
            None if predictions is None else np.asarray(predictions).astype(str),
            unknown,
            Z,
            classes,
        )
    else:
        star = table.drop(columns=["map_x", "map_y"]).rename(
            columns={
                "index": "skavaeIndex",
                "label": "skavaeLabel",
                "prediction": "skavaeClassName",
                "unknown": "skavaeUnknown",
                **{f"z{d}": f"skavaeLatent{d + 1:02d}" for d in range(Z.shape[1])},
            }
        )
        star_head, star_rows = _star_lines(star)
        star_tail = ""
    pics = {int(k): i for i, k in enumerate(shown)}
    return {
        "n": n,
        "shown": [int(k) for k in shown],
        "thumbs": list(thumbs),
        "decoded": list(decodes),
        "pic_of": [pics.get(k, -1) for k in range(n)] if len(shown) else [],
        "csv_header": csv_lines[0],
        "csv_rows": csv_lines[1:],
        "star_head": star_head,
        "star_rows": star_rows,
        "star_tail": star_tail,
    }
