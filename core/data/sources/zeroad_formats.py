"""0 A.D.'s binary mesh and animation formats: PMD models and PSA animations.

PMD v4 (little endian; https://trac.wildfiregames.com/wiki/PMD_File_Format): ``"PSMD"``, version,
data size, ``numVertices``, ``numTexCoords``, vertices of ``24 + 8·numTexCoords + 20`` bytes
(position, normal, UV pairs, 4 bone indices + 4 weights), ``numFaces`` × 3 u16 indices, rest-pose
bones (translation + quaternion ``x y z w``), prop points (name, translation, quaternion, bone;
transform = bone · translation · rotation). Vertices are in the rest pose's model space. The game's
frame is Y up and left-handed (its COLLADA converter swaps Y and Z); this reader returns Y-up
right-handed coordinates by negating z. With the shipped ``.cached.dds`` textures as Pillow decodes
them (row 0 at the top), a PMD ``v`` counts from the image's bottom row, the OBJ convention the
renderer samples, so UVs pass unchanged (checked on the game's units: with ``1 - v`` a hoplite's
bare legs take his tunic's colour).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..parts import ModelError


@dataclass
class PMD:
    """A parsed PMD model (game coordinates: Y up, left-handed).

    ``positions``, ``normals`` ``(N, 3)`` float32; ``uvs`` ``(N, K, 2)`` float32 as stored;
    ``faces`` ``(F, 3)`` int64; ``bones`` ``(B, 4, 4)`` rest-pose transforms; ``prop_points``
    name → ``(4, 4)`` transform of the point in model space in the rest pose (bone included);
    ``prop_local`` name → (transform relative to its bone, bone index or -1); ``blend_bones``
    ``(N, 4)`` (255 = none) and ``blend_weights`` ``(N, 4)``: each vertex's bone influences.
    """

    positions: np.ndarray
    normals: np.ndarray
    uvs: np.ndarray
    faces: np.ndarray
    bones: np.ndarray
    prop_points: dict[str, np.ndarray] = field(default_factory=dict)
    prop_local: dict[str, tuple[np.ndarray, int]] = field(default_factory=dict)
    blend_bones: np.ndarray | None = None
    blend_weights: np.ndarray | None = None

    def posed(self, pose: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Positions, normals and prop points with the bones at ``pose`` ``(B, 4, 4)`` (model-space
        bone transforms, as a PSA frame holds them): ``Σ w · pose[b] · rest[b]⁻¹ · v``."""
        skin = np.einsum("bij,bjk->bik", pose, np.linalg.inv(self.bones))  # (B, 4, 4)
        pos = np.zeros((len(self.positions), 3))
        nrm = np.zeros((len(self.positions), 3))
        total = np.zeros(len(self.positions))
        for k in range(4):
            b = self.blend_bones[:, k].astype(np.int64)
            w = self.blend_weights[:, k].astype(np.float64)
            use = (b < len(self.bones)) & (w > 0)
            if not use.any():
                continue
            M = skin[b[use]]
            pos[use] += w[use, None] * (np.einsum("nij,nj->ni", M[:, :3, :3], self.positions[use]) + M[:, :3, 3])
            nrm[use] += w[use, None] * np.einsum("nij,nj->ni", M[:, :3, :3], self.normals[use])
            total[use] += w[use]
        free = total <= 0  # vertices on no bone stay where they are
        pos[free], nrm[free] = self.positions[free], self.normals[free]
        pos[~free] /= total[~free, None]
        nrm /= np.maximum(np.linalg.norm(nrm, axis=1, keepdims=True), 1e-12)
        props = {name: (pose[bone] @ local if 0 <= bone < len(pose) else local)
                 for name, (local, bone) in self.prop_local.items()}
        return pos.astype(np.float32), nrm.astype(np.float32), props


def quaternion_matrix(q) -> np.ndarray:
    """``(3, 3)`` rotation of a unit quaternion ``(x, y, z, w)``."""
    x, y, z, w = (float(v) for v in q)
    n = x * x + y * y + z * z + w * w
    if n < 1e-12:
        return np.eye(3)
    s = 2.0 / n
    return np.array([
        [1 - s * (y * y + z * z), s * (x * y - z * w), s * (x * z + y * w)],
        [s * (x * y + z * w), 1 - s * (x * x + z * z), s * (y * z - x * w)],
        [s * (x * z - y * w), s * (y * z + x * w), 1 - s * (x * x + y * y)],
    ])


def _rigid(t, q) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3] = quaternion_matrix(q)
    m[:3, 3] = t
    return m


def read_pmd(data: bytes) -> PMD:
    """Parse a PMD file (versions 3 and 4; 4 is what 0 A.D. ships). Raises :class:`ModelError`."""
    if len(data) < 20 or data[:4] != b"PSMD":
        raise ModelError("not a PMD file (no PSMD magic)")
    version, size = np.frombuffer(data, "<u4", 2, 4)
    if version not in (3, 4):
        raise ModelError(f"unsupported PMD version {version}")
    if size != len(data) - 12:
        raise ModelError(f"PMD size field {size} != file size - 12 ({len(data) - 12}): truncated or corrupt")
    try:
        off = 12
        n_vert = int(np.frombuffer(data, "<u4", 1, off)[0])
        off += 4
        n_uv = 1
        if version >= 4:
            n_uv = int(np.frombuffer(data, "<u4", 1, off)[0])
            off += 4
        fields = [("pos", "<f4", 3), ("nrm", "<f4", 3)]
        if n_uv:
            fields.append(("uv", "<f4", (n_uv, 2)))
        vdt = np.dtype(fields + [("bones", "u1", 4), ("weights", "<f4", 4)])
        verts = np.frombuffer(data, vdt, n_vert, off)
        off += n_vert * vdt.itemsize
        n_face = int(np.frombuffer(data, "<u4", 1, off)[0])
        off += 4
        faces = np.frombuffer(data, "<u2", 3 * n_face, off).reshape(-1, 3).astype(np.int64)
        off += 6 * n_face
        n_bone = int(np.frombuffer(data, "<u4", 1, off)[0])
        off += 4
        braw = np.frombuffer(data, "<f4", 7 * n_bone, off).reshape(-1, 7)
        off += 28 * n_bone
        bones = np.stack([_rigid(b[:3], b[3:]) for b in braw]) if n_bone else np.zeros((0, 4, 4))
        props: dict[str, np.ndarray] = {}
        local: dict[str, tuple[np.ndarray, int]] = {}
        n_prop = int(np.frombuffer(data, "<u4", 1, off)[0])
        off += 4
        for _ in range(n_prop):
            n_name = int(np.frombuffer(data, "<u4", 1, off)[0])
            off += 4
            name = data[off:off + n_name].decode("ascii", "replace")
            off += n_name
            tq = np.frombuffer(data, "<f4", 7, off)
            bone = data[off + 28]
            off += 29
            m = _rigid(tq[:3], tq[3:])
            on_bone = bone != 0xFF and bone < n_bone
            local[name] = (m, int(bone) if on_bone else -1)
            props[name] = bones[bone] @ m if on_bone else m
    except ValueError as exc:  # np.frombuffer past the end
        raise ModelError(f"truncated PMD ({exc})") from None
    if off != len(data):
        raise ModelError(f"PMD has {len(data) - off} bytes after its last section")
    if len(faces) and faces.max() >= n_vert:
        raise ModelError(f"PMD face index {faces.max()} out of range ({n_vert} vertices)")
    uvs = verts["uv"].astype(np.float32) if n_uv else np.zeros((n_vert, 0, 2), np.float32)
    return PMD(verts["pos"].astype(np.float32), verts["nrm"].astype(np.float32), uvs, faces, bones, props, local,
               verts["bones"].copy(), verts["weights"].astype(np.float32))


def read_psa_frame(data: bytes, index: int = 0) -> np.ndarray:
    """Frame ``index`` of a PSA animation: ``(bones, 4, 4)`` model-space bone transforms (game frame).

    ``"PSSA"``, u32 version (1), u32 data size, name (u32 length + chars), f32 frame length, u32 bone
    count, u32 frame count, then frames × bones states (translation, quaternion ``x y z w``).
    """
    if len(data) < 24 or data[:4] != b"PSSA":
        raise ModelError("not a PSA file (no PSSA magic)")
    try:
        n_name = int(np.frombuffer(data, "<u4", 1, 12)[0])
        off = 16 + n_name
        n_bone, n_frame = (int(x) for x in np.frombuffer(data, "<u4", 2, off + 4))
        raw = np.frombuffer(data, "<f4", 7 * n_bone * n_frame, off + 12).reshape(n_frame, n_bone, 7)
    except ValueError as exc:
        raise ModelError(f"truncated PSA ({exc})") from None
    if not 0 <= index < n_frame:
        raise ModelError(f"PSA has {n_frame} frames, no frame {index}")
    return np.stack([_rigid(b[:3], b[3:]) for b in raw[index]])
