"""How the viewport draws one frame of one splat scene into an OpenGL framebuffer (no Qt here).

Two paths, picked by :func:`splatgen.core.render.choose_backend` (the viewport brings its own
OpenGL context, so without CUDA it is always ``"gl"``; ``backend="gl"`` keeps it there with CUDA):

* ``"gl"`` — :class:`~splatgen.core.render.gl_backend.GLSplatRenderer` in the caller's moderngl
  context, drawing straight into the caller's framebuffer (a ``QOpenGLWidget``'s); the path on
  machines without CUDA (llvmpipe included).
* ``"gsplat"`` — gsplat on CUDA (:func:`splatgen.core.render.render`), the frame mapped to 8-bit
  colour on the GPU, downloaded, uploaded as a texture and drawn.

A renderer holds one scene, or a batch of scenes ``(B, N)`` (the tiled view's samples, padded to
one size by :func:`splatgen.core.render.batch_scenes`) drawn side by side in the tiles of one frame,
all from one camera, in one call: the OpenGL renderer's tiles (one sort for all of them), or one
batched gsplat render.

At ``scale < 1`` (the viewport uses it while the camera moves) the frame is rendered at
``scale``× the pixels into an intermediate texture and drawn stretched (bilinear) into the target
rectangle. The viewport (:mod:`splatgen.app.viewport`), the tiled view and ``splatgen bench
viewport`` (:mod:`splatgen.app.benchmark`) all draw through :class:`ViewportRenderer`.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from splatgen.core.gaussians import Gaussians
from splatgen.core.images import to_uint8
from splatgen.core.render import choose_backend
from splatgen.core.render.depth_shading import depth_range, scene_bounds, shade_depth
from splatgen.core.render.gl_backend import ALPHA_MIN, VIEW_MIN_TRANSMITTANCE

MODES = ("rgb", "depth", "alpha")

#: Boxes ``(x, y, w, h)`` of a frame, pixels from its top left, all of one size: where a batch's scenes go.
Tiles = Sequence[tuple[int, int, int, int]]

_BLIT_VS = """
#version 330
out vec2 v_uv;
void main() {
    vec2 p = vec2((gl_VertexID << 1) & 2, gl_VertexID & 2);
    v_uv = p;
    gl_Position = vec4(p * 2.0 - 1.0, 0.0, 1.0);
}
"""
_BLIT_FS = """
#version 330
uniform sampler2D u_tex;
uniform int u_flip;
uniform float u_dim;
in vec2 v_uv;
out vec4 f_color;
void main() {
    vec2 uv = v_uv;
    if (u_flip == 1) uv.y = 1.0 - uv.y;
    f_color = vec4(texture(u_tex, uv).rgb * u_dim, 1.0);
}
"""


class TextureBlitter:
    """Draws a texture over a rectangle of the bound framebuffer (bilinear, optional vertical flip)."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.prog = ctx.program(vertex_shader=_BLIT_VS, fragment_shader=_BLIT_FS)
        self.prog["u_tex"].value = 0
        self.vao = ctx.vertex_array(self.prog, [])

    def draw(self, texture, rect: tuple[int, int, int, int], *, flip: bool = False, dim: float = 1.0,
             clip: tuple[int, int, int, int] | None = None) -> None:
        """``rect`` = (x, y, w, h) in framebuffer pixels, origin bottom-left; only its part inside
        ``clip`` (the same kind of box; default all of it) is drawn."""
        import moderngl

        self.ctx.viewport = rect
        self.ctx.scissor = clip or rect
        self.ctx.disable(moderngl.BLEND)
        texture.use(0)
        self.prog["u_flip"].value = int(flip)
        self.prog["u_dim"].value = float(dim)
        self.vao.render(moderngl.TRIANGLES, vertices=3)
        self.ctx.scissor = None

    def release(self) -> None:
        self.vao.release()
        self.prog.release()


class ViewportRenderer:
    """One scene (or a batch drawn in tiles), drawn by one backend into framebuffers of one moderngl context.

    Args:
        ctx: the moderngl context (current while any method is called); may be None for the
            gsplat path when only :meth:`frame_cuda` is used (no drawing).
        backend: ``"auto"``, ``"gl"`` or ``"gsplat"`` (gsplat only where it can render, see the
            module docstring).
    """

    def __init__(self, ctx, backend: str = "auto", blitter: TextureBlitter | None = None):
        self.ctx = ctx
        self.backend = "gl" if backend == "gl" else choose_backend(have_gl=True)
        self._blitter = blitter
        self._owns_blitter = blitter is None
        self._gl = None
        self._gaussians: Gaussians | None = None   # on CUDA for the gsplat path
        self._bounds = (np.zeros(3), 1.0)        # the scene's bounding sphere, for the depth range
        self._inter = None          # (framebuffer, texture, (w, h)) for the scaled GL path
        self._tex = None            # (texture, (w, h)) for the gsplat path
        self._host = None           # page-locked (H, W, 3) uint8 frame buffer for the gsplat path
        if self.backend == "gl":
            from splatgen.core.render.gl_backend import GLSplatRenderer

            self._gl = GLSplatRenderer(ctx, min_transmittance=VIEW_MIN_TRANSMITTANCE, display_8bit=True)
        self.renderer_name = (self._gl.renderer_name if self._gl is not None
                              else f"gsplat on {torch.cuda.get_device_name(0)}")

    @property
    def blitter(self) -> TextureBlitter:
        if self._blitter is None:
            self._blitter = TextureBlitter(self.ctx)
        return self._blitter

    # ------------------------------------------------------------------ scene
    @property
    def num_splats(self) -> int:
        """Splats uploaded (a batch: all its scenes', padding included)."""
        return 0 if self._gaussians is None else int(self._gaussians.shape.numel())

    def set_gaussians(self, gaussians: Gaussians | None) -> None:
        """Upload a scene ``(N,)`` or a batch of scenes ``(B, N)`` (any device); ``None`` clears it."""
        if gaussians is None:
            self._gaussians = None
            return
        g = gaussians.detach() if hasattr(gaussians, "detach") else gaussians
        # a batch's bounds leave out the padding (batch_scenes' splats at the origin)
        self._bounds = scene_bounds(g.means if len(g.shape) == 1 else g.means[g.opacities >= ALPHA_MIN])
        if self.backend == "gl":
            self._gl.set_gaussians(g.to("cpu"))
            self._gaussians = g
        else:
            self._gaussians = g.to("cuda")

    # ------------------------------------------------------------------ drawing
    def draw(self, fbo, viewmat, K, width: int, height: int, *, scale: float = 1.0, mode: str = "rgb",
             background: Sequence[float] = (1.0, 1.0, 1.0), origin: tuple[int, int] = (0, 0),
             tiles: Tiles | None = None) -> tuple[int, int]:
        """Draw the scene for camera ``viewmat`` ``(4, 4)`` / ``K`` ``(3, 3)`` (pixels of the full
        ``width``×``height`` rectangle at ``origin``, bottom-left) into ``fbo``; an empty scene
        clears the rectangle to ``background``. A batch needs ``tiles``: one box of the rectangle per
        scene (pixels from its top left, all of one size), ``K`` then a tile's; only the tiles are
        drawn, the rest of the rectangle is left as it is. Returns the rendered resolution ``(w, h)``."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        bg = tuple(float(c) for c in background)
        rect = (int(origin[0]), int(origin[1]), int(width), int(height))
        if self._gaussians is None or self.num_splats == 0:
            fbo.use()
            self.ctx.viewport = rect
            self.ctx.scissor = rect
            fbo.clear(*bg, 1.0)
            self.ctx.scissor = None
            return 0, 0
        sw, sh = max(1, round(width * scale)), max(1, round(height * scale))
        Ks, scaled_tiles = scaled_camera(K, width, height, sw, sh, tiles)
        vm = np.asarray(viewmat, np.float64)
        if self.backend == "gl":
            if (sw, sh) == (width, height):
                self._gl.render(vm, Ks, sw, sh, background=bg, mode=mode, fbo=fbo, viewport_origin=origin,
                                flip_y=True, depth_range=self.depth_range(vm), tiles=tiles)
                return sw, sh
            inter_fbo, tex = self._intermediate(sw, sh)
            if tiles is not None:
                inter_fbo.clear(*bg, 1.0)    # what the stretched tiles' edges sample beyond them
            self._gl.render(vm, Ks, sw, sh, background=bg, mode=mode, fbo=inter_fbo, flip_y=True,
                            depth_range=self.depth_range(vm), tiles=scaled_tiles)
            flip = False
        else:
            frame = self.frame_cuda(vm, Ks, sw, sh, mode=mode, background=bg, tiles=scaled_tiles)
            tex, flip = self._texture(sw, sh), True
            tex.write(frame)             # straight from the pinned host buffer, no extra copy
        fbo.use()
        for x, y, w, h in tiles or [(0, 0, width, height)]:
            self.blitter.draw(tex, rect, flip=flip, clip=(rect[0] + x, rect[1] + height - y - h, w, h))
        return sw, sh

    def frame_cuda(self, viewmat, K, width: int, height: int, *, mode: str = "rgb",
                   background: Sequence[float] = (1.0, 1.0, 1.0), tiles: Tiles | None = None) -> np.ndarray:
        """gsplat path: one frame as ``(H, W, 3)`` uint8 on the host, row 0 at the top; ``mode`` is
        shown as the GL renderer shows it (alpha as grey; depth by
        :func:`~splatgen.core.render.depth_shading.shade_depth`). A batch is one gsplat call, its
        scenes placed in ``tiles`` over ``background``.
        The array lives in a reused page-locked buffer: valid until the next call."""
        from splatgen.core.render import render

        g = self._gaussians
        dev = g.means.device
        vm = torch.as_tensor(viewmat, dtype=torch.float32, device=dev)[None]
        Kt = torch.as_tensor(K, dtype=torch.float32, device=dev)[None]
        bg = torch.tensor(background, dtype=torch.float32, device=dev)
        w, h = (tiles[0][2], tiles[0][3]) if tiles is not None else (width, height)
        with torch.no_grad():
            out = render(g, vm, Kt, w, h, background=bg, backend="gsplat")   # (*B, 1, h, w, ·)
            if mode == "rgb":
                img = out.rgb[..., 0, :, :, :]
            elif mode == "alpha":
                img = out.alpha[..., 0, :, :, :].expand(*out.alpha.shape[:-4], -1, -1, 3)
            else:
                img = shade_depth(out.depth[..., 0, :, :, :], out.alpha[..., 0, :, :, :], bg, self.depth_range(viewmat))
            if tiles is not None:
                canvas = bg.expand(height, width, 3).clone()
                for (x, y, tw, th), tile in zip(tiles, img):
                    canvas[y:y + th, x:x + tw] = tile
                img = canvas
            img8 = to_uint8(img)
            if self._host is None or tuple(self._host.shape) != tuple(img8.shape):
                self._host = torch.empty(tuple(img8.shape), dtype=torch.uint8, pin_memory=True)
            self._host.copy_(img8, non_blocking=True)
            torch.cuda.current_stream(dev).synchronize()
            return self._host.numpy()

    def image(self, viewmat, K, width: int, height: int,
              background: Sequence[float] = (1.0, 1.0, 1.0), tiles: Tiles | None = None) -> np.ndarray:
        """The RGB image ``(H, W, 3)`` float32 in [0, 1], row 0 at the top (offscreen; for the
        variance map), a batch's scenes in ``tiles`` as :meth:`draw` puts them. Leaves no framebuffer
        bound that the caller relies on: rebind yours."""
        bg = tuple(float(c) for c in background)
        if self._gaussians is None or self.num_splats == 0:
            return np.broadcast_to(np.asarray(bg, np.float32), (height, width, 3)).copy()
        if self.backend == "gl":
            return np.asarray(self._gl.render(np.asarray(viewmat, np.float64), np.asarray(K, np.float64),
                                              width, height, background=bg, tiles=tiles), np.float32)
        return self.frame_cuda(viewmat, K, width, height, background=bg,
                               tiles=tiles).astype(np.float32) / 255.0  # a copy

    def depth_range(self, viewmat) -> tuple[float, float]:
        """Depths shown white and black for camera ``viewmat`` ``(4, 4)``: the nearest and farthest the
        scene's bounding sphere can be (:func:`splatgen.core.render.depth_shading.depth_range`)."""
        return depth_range(self._bounds, viewmat)

    # ------------------------------------------------------------------ GPU objects
    def _intermediate(self, w: int, h: int):
        """The scaled GL path's target: ``(framebuffer, texture)`` of ``w``×``h`` RGBA8."""
        import moderngl

        if self._inter is None or self._inter[2] != (w, h):
            self._release_intermediate()
            tex = self.ctx.texture((w, h), 4)
            tex.filter = (moderngl.LINEAR, moderngl.LINEAR)
            tex.repeat_x = tex.repeat_y = False
            fbo = self.ctx.framebuffer(color_attachments=[tex])
            self._inter = (fbo, tex, (w, h))
        return self._inter[:2]

    def _texture(self, w: int, h: int):
        import moderngl

        if self._tex is None or self._tex[1] != (w, h):
            if self._tex is not None:
                self._tex[0].release()
            tex = self.ctx.texture((w, h), 3, alignment=1)
            tex.filter = (moderngl.LINEAR, moderngl.LINEAR)
            tex.repeat_x = tex.repeat_y = False
            self._tex = (tex, (w, h))
        return self._tex[0]

    def _release_intermediate(self) -> None:
        if self._inter is not None:
            self._inter[0].release()
            self._inter[1].release()
            self._inter = None

    def release(self) -> None:
        """Free the GPU objects (the context must be current)."""
        self._release_intermediate()
        if self._tex is not None:
            self._tex[0].release()
            self._tex = None
        if self._gl is not None:
            self._gl.release()
            self._gl = None
        if self._owns_blitter and self._blitter is not None:
            self._blitter.release()
            self._blitter = None
        self._gaussians = None


def scaled_camera(K, width: int, height: int, sw: int, sh: int,
                  tiles: Tiles | None = None) -> tuple[np.ndarray, Tiles | None]:
    """The intrinsics ``K`` ``(3, 3)`` of a ``width``×``height`` frame (of one of its ``tiles``) and the
    tiles, for the frame rendered at ``sw``×``sh`` pixels instead: every tile the same smaller size,
    its corner scaled and kept inside the frame."""
    Ks = np.asarray(K, np.float64).copy()
    if (sw, sh) == (width, height):
        return Ks, tiles
    if tiles is None:
        Ks[0] *= sw / width
        Ks[1] *= sh / height
        return Ks, None
    tw, th = tiles[0][2:]
    stw, sth = max(1, round(tw * sw / width)), max(1, round(th * sh / height))
    Ks[0] *= stw / tw
    Ks[1] *= sth / th
    return Ks, [(min(round(x * sw / width), sw - stw), min(round(y * sh / height), sh - sth), stw, sth)
                for x, y, _, _ in tiles]


def fit_scale(frame_ms: float, target_ms: float = 33.0, lo: float = 0.25) -> float:
    """Resolution scale for a moving camera: 1 while a full-resolution frame fits ``target_ms``
    (~30 FPS); otherwise at most ½, less when frames are slower (pixel count ∝ the time budget)."""
    if frame_ms <= target_ms:
        return 1.0
    return float(min(0.5, max(lo, math.sqrt(target_ms / frame_ms))))
