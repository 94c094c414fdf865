"""Safe model files: :meth:`AffinityVAE.save` and :func:`skavae.load`.

Pickle (and ``joblib``) files run code when they are loaded: a crafted file
given to ``pickle.load`` or ``joblib.load`` can do anything the user can. The
model files written here hold data only, and reading one never unpickles an
arbitrary object.

Format (version 1)
------------------
A model file (suggested suffix ``.skavae``) is a :mod:`zipfile` archive of
exactly two members:

``skavae.json``
    The description of the model, read with :func:`json.loads` only::

        {"format": "skavae-model", "format_version": 1,
         "skavae_version": "...", "class": "AffinityVAE",
         "params": {...}, "fitted": {...}, "notes": [...]}

    ``params`` are the estimator's ``get_params(deep=False)`` and ``fitted`` its
    fitted state (every attribute that is not a parameter: ``input_shape_``,
    ``n_features_in_``, ``classes_``, ``history_``, ``affinity_matrix_``,
    ``n_iter_``, ``input_mean_``, ``input_scale_``, ``pose_mean_``,
    ``pose_std_``, ...). JSON numbers, strings, booleans, null and lists stand
    for themselves; every other value is an object tagged ``"$type"``: tuples,
    dicts (as key-value pairs, keys of any type), numpy scalars and arrays
    (dtype, shape and values, so they read back with their exact dtype),
    pandas DataFrames (index, columns and one array per column),
    paths, torch devices, RandomState instances (their state), skavae objects
    - the affinity metrics of :mod:`skavae.affinity` and the data models of
    :mod:`skavae.datasets` (``MissingWedge``, ``CTF``) - as class name and
    their own parameters, rebuilt from an allow-list of skavae classes, and
    tensors (a key of ``tensors.pt``). Floats are written with :func:`repr`
    precision, so they read back bit for bit; NaN and infinities are written
    as ``NaN`` and ``Infinity``, which :func:`json.loads` reads. A parameter
    that is a user callable (a lambda affinity or schedule) cannot be stored:
    it is written as null with a note in ``notes``, and loading warns that it
    was replaced by None.
``tensors.pt``
    A flat ``{str: tensor}`` dict written with :func:`torch.save`: the
    network's ``state_dict`` under ``module_.<name>`` and any other fitted
    tensor (the optimiser state, for ``warm_start``). It is read with
    ``torch.load(weights_only=True, map_location="cpu")``, whose unpickler
    accepts tensors and primitive containers only, and is then checked to be a
    flat dict of tensors.

Loading rebuilds the network from the parameters and ``input_shape_`` and
loads the weights with ``load_state_dict(strict=True)``, so a loaded model
gives bit-identical results to the saved one on the CPU.

Why a zip of JSON and tensors rather than one torch file of primitive
containers (which ``weights_only`` would also read safely): the description is
checked - format version, class name, allow-list - before any binary data is
read, it can be read by any tool without torch (``unzip -p model.skavae
skavae.json``), and the only binary member is a plain dict of tensors, which is
what ``weights_only`` loading is designed and hardened for.

Files are written atomically (a temporary file in the same folder, renamed
into place) with permissions that follow the umask.
"""

from __future__ import annotations

import io
import json
import os
import pickle  # for pickle.UnpicklingError only: nothing here unpickles
import re
import warnings
import zipfile

import torch

from skavae._codec import (
    TENSORS_NAME,
    ModelFileError,
    _build,
    _Decoder,
    _Encoder,
    _estimator_classes,
    _fail,
)
from skavae._files import atomic_path
from skavae._validation import check_filters

FORMAT = "skavae-model"
FORMAT_VERSION = 1
JSON_NAME = "skavae.json"
MODULE_PREFIX = "module_."

_NOT_A_MODEL = (
    "is not a skavae model file (those are written by AffinityVAE.save and "
    "`skavae fit`); pickle and joblib files are never loaded, because loading "
    "them can run arbitrary code"
)


def _describe(estimator):
    """The JSON document and the tensors of a model file."""
    import skavae

    encode = _Encoder()
    params = estimator.get_params(deep=False)
    encoded_params = {name: encode(value, name) for name, value in params.items()}
    fitted = {}
    for name, value in vars(estimator).items():
        if name in params:
            continue
        if name == "module_":
            fitted[name] = _module_entry(value, encode)
        else:
            fitted[name] = encode(value, name)
    document = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "skavae_version": skavae.__version__,
        "torch_version": torch.__version__,
        "class": type(estimator).__name__,
        "params": encoded_params,
        "fitted": fitted,
        "notes": encode.notes,
    }
    return document, encode.tensors


def _module_entry(module, encode):
    from skavae._network import AffinityVAENetwork

    if type(module) is not AffinityVAENetwork:
        raise TypeError(
            f"module_ is a {type(module).__name__}, not the AffinityVAENetwork a "
            "skavae model file stores."
        )
    for key, tensor in module.state_dict().items():
        encode.tensors[MODULE_PREFIX + key] = tensor.detach().to("cpu")
    return {"$type": "module", "class": "AffinityVAENetwork",
            "training": bool(module.training)}  # fmt: skip


def _write_archive(file, document, tensors):
    buffer = io.BytesIO()
    torch.save(tensors, buffer)
    text = json.dumps(document, indent=1, allow_nan=True)
    with open(file, "wb") as fh:
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(JSON_NAME, text)
            archive.writestr(TENSORS_NAME, buffer.getvalue())
        fh.flush()
        os.fsync(fh.fileno())


def save_model(estimator, path):
    """Save a (fitted) AffinityVAE to a safe model file.

    The file is a zip archive of a JSON description and a plain dict of tensors
    (see :mod:`skavae._persistence`); loading it with :func:`load_model` never
    runs code from the file. It is written atomically: to a temporary file in
    the same folder, renamed into place once complete.

    Parameters
    ----------
    estimator : AffinityVAE
        The model to save; fitted or not.
    path : str or path-like
        The file to write (suggested suffix ``.skavae``); its folder must exist.
        An existing file is replaced.

    Raises
    ------
    TypeError
        If ``estimator`` is not an AffinityVAE, or a parameter or attribute
        holds a value that a model file cannot store (the message names it).
    OSError
        If the file cannot be written (the message names it).

    Warns
    -----
    UserWarning
        When a parameter is a callable (a lambda affinity or schedule): it is
        stored as None.

    See Also
    --------
    load_model : Read the file back.

    Examples
    --------
    >>> import os, tempfile, numpy as np
    >>> from skavae import AffinityVAE
    >>> from skavae._persistence import load_model, save_model
    >>> X = np.random.RandomState(0).rand(20, 8, 8)
    >>> model = AffinityVAE(latent_dims=2, max_epochs=1, random_state=0).fit(X)
    >>> path = os.path.join(tempfile.mkdtemp(), "model.skavae")
    >>> save_model(model, path)
    >>> bool(np.array_equal(load_model(path).transform(X), model.transform(X)))
    True
    """
    allowed = _estimator_classes()
    if allowed.get(type(estimator).__name__) is not type(estimator):
        raise TypeError(
            f"save_model saves an AffinityVAE; got a {type(estimator).__name__}."
        )
    path = os.fspath(path)
    document, tensors = _describe(estimator)
    if document["notes"]:
        names = ", ".join(note["name"] for note in document["notes"])
        warnings.warn(
            f"{names}: a callable cannot be stored in a model file; {path} stores "
            "None in its place.",
            UserWarning,
            stacklevel=2,
        )
    try:
        with atomic_path(path, suffix=".part") as tmp:
            _write_archive(tmp, document, tensors)
    except OSError as exc:
        if exc.errno is None:
            raise OSError(f"cannot write the model file {path!r}: {exc}") from exc
        reason = exc.strerror or str(exc)
        raise OSError(
            exc.errno, f"cannot write the model file ({reason})", path
        ) from exc


def _read_archive(path):
    """The JSON document and the tensors of a model file, validated."""
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise ModelFileError(
            f"{path!r} {_NOT_A_MODEL} (it is not a zip archive)."
        ) from None
    with archive:
        names = archive.namelist()
        if JSON_NAME not in names:
            raise ModelFileError(
                f"{path!r} {_NOT_A_MODEL} (the archive holds no {JSON_NAME})."
            )
        if sorted(names) != sorted([JSON_NAME, TENSORS_NAME]):
            raise _fail(
                path,
                f"a skavae model file holds exactly {JSON_NAME} and {TENSORS_NAME}; "
                f"this one holds {names}.",
            )
        document = _read_document(archive, path)
        tensors = _read_tensors(archive, path)
    return document, tensors


def _read_document(archive, path):
    try:
        document = json.loads(archive.read(JSON_NAME).decode("utf-8"))
    except RecursionError:
        raise _fail(path, f"{JSON_NAME} is nested too deeply.") from None
    except Exception as exc:  # zip CRC, zlib, EOF, UTF-8 and JSON errors
        raise _fail(path, f"{JSON_NAME} is corrupted ({_short(exc)}).") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ModelFileError(
            f"{path!r} {_NOT_A_MODEL} ({JSON_NAME} does not describe a skavae model)."
        )
    version = document.get("format_version")
    if type(version) is not int or version < 1:
        raise _fail(path, f"invalid format version {version!r}.")
    if version > FORMAT_VERSION:
        import skavae

        raise _fail(
            path,
            f"written by skavae {document.get('skavae_version', '?')} in model "
            f"format version {version}; this skavae ({skavae.__version__}) reads "
            f"versions up to {FORMAT_VERSION}: upgrade skavae to load it.",
        )
    for key, kind in (("params", dict), ("fitted", dict), ("notes", list)):
        if not isinstance(document.get(key), kind):
            raise _fail(path, f"{JSON_NAME} has no valid {key!r} entry.")
    return document


def _read_tensors(archive, path):
    try:
        data = archive.read(TENSORS_NAME)
    except Exception as exc:  # zip CRC, zlib and EOF errors
        raise _fail(path, f"{TENSORS_NAME} is corrupted ({_short(exc)}).") from None
    try:
        with warnings.catch_warnings():  # torch's notes on odd pickle protocols
            warnings.simplefilter("ignore")
            tensors = torch.load(
                io.BytesIO(data), map_location="cpu", weights_only=True
            )
    except pickle.UnpicklingError as exc:  # the weights-only unpickler refused
        raise _fail(
            path,
            f"{TENSORS_NAME} is not a plain file of tensors ({_refused(exc)}) and "
            "was not loaded: a file like this one can be crafted to run code.",
        ) from None
    except Exception as exc:  # torch format errors: a truncated or damaged file
        first = " ".join(str(exc).split()).split(". ")[0]
        raise _fail(path, f"{TENSORS_NAME} is corrupted ({_short(first)}).") from None
    if not isinstance(tensors, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in tensors.items()
    ):
        raise _fail(path, f"{TENSORS_NAME} is not a flat dict of tensors.")
    return tensors


def _refused(exc):
    """What the weights-only unpickler refused, from its (long) message."""
    text = " ".join(str(exc).split())
    found = re.search(r"Unsupported global: GLOBAL (\S+)", text)
    if found:
        return f"it refers to {found.group(1)}"
    found = re.search(r"WeightsUnpickler error: (.+?)(?: Check the|$)", text)
    return f"weights-only unpickler: {_short(found.group(1) if found else text, 80)}"


def _short(exc, limit=200):
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _warn_notes(notes, path):
    names = [n.get("name") for n in notes if isinstance(n, dict)]
    names = [_short(n, 80) for n in names if isinstance(n, str)]
    if names:
        warnings.warn(
            f"{path}: the parameter(s) {', '.join(names)} held a callable when the "
            "model was saved, which a model file cannot store; they were replaced "
            "by None. transform, inverse_transform, reconstruct and sample work "
            "as before; set them again before fitting.",
            UserWarning,
            stacklevel=4,  # the caller of load_model
        )


def _restore_module(estimator, entry, tensors, path):
    if not isinstance(entry, dict) or entry != {
        "$type": "module",
        "class": "AffinityVAENetwork",
        "training": bool(entry.get("training")),
    }:
        raise _fail(path, "malformed module_ entry.")
    state = {
        k[len(MODULE_PREFIX) :]: v
        for k, v in tensors.items()
        if k.startswith(MODULE_PREFIX)
    }
    try:
        network = estimator._new_network(
            tuple(estimator.input_shape_), check_filters(estimator.filters), 0
        )
        network.load_state_dict(state, strict=True)
    except (AttributeError, TypeError, ValueError, RuntimeError) as exc:
        raise _fail(
            path, f"the network weights do not fit its parameters ({_short(exc)})."
        ) from None
    network.train(entry["training"])
    return network


def _restore(document, tensors, path):
    classes = _estimator_classes()
    name = document.get("class")
    if name not in classes:
        raise _fail(
            path,
            f"names the class {name!r}, which is not one a skavae model file may "
            f"hold ({', '.join(classes)}).",
        )
    cls = classes[name]
    decode = _Decoder(path, tensors)
    params = decode.params(document["params"])
    estimator = _build(cls, params, path)
    _warn_notes(document["notes"], path)
    module = None
    for attr, node in document["fitted"].items():
        if not attr.isidentifier() or attr.startswith("__") or hasattr(cls, attr):
            raise _fail(path, f"invalid attribute name {attr!r}.")
        if attr in params:
            raise _fail(path, f"attribute {attr!r} is also a parameter.")
        if attr == "module_":
            module = node
        else:
            setattr(estimator, attr, decode(node))
    if module is not None:
        estimator.module_ = _restore_module(estimator, module, tensors, path)
        decode.used.update(k for k in tensors if k.startswith(MODULE_PREFIX))
    unused = sorted(set(tensors) - decode.used)
    if unused:
        raise _fail(path, f"{TENSORS_NAME} holds unexpected tensors {unused[:5]}.")
    return estimator


def load_model(path):
    """Load a model saved by :meth:`AffinityVAE.save` (or ``skavae fit``).

    Nothing in the file is unpickled as an arbitrary object: the description is
    JSON, the weights are read with ``torch.load(weights_only=True)``, and the
    only classes built are :class:`~skavae.AffinityVAE`, the affinity metrics
    of :mod:`skavae.affinity` and the data models of :mod:`skavae.datasets`.
    Pickle and ``joblib`` files are refused (loading them can run code: load
    those only from sources you trust, with ``joblib.load``).

    Parameters
    ----------
    path : str or path-like
        A model file.

    Returns
    -------
    model : AffinityVAE
        The model, its network on the CPU; on the CPU it gives bit-identical
        results to the saved one.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If ``path`` is not a skavae model file (a pickle or joblib file, any
        other file), is corrupted or truncated, was written in a newer format
        version, or names a class outside the allow-list; the message names
        the file.
    OSError
        If ``path`` cannot be read.

    Warns
    -----
    UserWarning
        Once, naming the parameters, when the saved model had callables (a
        lambda affinity or schedule) that were replaced by None.

    See Also
    --------
    skavae.AffinityVAE.save : Write a model file.

    Examples
    --------
    >>> import os, tempfile, numpy as np
    >>> import skavae
    >>> X = np.random.RandomState(0).rand(20, 8, 8)
    >>> model = skavae.AffinityVAE(latent_dims=2, max_epochs=1, random_state=0)
    >>> path = os.path.join(tempfile.mkdtemp(), "model.skavae")
    >>> model.fit(X).save(path)
    >>> loaded = skavae.load(path)
    >>> loaded.n_iter_, loaded.input_shape_
    (1, (8, 8))
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"Model file {path!r} does not exist.")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path!r} is a folder, not a model file.")
    try:
        document, tensors = _read_archive(path)
    except OSError as exc:
        reason = exc.strerror or _short(exc)
        raise OSError(f"cannot read the model file {path!r}: {reason}") from None
    return _restore(document, tensors, path)
