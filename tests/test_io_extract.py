"""Lazy subtomogram extraction from memory-mapped tomograms (skavae.io)."""

import json
import os
import pickle
import subprocess
import sys
import textwrap

import mrcfile
import numpy as np
import pandas as pd
import pytest
import starfile

from skavae.io import SubtomogramStack, extract_subtomograms


def _tomogram(path, shape=(24, 40, 48), seed=0, voxel=10.0, dtype=np.float32):
    data = np.random.RandomState(seed).normal(size=shape).astype(dtype)
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(data)
        mrc.voxel_size = voxel
    return data


def _cut(tomo, x, y, z, box, fill):
    """Reference: pad the whole tomogram, slice one box (slow, obvious)."""
    h = box // 2
    padded = np.pad(tomo, box, constant_values=fill)
    c = np.rint([z, y, x]).astype(int) + box
    return padded[c[0] - h : c[0] - h + box, c[1] - h : c[1] - h + box,
                  c[2] - h : c[2] - h + box]  # fmt: skip


@pytest.fixture
def two_tomograms(tmp_path):
    folder = tmp_path / "tomos"
    folder.mkdir()
    a = _tomogram(folder / "TS_01.mrc", seed=1)
    b = _tomogram(folder / "TS_02_bin4.rec", shape=(20, 30, 30), seed=2)
    rng = np.random.RandomState(3)
    n = 40
    names = np.where(np.arange(n) % 3 == 0, "TS_02", "TS_01")
    shapes = np.array([b.shape if m == "TS_02" else a.shape for m in names])
    zyx = rng.uniform(0, 1, (n, 3)) * (shapes - 1)
    particles = pd.DataFrame(
        {
            "tomo_name": names,
            "x": zyx[:, 2],
            "y": zyx[:, 1],
            "z": zyx[:, 0],
            "class_name": np.where(np.arange(n) % 2, "odd", "even"),
        }
    )
    return folder, {"TS_01": a, "TS_02": b}, particles


def test_boxes_match_numpy_slicing_with_mean_padding(two_tomograms):
    folder, tomos, particles = two_tomograms
    stack = extract_subtomograms(folder, particles, box=10)
    assert isinstance(stack, SubtomogramStack)
    assert stack.shape == (40, 10, 10, 10) and stack.dtype == np.float32
    assert len(stack) == 40 and stack.ndim == 4 and stack.size == 40 * 1000
    X = np.asarray(stack)
    for i, row in particles.iterrows():
        tomo = tomos[row["tomo_name"]]
        expected = _cut(tomo, row["x"], row["y"], row["z"], 10, tomo.mean())
        np.testing.assert_allclose(X[i], expected, rtol=1e-5, atol=1e-6)
    # every kind of index cuts the same boxes
    np.testing.assert_array_equal(stack[5], X[5])
    np.testing.assert_array_equal(stack[-1], X[-1])
    np.testing.assert_array_equal(stack[3:9:2], X[3:9:2])
    np.testing.assert_array_equal(stack[[7, 0, 7]], X[[7, 0, 7]])
    mask = np.arange(40) % 4 == 1
    np.testing.assert_array_equal(stack[mask], X[mask])
    np.testing.assert_array_equal(stack[2, 3:5, 1], X[2, 3:5, 1])
    np.testing.assert_array_equal(np.stack(list(stack)), X)
    assert stack[np.array([], dtype=int)].shape == (0, 10, 10, 10)
    with pytest.raises(IndexError):
        stack[40]
    # metadata for the fit and for writing back
    assert stack.labels().tolist() == particles["class_name"].tolist()
    assert stack.particles["tomogram"].str.endswith(("TS_01.mrc", "bin4.rec")).all()
    assert (stack.particles["pixel_size"] == 10.0).all()
    assert stack.tilt_ranges is None


def test_pickles_and_normalises(two_tomograms):
    folder, _, particles = two_tomograms
    stack = extract_subtomograms(folder, particles, box=8, normalize=True)
    again = pickle.loads(pickle.dumps(stack))
    np.testing.assert_array_equal(again[:5], stack[:5])
    X = stack[:]
    np.testing.assert_allclose(X.reshape(40, -1).mean(1), 0, atol=1e-5)
    np.testing.assert_allclose(X.reshape(40, -1).std(1), 1, atol=1e-4)


def test_drop_reports_rows_and_dict_of_tomograms(two_tomograms):
    folder, tomos, particles = two_tomograms
    files = {"TS_01": folder / "TS_01.mrc", "TS_02": folder / "TS_02_bin4.rec"}
    with pytest.warns(UserWarning, match=r"dropped \d+ of 40 particles.*rows"):
        stack = extract_subtomograms(files, particles, box=10, edge="drop")
    kept, dropped = stack.particles.index, stack.dropped.index
    assert sorted([*kept, *dropped]) == list(range(40)) and len(dropped) > 0
    assert (stack.dropped["reason"].str.contains("edge")).all()
    for j, i in enumerate(kept[:5]):
        row = particles.loc[i]
        tomo = tomos[row["tomo_name"]]
        np.testing.assert_array_equal(
            stack[j], _cut(tomo, row["x"], row["y"], row["z"], 10, np.nan)
        )


def test_single_file_takes_its_rows_and_tilt_ranges(two_tomograms):
    folder, tomos, particles = two_tomograms
    stack = extract_subtomograms(
        folder / "TS_01.mrc", particles, box=6, tilt_range=(-50, 60)
    )
    assert len(stack) == int((particles["tomo_name"] == "TS_01").sum())
    np.testing.assert_array_equal(
        stack.tilt_ranges, np.tile([-50.0, 60.0], (len(stack), 1))
    )
    per_tomo = extract_subtomograms(
        folder, particles, box=6, tilt_range={"TS_01": (-60, 60), "TS_02": (-45, 50)}
    )
    expected = np.where(
        (particles["tomo_name"] == "TS_01").to_numpy()[:, None],
        [-60.0, 60.0],
        [-45.0, 50.0],
    )
    np.testing.assert_array_equal(per_tomo.tilt_ranges, expected)


def test_tilt_range_option_wins_over_the_columns(two_tomograms):
    folder, _, particles = two_tomograms
    particles = particles.assign(tilt_min=-60.0, tilt_max=np.linspace(40, 60, 40))
    columns = extract_subtomograms(folder, particles, box=4)
    np.testing.assert_array_equal(
        columns.tilt_ranges, particles[["tilt_min", "tilt_max"]].to_numpy()
    )
    given = extract_subtomograms(folder, particles, box=4, tilt_range=(-45, 50))
    np.testing.assert_array_equal(given.tilt_ranges, np.tile([-45.0, 50.0], (40, 1)))
    assert given.particles["tilt_max"].eq(50.0).all()
    with pytest.raises(ValueError, match=r"tilt_range is reversed: min 60 > max -60"):
        extract_subtomograms(folder, particles, box=4, tilt_range=(60, -60))
    with pytest.raises(ValueError, match=r"tilt_range\['TS_02'\] must lie within"):
        extract_subtomograms(folder, particles, box=4, tilt_range={"TS_02": (-95, 60)})


def _blob_tomogram(path, centre_zyx, sigma, voxel):
    """A tomogram holding one Gaussian blob (``sigma`` in voxels)."""
    grid = np.indices((40, 40, 40), dtype=np.float64)
    r2 = sum((g - c) ** 2 for g, c in zip(grid, centre_zyx))
    data = np.exp(-r2 / (2 * sigma**2)).astype(np.float32)
    with mrcfile.new(path) as mrc:
        mrc.set_data(data)
        mrc.voxel_size = voxel
    return data


@pytest.mark.parametrize("target", [10.0, 7.3, 3.5])
def test_target_pixel_size_resamples_a_known_blob(tmp_path, target):
    """A 15 Å Gaussian in a 5 Å tomogram, boxes at ``target`` Å per voxel."""
    path = tmp_path / "TS_01.mrc"
    _blob_tomogram(path, (20.0, 19.0, 21.0), sigma=3.0, voxel=5.0)
    p = pd.DataFrame({"tomo_name": [None, None], "x": [21.0, 23.0],
                      "y": [19.0, 19.0], "z": [20.0, 20.0]})  # fmt: skip
    box = 16
    stack = extract_subtomograms(path, p, box=box, target_pixel_size=target)
    assert stack.shape == (2, box, box, box) and stack.voxel_size == target
    X = stack[:]
    grid = (np.indices((box,) * 3) - box // 2) * target  # Å from the box centre
    for i, shift_x in enumerate([0.0, -10.0]):  # the 2nd particle is 2 voxels off
        r2 = grid[0] ** 2 + grid[1] ** 2 + (grid[2] - shift_x) ** 2
        expected = np.exp(-r2 / (2 * 15.0**2))
        corr = np.corrcoef(X[i].ravel(), expected.ravel())[0, 1]
        assert corr > 0.95, (target, i, corr)
    # the box's voxel box // 2 stays on the particle: the blob's centroid
    weights = X[0] / X[0].sum()
    centroid = [float((weights * g).sum()) for g in np.indices((box,) * 3)]
    if target >= 7:  # the blob lies inside the box
        np.testing.assert_allclose(centroid, [box // 2] * 3, atol=0.05)
        np.testing.assert_allclose(X[0].max(), 1.0, atol=0.1)
    again = pickle.loads(pickle.dumps(stack))
    np.testing.assert_array_equal(again[:], X)
    assert stack.particles["pixel_size"].eq(5.0).all()  # the coordinates' pixels


def test_target_pixel_size_pads_drops_and_needs_a_pixel_size(tmp_path):
    path = tmp_path / "TS_01.mrc"
    data = _blob_tomogram(path, (20.0, 20.0, 20.0), sigma=3.0, voxel=5.0)
    p = pd.DataFrame({"tomo_name": [None] * 2, "x": [20.0, 3.0],
                      "y": [20.0, 20.0], "z": [20.0, 20.0]})  # fmt: skip
    padded = extract_subtomograms(path, p, box=8, target_pixel_size=10.0)
    np.testing.assert_allclose(padded[1, 4, 4, 0], data.mean(), rtol=1e-3)
    with pytest.warns(UserWarning, match="dropped 1 of 2"):
        kept = extract_subtomograms(path, p, box=8, target_pixel_size=10.0, edge="drop")
    np.testing.assert_array_equal(kept[:], padded[:1])
    with pytest.raises(ValueError, match=r"TS_01\.mrc: box 24 \(covering 47 voxels"):
        extract_subtomograms(path, p, box=24, target_pixel_size=10.0)
    with pytest.raises(ValueError, match="target_pixel_size must be > 0"):
        extract_subtomograms(path, p, box=8, target_pixel_size=-1.0)
    bare = tmp_path / "bare.mrc"
    with mrcfile.new(bare) as mrc:
        mrc.set_data(data)  # no voxel size
    with pytest.raises(ValueError, match=r"bare\.mrc: target_pixel_size needs the "
                       r"tomogram's pixel size, which records none"):  # fmt: skip
        extract_subtomograms(bare, p, box=8, target_pixel_size=10.0)
    same = extract_subtomograms(path, p, box=8, target_pixel_size=5.0)
    np.testing.assert_array_equal(same[:], extract_subtomograms(path, p, box=8)[:])


def test_written_coordinate_lists_get_relion4_optics(two_tomograms, tmp_path):
    from skavae.io import read_particles, write_particles

    folder, _, particles = two_tomograms
    with mrcfile.open(folder / "TS_02_bin4.rec", mode="r+") as mrc:
        mrc.voxel_size = 20.0  # the second tomogram at another pixel size
    csv = tmp_path / "picks.csv"
    particles.to_csv(csv, index=False)
    stack = extract_subtomograms(folder, read_particles(csv, binning=2), box=4)
    out = tmp_path / "out.star"
    write_particles(out, stack.particles, predictions=stack.labels())
    blocks = starfile.read(out, always_dict=True)
    assert list(blocks) == ["optics", "particles"]
    optics, rows = blocks["optics"], blocks["particles"]
    assert optics["rlnOpticsGroup"].tolist() == [1, 2]
    assert optics["rlnOpticsGroupName"].tolist() == ["opticsGroup1", "opticsGroup2"]
    assert optics["rlnImagePixelSize"].tolist() == [10.0, 20.0]
    assert optics["rlnTomoTiltSeriesPixelSize"].tolist() == [5.0, 10.0]  # bin 2
    assert optics["rlnTomoSubtomogramBinning"].tolist() == [2.0, 2.0]
    expected = np.where(particles["tomo_name"] == "TS_02", 2, 1)
    np.testing.assert_array_equal(rows["rlnOpticsGroup"], expected)
    assert "skavaeTiltMin" not in rows  # unknown tilts: no NaN column to refuse
    back = read_particles(out, binning=2)  # and it reads back
    np.testing.assert_allclose(back["pixel_size"], np.where(expected == 2, 20, 10))
    xyz = particles[["x", "y", "z"]] / 2  # in tomogram pixels
    np.testing.assert_allclose(back[["x", "y", "z"]], xyz, atol=1e-5)
    # a split file lists only its own groups; a STAR input keeps its blocks
    split = write_particles(tmp_path / "s.star", back, split_by_class=True)
    assert len(split) == 3
    again = tmp_path / "again.star"
    write_particles(again, back, predictions=back["class_name"])
    pd.testing.assert_frame_equal(
        starfile.read(again, always_dict=True)["optics"], optics
    )
    # without a pixel size there is no optics group to write
    unknown = particles.assign(tomo_name=None).iloc[:3]
    write_particles(tmp_path / "u.star", unknown)
    assert list(starfile.read(tmp_path / "u.star", always_dict=True)) == ["particles"]


def test_star_path_and_relion5_centred_coordinates(tmp_path):
    tomo = _tomogram(tmp_path / "TS_01.mrc", shape=(20, 32, 40), voxel=5.4)
    star = tmp_path / "p.star"
    # the centre of the tomogram, and 8 voxels (bin 4, 1.35 Å) left of it
    starfile.write(
        pd.DataFrame(
            {
                "rlnTomoName": ["TS_01", "TS_01"],
                "rlnCenteredCoordinateXAngst": [0.0, -8 * 5.4],
                "rlnCenteredCoordinateYAngst": [0.0, 0.0],
                "rlnCenteredCoordinateZAngst": [0.0, 0.0],
                "rlnTomoTiltSeriesPixelSize": [1.35, 1.35],
            }
        ),
        star,
    )
    stack = extract_subtomograms(tmp_path, star, box=8, binning=4)
    np.testing.assert_allclose(stack.particles[["x", "y", "z"]].iloc[0], [20, 16, 10])
    np.testing.assert_array_equal(stack[0], tomo[6:14, 12:20, 16:24])
    np.testing.assert_array_equal(stack[1], tomo[6:14, 12:20, 8:16])
    assert stack.ids[1] == f"{star}#1"
    np.testing.assert_allclose(stack.voxel_size, 5.4)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"tomo_name": "TS_09"}, r"tomogram 'TS_09' of particle rows 1, 2.*no file"),
        ({"x": 48.0}, r"particle row 1 at x, y, z = 48.*outside its tomogram"),
        ({"z": -1.0}, r"particle row 1 .*outside.*check binning"),
    ],
)
def test_bad_particles(tmp_path, change, message):
    _tomogram(tmp_path / "TS_01.mrc")
    particles = pd.DataFrame(
        {"tomo_name": ["TS_01"] * 2, "x": [4.0, 5.0], "y": [4.0, 5.0], "z": [4.0, 4.0]}
    )
    for key, value in change.items():
        particles.loc[0, key] = value
        if key == "tomo_name":
            particles[key] = value
    with pytest.raises(ValueError, match=message):
        extract_subtomograms(tmp_path, particles, box=4)


def test_bad_options_and_tomograms(tmp_path):
    _tomogram(tmp_path / "TS_01.mrc")
    p = pd.DataFrame({"tomo_name": ["TS_01"], "x": [4.0], "y": [4.0], "z": [4.0]})
    with pytest.raises(ValueError, match=r"TS_01\.mrc: box 32 is larger than the"):
        extract_subtomograms(tmp_path, p, box=32)
    with pytest.raises(ValueError, match="box must be an integer"):
        extract_subtomograms(tmp_path, p, box=4.5)
    with pytest.raises(ValueError, match="edge must be"):
        extract_subtomograms(tmp_path, p, box=4, edge="wrap")
    junk = tmp_path / "junk" / "TS_01.mrc"
    junk.parent.mkdir()
    junk.write_bytes(b"not an mrc file" * 100)
    with pytest.raises(ValueError, match=r"junk/TS_01\.mrc: not a readable MRC"):
        extract_subtomograms(junk, p, box=4)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no tomogram"):
        extract_subtomograms(tmp_path / "empty", p)
    with pytest.raises(ValueError, match="no such tomogram"):
        extract_subtomograms(tmp_path / "none.mrc", p)


def test_pad_mean_is_streamed_when_the_header_has_none(tmp_path):
    path = tmp_path / "t.mrc"
    data = np.arange(16 * 16 * 16, dtype=np.float32).reshape(16, 16, 16)
    with mrcfile.new_mmap(path, data.shape, mrc_mode=2) as mrc:  # stats unset
        mrc.data[:] = data
    p = pd.DataFrame({"tomo_name": [None], "x": [0.0], "y": [0.0], "z": [0.0]})
    stack = extract_subtomograms(path, p, box=4)
    assert float(stack[0, 0, 0, 0]) == pytest.approx(float(data.mean()))


@pytest.mark.filterwarnings("ignore:Data array contains NaN")
def test_non_finite_voxels_name_the_tomogram_and_row_when_read(tmp_path):
    data = np.zeros((16, 16, 16), np.float32)
    data[12, 12, 12] = np.nan
    data[3, 3, 3] = np.inf
    path = tmp_path / "TS_01.mrc"
    with mrcfile.new(path) as mrc:
        mrc.set_data(data)
    p = pd.DataFrame({"tomo_name": [None] * 3, "x": [4.0, 8.0, 12.0],
                      "y": [4.0, 8.0, 12.0], "z": [4.0, 8.0, 12.0]})  # fmt: skip
    stack = extract_subtomograms(path, p, box=4)  # lazy: nothing read yet
    assert float(np.abs(stack[1]).sum()) == 0.0  # a clean box reads
    with pytest.raises(ValueError, match=r"TS_01\.mrc: the box of particle row 1 "
                       r"holds 1 NaN or infinite voxels; 2 of 3 boxes"):  # fmt: skip
        stack[:]
    with pytest.raises(ValueError, match=r"TS_01\.mrc: .* row 3 holds 1 NaN"):
        stack[[1, 2]]
    with pytest.raises(ValueError, match=r"TS_01\.mrc: .* row 1 holds"):
        list(stack)  # the batches a fit streams


def test_fit_streams_from_the_stack_with_tilt_ranges(two_tomograms):
    from skavae import AffinityVAE

    folder, _, particles = two_tomograms
    stack = extract_subtomograms(folder, particles, box=8, tilt_range=(-60, 60))
    model = AffinityVAE(
        latent_dims=2, filters=(4,), max_epochs=1, batch_size=16, random_state=0
    )
    model.fit(stack, tilt_ranges=stack.tilt_ranges)
    assert model.transform(stack[:3]).shape == (3, 2)


RSS_SCRIPT = textwrap.dedent(
    """
    import json, os, sys, time
    import numpy as np, pandas as pd, mrcfile
    from skavae.io import extract_subtomograms

    def status():
        out = {}
        with open("/proc/self/status") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key in ("VmHWM", "VmRSS", "RssAnon", "RssFile"):
                    out[key] = int(value.split()[0]) / 1024  # MiB
        return out

    path, n, box = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    shape = (512, 2048, 1024)  # 4 GiB of float32, a sparse file
    with mrcfile.new_mmap(path, shape, mrc_mode=2, overwrite=True) as mrc:
        mrc.data[100:140, 1000:1040, 500:540] = 1.0  # one written block
        mrc.header.dmin, mrc.header.dmax = 0.0, 1.0
        mrc.header.dmean, mrc.header.rms = 0.0, 0.01
        mrc.voxel_size = 10.0
    rng = np.random.RandomState(0)
    zyx = rng.uniform(0, 1, (n, 3)) * (np.array(shape) - 1)
    zyx[0] = (120, 1020, 520)
    particles = pd.DataFrame({"tomo_name": None, "x": zyx[:, 2],
                              "y": zyx[:, 1], "z": zyx[:, 0]})
    before = status()
    start = time.perf_counter()
    stack = extract_subtomograms(path, particles, box=box)
    total = 0.0
    for s in range(0, n, 64):
        total += float(stack[s : s + 64].sum())
    seconds = time.perf_counter() - start
    after = status()
    print(json.dumps({"before": before, "after": after, "seconds": seconds,
                      "file_gib": os.path.getsize(path) / 2**30, "total": total,
                      "allocated_mib": os.stat(path).st_blocks * 512 / 2**20}))
    """
)


def test_multi_gigabyte_sparse_tomogram_bounded_memory(tmp_path):
    """4 GiB tomogram (a sparse file): 512 particles in batches of 64."""
    script = tmp_path / "rss.py"
    script.write_text(RSS_SCRIPT)
    out = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "big.mrc"), "512", "32"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(result)
    assert result["file_gib"] > 3.9 and result["allocated_mib"] < 64
    # the written block sits in the first particle's box: a 32**3 box holds it
    assert 32**3 <= result["total"] <= 40**3
    grown = result["after"]["VmHWM"] - result["before"]["VmRSS"]
    assert grown < 128, result  # MiB, for a 4096 MiB tomogram
    assert result["after"]["RssAnon"] - result["before"]["RssAnon"] < 64, result
