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

from skavae.datasets._pdb import read_atoms

_DATA_DIR = Path(__file__).parent / "data"
_ECOLI_FILE = _DATA_DIR / "ecoli.npz"
_ECOLI_KEYS = ("ids", "offsets", "coords", "atomic_numbers", "hetatm")


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
