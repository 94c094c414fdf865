"""Structures shipped with skavae and the atom source of :func:`make_proteins`.

Two sets are shipped in ``skavae/datasets/data``: twelve PDB entries as
gzipped PDB files (``<id>.pdb.gz``, read with :func:`read_atoms`) and 21
abundant *E. coli* machines as one compressed array file, ``ecoli.npz``
(heavy atoms only, built by ``tools/make_ecoli_npz.py``; see ``README.md`` in
that folder for the sources). The array file holds plain arrays only and is
read with ``allow_pickle=False``.

A structure *source* is what :func:`load_atoms` turns into coordinates and
weights: a file path, the :class:`ShippedAtoms` of an ``ecoli.npz`` entry or
pre-loaded ``(coords, atomic_numbers)`` arrays.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from skavae.datasets._pdb import is_structure_file, read_atoms, structure_label

_DATA_DIR = Path(__file__).parent / "data"
_ECOLI_FILE = _DATA_DIR / "ecoli.npz"
_ECOLI_KEYS = ("ids", "offsets", "coords", "atomic_numbers", "hetatm")

#: PDB ids of the structures shipped with skavae (see :func:`make_proteins`).
PROTEIN_IDS = (
    "19hc",
    "1a28",
    "1ake",
    "1dx5",
    "1hvr",
    "1osm",
    "1pdo",
    "2cay",
    "2xcj",
    "3e8m",
    "3pwp",
    "4ake",
)

#: PDB ids of the 21 shipped abundant E. coli machines (see the module
#: docstring), ``structures="ecoli"``; ``structures="all"`` is both sets.
ECOLI_PROTEIN_IDS = (
    "11as",
    "1a5t",
    "1aon",
    "1dul",
    "1e58",
    "1ecp",
    "1etu",
    "1fdo",
    "1ggr",
    "1gyt",
    "1j59",
    "1oel",
    "1pfk",
    "2gls",
    "2kho",
    "3bep",
    "3ice",
    "3iyd",
    "3rer",
    "5a1a",
    "6rku",
)

#: Names of shipped sets accepted by ``structures``.
_SHIPPED_SETS = {
    "ecoli": ECOLI_PROTEIN_IDS,
    "all": PROTEIN_IDS + ECOLI_PROTEIN_IDS,
}


class ShippedAtoms(NamedTuple):
    """Heavy atoms of one structure of ``ecoli.npz`` (read-only arrays)."""

    coords: np.ndarray  # float32, (n_atoms, 3), angstroms, x y z
    atomic_numbers: np.ndarray  # uint8, (n_atoms,)
    hetatm: np.ndarray  # bool, (n_atoms,), True for HETATM records


@functools.lru_cache(maxsize=1)
def load_ecoli():
    """The E. coli structures of ``ecoli.npz``, as a dict id -> ShippedAtoms.

    Returns
    -------
    dict of str to ShippedAtoms
        One entry per lower-case PDB id, in the file's (alphabetical) order.

    Examples
    --------
    >>> atoms = load_ecoli()
    >>> len(atoms), atoms["1aon"].coords.shape, atoms["1aon"].coords.dtype
    (21, (58870, 3), dtype('float32'))
    """
    with np.load(_ECOLI_FILE, allow_pickle=False) as data:
        missing = [key for key in _ECOLI_KEYS if key not in data.files]
        if missing:
            raise ValueError(f"{_ECOLI_FILE.name} lacks the arrays {missing}.")
        ids, offsets = data["ids"], data["offsets"]
        arrays = [data[key] for key in _ECOLI_KEYS[2:]]
    for array in arrays:
        array.setflags(write=False)
    return {
        str(pdb_id): ShippedAtoms(*(a[offsets[k] : offsets[k + 1]] for a in arrays))
        for k, pdb_id in enumerate(ids)
    }


def ecoli_metadata():
    """Per-structure metadata of ``ecoli.npz`` as a :class:`pandas.DataFrame`.

    Columns ``name``, ``state``, ``note``, ``source``, ``kda``, ``n_atoms``
    and ``max_radius`` (angstroms from the centre of mass), indexed by id.

    Examples
    --------
    >>> meta = ecoli_metadata()
    >>> int(meta.loc["1aon", "n_atoms"]), round(float(meta.loc["1aon", "kda"]))
    (58870, 843)
    """
    import pandas as pd

    columns = ("name", "state", "note", "source", "kda", "n_atoms", "max_radius")
    with np.load(_ECOLI_FILE, allow_pickle=False) as data:
        table = {key: data[key] for key in columns}
        ids = data["ids"].astype(str)
    return pd.DataFrame(table, index=pd.Index(ids, name="id"))


def load_atoms(source, *, include_hydrogens=False, include_hetatm=True):
    """Coordinates and weights (atomic numbers) of one structure source.

    Parameters
    ----------
    source : path-like, ShippedAtoms or tuple of two arrays
        A PDB/mmCIF file (read with :func:`read_atoms`), an entry of
        :func:`load_ecoli` or pre-loaded ``(coords, atomic_numbers)``.
    include_hydrogens : bool, default=False
        Passed to :func:`read_atoms` for files; shipped E. coli entries and
        pre-loaded arrays are used as they are (the former have no hydrogens).
    include_hetatm : bool, default=True
        Keep HETATM records other than water (files and shipped entries).

    Returns
    -------
    coords : ndarray of shape (n_atoms, 3), dtype float64
    weights : ndarray of shape (n_atoms,), dtype float64

    Examples
    --------
    >>> coords, z = load_atoms(load_ecoli()["1etu"], include_hetatm=False)
    >>> coords.shape, coords.dtype, int(z.max())
    ((1366, 3), dtype('float64'), 16)
    """
    if isinstance(source, (str, os.PathLike)):
        return read_atoms(
            source, include_hydrogens=include_hydrogens, include_hetatm=include_hetatm
        )
    if isinstance(source, ShippedAtoms):
        keep = slice(None) if include_hetatm else ~source.hetatm
        coords, numbers = source.coords[keep], source.atomic_numbers[keep]
    else:
        coords, numbers = source
    coords = np.asarray(coords, dtype=np.float64)
    numbers = np.asarray(numbers, dtype=np.float64)
    if coords.ndim != 2 or coords.shape[1] != 3 or numbers.shape != coords.shape[:1]:
        raise ValueError(
            "Pre-loaded atoms must be coords of shape (n_atoms, 3) and weights of "
            f"shape (n_atoms,); got {coords.shape} and {numbers.shape}."
        )
    if not len(coords):
        raise ValueError("A structure has no atoms (after skipping HETATM records).")
    return coords, numbers


# ------------------------------------------------- structures= of make_proteins
def _shipped_path(pdb_id):
    return _DATA_DIR / f"{pdb_id.lower()}.pdb.gz"


def _shipped_source(pdb_id):
    """Atom source of a shipped id: a file path or an ``ecoli.npz`` entry."""
    pdb_id = pdb_id.lower()
    if pdb_id in ECOLI_PROTEIN_IDS:
        return load_ecoli()[pdb_id]
    return os.fspath(_shipped_path(pdb_id))


def _expand(entry):
    """(label, source) pairs for one entry: a shipped id or set, file or folder.

    A source is a file path or a shipped ``ecoli.npz`` entry (see
    :func:`skavae.datasets._shipped.load_atoms`). The set names ``"ecoli"`` and
    ``"all"`` are only recognised as plain strings (a path-like object is
    always a path).
    """
    if isinstance(entry, str) and entry.lower() in _SHIPPED_SETS:
        return [(i, _shipped_source(i)) for i in _SHIPPED_SETS[entry.lower()]]
    if isinstance(entry, (str, os.PathLike)):
        text = os.fspath(entry)
        if os.path.isdir(text):
            files = sorted(
                f
                for f in os.listdir(text)
                if is_structure_file(f) and os.path.isfile(os.path.join(text, f))
            )
            if not files:
                raise ValueError(
                    f"Folder {text!r} holds no .pdb, .ent, .cif or .mmcif files "
                    "(optionally gzipped)."
                )
            return [(structure_label(f), os.path.join(text, f)) for f in files]
        if os.path.isfile(text):
            return [(structure_label(text), text)]
        if text.lower() in PROTEIN_IDS + ECOLI_PROTEIN_IDS:
            return [(text.lower(), _shipped_source(text))]
        raise ValueError(
            f"{text!r} is neither a shipped PDB id (see PROTEIN_IDS and "
            "ECOLI_PROTEIN_IDS in skavae.datasets), a shipped set ('ecoli', "
            "'all'), an existing structure file nor a folder."
        )
    raise ValueError(
        f"A structure must be a PDB id, a file or a folder path; got {entry!r}."
    )


def _resolve_structures(structures):
    """List of (label, source) pairs, labels unique (source: see _expand)."""
    if structures is None:
        pairs = [(i, _shipped_source(i)) for i in PROTEIN_IDS]
    elif isinstance(structures, dict):
        pairs = []
        for label, entry in structures.items():
            found = _expand(entry)
            if len(found) != 1:
                raise ValueError(
                    f"structures[{label!r}] must name one structure; {entry!r} "
                    f"holds {len(found)}."
                )
            pairs.append((str(label), found[0][1]))
    elif isinstance(structures, (str, os.PathLike)):
        pairs = _expand(structures)
    else:
        try:
            entries = list(structures)
        except TypeError:
            raise ValueError(
                "structures must be None, a PDB id, 'ecoli', 'all', a path, a list "
                f"of those or a dict label -> path; got {structures!r}."
            ) from None
        pairs = [pair for entry in entries for pair in _expand(entry)]
    if not pairs:
        raise ValueError("structures is empty; give at least one structure.")
    labels = [label for label, _ in pairs]
    duplicated = sorted({lab for lab in labels if labels.count(lab) > 1})
    if duplicated:
        raise ValueError(
            f"Several structures share the labels {duplicated}; pass a dict "
            "label -> path to name them."
        )
    return pairs
