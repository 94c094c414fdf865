"""Writing particle tables back as STAR files: :func:`write_particles`."""

from __future__ import annotations

import os
import re

import numpy as np
import pandas as pd

from skavae._files import atomic_path
from skavae.io._columns import _KEPT_INPUT, _STAR_ANGLES, NORMALISED
from skavae.io._euler import matrix_to_euler

__all__ = ["write_particles"]


def _safe_name(text):
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("_") or "class"


def _base_columns(particles):
    """The rows as they will be written: the source's columns or RELION's."""
    star = particles.attrs.get("skavae_star")
    if star and all(c in particles.columns for c in star["columns"]):
        return particles[star["columns"]].copy(), star
    binning = float(particles.attrs.get("skavae_binning", 1.0))
    out = pd.DataFrame(index=particles.index)
    names = particles.get("tomo_name")
    if names is not None and names.notna().any():
        out["rlnTomoName"] = names.astype(str).to_numpy()
    for axis in "xyz":
        if axis not in particles.columns:
            raise ValueError(f"the particle table has no {axis!r} column to write.")
        out[f"rlnCoordinate{axis.upper()}"] = particles[axis].to_numpy(float) * binning
    if {"rot", "tilt", "psi"} <= set(particles.columns):
        for key, column in zip(("rot", "tilt", "psi"), _STAR_ANGLES):
            out[column] = particles[key].to_numpy(float)
    if "class" in particles.columns:
        out["rlnClassNumber"] = particles["class"].to_numpy()
    if "class_name" in particles.columns:
        out["skavaeClassName"] = particles["class_name"].astype(str).to_numpy()
    if {"tilt_min", "tilt_max"} <= set(particles.columns):
        tilts = particles[["tilt_min", "tilt_max"]].to_numpy(float)
        if np.isfinite(tilts).all():  # unknown ones (NaN) would not read back
            out["skavaeTiltMin"], out["skavaeTiltMax"] = tilts.T
    if "defocus_um" in particles.columns:
        out["rlnDefocusU"] = particles["defocus_um"].to_numpy(float) * 1e4  # Å
    skip = set(NORMALISED) | {"tomogram"}
    for column in particles.columns:
        if column in skip or column in out.columns:
            continue
        name = re.sub(r"\s+", "_", str(column))
        out[name] = particles[column].to_numpy()
    return out, None


def _optics(particles, out):
    """RELION 4's ``optics`` block for rows read from a list without one.

    One optics group per pixel size: ``rlnTomoTiltSeriesPixelSize`` (Å per
    coordinate pixel) and ``rlnImagePixelSize`` (Å per tomogram pixel, the
    subtomograms') with ``rlnTomoSubtomogramBinning`` (their ratio); the rows
    get ``rlnOpticsGroup``. None, leaving ``out`` as it is, when a pixel size
    is unknown (an optics group needs one) or the rows already name groups.
    """
    if "pixel_size" not in particles.columns or "rlnOpticsGroup" in out.columns:
        return None
    image = particles["pixel_size"].to_numpy(float)
    if not (len(image) and np.isfinite(image).all() and (image > 0).all()):
        return None
    binning = float(particles.attrs.get("skavae_binning", 1.0))
    sizes, group = np.unique(np.round(image, 6), return_inverse=True)
    out["rlnOpticsGroup"] = group.astype(np.int64) + 1
    numbers = np.arange(1, len(sizes) + 1)
    return pd.DataFrame(
        {
            "rlnOpticsGroup": numbers,
            "rlnOpticsGroupName": [f"opticsGroup{k}" for k in numbers],
            "rlnTomoTiltSeriesPixelSize": sizes / binning,
            "rlnTomoSubtomogramBinning": np.full(len(sizes), binning),
            "rlnImagePixelSize": sizes,
            "rlnImageDimensionality": np.full(len(sizes), 3, dtype=np.int64),
        }
    )


def _per_row(values, n, name):
    arr = np.asarray(values)
    if arr.shape[:1] != (n,):
        raise ValueError(
            f"{name} has {arr.shape[0] if arr.ndim else 1} rows but there are {n} "
            "particles."
        )
    return arr


def write_particles(
    path,
    particles,
    *,
    predictions=None,
    classes=None,
    probabilities=None,
    unknown=None,
    latents=None,
    poses=None,
    rotations=None,
    columns=None,
    split_by_class=False,
    overwrite=False,
):
    """Write particle rows with classification results as a RELION STAR file.

    The rows are written with the columns they were read with (STAR input:
    unchanged, other blocks such as ``optics`` too; other inputs: RELION
    columns ``rlnTomoName``, ``rlnCoordinateX/Y/Z`` (tomogram pixels times the
    binning they were read with), ``rlnAngleRot/Tilt/Psi`` and, when every
    row's pixel size is known, RELION 4's ``optics`` block: one group per
    pixel size with ``rlnOpticsGroupName``, ``rlnTomoTiltSeriesPixelSize`` (of
    the coordinates), ``rlnImagePixelSize`` (of the tomogram),
    ``rlnTomoSubtomogramBinning`` and ``rlnImageDimensionality`` 3, the rows
    naming theirs in ``rlnOpticsGroup``), followed by

    ``rlnClassNumber``
        The predicted class, 1-based: ``1 + classes.index(prediction)``. An
        input ``rlnClassNumber`` is kept as ``skavaeInputClassNumber`` (and an
        input ``skavaeClassName`` as ``skavaeInputClassName``).
    ``skavaeClassName``
        The predicted class label.
    ``skavaeProbability``
        Soft-KNN probability of the prediction.
    ``skavaeUnknown``
        1 for particles flagged as unknown (unseen classes), else 0; their
        ``rlnClassNumber`` is still the nearest seen class.
    ``skavaeLatent01``, ``skavaeLatent02``, ... and ``skavaePose01``, ...
        Latent means and pose channels.
    ``rlnAngleRot``, ``rlnAngleTilt``, ``rlnAnglePsi``
        With ``rotations``: RELION's ZYZ Euler angles of each rotation
        (:func:`matrix_to_euler`), so that averaging can start from them;
        input angles are kept as ``skavaeInputAngleRot``, ... .

    Files are written atomically (a temporary file renamed into place); RELION
    and :func:`starfile.read` read them.

    Parameters
    ----------
    path : str or path-like
        Output ``.star`` file.
    particles : pandas.DataFrame or path-like
        Rows from :func:`read_particles` (or ``SubtomogramStack.particles``),
        or a particle list to read.
    predictions : array-like of shape (n,), default=None
        Predicted class labels.
    classes : sequence, default=None
        The class labels in the order that numbers them (a model's
        ``classes_``); default: the sorted predicted labels.
    probabilities : array-like of shape (n,), default=None
    unknown : array-like of bool, shape (n,), default=None
    latents : array-like of shape (n, d), default=None
    poses : array-like of shape (n, p), default=None
    rotations : array-like of shape (n, 3, 3), default=None
        Rotations on ``(x, y, z)`` vectors that turn the reference (a class's
        canonical frame) into each particle (:func:`euler_to_matrix`'s
        convention), e.g. the explicit pose of the splat decoder.
    columns : dict of str to array-like, default=None
        More columns to append (name -> one value per row).
    split_by_class : bool, default=False
        Also write one file per predicted class, ``<stem>_<class>.star``,
        the class name with every run of characters other than letters,
        digits, ``.``, ``_`` and ``-`` replaced by ``_``. Classes whose names
        become the same (``"a b"`` and ``"a/b"``) get their position among
        the sorted class names appended (``<stem>_a_b_1.star``,
        ``<stem>_a_b_2.star``), so no file overwrites another; the
        ``skavaeClassName`` column of each file holds the name itself.
    overwrite : bool, default=False
        Replace existing files. The particle list the rows were read from is
        never overwritten.

    Returns
    -------
    paths : list of str
        The files written, the complete list first.

    Raises
    ------
    ValueError
        For results whose length differs from the rows, a path equal to the
        input or an existing file without ``overwrite``.

    Examples
    --------
    >>> import os, tempfile
    >>> import pandas as pd, starfile
    >>> from skavae.io import read_particles, write_particles
    >>> tmp = tempfile.mkdtemp()
    >>> src = os.path.join(tmp, "in.star")
    >>> starfile.write({"particles": pd.DataFrame({
    ...     "rlnTomoName": ["TS_01"] * 3, "rlnCoordinateX": [10.0, 20.0, 30.0],
    ...     "rlnCoordinateY": [5.0] * 3, "rlnCoordinateZ": [8.0] * 3,
    ...     "myScore": [0.5, 0.7, 0.9]})}, src)
    >>> p = read_particles(src)
    >>> out = os.path.join(tmp, "out.star")
    >>> write_particles(out, p, predictions=["ribo", "proteasome", "ribo"],
    ...                 probabilities=[0.9, 0.8, 0.6], unknown=[False, False, True],
    ...                 latents=[[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]])[0] == out
    True
    >>> back = starfile.read(out)
    >>> back[["myScore", "rlnClassNumber", "skavaeClassName", "skavaeUnknown"]]
       myScore  rlnClassNumber skavaeClassName  skavaeUnknown
    0      0.5               2            ribo              0
    1      0.7               1      proteasome              0
    2      0.9               2            ribo              1
    >>> back.columns[-2:].tolist()
    ['skavaeLatent01', 'skavaeLatent02']
    """
    import starfile

    if not isinstance(particles, pd.DataFrame):
        from skavae.io._particles import read_particles

        particles = read_particles(particles)
    path = os.fspath(path)
    source = particles.attrs.get("skavae_source")
    if source and os.path.realpath(path) == os.path.realpath(source):
        raise ValueError(
            f"{path}: the output would overwrite the particle list it was read "
            "from; choose another file name."
        )
    n = len(particles)
    out, star = _base_columns(particles)
    out = out.reset_index(drop=True)
    optics = None if star else _optics(particles, out)
    labels = None
    if predictions is not None:
        labels = np.asarray([str(v) for v in _per_row(predictions, n, "predictions")])
        order = (
            [str(c) for c in classes]
            if classes is not None
            else sorted(set(labels.tolist()))
        )
        number = {c: i + 1 for i, c in enumerate(order)}
        missing = sorted(set(labels.tolist()) - set(number))
        if missing:
            raise ValueError(f"prediction {missing[0]!r} is not one of classes.")
        for column, kept in _KEPT_INPUT.items():
            if column in out.columns:
                _keep_input(out, column, kept)
                out = out.drop(columns=column)
        out["rlnClassNumber"] = np.array([number[v] for v in labels], dtype=np.int64)
        out["skavaeClassName"] = labels
    if probabilities is not None:
        out["skavaeProbability"] = _per_row(probabilities, n, "probabilities").astype(
            float
        )
    if unknown is not None:
        out["skavaeUnknown"] = _per_row(unknown, n, "unknown").astype(bool).astype(int)
    for values, prefix in ((latents, "skavaeLatent"), (poses, "skavaePose")):
        if values is None:
            continue
        arr = np.asarray(_per_row(values, n, prefix), dtype=np.float64).reshape(n, -1)
        for d in range(arr.shape[1]):
            out[f"{prefix}{d + 1:02d}"] = arr[:, d]
    if rotations is not None:
        R = np.asarray(rotations, dtype=np.float64)
        if R.shape != (n, 3, 3) or not np.isfinite(R).all():
            raise ValueError(
                f"rotations must be {n} finite 3 x 3 matrices (one per particle); "
                f"got an array of shape {R.shape}."
            )
        angles = matrix_to_euler(R).reshape(n, 3)
        for k, column in enumerate(_STAR_ANGLES):
            if column in out.columns:
                _keep_input(out, column, "skavaeInput" + column[3:])
            out[column] = angles[:, k]
    for name, values in (columns or {}).items():
        out[str(name)] = _per_row(values, n, str(name))
    targets = [(path, np.ones(n, dtype=bool))]
    if split_by_class:
        if labels is None:
            if "skavaeClassName" not in out.columns:
                raise ValueError("split_by_class needs predictions (or class names).")
            labels = out["skavaeClassName"].astype(str).to_numpy()
        stem = path[:-5] if path.lower().endswith(".star") else path
        classes_ = sorted(set(labels.tolist()), key=str)
        names = [_safe_name(label) for label in classes_]
        for k, (label, name) in enumerate(zip(classes_, names)):
            if names.count(name) > 1:  # "a b" and "a/b": both "a_b"
                name = f"{name}_{k + 1}"
            targets.append((f"{stem}_{name}.star", labels == label))
    if not overwrite:
        existing = [t for t, _ in targets if os.path.exists(t)]
        if existing:
            raise ValueError(
                f"{existing[0]}: already exists; pass overwrite=True (command "
                "line: --overwrite) to replace it."
            )
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(f"{path}: the folder {folder} does not exist.")
    written = []
    for target, mask in targets:
        blocks = _blocks(out[mask].reset_index(drop=True), star, optics)
        with atomic_path(target, suffix=".star") as tmp:
            starfile.write(blocks, tmp)
        written.append(target)
    return written


def _keep_input(out, column, kept):
    """Copy the input's ``column`` to ``kept`` before a result replaces it
    (a ``kept`` column already in the input wins)."""
    if kept not in out.columns:
        out[kept] = out[column].to_numpy()


def class_order(known, labels):
    """``rlnClassNumber`` order: the ``known`` classes (a model's
    ``classes_``, its training order), then the other ``labels`` (e.g.
    ``"unknown"``) sorted; every writer of a model's predictions uses it, so
    one class has one number in every file of a run.
    """
    order = [str(c) for c in (known if known is not None else [])]
    return order + sorted({str(v) for v in labels} - set(order))


def _blocks(frame, star, optics=None):
    """The blocks of a file: the source's, ``optics`` and ``particles``, or
    the particles alone."""
    if not star:
        if optics is None:
            return {"particles": frame}
        used = optics["rlnOpticsGroup"].isin(frame["rlnOpticsGroup"])
        return {"optics": optics[used].reset_index(drop=True), "particles": frame}
    stored = {name: (kind, payload) for name, kind, payload in star["blocks"]}
    blocks = {}
    for name in star["order"]:
        if name == star["particle_block"]:
            blocks[name] = frame
        elif name in stored:
            kind, payload = stored[name]
            blocks[name] = dict(payload) if kind == "pair" else pd.DataFrame(payload)
    return blocks
