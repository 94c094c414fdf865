"""Rotated alphanumeric characters (the paper's 2D data set, section 2.5).

Characters are drawn with Pillow from a TrueType font found at run time (by
default DejaVu Sans, which matplotlib ships; nothing is ever downloaded),
rendered four times larger than the requested size, rotated about the image
centre with bicubic interpolation and reduced by box averaging, which gives
smooth anti-aliased grey levels in [0, 1]. Every character is drawn with the same
font size, chosen once for all twelve characters so that any of them rotated by
up to 45 degrees fits inside the image; the centre of its ink bounding box is at
the image centre. Relative sizes are thus kept ("i" is thinner than "k", "a" is
shorter than "b") and images of different subsets are directly comparable.

Integer angles in ``[-max_angle, max_angle]`` are drawn at random; since there are
at most 12 x 91 distinct (character, angle) pairs, each pair is rendered once and
the images are gathered by indexing, so ten thousand images take well under a
second.
"""

from __future__ import annotations

import os
from numbers import Real

import numpy as np
import pandas as pd

from skavae._checks import check_seed
from skavae.datasets._validation import (
    assign_split,
    balanced_labels,
    check_positive_int,
    check_test_size,
)

__all__ = [
    "ALPHANUMERIC_CHARACTERS",
    "ALPHANUMERIC_SEEN",
    "ALPHANUMERIC_UNSEEN",
    "make_alphanumeric",
]

#: The twelve characters of the paper's alphanumeric data set.
ALPHANUMERIC_CHARACTERS = ("a", "e", "b", "d", "p", "i", "j", "z", "2", "k", "x", "u")
#: Classes used to train (pre-seed the latent map) in the paper's Figure 3.
ALPHANUMERIC_SEEN = ("a", "b", "d", "e", "i", "j", "z", "k")
#: Classes held out as unseen in the paper's Figure 3.
ALPHANUMERIC_UNSEEN = ("2", "x", "p")

_SUPERSAMPLE = 4
_FILL = 0.9  # fraction of the image the largest character rotated by 45 deg spans
_REFERENCE_PT = 200


def _default_font_path():
    """Path of DejaVu Sans as shipped by matplotlib, or None if not found."""
    try:
        from matplotlib import font_manager
    except ImportError:  # pragma: no cover - matplotlib is a dependency
        return None
    candidates = []
    try:
        candidates.append(
            font_manager.findfont(
                font_manager.FontProperties(family="DejaVu Sans"),
                fallback_to_default=False,
            )
        )
    except Exception:  # noqa: BLE001 - any failure means "not found here"
        pass
    try:
        import matplotlib

        candidates.append(
            os.path.join(matplotlib.get_data_path(), "fonts", "ttf", "DejaVuSans.ttf")
        )
    except Exception:  # noqa: BLE001
        pass
    for path in candidates:
        if isinstance(path, (str, os.PathLike)) and os.path.isfile(path):
            return os.fspath(path)
    return None


def _load_font(font, size_pt):
    from PIL import ImageFont

    if font is None:
        path = _default_font_path()
        if path is None:
            raise RuntimeError(
                "No TrueType font found to draw the characters: make_alphanumeric "
                "uses DejaVu Sans as shipped by matplotlib (looked up with "
                "matplotlib.font_manager.findfont and in matplotlib.get_data_path()). "
                "Install matplotlib or pass font='/path/to/font.ttf'."
            )
    else:
        path = os.fspath(font)
        if not os.path.isfile(path):
            raise ValueError(f"font file {path!r} does not exist.")
    try:
        return ImageFont.truetype(path, size=size_pt), path
    except OSError as exc:
        raise ValueError(f"Cannot read {path!r} as a TrueType font: {exc}") from None


def _font_scale(font):
    """Font size (pt) at which every character rotated by <=45 deg fits in 1 px."""
    ref, _ = _load_font(font, _REFERENCE_PT)
    theta = np.deg2rad(np.linspace(0, 45, 10))
    extent = 0.0
    for ch in ALPHANUMERIC_CHARACTERS:
        x0, y0, x1, y1 = ref.getbbox(ch)
        w, h = x1 - x0, y1 - y0
        c, s = np.cos(theta), np.sin(theta)
        extent = max(extent, np.max(w * c + h * s), np.max(w * s + h * c))
    return _REFERENCE_PT / extent


def _check_characters(characters):
    if characters is None or (isinstance(characters, str) and characters == "seen"):
        return list(ALPHANUMERIC_SEEN)
    if isinstance(characters, str) and characters == "unseen":
        return list(ALPHANUMERIC_UNSEEN)
    if isinstance(characters, str) and characters == "all":
        return list(ALPHANUMERIC_CHARACTERS)
    try:
        chars = [str(c) for c in characters]
    except TypeError:
        raise ValueError(
            f"characters must be 'seen', 'unseen', 'all' or an iterable of "
            f"characters; got {characters!r}."
        ) from None
    unknown = [c for c in chars if c not in ALPHANUMERIC_CHARACTERS]
    if unknown:
        raise ValueError(
            f"Unknown characters {unknown}; choose among "
            f"{list(ALPHANUMERIC_CHARACTERS)}."
        )
    if not chars:
        raise ValueError("characters is empty; choose at least one character.")
    if len(set(chars)) != len(chars):
        raise ValueError(f"characters has duplicates: {chars}.")
    return chars


def _render_bank(chars, angles, size, font):
    """Images of every (character, angle) pair: dict (char, angle) -> float32."""
    from PIL import Image, ImageDraw

    hi = size * _SUPERSAMPLE
    pt = max(1, int(round(_font_scale(font) * _FILL * hi)))
    face, _ = _load_font(font, pt)
    bank = {}
    for ch in chars:
        canvas = Image.new("L", (hi, hi), 0)
        x0, y0, x1, y1 = face.getbbox(ch)
        origin = (hi / 2 - (x0 + x1) / 2, hi / 2 - (y0 + y1) / 2)
        ImageDraw.Draw(canvas).text(origin, ch, fill=255, font=face)
        for angle in angles[ch]:
            img = canvas.rotate(
                float(angle), resample=Image.Resampling.BICUBIC, center=(hi / 2, hi / 2)
            )
            img = img.reduce(_SUPERSAMPLE)
            bank[ch, int(angle)] = np.asarray(img, dtype=np.float32) / 255.0
    return bank


def make_alphanumeric(
    n_samples=1000,
    *,
    characters=None,
    size=64,
    max_angle=45,
    binarize=False,
    threshold=0.5,
    font=None,
    test_size=None,
    return_info=False,
    random_state=None,
):
    """Generate images of rotated characters (the paper's 2D data set).

    Each image shows one of the characters a e b d p i j z 2 k x u drawn with a
    TrueType font (DejaVu Sans shipped with matplotlib by default), rotated
    counter-clockwise by an integer angle drawn uniformly in
    ``[-max_angle, max_angle]`` degrees about the image centre. Classes are
    balanced (counts differ by at most one) and shuffled.

    Parameters
    ----------
    n_samples : int, default=1000
        Number of images.
    characters : {"seen", "unseen", "all"} or iterable of str, default=None
        Classes to draw. ``None`` or ``"seen"`` is the paper's training set
        a b d e i j z k (:data:`ALPHANUMERIC_SEEN`); ``"unseen"`` is 2 x p
        (:data:`ALPHANUMERIC_UNSEEN`); ``"all"`` the twelve characters; or any
        subset, e.g. ``"abz"`` or ``["a", "2"]``.
    size : int, default=64
        Images are ``size x size`` pixels (at least 8).
    max_angle : int, default=45
        Largest absolute rotation in degrees (0 to 180); 0 disables rotation.
    binarize : bool, default=False
        If True, pixels are set to 1 where the grey level exceeds ``threshold``
        and to 0 elsewhere, as in the paper.
    threshold : float, default=0.5
        Binarisation threshold in (0, 1).
    font : str or path-like, default=None
        TrueType font file; None looks DejaVu Sans up through matplotlib.
    test_size : float, default=None
        If given, ``info`` gets a ``split`` column marking a stratified random
        fraction ``test_size`` of each class ``"test"`` and the rest ``"train"``
        (the paper uses an 80/20 split: ``test_size=0.2``).
    return_info : bool, default=False
        Also return the per-sample DataFrame and the class templates.
    random_state : int, RandomState instance or None, default=None
        Controls the labels, angles and split.

    Returns
    -------
    X : ndarray of shape (n_samples, size, size), dtype float32
        Grey levels in [0, 1] (or exactly 0 and 1 if ``binarize``).
    y : ndarray of shape (n_samples,), dtype str
        The character drawn in each image.
    info : pandas.DataFrame
        Only if ``return_info``: one row per sample with columns ``label``,
        ``angle`` (degrees, counter-clockwise), ``seen`` (the class is one of
        the paper's training characters) and, with ``test_size``, ``split``.
    templates : dict of str to ndarray of shape (size, size)
        Only if ``return_info``: the unrotated image of each class, in the
        order of ``characters`` (use them for class-level affinity matrices).

    Raises
    ------
    ValueError
        For an invalid parameter, an unknown character or an unreadable font.
    RuntimeError
        If ``font`` is None and no TrueType font can be found.

    See Also
    --------
    make_tetraminos : The paper's 3D toy data set.
    skavae.affinity.class_affinity_matrix : Class matrix from the templates.

    Examples
    --------
    >>> from skavae.datasets import make_alphanumeric
    >>> X, y = make_alphanumeric(n_samples=6, size=32, random_state=0)
    >>> X.shape, X.dtype
    ((6, 32, 32), dtype('float32'))
    >>> sorted(set(y)) <= ["a", "b", "d", "e", "i", "j", "k", "z"]
    True
    >>> X, y, info, templates = make_alphanumeric(
    ...     n_samples=4, characters="unseen", size=32, binarize=True,
    ...     return_info=True, random_state=0)
    >>> list(info.columns), sorted(templates)
    (['label', 'angle', 'seen'], ['2', 'p', 'x'])
    >>> bool(info["angle"].abs().max() <= 45), sorted(set(X.ravel().tolist()))
    (True, [0.0, 1.0])
    """
    n_samples = check_positive_int(n_samples, "n_samples")
    size = check_positive_int(size, "size", minimum=8)
    chars = _check_characters(characters)
    if (
        isinstance(max_angle, bool)
        or not isinstance(max_angle, Real)
        or not float(max_angle).is_integer()
        or not 0 <= max_angle <= 180
    ):
        raise ValueError(
            "max_angle must be a whole number of degrees in [0, 180]; "
            f"got {max_angle!r}."
        )
    if not isinstance(threshold, Real) or not 0 < threshold < 1:
        raise ValueError(f"threshold must be in (0, 1); got {threshold!r}.")
    test_size = check_test_size(test_size)
    rng = check_seed(random_state)

    max_angle = int(max_angle)
    class_index = balanced_labels(n_samples, len(chars), rng)
    angles = rng.randint(-max_angle, max_angle + 1, size=n_samples)
    split = assign_split(class_index, test_size, rng)

    # one rendering per distinct (class, angle) pair, then gather by index
    pairs = np.unique(class_index * 1000 + (angles + 500))
    needed = {ch: [] for ch in chars}
    for code in pairs:
        needed[chars[code // 1000]].append(code % 1000 - 500)
    if return_info:
        for ch in chars:
            if 0 not in needed[ch]:
                needed[ch].append(0)
    bank = _render_bank(chars, needed, size, font)
    keys = {key: i for i, key in enumerate(bank)}
    stack = np.stack(list(bank.values()))
    if binarize:
        stack = (stack > threshold).astype(np.float32)
    pick = np.array(
        [keys[chars[k], int(a)] for k, a in zip(class_index, angles)], dtype=np.intp
    )
    X = stack[pick]
    y = np.asarray(chars)[class_index]
    if not return_info:
        return X, y
    info = pd.DataFrame(
        {
            "label": y,
            "angle": angles.astype(np.int64),
            "seen": np.isin(y, ALPHANUMERIC_SEEN),
        }
    )
    if split is not None:
        info["split"] = split
    templates = {ch: stack[keys[ch, 0]].copy() for ch in chars}
    return X, y, info, templates
