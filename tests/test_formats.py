"""The splat formats of the 2026 ecosystem: SPZ, glTF ``KHR_gaussian_splatting``, PlayCanvas
compressed PLY (and INRIA ``.ply`` / ``.splat``): round trips through our readers, an independent
tool reading ours back (npm ``@playcanvas/splat-transform``), sizes against that tool's own files,
hostile files, and every way out (Python, CLI, GUI, the browser page) and in (render, view).

splat-transform is installed once per machine by :func:`splat_transform` (npm, into ``build/npm``);
without npm those checks skip and say so. It treats every ``.ply`` as the INRIA / COLMAP frame
(y down: its ``Transform.PLY``, 180° about Z from glTF) and turns it when writing ``.glb``; splatgen's
``save_splats`` stores ``.ply`` in that frame (``splatgen.core.io.frames``), so splat-transform's
``.glb`` of our saved ``.ply`` equals our own ``.glb`` with no rotation asked for.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import struct
import subprocess
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import plyfile
import pygltflib
import pytest
import torch

from splatgen.core.errors import SplatFileError, SplatgenError
from splatgen.core.gaussians import SH_C0, Gaussians, random_gaussians
from splatgen.core.io import SPLAT_FORMATS, load_splats, read_ply, save_splats, write_ply
from splatgen.core.io.compressed_ply import CHUNK_SIZE, compressed_ply_order, write_compressed_ply
from splatgen.core.io.frames import PLY_FAMILY, turn_about_z
from splatgen.core.io.gltf import ATTRIBUTE_PREFIX, read_glb_metadata, write_glb
from splatgen.core.io.limits import MAX_SPLATS
from splatgen.core.io.ply import read_ply_metadata
from splatgen.core.io.splat import read_splat_metadata, splat_order
from splatgen.core.io.spz import SPZ_MAGIC, spz_bytes, spz_order, write_spz

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "assets" / "examples" / "teddy_bear.ply"
#: The splat-transform release these checks ran against (its writers and flags are what is compared).
SPLAT_TRANSFORM_VERSION = "3.10.2"
SPLAT_TRANSFORM = f"@playcanvas/splat-transform@{SPLAT_TRANSFORM_VERSION}"
NPM_DIR = ROOT / "build" / "npm" / f"splat-transform-{SPLAT_TRANSFORM_VERSION}"


# ============================================================================ fixtures
def unit(g: Gaussians) -> Gaussians:
    """``g`` with unit quaternions (what glTF stores; splat-transform copies quaternions as given)."""
    return Gaussians(g.means, torch.nn.functional.normalize(g.quats, dim=-1), g.log_scales, g.opacity_logits, g.sh)


@pytest.fixture(scope="session")
def sh3() -> Gaussians:
    """3000 random splats of SH degree 3 in a ball of radius 0.5 (every attribute varies)."""
    return unit(random_gaussians(3000, sh_degree=3, seed=1))


@pytest.fixture(scope="session")
def bear() -> Gaussians:
    """The shipped example object (20,000 splats, degree 0)."""
    return read_ply(EXAMPLE)


@pytest.fixture(scope="session")
def splat_transform():
    """``run(*args)``: the splat-transform CLI (``-q -w`` first), installed with npm into ``build/npm``
    on first use; skips when npm or node is not installed."""
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        pytest.skip("npm/node not installed: the splat-transform checks need them")
    cli = NPM_DIR / "node_modules" / "@playcanvas" / "splat-transform" / "bin" / "cli.mjs"
    done = NPM_DIR / ".installed"
    if not done.exists():
        NPM_DIR.mkdir(parents=True, exist_ok=True)
        r = subprocess.run([npm, "install", "--prefix", str(NPM_DIR), "--no-audit", "--no-fund", "--ignore-scripts",
                            "--loglevel", "error", SPLAT_TRANSFORM], capture_output=True, text=True, timeout=600)
        assert r.returncode == 0 and cli.exists(), f"npm install {SPLAT_TRANSFORM} failed:\n{r.stderr[-2000:]}"
        done.write_text(SPLAT_TRANSFORM + "\n")

    def run(*args) -> subprocess.CompletedProcess:
        r = subprocess.run([node, str(cli), "-q", "-w", *map(str, args)], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, f"splat-transform {' '.join(map(str, args))}:\n{r.stderr[-2000:]}"
        return r

    return run


@pytest.fixture(scope="session")
def converted(splat_transform, sh3, bear, tmp_path_factory) -> Path:
    """A folder of our files and splat-transform's from the same splats, made at once (each call is
    mostly node starting): ``NAME.ply`` (input), ``NAME.ours.{spz,compressed.ply,glb}``,
    ``NAME.theirs.{spz,compressed.ply}``, ``NAME.{spz,cply}.back.ply`` (ours, read by splat-transform),
    and ``sh3.theirs.glb``, splat-transform's ``.glb`` of ``sh3.saved.ply`` (``save_splats``: the PLY frame).
    The ``write_*`` files hold the splats' coordinates as they are."""
    d = tmp_path_factory.mktemp("splat-transform")
    save_splats(d / "sh3.saved.ply", sh3)
    jobs = []
    for name, g in (("sh3", sh3), ("bear", bear)):
        write_ply(d / f"{name}.ply", g)
        write_spz(d / f"{name}.ours.spz", g)
        write_compressed_ply(d / f"{name}.ours.compressed.ply", g)
        write_glb(d / f"{name}.ours.glb", g)
        jobs += [(d / f"{name}.ply", d / f"{name}.theirs.spz"),
                 (d / f"{name}.ply", d / f"{name}.theirs.compressed.ply")]
    jobs += [(d / "sh3.ours.spz", d / "sh3.spz.back.ply"), (d / "sh3.ours.compressed.ply", d / "sh3.cply.back.ply"),
             (d / "bear.ours.spz", d / "bear.spz.back.ply"),
             (d / "sh3.saved.ply", d / "sh3.theirs.glb")]
    with ThreadPoolExecutor(3) as pool:
        list(pool.map(lambda job: splat_transform(*job), jobs))
    return d


# ============================================================================ quantisation
def quat_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest component difference of two sets of rotations (q and -q are one rotation)."""
    a, b = (torch.nn.functional.normalize(x.double(), dim=-1) for x in (a, b))
    return float(torch.minimum((a - b).abs().amax(-1), (a + b).abs().amax(-1)).max())


def chunk_span(x: torch.Tensor) -> torch.Tensor:
    """``(N, D)`` → each row's chunk (256 rows) max - min, ``(N, D)`` (what compressed PLY quantises over)."""
    n = len(x)
    pad = torch.cat([x, x[-1:].expand(-(-n // CHUNK_SIZE) * CHUNK_SIZE - n, -1)]).reshape(-1, CHUNK_SIZE, x.shape[1])
    return (pad.amax(1) - pad.amin(1)).repeat_interleave(CHUNK_SIZE, 0)[:n]


def assert_within_quantisation(fmt: str, got: Gaussians, ref: Gaussians) -> None:
    """``got`` (a decoded file of format ``fmt``, in file order) equals ``ref`` (the splats written, in
    that order) within what the format stores: each bound is half its quantisation step."""
    assert got.num_gaussians == ref.num_gaussians and got.sh.shape == ref.sh.shape
    d = {key: (getattr(got, key).double() - getattr(ref, key).double()).abs() for key in ("means", "log_scales")}
    alpha = (got.opacities.double() - ref.opacities.double()).abs()
    rgb = (got.sh[:, 0].double() - ref.sh[:, 0].double()).abs() * SH_C0
    rest = (got.sh[:, 1:].double() - ref.sh[:, 1:].double()).abs()
    if fmt == "spz":
        assert d["means"].max() <= 0.5 / 4096 + 1e-7                 # 12 fractional bits
        assert d["log_scales"].max() <= 0.5 / 16 + 1e-6              # log scale in steps of 1/16
        assert alpha.max() <= 0.5 / 255 + 1e-6
        assert rgb.max() <= 0.5 / (0.15 * 255) * SH_C0 + 1e-6        # f_dc · 0.15 · 255
        assert quat_error(got.quats, ref.quats) <= 3e-3              # 9 bits over [0, √½] a component
        assert rest[:, :3].max() <= 4.5 / 128 + 1e-6 if rest.numel() else True    # buckets of 8
        assert rest[:, 3:].max() <= 8.5 / 128 + 1e-6 if rest.shape[1] > 3 else True  # buckets of 16
    elif fmt == "compressed-ply":
        steps = torch.tensor([2047.0, 1023.0, 2047.0], dtype=torch.float64)  # 11 / 10 / 11 bits per chunk
        assert (d["means"] <= chunk_span(ref.means.double()) / steps / 2 + 1e-6).all()
        assert (d["log_scales"] <= chunk_span(ref.log_scales.double()) / steps / 2 + 1e-5).all()
        rgb_ref = ref.sh[:, 0].double() * SH_C0 + 0.5
        assert (rgb <= chunk_span(rgb_ref) / 255 / 2 + 1e-6).all()
        assert alpha.max() <= 0.5 / 255 + 1e-6
        assert quat_error(got.quats, ref.quats) <= 3e-3              # 10 bits over [-√½, √½]
        assert rest.max() <= 0.5 / 256 * 8 + 1e-6 if rest.numel() else True
    elif fmt == "glb":                                               # float32 throughout
        for key in ("means", "log_scales"):
            assert d[key].max() <= 1e-6, key
        assert alpha.max() <= 1e-6 and rgb.max() == 0 and (rest.max() == 0 if rest.numel() else True)
        assert quat_error(got.quats, ref.quats) <= 1e-6
    elif fmt == "splat":
        assert d["means"].max() == 0 and d["log_scales"].max() <= 1e-6
        assert alpha.max() <= 1 / 255 and rgb.max() <= 1 / 255 and quat_error(got.quats, ref.quats) <= 1 / 64
    else:
        raise AssertionError(fmt)


def stored_order(fmt: str, g: Gaussians) -> torch.Tensor:
    """The order a writer stores ``g`` in."""
    return {"spz": spz_order, "compressed-ply": compressed_ply_order, "splat": splat_order}.get(
        fmt, lambda g: torch.arange(g.num_gaussians))(g)


# ============================================================================ round trips
@pytest.mark.parametrize("degree", [0, 2])
@pytest.mark.parametrize("fmt", list(SPLAT_FORMATS))
def test_every_format_round_trips_through_our_reader(fmt, degree, tmp_path):
    g = unit(random_gaussians(1000, sh_degree=degree, seed=degree + 5))
    path = tmp_path / f"x{SPLAT_FORMATS[fmt].suffix}"
    save_splats(path, g)
    back = load_splats(path)
    if fmt == "ply":
        for key, t in g.tensors().items():
            assert torch.equal(getattr(back, key), t), key           # bit-exact
        return
    ref = g[stored_order(fmt, turn_about_z(g) if fmt in PLY_FAMILY else g)]  # writers order the stored splats
    if fmt == "splat":                                               # keeps the DC term only
        ref = Gaussians(ref.means, ref.quats, ref.log_scales, ref.opacity_logits, ref.sh[:, :1])
    assert_within_quantisation(fmt, back, ref)


def test_ply_and_splat_files_are_stored_in_the_ply_frame_and_unmarked_plys_read_as_they_are(tmp_path, sh3):
    save_splats(tmp_path / "saved.ply", sh3)
    data = plyfile.PlyData.read(str(tmp_path / "saved.ply"))                 # an independent reader
    assert "frame: ply" in data.comments
    v = data["vertex"]
    stored = np.stack([v["x"], v["y"], v["z"]], 1)
    np.testing.assert_array_equal(stored, sh3.means.numpy() * [-1, -1, 1])   # 180° about Z: x, y negated
    # degree 1 coefficients (l=1: m=-1, 0, 1) change sign by (-1)^|m|: f_rest_0 is (l=1, m=-1) of red
    np.testing.assert_allclose(v["f_rest_0"], -sh3.sh[:, 1, 0].numpy(), rtol=0, atol=0)
    np.testing.assert_allclose(v["f_rest_1"], sh3.sh[:, 2, 0].numpy(), rtol=0, atol=0)
    save_splats(tmp_path / "saved.splat", sh3)
    raw = np.frombuffer((tmp_path / "saved.splat").read_bytes()[:32 * sh3.num_gaussians], np.float32).reshape(-1, 8)[:, :3]
    ref = sh3.means[splat_order(sh3)].numpy() * [-1, -1, 1]
    np.testing.assert_allclose(raw, ref, rtol=0, atol=0)
    write_ply(tmp_path / "unmarked.ply", sh3)                                # no frame comment: read as it is
    np.testing.assert_array_equal(load_splats(tmp_path / "unmarked.ply").means, sh3.means)
    np.testing.assert_array_equal(load_splats(tmp_path / "saved.ply").means, sh3.means)


def test_a_compressed_ply_named_ply_reads_as_one(tmp_path, sh3):
    write_compressed_ply(tmp_path / "renamed.ply", sh3)
    with pytest.raises(SplatFileError, match="compressed PLY"):
        read_ply(tmp_path / "renamed.ply")                            # the INRIA reader says what it is
    assert_within_quantisation("compressed-ply", load_splats(tmp_path / "renamed.ply"), sh3[compressed_ply_order(sh3)])


def test_spz_version_3_is_gzip_and_reads_the_same(tmp_path, sh3):
    (tmp_path / "v3.spz").write_bytes(spz_bytes(sh3, version=3))
    (tmp_path / "v4.spz").write_bytes(spz_bytes(sh3))
    assert (tmp_path / "v3.spz").read_bytes()[:2] == b"\x1f\x8b"
    assert struct.unpack_from("<II", (tmp_path / "v4.spz").read_bytes()) == (SPZ_MAGIC, 4)
    v3, v4 = load_splats(tmp_path / "v3.spz"), load_splats(tmp_path / "v4.spz")
    for key, t in v4.tensors().items():
        assert torch.equal(getattr(v3, key), t), key


# ============================================================================ splat-transform
def read_their_ply(path: Path) -> Gaussians:
    """An INRIA ``.ply`` written by splat-transform, read with plyfile (not our reader)."""
    v = plyfile.PlyData.read(str(path))["vertex"]
    col = lambda *names: torch.from_numpy(np.stack([np.asarray(v[n], np.float32) for n in names], 1))  # noqa: E731
    rest = sorted((p.name for p in v.properties if p.name.startswith("f_rest_")), key=lambda s: int(s[7:]))
    k = len(rest) // 3 + 1
    sh = torch.cat([col("f_dc_0", "f_dc_1", "f_dc_2")[:, None],
                    (col(*rest).reshape(-1, 3, k - 1).transpose(1, 2) if rest else torch.zeros(len(v.data), 0, 3))], 1)
    return Gaussians(col("x", "y", "z"), col("rot_0", "rot_1", "rot_2", "rot_3"), col("scale_0", "scale_1", "scale_2"),
                     col("opacity")[:, 0], sh)


@pytest.mark.parametrize("fmt, back", [("spz", "sh3.spz.back.ply"), ("compressed-ply", "sh3.cply.back.ply"),
                                       ("spz", "bear.spz.back.ply")])
def test_splat_transform_reads_our_files_back_within_quantisation(converted, sh3, bear, fmt, back):
    g = sh3 if back.startswith("sh3") else bear
    theirs = read_their_ply(converted / back)
    assert_within_quantisation(fmt, theirs, g[stored_order(fmt, g)])
    ours = SPLAT_FORMATS[fmt].read(converted / back.replace(".spz.back.ply", ".ours.spz").replace(
        ".cply.back.ply", ".ours.compressed.ply"))                    # the file's own coordinates, as theirs
    np.testing.assert_allclose(ours.means, theirs.means, atol=1e-6)   # both decode the same bytes alike


def glb_attributes(path: Path) -> tuple[pygltflib.GLTF2, dict[str, np.ndarray]]:
    doc = pygltflib.GLTF2.load(str(path))
    blob, out = doc.binary_blob(), {}
    prim = doc.meshes[0].primitives[0]
    for semantic, index in vars(prim.attributes).items():
        if index is None:
            continue
        acc = doc.accessors[index]
        view = doc.bufferViews[acc.bufferView]
        dtype = {5126: "<f4", 5121: "u1"}[acc.componentType]
        width = {"SCALAR": 1, "VEC3": 3, "VEC4": 4}[acc.type]
        out[semantic] = np.frombuffer(blob, dtype, count=acc.count * width,
                                      offset=(view.byteOffset or 0) + (acc.byteOffset or 0)).reshape(acc.count, width)
    return doc, out


def test_our_glb_carries_the_attributes_splat_transform_writes_with_the_same_values(converted, sh3):
    ours_doc, ours = glb_attributes(converted / "sh3.ours.glb")
    theirs_doc, theirs = glb_attributes(converted / "sh3.theirs.glb")
    khr = sorted(s for s in theirs if s.startswith(ATTRIBUTE_PREFIX))
    assert len(khr) == 3 + 15 + 1 and sorted(s for s in ours if s.startswith(ATTRIBUTE_PREFIX)) == khr
    for semantic in khr + ["POSITION"]:
        assert ours[semantic].dtype == theirs[semantic].dtype == np.float32, semantic
        np.testing.assert_allclose(ours[semantic], theirs[semantic], rtol=0, atol=1e-6, err_msg=semantic)
    for doc in (ours_doc, theirs_doc):
        prim = doc.meshes[0].primitives[0]
        assert prim.mode == 0 and "KHR_gaussian_splatting" in doc.extensionsUsed
        assert prim.extensions["KHR_gaussian_splatting"]["kernel"] == "ellipse"
        assert prim.extensions["KHR_gaussian_splatting"]["colorSpace"] == "srgb_rec709_display"
    # COLOR_0, the fallback for viewers without splats: linear (glTF's rule), from the sRGB diffuse colour
    srgb = np.clip(sh3.sh[:, 0].double().numpy() * SH_C0 + 0.5, 0, 1)
    linear = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    np.testing.assert_allclose(ours["COLOR_0"][:, :3] / 255, linear, atol=0.5 / 255 + 1e-9)
    np.testing.assert_allclose(ours["COLOR_0"][:, 3] / 255, sh3.opacities.numpy(), atol=0.5 / 255 + 1e-6)
    assert_within_quantisation("glb", load_splats(converted / "sh3.theirs.glb"), sh3)  # we read theirs too


@pytest.mark.parametrize("name", ["sh3", "bear"])
def test_our_spz_and_compressed_ply_are_no_larger_than_splat_transforms(converted, name, sh3, bear):
    n = (sh3 if name == "sh3" else bear).num_gaussians
    for suffix in (".spz", ".compressed.ply"):
        ours, theirs = (converted / f"{name}.{who}{suffix}" for who in ("ours", "theirs"))
        assert load_splats(ours).num_gaussians == load_splats(theirs).num_gaussians == n   # nothing dropped
        assert ours.stat().st_size <= theirs.stat().st_size, (suffix, ours.stat().st_size, theirs.stat().st_size)
    assert (converted / f"{name}.ply").stat().st_size > 4 * (converted / f"{name}.ours.spz").stat().st_size


# ============================================================================ hostile files
def spz_v4(n: int, degree: int = 0, streams: list[bytes] | None = None, toc: list[tuple[int, int]] | None = None,
           count: int | None = None) -> bytes:
    """A hand-made SPZ v4 file: header for ``n`` splats, ``toc`` entries, then ``streams``."""
    streams = streams or []
    toc = toc if toc is not None else [(len(s), 0) for s in streams]
    head = struct.pack("<IIIBBBBI12x", SPZ_MAGIC, 4, n, degree, 12, 0, len(toc) if count is None else count, 32)
    return head + b"".join(struct.pack("<QQ", c, u) for c, u in toc) + b"".join(streams)


def zstd(data: bytes) -> bytes:
    import zstandard

    return zstandard.ZstdCompressor(level=3).compress(data)


def glb(doc: dict, blob: bytes = b"") -> bytes:
    text = json.dumps(doc).encode()
    text += b" " * (-len(text) % 4)
    blob += b"\0" * (-len(blob) % 4)
    body = struct.pack("<II", len(text), 0x4E4F534A) + text + (struct.pack("<II", len(blob), 0x004E4942) + blob
                                                                 if blob else b"")
    return b"glTF" + struct.pack("<II", 2, 12 + len(body)) + body


def splat_glb(count: int = 2, view_length: int | None = None, uri: str | None = None, position=None) -> bytes:
    """A minimal KHR_gaussian_splatting .glb of ``count`` splats (with the given lies)."""
    n = 2
    pos = np.zeros((n, 3), np.float32) if position is None else np.asarray(position, np.float32)
    arrays = [pos, np.tile(np.float32([0, 0, 0, 1]), (n, 1)), np.full((n, 3), 0.01, np.float32),
              np.full((n, 1), 0.5, np.float32), np.zeros((n, 3), np.float32)]
    names = ["POSITION", "ROTATION", "SCALE", "OPACITY", "SH_DEGREE_0_COEF_0"]
    blob, views, accessors = b"", [], []
    for i, a in enumerate(arrays):
        views.append({"buffer": 0, "byteOffset": len(blob), "byteLength": view_length or a.nbytes})
        accessors.append({"bufferView": i, "componentType": 5126, "count": count,
                          "type": {1: "SCALAR", 3: "VEC3", 4: "VEC4"}[a.shape[1]]})
        blob += a.tobytes()
    buffer = {"byteLength": len(blob)} if uri is None else {"byteLength": len(blob), "uri": uri}
    attributes = {(s if s == "POSITION" else ATTRIBUTE_PREFIX + s): i for i, s in enumerate(names)}
    doc = {"asset": {"version": "2.0"}, "extensionsUsed": ["KHR_gaussian_splatting"], "buffers": [buffer],
           "bufferViews": views, "accessors": accessors, "nodes": [{"mesh": 0}],
           "meshes": [{"primitives": [{"attributes": attributes, "mode": 0, "extensions": {
               "KHR_gaussian_splatting": {"kernel": "ellipse", "colorSpace": "srgb_rec709_display"}}}]}]}
    return glb(doc, blob)


def compressed_header(chunks: int, vertices: int) -> bytes:
    props = "".join(f"property float {p}\n" for p in ("min_x min_y min_z max_x max_y max_z min_scale_x min_scale_y "
                                                       "min_scale_z max_scale_x max_scale_y max_scale_z").split())
    return (f"ply\nformat binary_little_endian 1.0\nelement chunk {chunks}\n{props}element vertex {vertices}\n"
            + "".join(f"property uint {p}\n" for p in ("packed_position", "packed_rotation", "packed_scale",
                                                       "packed_color")) + "end_header\n").encode()


_BOMB = zstd(bytes(16 << 20))   # 16 MiB of zeros in a few hundred bytes
_NOISE = np.random.default_rng(1).integers(0, 256, 200, np.uint8).tobytes()

HOSTILE = {
    # name: (file name, content, a word the error must hold)
    "spz v4 claiming 4 billion splats": ("a.spz", spz_v4(2**32 - 1), "claims"),
    "spz gzip claiming 30 million splats": (
        "b.spz", gzip.compress(struct.pack("<IIIBBBB", SPZ_MAGIC, 3, 30_000_000, 3, 12, 0, 0)), "claims"),
    "spz v4 stream inflating past its table size": (
        "c.spz", spz_v4(4, streams=[_BOMB], toc=[(len(_BOMB), 36), (0, 4), (0, 12), (0, 12), (0, 16)]), "inflates"),
    "spz v4 stream past the end of the file": ("d.spz", spz_v4(4, toc=[(10**9, 36), (0, 4), (0, 12), (0, 12), (0, 16)]),
                                               "past the end"),
    "spz v4 table saying the wrong size": ("e.spz", spz_v4(4, toc=[(0, 999), (0, 4), (0, 12), (0, 12), (0, 16)]),
                                           "need"),
    "spz version 1": ("f.spz", gzip.compress(struct.pack("<IIIBBBB", SPZ_MAGIC, 1, 1, 0, 12, 0, 0) + bytes(40)),
                      "version 1"),
    "spz not gzip": ("g.spz", b"\x1f\x8b" + _NOISE, "gzip"),
    "compressed ply claiming 10^12 splats": ("a.compressed.ply", compressed_header(3_906_250_000, 10**12), "claims"),
    "compressed ply with the wrong chunk count": ("b.compressed.ply", compressed_header(5, 10) + bytes(5 * 48 + 160),
                                                  "chunks"),
    "compressed ply truncated": ("c.compressed.ply", compressed_header(1, 10) + bytes(48 + 100), "size mismatch"),
    "glb accessor claiming 10^12 splats": ("a.glb", splat_glb(count=10**12), "claims"),
    "glb accessor past its buffer view": ("b.glb", splat_glb(count=1000), "needs"),
    "glb buffer view past the binary chunk": ("c.glb", splat_glb(view_length=1 << 30), "runs past"),
    "glb buffer naming another file": ("d.glb", splat_glb(uri="../../../../etc/passwd"), "external"),
    "glb chunk longer than the file": ("e.glb", b"glTF" + struct.pack("<IIII", 2, 24, 2**31, 0x4E4F534A) + b"{}  ",
                                       "past the end"),
    "glb whose header lies about its length": ("f.glb", glb({"a": 1})[:20] + b"[" * 1000, "GLB header says"),
    "glb json nested 100000 deep": ("g.glb", b"glTF" + struct.pack("<II", 2, 20 + 100000) +
                                    struct.pack("<II", 100000, 0x4E4F534A) + b"[" * 100000, "malformed"),
    "glb without splats": ("h.glb", glb({"asset": {"version": "2.0"},
                                         "meshes": [{"primitives": [{"attributes": {}}]}]}), "no KHR_gaussian_splatting"),
    "glb with NaN positions": ("i.glb", splat_glb(position=[[np.nan, 0, 0], [0, 0, 0]]), "NaN"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_files_fail_cleanly_before_allocating(case, tmp_path):
    name, content, word = HOSTILE[case]
    (tmp_path / name).write_bytes(content)
    tracemalloc.start()
    try:
        with pytest.raises(SplatFileError, match=word) as info:
            load_splats(tmp_path / name)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert name in str(info.value)                                   # the message names the file
    assert peak < 3 * len(content) + (8 << 20), f"{peak:,} bytes allocated"


@pytest.mark.parametrize("suffix", [".spz", ".glb", ".compressed.ply"])
def test_random_and_truncated_files_fail_cleanly(suffix, tmp_path, sh3):
    rng = np.random.default_rng(0)
    for i in range(20):
        (tmp_path / f"r{i}{suffix}").write_bytes(rng.integers(0, 256, int(rng.integers(0, 3000)), np.uint8).tobytes())
        with pytest.raises(SplatFileError):
            load_splats(tmp_path / f"r{i}{suffix}")
    save_splats(tmp_path / f"whole{suffix}", sh3)
    whole = (tmp_path / f"whole{suffix}").read_bytes()
    for cut in (len(whole) // 2, len(whole) - 1):
        (tmp_path / f"cut{suffix}").write_bytes(whole[:cut])
        with pytest.raises(SplatFileError):
            load_splats(tmp_path / f"cut{suffix}")


def test_a_fifo_named_like_a_splat_file_is_refused_without_opening(tmp_path):
    for suffix in (".spz", ".glb", ".compressed.ply"):
        os.mkfifo(tmp_path / f"pipe{suffix}")                          # opening it would block forever
        with pytest.raises(SplatFileError, match="not a regular file"):
            load_splats(tmp_path / f"pipe{suffix}")


def test_unsupported_things_are_refused_with_a_reason(tmp_path, sh3):
    for writer in (write_spz, write_glb):                             # neither format can hold zero splats
        with pytest.raises(SplatFileError, match="at least one"):
            writer(tmp_path / "empty.x", sh3[:0])
    with pytest.raises(SplatFileError, match="extension"):
        load_splats(tmp_path / "x.obj")
    assert MAX_SPLATS < 10**12


# ============================================================================ ways out and in
@pytest.fixture(scope="module")
def sample(sh3):
    from splatgen.core.generator.base import GenerationSettings, Sample, input_camera

    viewmat, K = input_camera()
    return Sample(sh3, viewmat, K, seed=7, settings=GenerationSettings(), model="regressor")


def test_python_export_writes_every_format_with_its_metadata(tmp_path, sample):
    from splatgen.core.export import EXPORT_FORMATS, export_format, save_sample, visible_splats

    n = visible_splats(sample.gaussians).num_gaussians
    assert set(EXPORT_FORMATS) >= set(SPLAT_FORMATS)
    for name, (suffix, _) in EXPORT_FORMATS.items():
        if name not in SPLAT_FORMATS:  # the meshes: tests/test_mesh_export.py
            continue
        path = tmp_path / f"s{suffix}"
        assert export_format(path) == name
        assert save_sample(path, sample) == n
        assert load_splats(path).num_gaussians == n
    licence = {"model": "regressor"}
    assert read_ply_metadata(tmp_path / "s.ply").items() >= licence.items()
    assert read_ply_metadata(tmp_path / "s.compressed.ply").items() >= licence.items()
    assert read_glb_metadata(tmp_path / "s.glb").items() >= licence.items()
    assert read_splat_metadata(tmp_path / "s.spz").items() >= licence.items()   # a sidecar, s.spz.json
    assert read_splat_metadata(tmp_path / "s.splat").items() >= licence.items()
    assert save_sample(tmp_path / "named.bin", sample, format="glb") == n     # a format by name
    with pytest.raises(SplatFileError, match="no export format"):
        save_sample(tmp_path / "s.stl", sample)
    assert not list(tmp_path.glob(".*"))                             # no temporary files left


def test_generate_format_option_takes_names_and_lists(tmp_path):
    from splatgen.core.commands.generate import parse_formats
    from splatgen.core.commands.view import _stem

    assert [_stem(Path(p)) for p in ("a.compressed.ply", "b.PLY", "c.spz", "d.e.glb")] == ["a", "b", "c", "d.e"]
    assert parse_formats("spz") == ["spz"]
    assert parse_formats("glb, compressed-ply,glb") == ["glb", "compressed-ply"]
    assert parse_formats("both") == ["ply", "splat"]
    with pytest.raises(SplatgenError, match="not one of"):
        parse_formats("fbx")


def test_cli_generates_every_format_and_renders_each(tmp_path, run_splatgen, example_image):
    import imageio.v3 as iio

    photo = tmp_path / "bear.png"
    iio.imwrite(photo, (example_image.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8))
    r = run_splatgen("generate", photo, "-m", "regressor", "-n", "1", "--no-progress", "--out", tmp_path / "out",
                     "--format", "spz,glb,compressed-ply,ply,splat")
    assert r.returncode == 0, r.stderr
    folder = tmp_path / "out" / "bear"
    files = {p.name for p in folder.iterdir()}
    assert {"sample_00.spz", "sample_00.glb", "sample_00.compressed.ply", "sample_00.ply", "sample_00.splat"} <= files
    images = {}
    for suffix in (".ply", ".spz", ".compressed.ply"):               # the lossy ones; .glb is float32
        out = tmp_path / f"{suffix.strip('.')}.png"
        r = run_splatgen("render", folder / f"sample_00{suffix}", "--size", 64, 64, "--backend", "torch", "-o", out)
        assert r.returncode == 0, r.stderr
        rgba = iio.imread(out).astype(float)                         # straight colour: compare premultiplied
        images[suffix] = np.concatenate([rgba[..., :3] * rgba[..., 3:] / 255, rgba[..., 3:]], -1)
    assert images[".ply"][..., 3].mean() > 10                        # the object is there
    for suffix in (".spz", ".compressed.ply"):                       # and looks the same from each format
        diff = np.abs(images[suffix] - images[".ply"])
        assert diff.mean() < 0.5 and diff.max() < 32, (suffix, diff.mean(), diff.max())
    assert load_splats(folder / "sample_00.glb").num_gaussians == load_splats(folder / "sample_00.ply").num_gaussians


def test_the_page_downloads_and_views_every_format(tmp_path, sh3):
    from _page_client import PageClient
    from splatgen.core.viewer import ViewerServer
    from splatgen.core.viewer.server import DOWNLOADS, MESH_DOWNLOADS

    write_spz(tmp_path / "shown.spz", sh3)
    server = ViewerServer(load_splats(tmp_path / "shown.spz"), renderer="server")   # what `splatgen view x.spz` does
    server.download_name = "a <b>/../c"
    try:
        assert set(DOWNLOADS) == {f.suffix for f in SPLAT_FORMATS.values()} | set(MESH_DOWNLOADS)
        with PageClient(server) as page:
            got = {}
            for i, suffix in enumerate(s for s in DOWNLOADS if s not in (".ply", ".splat", ".mesh.glb")):
                page.click(server.download_buttons[suffix])
                page.wait_for(lambda: len(page.of_type("FileTransferStartDownload")) == i + 1)
                got[suffix] = page.download()
    finally:
        server.stop()
    for suffix, (name, content) in got.items():
        assert name.endswith(suffix) and "/" not in name and "<" not in name and not name.startswith(".")
        (tmp_path / f"got{suffix}").write_bytes(content)
        if suffix in MESH_DOWNLOADS:  # a mesh fused from the splats shown, read by an independent reader
            import trimesh

            mesh = trimesh.load(tmp_path / f"got{suffix}", force="mesh")
            assert len(mesh.faces) > 100 and mesh.visual.vertex_colors.shape[0] == len(mesh.vertices)
        else:
            assert load_splats(tmp_path / f"got{suffix}").num_gaussians == sh3.num_gaussians


def test_gui_export_offers_every_format_and_writes_the_one_named(tmp_path, sample):
    from splatgen.app.exports import Exports, splat_filters
    from splatgen.core.export import visible_splats

    filters = splat_filters(".spz").split(";;")
    assert filters[0].endswith("(*.spz)") and len(filters) == len(SPLAT_FORMATS) + 2  # + the two meshes
    assert any(f.endswith("(*.obj)") for f in filters) and any(f.endswith("(*.mesh.glb)") for f in filters)
    assert any(f.endswith("(*.compressed.ply)") for f in filters) and any(f.endswith("(*.glb)") for f in filters)

    class Window:  # the little of MainWindow that Exports.export_sample uses
        messages: list = []

        def status(self, text, error=False, **_):
            self.messages.append((text, error))

        def report(self, exc, what):
            raise exc

        io = SimpleNamespace(submit=lambda job: job.on_done(job.fn(None)))

    w = Window()
    entry = SimpleNamespace(sample=sample)
    for suffix in (".glb", ".compressed.ply", ".spz"):
        Exports(w).export_sample(str(tmp_path / f"g{suffix}"), entry=entry)
        assert load_splats(tmp_path / f"g{suffix}").num_gaussians == visible_splats(sample.gaussians).num_gaussians
    Exports(w).export_sample(str(tmp_path / "g.txt"), entry=entry)
    assert w.messages[-1][1] and ".spz" in w.messages[-1][0] and not (tmp_path / "g.txt").exists()
