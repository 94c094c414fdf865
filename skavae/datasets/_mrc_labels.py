"""Class labels of the files of a folder: name rule, regex, classes CSV or none.

Exactly one source gives the labels of :func:`load_mrc_folder`:

- the naming rule (default): the file stem up to its **last** underscore;
- ``label_func(file_name)``;
- ``label_regex``: a regular expression searched in the file stem (the name
  without suffix) whose named group ``label``, or else its first group, is the
  label; a file it does not match is an error naming the file;
- ``classes``: a CSV table with columns ``file`` and ``label`` (file name
  with or without suffix); files missing from it are an error, or skipped
  with ``unlisted="skip"``;
- ``unlabelled=True``: no labels (``y`` is None).

When more than half of the files are the only member of their class, the
labels are almost surely not class labels (``1BXN_m0_156_Th0.mrc`` or
``particle0001.mrc`` give one class per file): a warning says how to fix it.
"""

from __future__ import annotations

import os
import re
import warnings

import numpy as np
import pandas as pd

__all__ = ["file_labels"]


def _label_from_name(name):
    stem = os.path.splitext(name)[0]
    label, sep, _ = stem.rpartition("_")
    return label if sep and label else stem


def _regex_labeller(label_regex):
    try:
        pattern = re.compile(label_regex)
    except (re.error, TypeError) as exc:
        raise ValueError(
            f"label_regex {label_regex!r} is not a regular expression: {exc}."
        ) from None
    if "label" not in pattern.groupindex and pattern.groups < 1:
        raise ValueError(
            f"label_regex {label_regex!r} has no group; mark the label with "
            "(...) or (?P<label>...)."
        )
    group = "label" if "label" in pattern.groupindex else 1

    def labeller(name):
        match = pattern.search(os.path.splitext(name)[0])
        if match is None or not match.group(group):
            raise ValueError(
                f"{name!r}: label_regex {label_regex!r} does not match the file "
                "name (searched in the name without suffix)."
            )
        return match.group(group)

    return labeller


def _read_classes(classes):
    if isinstance(classes, dict):
        return {str(k): str(v) for k, v in classes.items()}
    if isinstance(classes, pd.DataFrame):
        table, where = classes, "classes"
    else:
        where = os.fspath(classes)
        try:
            table = pd.read_csv(where, dtype=str, keep_default_na=False)
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"{where}: cannot read the classes table: {exc}") from None
    columns = [str(c).strip().lower() for c in table.columns]
    if "file" not in columns or "label" not in columns:
        raise ValueError(
            f"{where}: the classes table needs the columns 'file' and 'label' "
            f"(it has {', '.join(map(str, table.columns)) or 'none'})."
        )
    files = table.iloc[:, columns.index("file")].astype(str).str.strip()
    labels = table.iloc[:, columns.index("label")].astype(str).str.strip()
    empty = np.flatnonzero((labels == "").to_numpy())
    if len(empty):
        raise ValueError(f"{where}: row {empty[0] + 1} has an empty label.")
    mapping = {}
    for f, lab in zip(files, labels):
        mapping[os.path.basename(f)] = lab
        mapping[os.path.splitext(os.path.basename(f))[0]] = lab
    return mapping


def file_labels(
    names,
    *,
    label_func=None,
    label_regex=None,
    classes=None,
    unlabelled=False,
    unlisted="error",
):
    """Labels of ``names`` and which names to keep.

    Returns ``(labels, keep)``: a str array (None when ``unlabelled``) for the
    kept names, and a boolean mask over ``names``.
    """
    given = [
        key
        for key, value in (
            ("label_func", label_func),
            ("label_regex", label_regex),
            ("classes", classes),
        )
        if value is not None
    ]
    if unlabelled:
        given.append("unlabelled")
    if len(given) > 1:
        raise ValueError(
            f"give at most one source of labels; got {' and '.join(given)}."
        )
    if unlisted not in ("error", "skip"):
        raise ValueError(f"unlisted must be 'error' or 'skip'; got {unlisted!r}.")
    keep = np.ones(len(names), dtype=bool)
    if unlabelled:
        return None, keep
    if label_func is not None and not callable(label_func):
        raise ValueError(f"label_func must be callable; got {label_func!r}.")
    if classes is not None:
        mapping = _read_classes(classes)
        labels = []
        for k, name in enumerate(names):
            label = mapping.get(name, mapping.get(os.path.splitext(name)[0]))
            if label is None:
                if unlisted == "error":
                    missing = sum(
                        n not in mapping and os.path.splitext(n)[0] not in mapping
                        for n in names
                    )
                    raise ValueError(
                        f"{name!r} is not in the classes table ({missing} of "
                        f"{len(names)} files are not); add it, or pass "
                        "unlisted='skip' to leave such files out."
                    )
                keep[k] = False
                continue
            labels.append(label)
        if not labels:
            raise ValueError("no file of the folder is in the classes table.")
    else:
        if label_regex is not None:
            labeller = _regex_labeller(label_regex)
        else:
            labeller = label_func if label_func is not None else _label_from_name
        labels = [str(labeller(name)) for name in names]
    y = np.asarray(labels, dtype=str)
    _warn_singletons(y, label_func is None and label_regex is None and classes is None)
    return y, keep


def _warn_singletons(y, from_rule):
    n = len(y)
    if n < 4:
        return
    _, counts = np.unique(y, return_counts=True)
    single = int((counts == 1).sum())
    if single * 2 <= n:
        return
    how = "file names (the text before the last underscore)" if from_rule else "labels"
    warnings.warn(
        f"{single} of {n} files are the only member of their class: the {how} "
        "are probably not class labels. Give the labels with label_regex (a "
        "regular expression with one group), classes (a CSV table file,label), "
        "label_func, or load without labels (unlabelled=True).",
        UserWarning,
        stacklevel=4,
    )
