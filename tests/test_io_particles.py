"""Particle lists: RELION 4/5, Warp/M, Dynamo, CSV in; STAR out (skavae.io)."""

import os

import numpy as np
import pandas as pd
import pytest
import starfile
from scipy.spatial.transform import Rotation

from skavae.io import (
    euler_to_matrix,
    matrix_to_euler,
    read_particles,
    write_particles,
)
from skavae.io._euler import dynamo_to_relion


def _relion4(path, n=4, seed=0):
    rng = np.random.RandomState(seed)
    optics = pd.DataFrame(
        {
            "rlnOpticsGroup": [1, 2],
            "rlnOpticsGroupName": ["optics1", "optics2"],
            "rlnTomoTiltSeriesPixelSize": [1.35, 2.7],
            "rlnVoltage": [300.0, 300.0],
        }
    )
    particles = pd.DataFrame(
        {
            "rlnTomoName": ["TS_01", "TS_01", "TS_02", "TS_02"][:n],
            "rlnCoordinateX": rng.uniform(100, 900, n).round(2),
            "rlnCoordinateY": rng.uniform(100, 900, n).round(2),
            "rlnCoordinateZ": rng.uniform(100, 300, n).round(2),
            "rlnOriginXAngst": [2.7, 0.0, -5.4, 0.0][:n],
            "rlnOriginYAngst": [0.0, 1.35, 0.0, 0.0][:n],
            "rlnOriginZAngst": [0.0, 0.0, 0.0, 10.8][:n],
            "rlnAngleRot": rng.uniform(-180, 180, n).round(3),
            "rlnAngleTilt": rng.uniform(0, 180, n).round(3),
            "rlnAnglePsi": rng.uniform(-180, 180, n).round(3),
            "rlnClassNumber": [1, 2, 1, 3][:n],
            "rlnOpticsGroup": [1, 1, 2, 2][:n],
            "rlnImageName": [f"Extract/job1/TS/{i}.mrc" for i in range(n)],
            "rlnLogLikeliContribution": rng.uniform(1e4, 1e5, n).round(6),
        }
    )
    starfile.write({"optics": optics, "particles": particles}, path)
    return optics, particles


# ------------------------------------------------------------------ reading
def test_relion4_positions_subtract_origin_per_optics_group(tmp_path):
    path = tmp_path / "particles.star"
    _, raw = _relion4(path)
    p = read_particles(path, binning=4)
    ps = np.array([1.35, 1.35, 2.7, 2.7])
    for axis in "XYZ":
        expected = (raw[f"rlnCoordinate{axis}"] - raw[f"rlnOrigin{axis}Angst"] / ps) / 4
        np.testing.assert_allclose(p[axis.lower()], expected)
    assert p["tomo_name"].tolist() == ["TS_01", "TS_01", "TS_02", "TS_02"]
    assert p["class"].tolist() == [1, 2, 1, 3]
    np.testing.assert_allclose(p["pixel_size"], ps * 4)
    np.testing.assert_allclose(p["rot"], raw["rlnAngleRot"])
    # the file's columns stay, untouched
    for column in raw.columns:
        assert column in p.columns
    assert p.attrs["skavae_format"] == "star"
    assert p.attrs["skavae_source"] == os.path.abspath(path)


def test_explicit_pixel_size_overrides_the_file(tmp_path):
    path = tmp_path / "particles.star"
    _, raw = _relion4(path)
    p = read_particles(path, pixel_size=2.0)
    np.testing.assert_allclose(
        p["x"], raw["rlnCoordinateX"] - raw["rlnOriginXAngst"] / 2.0
    )
    assert (p["pixel_size"] == 2.0).all()


def test_relion5_centred_coordinates_need_the_tomogram_shape(tmp_path):
    path = tmp_path / "r5.star"
    frame = pd.DataFrame(
        {
            "rlnTomoName": ["TS_01", "TS_01"],
            "rlnCenteredCoordinateXAngst": [0.0, 135.0],
            "rlnCenteredCoordinateYAngst": [0.0, -27.0],
            "rlnCenteredCoordinateZAngst": [0.0, 13.5],
            "rlnTomoTiltSeriesPixelSize": [1.35, 1.35],
        }
    )
    starfile.write({"particles": frame}, path)
    with pytest.raises(ValueError, match="rlnCenteredCoordinateXAngst.*tomogram_shape"):
        read_particles(path)
    p = read_particles(path, binning=2, tomogram_shape=(100, 400, 300))
    # unbinned width = shape * binning; centre at half of it
    np.testing.assert_allclose(p["x"], [150.0, (100 + 300) / 2])
    np.testing.assert_allclose(p["y"], [200.0, (-20 + 400) / 2])
    np.testing.assert_allclose(p["z"], [50.0, (10 + 100) / 2])
    q = read_particles(path, binning=2, tomogram_shape={"TS_01": (100, 400, 300)})
    np.testing.assert_allclose(q[["x", "y", "z"]], p[["x", "y", "z"]])


def test_warp_star_names_tomograms_by_micrograph(tmp_path):
    path = tmp_path / "warp.star"
    frame = pd.DataFrame(
        {
            "rlnCoordinateX": [10.0, 20.0],
            "rlnCoordinateY": [30.0, 40.0],
            "rlnCoordinateZ": [5.0, 6.0],
            "rlnAngleRot": [0.0, 10.0],
            "rlnAngleTilt": [0.0, 20.0],
            "rlnAnglePsi": [0.0, 30.0],
            "rlnMicrographName": ["TS_01.tomostar", "TS_02.tomostar"],
            "rlnMagnification": [10000.0, 10000.0],
            "rlnDetectorPixelSize": [10.0, 10.0],
        }
    )
    starfile.write(frame, path)
    p = read_particles(path)
    assert p["tomo_name"].tolist() == ["TS_01", "TS_02"]
    np.testing.assert_allclose(p["pixel_size"], [10.0, 10.0])
    np.testing.assert_allclose(p["x"], [10.0, 20.0])


def _dynamo_table(path, n=3, width=35, seed=0):
    rng = np.random.RandomState(seed)
    table = np.zeros((n, width))
    table[:, 0] = np.arange(1, n + 1)
    table[:, 3:6] = rng.uniform(-2, 2, (n, 3)).round(3)  # dx, dy, dz
    table[:, 6:9] = rng.uniform(-180, 180, (n, 3)).round(3)  # tdrot, tilt, narot
    table[:, 19] = [1, 1, 2][:n]  # tomogram
    table[:, 21] = [3, 1, 2][:n]  # class
    table[:, 23:26] = rng.uniform(10, 100, (n, 3)).round(3)  # x, y, z
    np.savetxt(path, table, fmt="%.4f")
    return table


def test_dynamo_table(tmp_path):
    path = tmp_path / "particles.tbl"
    table = _dynamo_table(path)
    p = read_particles(path, pixel_size=3.0)
    np.testing.assert_allclose(p["x"], table[:, 23] + table[:, 3] - 1)
    np.testing.assert_allclose(p["z"], table[:, 25] + table[:, 5] - 1)
    assert p["tomo_name"].tolist() == ["1", "1", "2"]
    assert p["class"].tolist() == [3, 1, 2]
    np.testing.assert_allclose(
        p[["rot", "tilt", "psi"]].to_numpy(), dynamo_to_relion(table[:, 6:9])
    )
    assert (p["pixel_size"] == 3.0).all()
    assert "dynamo35" in p.columns


def test_dynamo_euler_pair_of_the_eulerangles_package():
    # a pair known to give identical reconstructions in Dynamo and RELION
    np.testing.assert_allclose(
        dynamo_to_relion([-47.2730, 1.1777, -132.3000]),
        [137.7000, 1.1777, 42.7270],
        atol=1e-3,
    )


def test_dynamo_wrong_column_count_names_file_and_row(tmp_path):
    path = tmp_path / "bad.tbl"
    _dynamo_table(path)
    lines = path.read_text().splitlines()
    lines[1] = " ".join(lines[1].split()[:30])
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"bad\.tbl: row 2 has 30 columns.*35"):
        read_particles(path)
    short = tmp_path / "short.tbl"
    short.write_text("1 2 3 4 5\n")
    with pytest.raises(ValueError, match=r"short\.tbl: row 1 has 5 columns"):
        read_particles(short)


def test_csv_and_tsv_tables(tmp_path):
    csv = tmp_path / "coords.csv"
    pd.DataFrame(
        {
            "tomo_name": ["a", "b"],
            "x": [1.0, 2.0],
            "y": [3.0, 4.0],
            "z": [5.0, 6.0],
            "label": ["ribo", "fas"],
            "score": [0.1, 0.2],
        }
    ).to_csv(csv, index=False)
    p = read_particles(csv, binning=2)
    np.testing.assert_allclose(p["x"], [0.5, 1.0])
    assert p["class_name"].tolist() == ["ribo", "fas"]
    assert p["score"].tolist() == [0.1, 0.2]
    tsv = tmp_path / "coords.tsv"
    pd.DataFrame({"x_angst": [10.0], "y_angst": [20.0], "z_angst": [30.0]}).to_csv(
        tsv, sep="\t", index=False
    )
    with pytest.raises(ValueError, match=r"coords\.tsv: column 'x_angst' is in Å"):
        read_particles(tsv)
    q = read_particles(tsv, pixel_size=10.0)
    np.testing.assert_allclose(q[["x", "y", "z"]].to_numpy(), [[1.0, 2.0, 3.0]])
    assert q["tomo_name"].isna().all()


def test_angstrom_origin_without_pixel_size_is_refused(tmp_path):
    path = tmp_path / "noangpix.star"
    starfile.write(
        pd.DataFrame(
            {
                "rlnCoordinateX": [1.0],
                "rlnCoordinateY": [1.0],
                "rlnCoordinateZ": [1.0],
                "rlnOriginXAngst": [3.0],
            }
        ),
        path,
    )
    with pytest.raises(ValueError, match="'rlnOriginXAngst' is in Å.*pixel_size"):
        read_particles(path)


@pytest.mark.parametrize(
    "content, message",
    [
        ("this is not a star file\n", "not a STAR file"),
        (
            "data_particles\n\nloop_\n_rlnTomoName #1\n_rlnAngleRot #2\nTS_01 3.0\n",
            "no coordinate columns",
        ),
        (
            "data_\n\nloop_\n_rlnCoordinateX #1\n_rlnCoordinateY #2\n1.0 2.0\n",
            "coordinate column 'rlnCoordinateZ' is missing",
        ),
        (
            "data_\n\nloop_\n_rlnCoordinateX #1\n_rlnCoordinateY #2\n"
            "_rlnCoordinateZ #3\n1.0 2.0 3.0\n4.0 five 6.0\n",
            "row 2 of column 'rlnCoordinateY'",
        ),
    ],
)
def test_bad_star_files(tmp_path, content, message):
    path = tmp_path / "bad.star"
    path.write_text(content)
    with pytest.raises(ValueError, match=message) as info:
        read_particles(path)
    assert "bad.star" in str(info.value) and "\n" not in str(info.value)


def test_unknown_suffix_and_missing_file(tmp_path):
    path = tmp_path / "coords.bin"
    path.write_bytes(os.urandom(64))
    with pytest.raises(ValueError, match="unknown particle list format"):
        read_particles(path)
    with pytest.raises(ValueError, match="no such particle list"):
        read_particles(tmp_path / "none.star")


# ------------------------------------------------------------------ writing
def test_write_keeps_unknown_columns_and_blocks(tmp_path):
    path = tmp_path / "in.star"
    optics, raw = _relion4(path)
    p = read_particles(path, binning=4)
    out = tmp_path / "out.star"
    classes = ["proteasome", "ribosome"]
    written = write_particles(
        out,
        p,
        predictions=["ribosome", "proteasome", "ribosome", "ribosome"],
        classes=classes,
        probabilities=[0.9, 0.8, 0.7, 0.4],
        unknown=[False, False, False, True],
        latents=np.arange(12, dtype=float).reshape(4, 3) / 7,
        poses=[[0.5], [0.25], [0.0], [1.0]],
    )
    assert written == [str(out)]
    back = starfile.read(out, always_dict=True)
    assert list(back) == ["optics", "particles"]
    pd.testing.assert_frame_equal(back["optics"], optics)
    got = back["particles"]
    for column in raw.columns:
        if column == "rlnClassNumber":
            continue
        pd.testing.assert_series_equal(got[column], raw[column], check_names=False)
    assert got["rlnClassNumber"].tolist() == [2, 1, 2, 2]
    assert got["skavaeInputClassNumber"].tolist() == [1, 2, 1, 3]
    assert got["skavaeClassName"].tolist() == [
        "ribosome",
        "proteasome",
        "ribosome",
        "ribosome",
    ]
    assert got["skavaeUnknown"].tolist() == [0, 0, 0, 1]
    np.testing.assert_allclose(got["skavaeProbability"], [0.9, 0.8, 0.7, 0.4])
    assert [c for c in got.columns if c.startswith("skavaeLatent")] == [
        "skavaeLatent01",
        "skavaeLatent02",
        "skavaeLatent03",
    ]
    np.testing.assert_allclose(got["skavaeLatent03"], np.arange(2, 12, 3) / 7, 1e-5)
    assert got["skavaePose01"].tolist() == [0.5, 0.25, 0.0, 1.0]
    # and it reads back with the same positions
    again = read_particles(out, binning=4)
    np.testing.assert_allclose(again[["x", "y", "z"]], p[["x", "y", "z"]])
    assert again["class_name"].tolist() == got["skavaeClassName"].tolist()


def test_write_split_by_class_and_atomic_refusals(tmp_path, monkeypatch):
    path = tmp_path / "in.star"
    _relion4(path)
    p = read_particles(path)
    out = tmp_path / "out.star"
    labels = ["b", "a", "b", "c/d"]
    written = write_particles(out, p, predictions=labels, split_by_class=True)
    assert [os.path.basename(w) for w in written] == [
        "out.star",
        "out_a.star",
        "out_b.star",
        "out_c_d.star",
    ]
    assert len(starfile.read(written[2], always_dict=True)["particles"]) == 2
    with pytest.raises(ValueError, match="already exists.*overwrite"):
        write_particles(out, p, predictions=labels)
    with pytest.raises(ValueError, match="overwrite the particle list"):
        write_particles(path, p, predictions=labels, overwrite=True)
    with pytest.raises(ValueError, match="predictions has 3 rows but there are 4"):
        write_particles(tmp_path / "x.star", p, predictions=labels[:3])

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(starfile, "write", broken)
    with pytest.raises(OSError, match="disk full"):
        write_particles(tmp_path / "never.star", p, predictions=labels)
    assert not any(f.name.startswith((".tmp", "never")) for f in tmp_path.iterdir())


def test_split_by_class_never_overwrites_a_class_whose_name_cleans_alike(tmp_path):
    path = tmp_path / "in.star"
    _relion4(path)
    p = read_particles(path)
    labels = ["a b", "a/b", "a b", "c"]
    written = write_particles(
        tmp_path / "out.star", p, predictions=labels, split_by_class=True
    )
    assert [os.path.basename(w) for w in written] == [
        "out.star",
        "out_a_b_1.star",
        "out_a_b_2.star",
        "out_c.star",
    ]
    names = [
        starfile.read(w, always_dict=True)["particles"]["skavaeClassName"].tolist()
        for w in written[1:]
    ]
    assert names == [["a b", "a b"], ["a/b"], ["c"]]


def test_write_from_a_coordinate_table(tmp_path):
    csv = tmp_path / "c.csv"
    pd.DataFrame(
        {"tomo_name": ["t1"], "x": [3.0], "y": [4.0], "z": [5.0], "score": [1.5]}
    ).to_csv(csv, index=False)
    p = read_particles(csv, binning=2)
    out = tmp_path / "c.star"
    write_particles(out, p, predictions=["a"])
    got = starfile.read(out)
    assert got["rlnTomoName"].tolist() == ["t1"]
    assert got["rlnCoordinateX"].tolist() == [3.0]  # back in the file's pixels
    assert got["score"].tolist() == [1.5]
    assert got["rlnClassNumber"].tolist() == [1]


# ---------------------------------------------------------------------- ZYZ
def test_euler_round_trip_and_scipy_reference():
    rng = np.random.RandomState(0)
    R = Rotation.random(50, random_state=rng).as_matrix()
    angles = matrix_to_euler(R)
    np.testing.assert_allclose(euler_to_matrix(angles), R, atol=1e-10)
    # RELION's matrix (Euler_angles2matrix) is the transpose of scipy's ZYZ
    rot, tilt, psi = np.radians([30.0, 50.0, -70.0])
    ca, sa, cb, sb, cg, sg = (np.cos(rot), np.sin(rot), np.cos(tilt), np.sin(tilt),
                              np.cos(psi), np.sin(psi))  # fmt: skip
    relion_A = np.array(
        [
            [cg * cb * ca - sg * sa, cg * cb * sa + sg * ca, -cg * sb],
            [-sg * cb * ca - cg * sa, -sg * cb * sa + cg * ca, sg * sb],
            [sb * ca, sb * sa, cb],
        ]
    )
    np.testing.assert_allclose(euler_to_matrix([30.0, 50.0, -70.0]), relion_A)
