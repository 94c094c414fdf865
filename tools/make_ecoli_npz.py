"""Build ``skavae/datasets/data/ecoli.npz`` from the 21 E. coli PDB/mmCIF files.

Usage (from the repository root, with skavae importable)::

    python tools/make_ecoli_npz.py SOURCE_DIR [--output PATH] [--check]

``SOURCE_DIR`` holds the 21 wwPDB entries as ``<id>.pdb.gz`` or
``<id>.cif.gz``, lower-case ids; ``skavae/datasets/data/README.md`` lists them
with the repository, commit and path each file was taken from. The atoms are
read with skavae's own reader (:func:`skavae.datasets._pdb.read_atoms` rules:
waters and hydrogens dropped, HETATM kept, first alternate location only), with
these per-entry rules taken from the description of the files:

* 1pfk and 1e58 are wwPDB biological-assembly files whose MODEL blocks are the
  copies of the assembly, so every MODEL is read (elsewhere only the first);
* 1oel holds one GroEL ring (the asymmetric unit): the REMARK 350 BIOMT
  operators of biomolecule 1 are applied to build the 14-mer when the file has
  them (otherwise the ring is kept and the metadata says so);
* 1a5t is kept as deposited, the asymmetric unit (a monomer).

The output is written byte for byte reproducibly (fixed zip time stamps, sorted
entries), so ``--check`` can confirm that a committed file matches its sources.
It holds only plain arrays (no pickled objects): ``ids`` (``<U4``), ``offsets``
(int64, ``n + 1``; atoms of structure ``k`` are ``offsets[k]:offsets[k + 1]``),
``coords`` (float32, ``(n_atoms, 3)``, angstroms, x y z as in the files),
``atomic_numbers`` (uint8), ``hetatm`` (bool, the atom is a HETATM record) and
per-structure metadata ``name``, ``state``, ``note``, ``source`` (strings),
``kda`` (float32, mass of the stored heavy atoms times 1.08 for the hydrogens),
``n_atoms`` (int64) and ``max_radius`` (float32, largest distance of an atom
from the structure's centre of mass weighted by atomic number, as
``make_proteins`` centres it), plus ``format_version``.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import zipfile

import numpy as np

from skavae.datasets._pdb import WATER_NAMES, _read_atom_table, _read_text

FORMAT_VERSION = 1

#: id -> (molecule, oligomeric state as stored, heavy atoms counted by the
#: source description, source repository @ commit : path)
ENTRIES = {
    "1aon": (
        "GroEL-GroES-(ADP)7 chaperonin complex",
        "GroEL14 GroES7, 21 chains (full assembly)",
        58870,
        "schrodinger/pymol-open-source @ 9b9cd6fb7ba8 : testing/data/1aon.pdb.gz",
    ),
    "2gls": (
        "glutamine synthetase GlnA (Salmonella typhimurium)",
        "dodecamer (full assembly)",
        43656,
        "ptools/heligeom_webserver @ 6e95c83348f6 : heligeom/static/data/2GLS/2GLS.pdb",
    ),
    "3iyd": (
        "RNA polymerase sigma70 holoenzyme + CRP dimer + promoter DNA",
        "10 chains (full assembly)",
        35254,
        "rcsb/py-rcsb_mock-data @ 39e487dc3e00 : MOCK_PDBX_SANDBOX/iy/3iyd/3iyd.cif.gz",
    ),
    "5a1a": (
        "beta-galactosidase LacZ + inhibitor",
        "tetramer (full assembly)",
        32920,
        "adam-kral/apo-holo-protein-structure-stats @ 7ed00c4c4111 : "
        "apo_holo_structure_stats/test/test_data/5a1a.cif.gz",
    ),
    "1oel": (
        "GroEL (apo)",
        "tetradecamer, two rings",
        26929,
        "salilab/imp @ fd3cf4f2f587 : modules/cnmultifit/test/input/1oel.pdb",
    ),
    "1gyt": (
        "aminopeptidase A PepA (XerB)",
        "hexamer (full assembly)",
        23112,
        "salilab/imp @ fd3cf4f2f587 : modules/em2d/test/input/1gyt.pdb",
    ),
    "3ice": (
        "Rho termination factor + RNA + ADP-BeF3",
        "hexamer + RNA, 7 chains (full assembly)",
        19474,
        "ptools/heligeom_webserver @ 6e95c83348f6 : "
        "heligeom/static/data/3ICE_AB_EF/3ICE.pdb",
    ),
    "6rku": (
        "DNA gyrase GyrA2B2 cleavage core + DNA + inhibitor",
        "2 GyrA + 2 GyrB + 4 DNA strands (full assembly)",
        15526,
        "rcsb/py-rcsb_mock-data @ 39e487dc3e00 : MOCK_PDBX_SANDBOX/rk/6rku/6rku.cif.gz",
    ),
    "1ecp": (
        "purine nucleoside phosphorylase DeoD",
        "hexamer (full assembly)",
        10758,
        "SBRG/ssbio @ 08c1ce375a8e : ssbio/test/test_files/structures/1ecp.pdb",
    ),
    "1pfk": (
        "6-phosphofructokinase PfkA + FBP/ADP",
        "tetramer (full assembly)",
        10036,
        "aqjaffe/RiemannianEB @ f8dbe354fe3e : src/real_data/data/1PFK.pdb1",
    ),
    "3bep": (
        "DNA polymerase III beta sliding clamp DnaN + primer/template DNA",
        "clamp dimer + 2 DNA strands (full assembly)",
        6193,
        "nglviewer/ngl @ 25d45d2b9537 : data/3BEP.cif",
    ),
    "1fdo": (
        "formate dehydrogenase H FdhF (Mo-bisMGD, Fe4S4)",
        "monomer",
        5678,
        "biojava/biojava @ e3d58c033f68 : "
        "biojava-integrationtest/src/test/resources/1fdo.pdb",
    ),
    "11as": (
        "asparagine synthetase A AsnA + Asn",
        "dimer (full assembly)",
        5136,
        "rdk/p2rank @ e723a461c096 : src/test/resources/data/11as.pdb",
    ),
    "1j59": (
        "CRP (CAP)-cAMP dimer bound to DNA",
        "CRP dimer + 4 DNA strands (full assembly)",
        4432,
        "biojava/biojava @ e3d58c033f68 : "
        "biojava-integrationtest/src/test/resources/1j59.pdb",
    ),
    "2kho": (
        "DnaK/Hsp70 residues 1-605, ADP state",
        "monomer",
        4501,
        "dmerz75/emolsion @ a4b527a3c9d1 : test/2KHO.pdb",
    ),
    "1e58": (
        "cofactor-dependent phosphoglycerate mutase GpmA",
        "dimer (full assembly)",
        4160,
        "aqjaffe/RiemannianEB @ f8dbe354fe3e : src/real_data/data/1E58.pdb1",
    ),
    "3rer": (
        "Hfq RNA chaperone + AU6A RNA + ADP",
        "hexamer + RNA, 7 chains (full assembly)",
        3217,
        "rcsb/py-rcsb_mock-data @ 39e487dc3e00 : MOCK_PDBX_SANDBOX/re/3rer/3rer.cif.gz",
    ),
    "1a5t": (
        "delta' subunit HolB of the DNA polymerase III clamp loader",
        "monomer (asymmetric unit)",
        2513,
        "Topf-Lab/Tempy @ 09baa5326cf7 : Examples/Test_Files/1A5T.pdb",
    ),
    "1ggr": (
        "PTS enzyme IIA-Glc (Crr) - HPr (PtsH) complex",
        "heterodimer",
        1774,
        "haddocking/haddock3 @ 04e411364acb : "
        "examples/docking-protein-protein/data/e2a-hpr_1GGR.pdb",
    ),
    "1dul": (
        "signal recognition particle core: Ffh M domain + 4.5S RNA domain IV",
        "1 protein + 1 RNA chain",
        1593,
        "rcsb/py-rcsb_mock-data @ 39e487dc3e00 : MOCK_PDBX_SANDBOX/du/1dul/1dul.cif.gz",
    ),
    "1etu": (
        "elongation factor Tu TufA-GDP, G domain (residues 5-200)",
        "monomer",
        1395,
        "cmbi/bdb @ 6e0104b9af08 : pdbb/tests/pdb/files/1etu.pdb",
    ),
}

ALL_MODELS = {"1pfk", "1e58"}  # biological-assembly files: every MODEL is a copy
BIOMT = {"1oel"}  # asymmetric unit; build the assembly from REMARK 350
NOTES = {
    "1a5t": "asymmetric unit as deposited (REMARK 350 names a crystallographic "
    "dimer, not applied)",
    "1pfk": "all MODEL blocks of the wwPDB biological-assembly file",
    "1e58": "all MODEL blocks of the wwPDB biological-assembly file",
    "2kho": "NMR/RDC hybrid model; hydrogens of the file dropped",
    "1ggr": "NMR minimized average structure; hydrogens of the file dropped",
    "3iyd": "coarse EM model (19.8 angstroms): many side chains truncated",
    "6rku": "EM model: only the cleavage-core domains are modelled",
    "1etu": "partial chain as deposited",
    "1dul": "fragment of the SRP",
    "2gls": "close homologue of E. coli GlnA",
}

#: Atomic masses (daltons) by atomic number; others count as 2 Z.
MASSES = {
    1: 1.008, 6: 12.011, 7: 14.007, 8: 15.999, 9: 18.998, 11: 22.990,
    12: 24.305, 15: 30.974, 16: 32.06, 17: 35.45, 19: 39.098, 20: 40.078,
    25: 54.938, 26: 55.845, 27: 58.933, 28: 58.693, 29: 63.546, 30: 65.38,
    34: 78.971, 35: 79.904, 42: 95.95,
}  # fmt: skip


def find_file(source, pdb_id):
    for suffix in (".pdb.gz", ".cif.gz"):
        path = os.path.join(source, pdb_id + suffix)
        if os.path.isfile(path):
            return path
    raise SystemExit(f"{pdb_id}: neither {pdb_id}.pdb.gz nor .cif.gz in {source}")


def biomt_operators(text):
    """Chains and 3x4 operators of biomolecule 1 in REMARK 350, or None."""
    chains, ops, molecule = [], {}, None
    for line in text.splitlines():
        if not line.startswith("REMARK 350"):
            continue
        body = line[10:].strip()
        if body.startswith("BIOMOLECULE:"):
            molecule = body.split(":")[1].strip()
        elif molecule != "1":
            continue
        elif "CHAINS:" in body:
            chains += [c.strip() for c in body.split(":")[1].split(",") if c.strip()]
        elif body.startswith("BIOMT"):
            fields = body.split()
            row, number = int(fields[0][-1]) - 1, int(fields[1])
            ops.setdefault(number, np.zeros((3, 4)))[row] = [
                float(v) for v in fields[2:6]
            ]
    if not ops:
        return None
    return chains, [ops[k] for k in sorted(ops)]


def pdb_chains(text):
    """Chain ids of the non-water ATOM/HETATM records of the first model."""
    chains = set()
    for line in text.splitlines():
        if line.startswith("ENDMDL"):
            break
        if (
            line.startswith(("ATOM  ", "HETATM"))
            and line[17:20].strip() not in WATER_NAMES
        ):
            chains.add(line[21])
    return chains


def read_entry(path, pdb_id):
    coords, numbers, hetatm = _read_atom_table(
        path,
        include_hydrogens=False,
        include_hetatm=True,
        all_models=pdb_id in ALL_MODELS,
    )
    note = NOTES.get(pdb_id, "")
    state = ENTRIES[pdb_id][1]
    if pdb_id in BIOMT:
        text = _read_text(path)
        found = biomt_operators(text)
        if found is None:
            state = "one ring (asymmetric unit)"
            note = "no REMARK 350 BIOMT in the file: the asymmetric unit is kept"
        else:
            chains, ops = found
            missing = pdb_chains(text) - set(chains)
            if missing:
                raise SystemExit(
                    f"{pdb_id}: BIOMT applies to chains {chains}, the file also "
                    f"has {sorted(missing)}; per-chain selection is not handled"
                )
            coords = np.concatenate([coords @ op[:, :3].T + op[:, 3] for op in ops])
            numbers = np.tile(numbers, len(ops))
            hetatm = np.tile(hetatm, len(ops))
            note = (
                f"{len(ops)} copies of the asymmetric unit (one ring) built with "
                "the file's REMARK 350 BIOMT operators"
            )
    return coords, numbers, hetatm, state, note


def build(source):
    ids = sorted(ENTRIES)
    columns = {k: [] for k in ("coords", "atomic_numbers", "hetatm")}
    meta = {k: [] for k in ("name", "state", "note", "source", "kda", "radius")}
    for pdb_id in ids:
        coords, numbers, hetatm, state, note = read_entry(
            find_file(source, pdb_id), pdb_id
        )
        coords = coords.astype(np.float32)
        z = numbers.astype(np.uint8)
        centre = (coords * numbers[:, None]).sum(0) / numbers.sum()
        radius = np.linalg.norm(coords - centre, axis=1).max()
        mass = sum(MASSES.get(int(k), 2.0 * k) for k in z)
        columns["coords"].append(coords)
        columns["atomic_numbers"].append(z)
        columns["hetatm"].append(hetatm)
        meta["name"].append(ENTRIES[pdb_id][0])
        meta["state"].append(state)
        meta["note"].append(note)
        meta["source"].append(ENTRIES[pdb_id][3])
        meta["kda"].append(mass * 1.08 / 1000)
        meta["radius"].append(radius)
    counts = [len(z) for z in columns["atomic_numbers"]]
    return {
        "format_version": np.array(FORMAT_VERSION, dtype=np.int64),
        "ids": np.array(ids, dtype="<U4"),
        "offsets": np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        "coords": np.concatenate(columns["coords"]),
        "atomic_numbers": np.concatenate(columns["atomic_numbers"]),
        "hetatm": np.concatenate(columns["hetatm"]),
        "name": np.array(meta["name"]),
        "state": np.array(meta["state"]),
        "note": np.array(meta["note"]),
        "source": np.array(meta["source"]),
        "kda": np.array(meta["kda"], dtype=np.float32),
        "n_atoms": np.array(counts, dtype=np.int64),
        "max_radius": np.array(meta["radius"], dtype=np.float32),
    }


def to_bytes(arrays):
    """An .npz archive with fixed time stamps (same input, same bytes)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for key in sorted(arrays):
            member = io.BytesIO()
            np.lib.format.write_array(member, arrays[key], allow_pickle=False)
            info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            archive.writestr(
                info,
                member.getvalue(),
                compress_type=zipfile.ZIP_DEFLATED,
                compresslevel=9,
            )
    return buffer.getvalue()


def summary(arrays):
    lines = ["| id | heavy atoms | source count | max radius (A) | kDa | state |"]
    lines.append("|---|---:|---:|---:|---:|---|")
    for k, pdb_id in enumerate(arrays["ids"]):
        lines.append(
            f"| {pdb_id} | {arrays['n_atoms'][k]} | {ENTRIES[str(pdb_id)][2]} | "
            f"{arrays['max_radius'][k]:.0f} | {arrays['kda'][k]:.0f} | "
            f"{arrays['state'][k]} |"
        )
    return "\n".join(lines)


def main(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    default = os.path.join(here, "..", "skavae", "datasets", "data", "ecoli.npz")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="folder of the 21 <id>.pdb.gz/.cif.gz files")
    parser.add_argument("--output", default=os.path.normpath(default))
    parser.add_argument(
        "--check",
        action="store_true",
        help="compare with the existing output instead of writing it",
    )
    args = parser.parse_args(argv)
    arrays = build(args.source)
    data = to_bytes(arrays)
    print(summary(arrays))
    if args.check:
        with open(args.output, "rb") as fh:
            same = fh.read() == data
        print(f"{args.output}: {'up to date' if same else 'DIFFERS'}")
        return 0 if same else 1
    tmp = args.output + ".tmp"
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, args.output)
    print(f"wrote {args.output} ({len(data) / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
