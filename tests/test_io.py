"""Splat file I/O: .ply / .splat round trips, interoperability, and hostile input."""

from __future__ import annotations

import os
import struct
import tracemalloc

import numpy as np
import plyfile
import pytest
import torch

from splatgen.core.errors import SplatFileError
from splatgen.core.gaussians import SH_C0, Gaussians, random_gaussians
from splatgen.core.io import (
    MAX_HEADER_BYTES, load_splats, read_ply, read_splat, save_splats, splat_order, write_ply,
    write_splat,
)

REQUIRED = ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity",
            "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]


def assert_bit_equal(a: Gaussians, b: Gaussians) -> None:
    for name, t in a.tensors().items():
        u = getattr(b, name)
        assert u.dtype == torch.float32 and t.dtype == torch.float32, name
        assert u.shape == t.shape, name
        assert torch.equal(t.view(torch.int32), u.view(torch.int32)), name


def inria_names(k: int, normals: bool = True) -> list[str]:
    names = ["x", "y", "z"] + (["nx", "ny", "nz"] if normals else [])
    names += ["f_dc_0", "f_dc_1", "f_dc_2"] + [f"f_rest_{i}" for i in range(3 * (k - 1))]
    return names + ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]


def columns_of(g: Gaussians) -> dict[str, np.ndarray]:
    """INRIA property name -> float32 column, for building files with plyfile or by hand."""
    k = g.sh.shape[1]
    cols = {"x": g.means[:, 0], "y": g.means[:, 1], "z": g.means[:, 2], "opacity": g.opacity_logits}
    for c in range(3):
        cols[f"f_dc_{c}"] = g.sh[:, 0, c]
        cols[f"scale_{c}"] = g.log_scales[:, c]
        for j in range(k - 1):
            cols[f"f_rest_{c * (k - 1) + j}"] = g.sh[:, 1 + j, c]
    for c in range(4):
        cols[f"rot_{c}"] = g.quats[:, c]
    return {name: v.numpy().astype(np.float32) for name, v in cols.items()}


def ply_bytes(props, rows, *, fmt="binary_little_endian", count=None, types=None,
              extra_header: str = "", body: bytes | None = None) -> bytes:
    """Hand-made PLY: ``props`` names, ``rows`` (N, P) values, all float unless ``types`` says."""
    rows = np.asarray(rows, dtype=np.float64).reshape(-1, len(props))
    types = types or ["float"] * len(props)
    n = len(rows) if count is None else count
    header = "ply\n" f"format {fmt} 1.0\n" + extra_header + f"element vertex {n}\n"
    header += "".join(f"property {t} {p}\n" for t, p in zip(types, props)) + "end_header\n"
    if body is None:
        if fmt == "ascii":
            body = "".join(" ".join(repr(float(v)) for v in r) + "\n" for r in rows).encode()
        else:
            codes = {"float": "f4", "double": "f8", "uchar": "u1", "int": "i4", "short": "i2"}
            order = "<" if fmt == "binary_little_endian" else ">"
            dt = np.dtype([(f"p{i}", order + codes[t]) for i, t in enumerate(types)])
            arr = np.empty(len(rows), dtype=dt)
            for i in range(len(props)):
                arr[f"p{i}"] = rows[:, i]
            body = arr.tobytes()
    return header.encode() + body


def valid_rows(n=2):
    rows = np.zeros((n, len(REQUIRED)))
    rows[:, REQUIRED.index("rot_0")] = 1.0
    return rows


@pytest.fixture
def gs3():
    return random_gaussians(64, sh_degree=3, seed=1)


# ============================================================================ round trips
@pytest.mark.parametrize("degree", [0, 1, 2, 3])
def test_ply_round_trip_bit_exact(tmp_path, degree):
    g = random_gaussians(200, sh_degree=degree, seed=degree)
    # awkward float32 values must survive bit for bit
    g.means[0] = torch.tensor([-0.0, 1e-45, 3.4e38])
    g.log_scales[1] = torch.tensor([-1e-42, 0.0, -80.0])
    g.sh[2, -1] = torch.tensor([-0.0, 1.1754943e-38, -3.3e38])
    path = tmp_path / "g.ply"
    write_ply(path, g)
    h = read_ply(path)
    assert h.sh_degree == degree
    assert_bit_equal(g, h)
    # write(read(file)) is byte-identical
    path2 = tmp_path / "g2.ply"
    write_ply(path2, h)
    assert path.read_bytes() == path2.read_bytes()
    # size: header + N rows of float32
    k = (degree + 1) ** 2
    assert path.stat().st_size == len(path.read_bytes().split(b"end_header\n")[0]) + 11 + 200 * 4 * (17 + 3 * (k - 1))


def test_ply_writer_layout_matches_inria_and_plyfile_reads_it(tmp_path, gs3):
    path = tmp_path / "g.ply"
    write_ply(path, gs3)
    raw = path.read_bytes()
    header = raw[:raw.index(b"end_header\n") + 11].decode()
    assert header.startswith("ply\nformat binary_little_endian 1.0\nelement vertex 64\n")
    ply = plyfile.PlyData.read(str(path))
    assert ply.byte_order == "<" and not ply.text
    assert [e.name for e in ply.elements] == ["vertex"]
    v = ply["vertex"]
    assert [p.name for p in v.properties] == inria_names(16)
    assert all(v.data.dtype[p.name] == np.dtype("<f4") for p in v.properties)
    for name in ("nx", "ny", "nz"):
        assert np.all(v[name] == 0)
    for name, col in columns_of(gs3).items():
        np.testing.assert_array_equal(v[name], col, err_msg=name)


def test_write_accepts_float64_grad_and_noncontiguous(tmp_path):
    g = random_gaussians(10, sh_degree=1).to(dtype=torch.float64)
    g = g.map(lambda t: t.requires_grad_(True))
    path = tmp_path / "g.ply"
    write_ply(path, g)
    h = read_ply(path)
    assert_bit_equal(g.detach().to(dtype=torch.float32), h)
    rev = random_gaussians(10, sh_degree=1)[torch.arange(9, -1, -1)]
    write_ply(path, rev)
    assert_bit_equal(rev, read_ply(path))


def test_zero_vertices_allowed(tmp_path):
    empty = random_gaussians(5, sh_degree=2)[torch.zeros(5, dtype=torch.bool)]
    path = tmp_path / "empty.ply"
    write_ply(path, empty)
    h = read_ply(path)
    assert h.shape == (0,) and h.sh_degree == 2
    assert b"element vertex 0\n" in path.read_bytes()
    # a hand-made zero-vertex file with no body
    p2 = tmp_path / "empty2.ply"
    p2.write_bytes(ply_bytes(REQUIRED, np.zeros((0, len(REQUIRED)))))
    assert read_ply(p2).shape == (0,)


def test_write_rejects_batched_and_nonfinite(tmp_path):
    g = Gaussians.stack([random_gaussians(4), random_gaussians(4)])
    path = tmp_path / "b.ply"
    with pytest.raises(SplatFileError, match="b.ply"):
        write_ply(path, g)
    g = random_gaussians(4)
    g.opacity_logits[2] = float("nan")
    with pytest.raises(SplatFileError, match="opacity_logits"):
        write_ply(path, g)
    with pytest.raises(SplatFileError, match="b.splat"):
        write_splat(tmp_path / "b.splat", g)
    assert not path.exists() and list(tmp_path.iterdir()) == []


# ============================================================================ atomic writes
def test_atomic_write_leaves_no_temp_and_keeps_old_file_on_failure(tmp_path, gs3, monkeypatch):
    path = tmp_path / "g.ply"
    write_ply(path, gs3)
    write_ply(path, gs3[:10])          # overwrite
    assert read_ply(path).shape == (10,)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.ply"]
    before = path.read_bytes()

    def boom(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    for writer, name in ((write_ply, "g.ply"), (write_splat, "g.splat")):
        target = tmp_path / name
        with pytest.raises(SplatFileError, match=f"{name}.*No space left"):
            writer(target, gs3)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.ply"]


def test_write_into_missing_folder_or_onto_directory(tmp_path, gs3):
    with pytest.raises(SplatFileError, match="nope"):
        write_ply(tmp_path / "nope" / "g.ply", gs3)
    (tmp_path / "dir.ply").mkdir()
    with pytest.raises(SplatFileError, match="dir.ply"):
        write_ply(tmp_path / "dir.ply", gs3)
    assert [p.name for p in tmp_path.iterdir()] == ["dir.ply"]


def test_written_file_mode_follows_umask(tmp_path, gs3):
    old = os.umask(0o022)
    try:
        write_ply(tmp_path / "g.ply", gs3)
    finally:
        os.umask(old)
    assert (tmp_path / "g.ply").stat().st_mode & 0o777 == 0o644


# ============================================================================ other writers
def test_reads_other_property_order_extra_props_no_normals(tmp_path, gs3):
    cols = columns_of(gs3)
    names = list(cols)
    rng = np.random.default_rng(0)
    names = [names[i] for i in rng.permutation(len(names))]
    dtype = [(n, "f4") for n in names] + [("foo", "u1"), ("bar", "f8"), ("f_dc_3", "f4")]
    arr = np.zeros(64, dtype=dtype)
    for n in names:
        arr[n] = cols[n]
    arr["bar"] = np.nan                 # unused properties are not checked
    el = plyfile.PlyElement.describe(arr, "vertex")
    other = plyfile.PlyElement.describe(np.zeros(3, dtype=[("a", "i4")]), "camera")
    path = tmp_path / "shuffled.ply"
    plyfile.PlyData([el, other], comments=["made by a test"], obj_info=["x"]).write(str(path))
    assert_bit_equal(gs3, read_ply(path))


@pytest.mark.parametrize("text,byte_order", [(True, "="), (False, ">"), (False, "<")])
def test_reads_ascii_and_big_endian_and_double(tmp_path, gs3, text, byte_order):
    cols = columns_of(gs3)
    # x/y/z as double (exactly representable: float32 values), rot as float
    arr = np.zeros(64, dtype=[(n, "f8" if n in "xyz" else "f4") for n in cols])
    for n, c in cols.items():
        arr[n] = c
    path = tmp_path / "other.ply"
    el = plyfile.PlyElement.describe(arr, "vertex")
    plyfile.PlyData([el], text=text, byte_order=byte_order).write(str(path))
    h = read_ply(path)
    if text:  # plyfile writes ascii floats with enough digits to round-trip float32
        for name, t in gs3.tensors().items():
            torch.testing.assert_close(getattr(h, name), t, rtol=1e-6, atol=0, msg=name)
    else:
        assert_bit_equal(gs3, h)


def test_reads_integer_types_cast_and_fixed_size_element_before_vertex(tmp_path):
    rows = valid_rows(3)
    rows[:, 0] = [1, -2, 3]
    types = ["short"] + ["float"] * (len(REQUIRED) - 1)
    data = ply_bytes(REQUIRED, rows, types=types,
                     extra_header="element camera 2\nproperty double fx\nproperty uchar id\n")
    header, body = data.split(b"end_header\n")
    path = tmp_path / "cam.ply"
    path.write_bytes(header + b"end_header\n" + b"\xAB" * (2 * 9) + body)
    g = read_ply(path)
    assert g.means[:, 0].tolist() == [1.0, -2.0, 3.0]
    assert g.quats[:, 0].tolist() == [1.0, 1.0, 1.0]


def test_f_rest_is_channel_major(tmp_path):
    """f_rest_{c*(K-1)+j} is coefficient 1+j of channel c, as in the INRIA files."""
    k = 16
    names = inria_names(k, normals=False)
    n = 2
    rows = np.zeros((n, len(names)))
    for v in range(n):
        for i in range(3 * (k - 1)):
            rows[v, names.index(f"f_rest_{i}")] = 1000 * v + i
        rows[v, names.index("f_dc_0"):names.index("f_dc_2") + 1] = [-1, -2, -3]
    path = tmp_path / "rest.ply"
    path.write_bytes(ply_bytes(names, rows))
    g = read_ply(path)
    assert g.sh.shape == (n, k, 3)
    assert g.sh[0, 0].tolist() == [-1, -2, -3]
    for v in range(n):
        for c in range(3):
            for j in range(k - 1):
                assert g.sh[v, 1 + j, c].item() == 1000 * v + c * (k - 1) + j
    # and the writer puts them back the same way
    write_ply(tmp_path / "back.ply", g)
    back = plyfile.PlyData.read(str(tmp_path / "back.ply"))["vertex"]
    for i in range(3 * (k - 1)):
        assert back[f"f_rest_{i}"].tolist() == [i, 1000 + i]


def test_gsplat_exporter_ply_reads_back_equal(tmp_path):
    from gsplat.exporter import export_splats

    for degree in (1, 3):
        g = random_gaussians(40, sh_degree=degree, seed=7)
        path = tmp_path / f"gsplat{degree}.ply"
        # gsplat passes its raw parameters: log scales, opacity logits, SH in (N, K, 3)
        export_splats(means=g.means, scales=g.log_scales, quats=g.quats, opacities=g.opacity_logits,
                      sh0=g.sh[:, :1], shN=g.sh[:, 1:], format="ply", save_to=str(path))
        assert_bit_equal(g, read_ply(path))


def test_gsplat_exporter_splat_bytes_match_ours(tmp_path):
    from gsplat.exporter import export_splats

    g = random_gaussians(300, sh_degree=0, seed=3)
    theirs = export_splats(means=g.means, scales=g.log_scales, quats=g.quats,
                           opacities=g.opacity_logits, sh0=g.sh[:, :1],
                           shN=torch.zeros(300, 1, 3), format="splat")
    write_splat(tmp_path / "ours.splat", g)
    ours = (tmp_path / "ours.splat").read_bytes()
    assert len(ours) == len(theirs) == 32 * 300
    # gsplat orders by Morton code, we by importance: compare the records as sets
    rows = lambda b: sorted(b[i:i + 32] for i in range(0, len(b), 32))  # noqa: E731
    assert rows(ours) == rows(theirs)


# ============================================================================ .splat
def test_splat_size_order_and_values(tmp_path):
    g = random_gaussians(500, sh_degree=2, seed=5)
    g.quats[0] = 0.0                                    # zero quaternion → identity
    path = tmp_path / "g.splat"
    write_splat(path, g)
    raw = path.read_bytes()
    assert len(raw) == 32 * 500

    order = splat_order(g)
    ref = g[order]
    importance = (ref.log_scales.double().sum(-1).exp() * ref.opacities.double())
    assert torch.all(importance[:-1] >= importance[1:])

    # decode the bytes by hand, as the web viewer does
    pos = np.frombuffer(raw, dtype="<f4").reshape(500, 8)
    u8 = np.frombuffer(raw, dtype=np.uint8).reshape(500, 32)
    np.testing.assert_array_equal(pos[:, 0:3], ref.means.numpy())
    np.testing.assert_array_equal(pos[:, 3:6], ref.scales.numpy())
    rgb = np.clip(0.5 + SH_C0 * ref.sh[:, 0].numpy(), 0, 1)
    assert np.all(np.abs(u8[:, 24:27] / 255.0 - rgb) <= 1 / 255 + 1e-6)
    assert np.all(np.abs(u8[:, 27] / 255.0 - ref.opacities.numpy()) <= 1 / 255 + 1e-6)
    q = (u8[:, 28:32].astype(np.float64) - 128) / 128
    uq = ref.unit_quats.numpy()
    zero_row = int((order == 0).nonzero()[0, 0])
    uq[zero_row] = [1, 0, 0, 0]
    assert np.all(np.abs(q - uq) <= 1 / 128 + 1e-6)

    # read back: approximate within quantisation, positions/scales exact
    h = read_splat(path)
    assert h.shape == (500,) and h.sh_degree == 0
    assert torch.equal(h.means, ref.means)
    torch.testing.assert_close(h.log_scales, ref.log_scales, rtol=0, atol=1e-6)
    assert (h.rgb - ref.rgb).abs().max() <= 0.5 / 255 + 1e-6
    assert (h.opacities - ref.opacities).abs().max() <= 0.5 / 255 + 1e-4
    assert (h.quats - torch.from_numpy(uq)).abs().max() <= 1 / 128


def test_splat_handmade_record(tmp_path):
    rec = struct.pack("<3f3f4B4B", 1.0, 2.0, 3.0, 0.5, 0.25, 2.0, 255, 0, 127, 191, 255, 128, 128, 128)
    path = tmp_path / "one.splat"
    path.write_bytes(rec)
    g = read_splat(path)
    assert g.means.tolist() == [[1.0, 2.0, 3.0]]
    torch.testing.assert_close(g.scales, torch.tensor([[0.5, 0.25, 2.0]]))
    torch.testing.assert_close(g.rgb, torch.tensor([[1.0, 0.5 / 255, 127.5 / 255]]))
    torch.testing.assert_close(g.opacities, torch.tensor([191.5 / 255]))
    assert g.unit_quats[0, 0] > 0.9999


def test_load_save_dispatch(tmp_path, gs3):
    save_splats(tmp_path / "a.PLY", gs3)
    assert_bit_equal(gs3, load_splats(tmp_path / "a.PLY"))
    save_splats(str(tmp_path / "a.splat"), gs3)
    assert (tmp_path / "a.splat").stat().st_size == 32 * 64
    assert load_splats(tmp_path / "a.splat").shape == (64,)
    for bad in ("a.txt", "noext"):
        with pytest.raises(SplatFileError, match=bad):
            save_splats(tmp_path / bad, gs3)
        with pytest.raises(SplatFileError, match=bad):
            load_splats(tmp_path / bad)


@pytest.mark.parametrize("case", ["missing", "directory", "odd_size", "nan_pos", "inf_scale",
                                  "negative_scale", "fifo"])
def test_splat_bad_input(tmp_path, case):
    path = tmp_path / f"bad_{case}.splat"
    good = struct.pack("<3f3f4B4B", 0, 0, 0, 1, 1, 1, 1, 2, 3, 4, 255, 128, 128, 128)
    if case == "directory":
        path.mkdir()
    elif case == "odd_size":
        path.write_bytes(good + b"\0" * 5)
    elif case == "nan_pos":
        path.write_bytes(good + struct.pack("<3f3f8B", 0, float("nan"), 0, 1, 1, 1, *[0] * 8))
    elif case == "inf_scale":
        path.write_bytes(good + struct.pack("<3f3f8B", 0, 0, 0, 1, float("inf"), 1, *[0] * 8))
    elif case == "negative_scale":
        path.write_bytes(good + struct.pack("<3f3f8B", 0, 0, 0, 1, -1, 1, *[0] * 8))
    elif case == "fifo":
        os.mkfifo(path)
    with pytest.raises(SplatFileError) as err:
        read_splat(path)
    assert str(path) in str(err.value)


def test_empty_splat_file_is_zero_splats(tmp_path):
    path = tmp_path / "empty.splat"
    path.write_bytes(b"")
    assert read_splat(path).shape == (0,)


# ============================================================================ hostile .ply
def _nan_case(prop, value):
    names = inria_names(4, normals=False)
    rows = np.zeros((3, len(names)))
    rows[2, names.index(prop)] = value
    return ply_bytes(names, rows)


def _header_only(lines: str) -> bytes:
    return ("ply\nformat binary_little_endian 1.0\n" + lines + "end_header\n").encode()


BAD_PLY = {
    "empty_file": (b"", "empty"),
    "wrong_magic": (b"PK\x03\x04 this is a zip", "not a PLY"),
    "obj_file": (b"v 0 0 0\nv 1 1 1\n", "not a PLY"),
    "magic_only": (b"ply", "end_header"),
    "no_end_header": (b"ply\nformat binary_little_endian 1.0\nelement vertex 1\n", "end_header"),
    "huge_header": (b"ply\nformat ascii 1.0\n" + b"comment " + b"a" * (MAX_HEADER_BYTES + 10) + b"\nend_header\n",
                    f"{MAX_HEADER_BYTES}"),
    "many_header_lines": (b"ply\nformat ascii 1.0\n" + b"comment x\n" * 10000 + b"end_header\n",
                          "end_header"),
    "non_ascii_header": ("ply\nformat binary_little_endian 1.0\ncomment héllo\nend_header\n".encode(), "ASCII"),
    "bad_keyword": (_header_only("elephant vertex 3\n"), "unknown keyword"),
    "blank_line": (_header_only("\n"), "empty line"),
    "property_before_element": (_header_only("property float x\n"), "before any"),
    "element_before_format": (b"ply\nelement vertex 1\nformat ascii 1.0\nend_header\n", "before 'format'"),
    "no_format": (b"ply\nend_header\n", "format"),
    "negative_count": (_header_only("element vertex -1\n"), "count"),
    "text_count": (_header_only("element vertex lots\n"), "count"),
    "giant_count_digits": (_header_only("element vertex " + "9" * 5000 + "\n"), "count"),
    "unknown_type": (_header_only("element vertex 1\nproperty float128 x\n"), "type"),
    "duplicate_property": (_header_only("element vertex 1\nproperty float x\nproperty float x\n"), "duplicate"),
    "duplicate_element": (_header_only("element vertex 0\nelement vertex 0\n"), "duplicate"),
    "unsupported_format": (b"ply\nformat binary_middle_endian 1.0\nend_header\n", "unsupported"),
    "unsupported_version": (b"ply\nformat ascii 2.0\nend_header\n", "unsupported"),
    "no_vertex_element": (_header_only("element face 0\nproperty list uchar int vertex_indices\n"), "no 'vertex'"),
    "missing_properties": (ply_bytes([p for p in REQUIRED if p not in ("opacity", "rot_3")],
                                     valid_rows(2)[:, :12]), "opacity, rot_3"),
    "mesh_ply": (ply_bytes(["x", "y", "z"], np.zeros((2, 3))), "missing required"),
    "compressed_ply": (_header_only("element vertex 1\nproperty uint packed_position\n") + b"\0" * 4,
                       "compressed"),
    "list_property": (_header_only("element vertex 1\n" + "".join(f"property float {p}\n" for p in REQUIRED)
                                   + "property list uchar int idx\n"), "list"),
    "list_element_before_vertex": (_header_only("element face 1\nproperty list uchar int vi\nelement vertex 1\n"
                                                + "".join(f"property float {p}\n" for p in REQUIRED)), "list"),
    "f_rest_wrong_count": (ply_bytes(REQUIRED + [f"f_rest_{i}" for i in range(5)], np.zeros((1, 19))), "f_rest"),
    "f_rest_gap": (ply_bytes(REQUIRED + [f"f_rest_{i}" for i in range(10) if i != 4], np.zeros((1, 23))),
                   "gaps"),
    "truncated_body": (ply_bytes(REQUIRED, valid_rows(10))[:-7], "size mismatch"),
    "header_only": (ply_bytes(REQUIRED, valid_rows(0), count=3), "size mismatch"),
    "trailing_garbage": (ply_bytes(REQUIRED, valid_rows(2)) + b"\0" * 8, "size mismatch"),
    "truncated_before_vertex": (ply_bytes(REQUIRED, valid_rows(1),
                                          extra_header="element cam 1000\nproperty double f\n"),
                                "size mismatch"),
    "ascii_truncated": (ply_bytes(REQUIRED, valid_rows(3), fmt="ascii", count=5), "truncated"),
    "ascii_wrong_arity": (ply_bytes(REQUIRED, valid_rows(2), fmt="ascii",
                                    body=b"1 2 3\n" + b"0 " * 30 + b"\n"), "values"),
    "ascii_not_a_number": (ply_bytes(REQUIRED, valid_rows(1), fmt="ascii",
                                     body=b" ".join([b"zero"] * 14) + b"\n"), "invalid number"),
    "double_overflows_float32": (ply_bytes(REQUIRED, np.full((1, 14), 1e300),
                                           types=["double"] * 14), "non-finite"),
}
for _prop in ("x", "z", "f_dc_1", "f_rest_0", "f_rest_8", "opacity", "scale_2", "rot_0", "rot_3"):
    for _name, _v in (("nan", np.nan), ("inf", np.inf), ("-inf", -np.inf)):
        BAD_PLY[f"{_name}_in_{_prop}"] = (_nan_case(_prop, _v), _prop)


@pytest.mark.parametrize("case", sorted(BAD_PLY))
def test_bad_ply_raises_splat_file_error(tmp_path, case):
    data, needle = BAD_PLY[case]
    path = tmp_path / f"bad_{case}.ply"
    path.write_bytes(data)
    with pytest.raises(SplatFileError) as err:
        read_ply(path)
    msg = str(err.value)
    assert msg.startswith(str(path)), msg
    assert needle.lower() in msg.lower(), msg


def test_ascii_nan_is_rejected(tmp_path):
    path = tmp_path / "nan.ply"
    rows = valid_rows(2)
    rows[1, REQUIRED.index("scale_1")] = np.nan
    path.write_bytes(ply_bytes(REQUIRED, rows, fmt="ascii"))
    with pytest.raises(SplatFileError, match="scale_1"):
        read_ply(path)


def test_nan_in_unused_property_is_fine(tmp_path):
    names = REQUIRED + ["nx", "whatever"]
    rows = np.zeros((2, len(names)))
    rows[:, REQUIRED.index("rot_0")] = 1
    rows[:, -2:] = np.nan
    path = tmp_path / "ok.ply"
    path.write_bytes(ply_bytes(names, rows))
    assert read_ply(path).shape == (2,)


@pytest.mark.parametrize("case", ["missing", "directory", "fifo", "dangling_symlink"])
def test_ply_not_a_file(tmp_path, case):
    path = tmp_path / f"{case}.ply"
    if case == "directory":
        path.mkdir()
    elif case == "fifo":
        os.mkfifo(path)               # opening it would block: must be refused before opening
    elif case == "dangling_symlink":
        path.symlink_to(tmp_path / "nowhere.ply")
    with pytest.raises(SplatFileError) as err:
        read_ply(path)
    assert str(path) in str(err.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any file")
def test_ply_unreadable(tmp_path, gs3):
    path = tmp_path / "locked.ply"
    write_ply(path, gs3)
    path.chmod(0)
    with pytest.raises(SplatFileError, match="locked.ply"):
        read_ply(path)


@pytest.mark.parametrize("fmt", ["binary_little_endian", "binary_big_endian", "ascii"])
def test_absurd_vertex_count_fails_without_allocating(tmp_path, fmt):
    """A header claiming 2**40 vertices over a tiny body fails on the size check, before any
    allocation: 2**40 rows x 56 bytes would be 56 TiB (a MemoryError, not SplatFileError), and
    the traced peak stays far below even one megabyte."""
    data = ply_bytes(REQUIRED, valid_rows(1), fmt=fmt, count=2 ** 40)
    path = tmp_path / "absurd.ply"
    path.write_bytes(data)
    tracemalloc.start()
    try:
        with pytest.raises(SplatFileError) as err:
            read_ply(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    msg = str(err.value)
    assert str(path) in msg and "size mismatch" in msg and str(2 ** 40) in msg
    assert peak < 1 << 20


def test_crlf_header_is_accepted(tmp_path):
    data = ply_bytes(REQUIRED, valid_rows(2))
    header, body = data.split(b"end_header\n")
    path = tmp_path / "crlf.ply"
    path.write_bytes(header.replace(b"\n", b"\r\n") + b"end_header\r\n" + body)
    g = read_ply(path)
    assert g.shape == (2,) and g.quats[:, 0].tolist() == [1.0, 1.0]
