"""A small reader of atomic coordinates from PDB and mmCIF files.

Only what density simulation needs is read: coordinates and elements of the
first model, or of every model on request (for biological-assembly files).
Files may be gzipped (detected from their first bytes, whatever their name).
Waters are skipped, hydrogens (and deuterium) are skipped unless asked for,
HETATM records (ligands, haem groups, ions) are kept unless asked otherwise,
every chain is kept, and for atoms with alternate locations only the blank
location and the first one named in the file (usually ``A``) are kept.
"""

from __future__ import annotations

import gzip
import os
import re

import numpy as np

__all__ = ["ATOMIC_NUMBERS", "read_atoms", "structure_label"]

WATER_NAMES = frozenset({"HOH", "WAT", "H2O", "DOD", "D2O", "TIP", "TIP3", "SOL"})

#: Atomic numbers of the elements met in biological structures; others count
#: as carbon (6).
ATOMIC_NUMBERS = {
    "H": 1, "D": 1, "B": 5, "C": 6, "N": 7, "O": 8, "F": 9, "NA": 11, "MG": 12,
    "AL": 13, "SI": 14, "P": 15, "S": 16, "CL": 17, "K": 19, "CA": 20, "V": 23,
    "CR": 24, "MN": 25, "FE": 26, "CO": 27, "NI": 28, "CU": 29, "ZN": 30,
    "GA": 31, "AS": 33, "SE": 34, "BR": 35, "RB": 37, "SR": 38, "MO": 42,
    "CD": 48, "SN": 50, "I": 53, "CS": 55, "BA": 56, "W": 74, "PT": 78,
    "AU": 79, "HG": 80, "PB": 82, "U": 92,
}  # fmt: skip

_CIF_TOKEN = re.compile(r"""'(?:[^']|'(?=\S))*'|"(?:[^"]|"(?=\S))*"|\S+""")
_STRUCTURE_SUFFIXES = (".pdb", ".ent", ".cif", ".mmcif")


def structure_label(path):
    """Label of a structure file: its name without ``.gz`` and format suffix.

    >>> structure_label("/data/1AKE.pdb.gz")
    '1AKE'
    """
    name = os.path.basename(os.fspath(path))
    if name.lower().endswith(".gz"):
        name = name[:-3]
    root, ext = os.path.splitext(name)
    return root if ext.lower() in _STRUCTURE_SUFFIXES else name


def is_structure_file(path):
    """True if the name ends in .pdb, .ent, .cif or .mmcif (optionally .gz)."""
    name = os.path.basename(os.fspath(path)).lower()
    if name.endswith(".gz"):
        name = name[:-3]
    return name.endswith(_STRUCTURE_SUFFIXES)


def _read_text(path):
    with open(path, "rb") as fh:
        raw = fh.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise ValueError(f"{path}: corrupt gzip file ({exc}).") from None
    return raw.decode("latin-1")


def _element_from_name(name, hetatm):
    """Element from a PDB atom name when the element columns are empty."""
    letters = re.sub(r"[^A-Za-z]", "", name[:2]).upper()
    if hetatm and len(letters) == 2 and letters in ATOMIC_NUMBERS and name[0] != " ":
        return letters
    stripped = re.sub(r"^[^A-Za-z]+", "", name.strip()).upper()
    return stripped[:1]


def _parse_pdb(text, all_models=False):
    coords, elements, resnames, altlocs, hetatm = [], [], [], [], []
    for line in text.splitlines():
        record = line[:6]
        if record.startswith("ENDMDL"):
            if all_models:
                continue
            break
        if record not in ("ATOM  ", "HETATM"):
            continue
        try:
            xyz = (float(line[30:38]), float(line[38:46]), float(line[46:54]))
        except ValueError:
            raise ValueError(f"bad coordinates in line {line!r}") from None
        element = line[76:78].strip().upper()
        if not element or not element.isalpha():
            element = _element_from_name(line[12:16], record == "HETATM")
        coords.append(xyz)
        elements.append(element)
        resnames.append(line[17:20].strip().upper())
        altlocs.append(line[16:17].strip())
        hetatm.append(record == "HETATM")
    return coords, elements, resnames, altlocs, hetatm


def _parse_mmcif(text, all_models=False):
    lines = text.splitlines()
    i, n = 0, len(lines)
    while i < n:
        if lines[i].strip() == "loop_" and i + 1 < n:
            if lines[i + 1].lstrip().startswith("_atom_site."):
                break
        i += 1
    else:
        raise ValueError("no _atom_site loop found")
    i += 1
    columns = []
    while i < n and lines[i].lstrip().startswith("_atom_site."):
        columns.append(lines[i].split()[0][len("_atom_site.") :])
        i += 1
    col = {name: k for k, name in enumerate(columns)}
    for required in ("Cartn_x", "Cartn_y", "Cartn_z"):
        if required not in col:
            raise ValueError(f"_atom_site loop lacks {required}")
    tokens = []
    while i < n:
        line = lines[i]
        stripped = line.strip()
        if stripped.startswith(("_", "loop_", "data_")) or stripped == "#":
            break
        if stripped:
            tokens.extend(_CIF_TOKEN.findall(line))
        i += 1
    ncol = len(columns)
    if len(tokens) % ncol:
        raise ValueError("the _atom_site loop has a truncated row")
    rows = [tokens[k : k + ncol] for k in range(0, len(tokens), ncol)]

    def get(row, *names, default=""):
        for name in names:
            if name in col:
                value = row[col[name]].strip("'\"")
                return "" if value in (".", "?") else value
        return default

    first_model = None
    coords, elements, resnames, altlocs, hetatm = [], [], [], [], []
    for row in rows:
        model = get(row, "pdbx_PDB_model_num")
        if first_model is None:
            first_model = model
        elif model != first_model and not all_models:
            continue
        try:
            xyz = tuple(float(get(row, f"Cartn_{a}")) for a in "xyz")
        except ValueError:
            raise ValueError(f"bad coordinates in row {' '.join(row)!r}") from None
        element = get(row, "type_symbol").upper()
        if not element:
            atom = get(row, "label_atom_id", "auth_atom_id")
            element = re.sub(r"^[^A-Za-z]+", "", atom).upper()[:1]
        coords.append(xyz)
        elements.append(element)
        resnames.append(get(row, "label_comp_id", "auth_comp_id").upper())
        altlocs.append(get(row, "label_alt_id"))
        hetatm.append(get(row, "group_PDB").upper() == "HETATM")
    return coords, elements, resnames, altlocs, hetatm


def read_atoms(path, *, include_hydrogens=False, include_hetatm=True, all_models=False):
    """Coordinates and atomic numbers of the atoms of a PDB or mmCIF file.

    Parameters
    ----------
    path : str or path-like
        A ``.pdb``/``.ent`` or ``.cif``/``.mmcif`` file, optionally gzipped.
        mmCIF is recognised by its suffix or by a first line starting with
        ``data_``.
    include_hydrogens : bool, default=False
        Keep hydrogen and deuterium atoms (few deposited X-ray structures have
        them, so they are skipped by default for consistency across files).
    include_hetatm : bool, default=True
        Keep HETATM records other than water (ligands, cofactors, ions).
    all_models : bool, default=False
        Read every model instead of only the first. Use it for wwPDB
        biological-assembly files (``.pdb1``), where each ``MODEL`` block is one
        copy of the assembly; for NMR ensembles the models are alternatives and
        only the first one should be used.

    Returns
    -------
    coords : ndarray of shape (n_atoms, 3)
        Cartesian coordinates in angstroms.
    atomic_numbers : ndarray of shape (n_atoms,)
        Atomic number of each atom (unknown elements count as carbon).

    Raises
    ------
    ValueError
        If the file cannot be parsed or holds no atoms; the message names it.

    Examples
    --------
    >>> from skavae.datasets._shipped import _DATA_DIR
    >>> coords, z = read_atoms(_DATA_DIR / "1hvr.pdb.gz")
    >>> coords.shape, sorted(set(z.astype(int).tolist()))
    ((1560, 3), [6, 7, 8, 16])
    >>> len(read_atoms(_DATA_DIR / "1hvr.pdb.gz", include_hydrogens=True)[0])
    1890
    """
    coords, numbers, _ = _read_atom_table(
        path,
        include_hydrogens=include_hydrogens,
        include_hetatm=include_hetatm,
        all_models=all_models,
    )
    return coords, numbers


def _read_atom_table(path, *, include_hydrogens, include_hetatm, all_models):
    """:func:`read_atoms` plus a boolean array marking the HETATM records."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"Structure file {path!r} does not exist.")
    text = _read_text(path)
    name = path.lower()[:-3] if path.lower().endswith(".gz") else path.lower()
    cif = name.endswith((".cif", ".mmcif")) or text.lstrip().startswith("data_")
    parse = _parse_mmcif if cif else _parse_pdb
    try:
        coords, elements, resnames, altlocs, hetatm = parse(text, all_models=all_models)
    except ValueError as exc:
        raise ValueError(f"Cannot read atoms from {path!r}: {exc}.") from None
    first_alt = next((a for a in altlocs if a), "")
    keep = np.array(
        [
            res not in WATER_NAMES
            and (include_hydrogens or el not in ("H", "D"))
            and (alt == "" or alt == first_alt)
            and (include_hetatm or not het)
            for el, res, alt, het in zip(elements, resnames, altlocs, hetatm)
        ],
        dtype=bool,
    )
    if not keep.any():
        raise ValueError(f"No atoms found in {path!r} (after skipping waters).")
    coords = np.asarray(coords, dtype=np.float64)[keep]
    numbers = np.array(
        [ATOMIC_NUMBERS.get(el, 6) for el, k in zip(elements, keep) if k],
        dtype=np.float64,
    )
    return coords, numbers, np.asarray(hetatm, dtype=bool)[keep]
