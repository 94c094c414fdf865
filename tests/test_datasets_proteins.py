"""Tests of make_proteins and of the PDB/mmCIF reader behind it."""

import gzip
import inspect
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from skavae.datasets import ECOLI_PROTEIN_IDS, PROTEIN_IDS, make_proteins
from skavae.datasets._pdb import read_atoms, structure_label
from skavae.datasets._proteins import _simulate
from skavae.datasets._shipped import (
    _DATA_DIR,
    _ECOLI_FILE,
    ShippedAtoms,
    ecoli_metadata,
    load_atoms,
    load_ecoli,
)
from skavae.datasets._transforms import rotation_matrices_3d, splat_trilinear

SMALL = ["2xcj", "2cay", "1ake"]  # radii below 30 angstroms
TINY = {"size": 20, "voxel_size": 4.0}


def _centre_of_mass(vol):
    grid = np.indices(vol.shape).reshape(3, -1) + 0.5  # voxel centres
    m = vol.ravel().astype(np.float64)
    return grid @ m / m.sum()


# --------------------------------------------------------------------------
# make_proteins


def test_shipped_structures_are_present():
    assert len(PROTEIN_IDS) == 12
    for pdb_id in PROTEIN_IDS:
        assert (_DATA_DIR / f"{pdb_id}.pdb.gz").is_file()


def test_proteins_shapes_dtypes_labels():
    X, y = make_proteins(n_samples=6, structures=SMALL, random_state=0, **TINY)
    assert X.shape == (6, 20, 20, 20)
    assert X.dtype == np.float32
    assert sorted(y) == sorted(SMALL * 2)
    assert X.min() >= 0 and X.max() > 0


def test_proteins_deterministic():
    a = make_proteins(n_samples=3, structures=SMALL, random_state=5, **TINY)
    b = make_proteins(n_samples=3, structures=SMALL, random_state=5, **TINY)
    c = make_proteins(n_samples=3, structures=SMALL, random_state=6, **TINY)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_protein_maps_are_centred_and_keep_electrons():
    X, y, info, templates = make_proteins(
        n_samples=6, structures=SMALL, return_info=True, random_state=0, **TINY
    )
    centre = np.full(3, 20 / 2)
    for vol in [*X, *templates.values()]:
        np.testing.assert_allclose(_centre_of_mass(vol), centre, atol=1e-3)
    for vol, label in zip(X, y):
        _, z = read_atoms(_DATA_DIR / f"{label}.pdb.gz")
        np.testing.assert_allclose(vol.sum() * 4.0**3, z.sum(), rtol=1e-4)


def test_protein_info_and_templates():
    X, y, info, templates = make_proteins(
        n_samples=4,
        structures=SMALL[::2],
        max_shift=1.0,
        test_size=0.5,
        return_info=True,
        random_state=0,
        **TINY,
    )
    assert info.columns.tolist() == [
        "label",
        *(f"angle_{d}" for d in range(3)),
        *(f"shift_{d}" for d in range(3)),
        "split",
    ]
    angles = info[["angle_0", "angle_1", "angle_2"]].to_numpy()
    assert ((angles % 10 == 0) & (angles >= 10) & (angles <= 360)).all()
    assert np.abs(info[["shift_0", "shift_1", "shift_2"]].to_numpy()).max() <= 1.0
    assert sorted(templates) == sorted(SMALL[::2])
    # a shift moves the centre of mass by the shift
    for vol, (_, row) in zip(X, info.iterrows()):
        shift = row[["shift_0", "shift_1", "shift_2"]].to_numpy(float)
        np.testing.assert_allclose(_centre_of_mass(vol), 10 + shift, atol=1e-3)


def test_proteins_360_degrees_and_no_rotation_equal_templates():
    for kwargs in ({"angle_step": 360}, {"rotate": False}):
        X, y, _, templates = make_proteins(
            n_samples=3,
            structures=SMALL,
            return_info=True,
            random_state=0,
            **TINY,
            **kwargs,
        )
        for vol, label in zip(X, y):
            np.testing.assert_array_equal(vol, templates[label])


def test_rotation_by_90_degrees_matches_rot90():
    # with the rotation centre on the grid centre, a right-handed quarter turn
    # about axis k equals np.rot90 in the plane (k+1, k+2), from the first
    # axis towards the second
    coords, z = read_atoms(_DATA_DIR / "2xcj.pdb.gz")
    coords = coords - (coords * z[:, None]).sum(0) / z.sum()
    base = _simulate(coords, z, np.eye(3)[None], np.zeros((1, 3)), 20, 4.0, 0.6)[0]
    for k in range(3):
        angles = np.zeros((1, 3))
        angles[0, k] = 90
        rot = _simulate(
            coords, z, rotation_matrices_3d(angles), np.zeros((1, 3)), 20, 4.0, 0.6
        )[0]
        expected = np.rot90(base, 1, axes=((k + 1) % 3, (k + 2) % 3))
        np.testing.assert_allclose(rot, expected, atol=1e-5 * base.max())


def test_molmap_width_follows_resolution():
    # the second moment of a one-atom map is sigma^2 per axis on average over
    # the atom's position within a voxel (trilinear spread is compensated)
    sigma_factor, resolution, voxel = 0.225, 10.0, 2.0
    sigma_vox = sigma_factor * resolution / voxel
    grid = np.indices((24, 24, 24)).reshape(3, -1) + 0.5
    variances = []
    for f in np.arange(0.05, 1.0, 0.1):
        atom = np.full((1, 3), f * voxel)
        one = _simulate(
            atom, np.ones(1), np.eye(3)[None], np.zeros((1, 3)), 24, voxel, sigma_vox
        )[0]
        m = one.ravel() / one.sum()
        com = grid @ m
        variances.append(((grid - com[:, None]) ** 2) @ m)
    np.testing.assert_allclose(np.mean(variances, axis=0), sigma_vox**2, rtol=0.01)


def test_proteins_from_files_folder_and_dict(tmp_path):
    for pdb_id in ("2xcj", "2cay"):
        shutil.copy(_DATA_DIR / f"{pdb_id}.pdb.gz", tmp_path / f"{pdb_id}.pdb.gz")
    (tmp_path / "notes.txt").write_text("not a structure")
    _, y = make_proteins(n_samples=2, structures=tmp_path, random_state=0, **TINY)
    assert sorted(y) == ["2cay", "2xcj"]
    _, y = make_proteins(
        n_samples=2, structures=[tmp_path / "2xcj.pdb.gz"], random_state=0, **TINY
    )
    assert list(y) == ["2xcj", "2xcj"]
    _, y = make_proteins(
        n_samples=2,
        structures={"small": tmp_path / "2xcj.pdb.gz", "other": "2cay"},
        random_state=0,
        **TINY,
    )
    assert sorted(y) == ["other", "small"]


def test_proteins_warns_when_structure_sticks_out():
    with pytest.warns(UserWarning, match="cropped"):
        make_proteins(n_samples=1, structures="3pwp", size=16, voxel_size=4.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_proteins(n_samples=1, structures="2xcj", size=20, voxel_size=4.0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_samples": 0}, "n_samples"),
        ({"size": 4}, "size"),
        ({"voxel_size": 0}, "voxel_size"),
        ({"resolution": -1}, "resolution"),
        ({"angle_step": 7}, "divide 360"),
        ({"structures": "9zzz"}, "neither a shipped PDB id"),
        ({"structures": []}, "empty"),
        ({"structures": ["2xcj", "2xcj"]}, "share the labels"),
        ({"structures": 3}, "structures must be"),
        ({"rotate": 1}, "rotate"),
    ],
)
def test_proteins_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_proteins(**{"n_samples": 2, "structures": "2xcj", **TINY, **kwargs})


def test_sigma_factor_default_is_a_plain_float():
    default = inspect.signature(make_proteins).parameters["sigma_factor"].default
    assert type(default) is float
    assert default == pytest.approx(1 / (np.pi * np.sqrt(2)))


def test_proteins_empty_folder(tmp_path):
    with pytest.raises(ValueError, match="holds no .pdb"):
        make_proteins(n_samples=2, structures=tmp_path, **TINY)


# --------------------------------------------------------------------------
# shipped E. coli structures (data/ecoli.npz)

# heavy atoms per entry as counted by the description of the source files
# (ATOM + HETATM, no H/D, no water; all MODELs of 1pfk and 1e58) ...
ECOLI_SOURCE_HEAVY_ATOMS = {
    "1aon": 58870, "2gls": 43656, "3iyd": 35254, "5a1a": 32920, "1oel": 26929,
    "1gyt": 23112, "3ice": 19474, "6rku": 15526, "1ecp": 10758, "1pfk": 10036,
    "3bep": 6193, "1fdo": 5678, "11as": 5136, "1j59": 4432, "2kho": 4501,
    "1e58": 4160, "3rer": 3217, "1a5t": 2513, "1ggr": 1774, "1dul": 1593,
    "1etu": 1395,
}  # fmt: skip
# ... and how the shipped entries differ: 1oel is the 14-mer built with the
# file's BIOMT operators (two rings), and skavae keeps only the first alternate
# location where those counts included every one
ECOLI_SECOND_ALTLOC_ATOMS = {"1e58": 144, "3ice": 21, "3rer": 24, "6rku": 33}


def test_ecoli_npz_loads_without_pickle_and_matches_the_source_counts():
    with np.load(_ECOLI_FILE, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    assert all(a.dtype != object for a in arrays.values())
    assert tuple(arrays["ids"].tolist()) == ECOLI_PROTEIN_IDS
    assert arrays["coords"].dtype == np.float32
    assert arrays["coords"].shape == (arrays["offsets"][-1], 3)
    assert arrays["atomic_numbers"].dtype == np.uint8
    assert arrays["hetatm"].dtype == bool
    assert arrays["atomic_numbers"].min() > 1  # heavy atoms only
    np.testing.assert_array_equal(np.diff(arrays["offsets"]), arrays["n_atoms"])
    expected = {
        pdb_id: n * (2 if pdb_id == "1oel" else 1)
        - ECOLI_SECOND_ALTLOC_ATOMS.get(pdb_id, 0)
        for pdb_id, n in ECOLI_SOURCE_HEAVY_ATOMS.items()
    }
    assert dict(zip(arrays["ids"].tolist(), arrays["n_atoms"].tolist())) == expected
    assert _ECOLI_FILE.stat().st_size < 4_000_000
    meta = ecoli_metadata()
    assert "BIOMT" in meta.loc["1oel", "note"]
    assert "asymmetric unit" in meta.loc["1a5t", "state"]


def test_ecoli_entries_and_masses():
    atoms = load_ecoli()
    assert tuple(atoms) == ECOLI_PROTEIN_IDS
    assert not set(ECOLI_PROTEIN_IDS) & set(PROTEIN_IDS)
    assert all(isinstance(a, ShippedAtoms) for a in atoms.values())
    with pytest.raises(ValueError, match="read-only"):
        atoms["1aon"].coords[0, 0] = 0.0
    electrons = {i: int(a.atomic_numbers.sum(dtype=np.int64)) for i, a in atoms.items()}
    order = sorted(electrons, key=electrons.get)
    assert order[-1] == "1aon"
    assert order[0] in ("1etu", "1dul", "1ggr")
    kda = ecoli_metadata()["kda"]
    assert 18 < kda.min() < 23 and 800 < kda.max() < 900
    # 1oel: the second ring is the first turned by the BIOMT two-fold about x
    ring = atoms["1oel"].coords.reshape(2, -1, 3)
    np.testing.assert_allclose(ring[1], ring[0] * [1, -1, -1], atol=1e-4)


def test_ecoli_and_all_sets_give_balanced_classes():
    grid = {"size": 16, "voxel_size": 20.0, "resolution": 40.0}  # 320 angstroms
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # everything fits, nothing too coarse
        X, y = make_proteins(n_samples=42, structures="ecoli", random_state=0, **grid)
    assert X.shape == (42, 16, 16, 16)
    assert sorted(set(y)) == sorted(ECOLI_PROTEIN_IDS)
    assert set(np.unique(y, return_counts=True)[1]) == {2}
    _, y = make_proteins(n_samples=70, structures="ALL", random_state=0, **grid)
    labels, counts = np.unique(y, return_counts=True)
    assert sorted(labels) == sorted(PROTEIN_IDS + ECOLI_PROTEIN_IDS)
    assert len(labels) == 33 and counts.max() - counts.min() <= 1


def test_ecoli_ids_mix_with_files_and_keep_electrons(tmp_path):
    shutil.copy(_DATA_DIR / "2xcj.pdb.gz", tmp_path / "mine.pdb.gz")
    X, y = make_proteins(
        n_samples=2,
        structures=["1etu", tmp_path / "mine.pdb.gz"],
        random_state=0,
        **TINY,
    )
    assert sorted(y) == ["1etu", "mine"]
    atoms = load_ecoli()["1etu"]
    for include_hetatm in (True, False):
        X, _ = make_proteins(
            n_samples=1,
            structures={"tu": "1etu"},
            include_hetatm=include_hetatm,
            size=24,
            voxel_size=4.0,
            random_state=0,
        )
        keep = slice(None) if include_hetatm else ~atoms.hetatm
        electrons = atoms.atomic_numbers[keep].sum(dtype=np.int64)
        np.testing.assert_allclose(X[0].sum() * 4.0**3, electrons, rtol=1e-4)


def test_large_assemblies_warn_in_small_boxes():
    grid = {"n_samples": 1, "structures": "1aon", "size": 32, "resolution": 20.0}
    with pytest.warns(UserWarning, match="'1aon' reaches 1"):
        make_proteins(voxel_size=5.0, **grid)  # 160 angstroms: cropped
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_proteins(voxel_size=8.0, **grid)  # 256 angstroms: fits


def test_load_atoms_sources():
    coords = np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]])
    c, w = load_atoms((coords, [6, 8]))
    np.testing.assert_array_equal(c, coords)
    assert w.dtype == np.float64 and w.tolist() == [6.0, 8.0]
    with pytest.raises(ValueError, match="shape"):
        load_atoms((coords, [6]))
    c, w = load_atoms(_DATA_DIR / "2xcj.pdb.gz")
    np.testing.assert_array_equal(w, read_atoms(_DATA_DIR / "2xcj.pdb.gz")[1])


def test_ecoli_data_ships_with_the_package():
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    declared = pyproject.read_text().split("[tool.setuptools.package-data]")[1]
    declared = declared.split("\n[")[0]
    assert '"data/*.npz"' in declared and '"data/README.md"' in declared
    assert (_DATA_DIR / "README.md").is_file()


def test_splat_trilinear_matches_a_point_by_point_sum():
    rng = np.random.default_rng(0)
    shape = (5, 6, 7)
    points = rng.uniform(-1.5, 8.5, (2, 40, 3))  # some partly or fully outside
    weights = rng.uniform(0.5, 2.0, (2, 40))
    expected = np.zeros((2, *shape))
    for v in range(2):
        for p, w in zip(points[v], weights[v]):
            base = np.floor(p - 0.5).astype(int)
            frac = p - 0.5 - base
            for corner in np.ndindex(2, 2, 2):
                idx = base + corner
                if np.all((idx >= 0) & (idx < shape)):
                    f = np.prod(np.where(corner, frac, 1 - frac))
                    expected[(v, *idx)] += f * w
    np.testing.assert_allclose(
        splat_trilinear(points, weights, shape), expected, rtol=1e-6, atol=1e-6
    )


# --------------------------------------------------------------------------
# PDB / mmCIF reader

PDB_TEXT = """\
HEADER    TEST
ATOM      1  N   ALA A   1       0.000   0.000   0.000  1.00  0.00           N
ATOM      2  CA AALA A   1       1.000   0.000   0.000  0.60  0.00           C
ATOM      3  CA BALA A   1       9.000   9.000   9.000  0.40  0.00           C
ATOM      4  H   ALA A   1       0.000   1.000   0.000  1.00  0.00           H
ATOM      5  SG  CYS B   2       0.000   0.000   2.000  1.00  0.00           S
HETATM    6 FE   HEM B 101       3.000   0.000   0.000  1.00  0.00          FE
HETATM    7  O   HOH B 201       5.000   5.000   5.000  1.00  0.00           O
ENDMDL
ATOM      8  N   ALA A   1      50.000  50.000  50.000  1.00  0.00           N
"""

CIF_TEXT = """\
data_TEST
#
loop_
_atom_site.group_PDB
_atom_site.id
_atom_site.type_symbol
_atom_site.label_atom_id
_atom_site.label_alt_id
_atom_site.label_comp_id
_atom_site.Cartn_x
_atom_site.Cartn_y
_atom_site.Cartn_z
_atom_site.pdbx_PDB_model_num
ATOM   1 N  N     . ALA 0.000 0.000 0.000 1
ATOM   2 C  CA    A ALA 1.000 0.000 0.000 1
ATOM   3 C  CA    B ALA 9.000 9.000 9.000 1
ATOM   4 H  H     . ALA 0.000 1.000 0.000 1
ATOM   5 S  SG    . CYS 0.000 0.000 2.000 1
HETATM 6 FE FE    . HEM 3.000 0.000 0.000 1
HETATM 7 O  O     . HOH 5.000 5.000 5.000 1
ATOM   8 C  "C5'" . DA  50.000 50.000 50.000 2
#
loop_
_atom_type.symbol
C
"""


@pytest.mark.parametrize("fmt", ["pdb", "cif", "pdb.gz", "cif.gz"])
def test_reader_rules(tmp_path, fmt):
    text = PDB_TEXT if fmt.startswith("pdb") else CIF_TEXT
    path = tmp_path / f"test.{fmt}"
    if fmt.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    coords, z = read_atoms(path)
    # water, hydrogen, the second altloc and the second model are skipped
    np.testing.assert_array_equal(z, [7, 6, 16, 26])
    np.testing.assert_array_equal(coords[:, 0], [0, 1, 0, 3])
    _, z = read_atoms(path, include_hydrogens=True, include_hetatm=False)
    np.testing.assert_array_equal(z, [7, 6, 1, 16])
    # every model, for biological-assembly files
    coords, z = read_atoms(path, all_models=True)
    np.testing.assert_array_equal(z, [7, 6, 16, 26, 7 if fmt[0] == "p" else 6])
    assert coords[-1, 0] == 50


def test_reader_mmcif_equals_pdb_on_real_entry(tmp_path):
    coords, z = read_atoms(_DATA_DIR / "2xcj.pdb.gz")
    symbols = {6: "C", 7: "N", 8: "O", 16: "S"}
    lines = ["data_2XCJ", "loop_"]
    fields = ("group_PDB", "type_symbol", "Cartn_x", "Cartn_y", "Cartn_z")
    lines += [f"_atom_site.{c}" for c in fields]
    lines += [
        f"ATOM {symbols[int(n)]} {x:.3f} {y:.3f} {w:.3f}"
        for (x, y, w), n in zip(coords, z)
    ]
    path = tmp_path / "2xcj.cif.gz"
    path.write_bytes(gzip.compress("\n".join(lines).encode()))
    coords2, z2 = read_atoms(path)
    np.testing.assert_allclose(coords2, coords)
    np.testing.assert_array_equal(z2, z)


def test_reader_on_shipped_entries():
    # 1hvr: hydrogens without element columns and a HETATM inhibitor
    heavy, _ = read_atoms(_DATA_DIR / "1hvr.pdb.gz")
    with_h, _ = read_atoms(_DATA_DIR / "1hvr.pdb.gz", include_hydrogens=True)
    no_het, _ = read_atoms(_DATA_DIR / "1hvr.pdb.gz", include_hetatm=False)
    assert len(with_h) > len(heavy) > len(no_het)
    # 19hc: haems keep their iron, waters are gone
    _, z = read_atoms(_DATA_DIR / "19hc.pdb.gz")
    assert (z == 26).sum() == 18  # nine haems per chain, two chains


def test_reader_errors(tmp_path):
    bad = tmp_path / "bad.pdb"
    bad.write_text("HEADER nothing here\n")
    with pytest.raises(ValueError, match="bad.pdb"):
        read_atoms(bad)
    with pytest.raises(ValueError, match="does not exist"):
        read_atoms(tmp_path / "missing.pdb")
    cif = tmp_path / "bad.cif"
    cif.write_text("data_X\nloop_\n_other.a\n1\n")
    with pytest.raises(ValueError, match="no _atom_site loop"):
        read_atoms(cif)


def test_structure_label():
    assert structure_label("a/b/1ABC.cif.gz") == "1ABC"
    assert structure_label("x.pdb") == "x"
    assert structure_label("model.v2.mmcif") == "model.v2"


@pytest.mark.slow
def test_all_shipped_proteins_at_default_size():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every structure fits the default box
        X, y, info, templates = make_proteins(
            n_samples=24, return_info=True, random_state=0
        )
    assert X.shape == (24, 64, 64, 64)
    assert sorted(templates) == sorted(PROTEIN_IDS)
    for vol in [*X, *templates.values()]:
        np.testing.assert_allclose(_centre_of_mass(vol), 32.0, atol=1e-2)
