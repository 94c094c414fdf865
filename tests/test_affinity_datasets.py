"""Affinity metrics on the generated data sets of :mod:`skavae.datasets`."""

import numpy as np
import pytest

from skavae.affinity import FSCAffinity, SOAPAffinity, class_affinity_matrix

datasets = pytest.importorskip("skavae.datasets")


def test_soap_characters_match_their_rotated_renderings():
    X, y, _, templates = datasets.make_alphanumeric(
        36, characters="all", binarize=True, return_info=True, random_state=0
    )
    labels = list(templates)
    own = np.array([labels.index(c) for c in y])
    S = SOAPAffinity()(X, np.stack(list(templates.values())))
    assert S[np.arange(len(y)), own].min() > 0.97
    # the nearest template is the right one, except that "d" and "p" are the
    # same glyph turned by 180° and rightly indistinguishable
    nearest = np.array(labels)[S.argmax(axis=1)]
    ok = (nearest == y) | (np.isin(nearest, ["d", "p"]) & np.isin(y, ["d", "p"]))
    assert ok.all()
    A = class_affinity_matrix(metric=SOAPAffinity(), templates=templates)
    assert A.loc["b", "d"] > A.loc["b", "i"] + 1.0  # mirror pair vs a stroke


def test_soap_tetraminos_match_their_rotated_copies():
    X, y, _, templates = datasets.make_tetraminos(18, return_info=True, random_state=0)
    labels = list(templates)
    S = SOAPAffinity()(X, np.stack(list(templates.values())))
    assert (np.array(labels)[S.argmax(axis=1)] == y).all()
    assert S[np.arange(len(y)), [labels.index(c) for c in y]].min() > 0.97


def test_fsc_tetramino_templates_are_one_frame_comparable():
    _, _, _, templates = datasets.make_tetraminos(6, return_info=True, random_state=0)
    A = class_affinity_matrix(metric=FSCAffinity(), templates=templates)
    off = A.to_numpy()[~np.eye(len(A), dtype=bool)]
    assert off.max() < 0.9 and off.min() > -1
