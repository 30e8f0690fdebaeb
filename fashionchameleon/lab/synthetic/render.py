"""Render dressed people: capsule/ellipse/tube primitives in a z-buffer, vectorised over frames.

Each body part is evaluated on the pixel window it can reach during the clip (`[T, h, w]`,
frames stacked), and written into a z-buffer (depth, surface label, light, atlas uv) where it
is nearer than what is there; colours are looked up once at the end. Garment pixels keep a UV into the texture mosaic
(`garments.mosaic`: upper/lower x front/back atlases) and are textured in one `grid_sample`
at the end, where atlas holes (necklines, armholes) turn back into skin. So patterns follow the
body: the torso uses cylinder coordinates (the front atlas on the near side when facing the
camera, the back atlas when facing away), limbs use (along, across) coordinates.

Depth comes from the 3-D pose: arms sit slightly in front of the torso's mid-plane, so they are
drawn over it when the person faces the camera and behind it from the back; long hair hangs
behind the torso; the face (eyes, brows, mouth, glasses, beard, mole) lives on the front of a
head sphere and disappears when the head turns away.

Outside the person the video equals the background plate exactly (hard edges, no shadows).

Frames may be portrait or landscape (`[T, 3, H, W]`): pixels are square, y spans [-1, 1] over the
height and x spans [-W/H, W/H] over the width (`shapes.frame_grid`), so a square frame is the
[-1, 1]^2 view of earlier versions, pixel for pixel.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import torch
from torch import Tensor

from .background import BackgroundSpec, render_background
from .garments import Garment, mosaic, sample_atlas
from .motion import FPS, J, MotionParams, Pose, pose_clip
from .people import BodyDims, Person
from .shapes import frame_grid
from .templates import TEMPLATES, TORSO_END_B, WAIST_B, LowerTemplate, limb_map, skirt_length, skirt_uv, \
    torso_lower_uv, torso_upper_uv

__all__ = ["Clip", "FaceStyle", "render_pose", "render_clip", "LABELS", "masks_from_labels"]

# Surface labels of the z-buffer, grouped so that every mask is a range test: body skin, the face
# (skin and marks), hair, shoes, then the two textured garments.
(BACKGROUND, SKIN, FACE, EYES, MOUTH, GLASSES, MOLE, HAIR, BEARD, SHOES, UPPER, LOWER) = range(12)
LABELS = {"background": BACKGROUND, "skin": SKIN, "face": FACE, "eyes": EYES, "mouth": MOUTH, "glasses": GLASSES,
          "mole": MOLE, "hair": HAIR, "beard": BEARD, "shoes": SHOES, "upper": UPPER, "lower": LOWER}


@dataclass(frozen=True)
class FaceStyle:
    """Sizes of the face marks and the bun, on the unit head sphere (head frame, y down).

    The defaults are the marks of the square full-body world; a framing whose head spans more
    pixels can make them bolder so they outlast the codec's downsampling (`camera.FRAMINGS`).
    """

    eye_r: float = 0.2  # eye disc radius
    brow_hh: float = 0.07  # brow half height
    mouth_hh: float = 0.075  # mouth half height
    glasses: tuple[float, float] = (0.24, 0.33)  # inner and outer radius of the rim around each eye
    bridge_hh: float = 0.05  # half height of the glasses' bridge
    mole_r: float = 0.11  # radius of the mark
    mole_dy: float = 0.0  # the mark sits this much lower than the person's mole position
    bun_r: float = 0.42  # bun radius in head half widths


@dataclass
class Clip:
    """A rendered clip: video `[T, 3, H, W]` in [0, 1], masks `{name: [T, H, W] bool}`, the plate
    `[3, H, W]` in [0, 1], per-pixel surface labels `[T, H, W]` uint8 (`LABELS`) and the pose."""

    video: Tensor
    masks: dict[str, Tensor]
    background: Tensor
    labels: Tensor
    pose: Pose


def masks_from_labels(labels: Tensor, box: list[int] | None = None) -> dict[str, Tensor]:
    """person (not background), upper, lower, skin (body and face), hair (incl. beard), head (face and hair).

    `box` (rows r0, r1, columns c0, c1) bounds the non-background labels, to skip the rest.
    """
    r0, r1, c0, c1 = box if box is not None else (0, labels.shape[-2], 0, labels.shape[-1])
    sub = labels[..., r0:r1, c0:c1]
    # uint8 wrap-around: (l - a) <= (b - a) tests a <= l <= b in one comparison
    tests = {
        "person": sub != BACKGROUND,
        "upper": sub == UPPER,
        "lower": sub == LOWER,
        "skin": (sub - SKIN) <= (MOLE - SKIN),
        "hair": (sub - HAIR) <= (BEARD - HAIR),
        "head": (sub - FACE) <= (BEARD - FACE),
    }
    out = {}
    for name, test in tests.items():
        full = torch.zeros(labels.shape, dtype=torch.bool)
        if r1 > r0 and c1 > c0:
            full[..., r0:r1, c0:c1] = test
        out[name] = full
    return out


_RUN_TRAVEL = 0.25  # frame units of pelvis travel per run of frames
_MIN_RUN = 8  # frames


def _t(a) -> Tensor:
    """Per-frame numpy values `[T]` -> float32 `[T, 1, 1]` for broadcasting over a window."""
    return torch.as_tensor(np.asarray(a, dtype=np.float32)).view(-1, 1, 1)


def _projected(hw: float, depth: float, facing: np.ndarray) -> np.ndarray:
    """Screen half width `[T]` of an elliptic cross-section (half width hw, half depth) turned by facing."""
    return np.sqrt((hw * np.cos(facing)) ** 2 + (depth * np.sin(facing)) ** 2)


class _Canvas:
    """The z-buffer of a clip: depth, surface label, light (0 at a silhouette, 1 facing the camera)
    and, for garments, mosaic uv per pixel.

    Colours are resolved once at the end (`compose`), so painting a part costs a few
    single-channel selects over its window.
    """

    def __init__(self, labels: Tensor) -> None:
        frames, height, width = labels.shape
        self.height, self.width = height, width
        x, y = frame_grid(height, width)
        self.cols, self.rows = x.flatten(), y.flatten()  # pixel-centre x `[W]` and y `[H]`
        self.half = width / height  # x spans [-half, half]
        self.depth = torch.full((frames, height, width), -1e9)
        self.labels = labels  # [T, H, W] uint8, zero (background) on entry; written in place
        self.box = [height, 0, width, 0]  # rows r0, r1 and columns c0, c1 that any part touched
        self.light = torch.empty((frames, height, width))
        self.u = torch.empty((frames, height, width))
        self.v = torch.empty((frames, height, width))

    def window(self, lo_x: float, hi_x: float, lo_y: float, hi_y: float):
        """Pixels whose centres lie in the box: (rows, cols, x `[1, 1, w]`, y `[1, h, 1]`) or None."""
        h = self.height  # pixels per 2 frame units, along both axes

        def span(lo: float, hi: float, start: float, n: int) -> tuple[int, int]:
            return max(0, math.floor((lo + start) * h / 2.0 - 0.5)), min(n, math.ceil((hi + start) * h / 2.0 + 0.5))

        (c0, c1), (r0, r1) = span(lo_x, hi_x, self.half, self.width), span(lo_y, hi_y, 1.0, self.height)
        if c1 <= c0 or r1 <= r0:
            return None
        b = self.box
        self.box = [min(b[0], r0), max(b[1], r1), min(b[2], c0), max(b[3], c1)]
        return slice(r0, r1), slice(c0, c1), self.cols[c0:c1].view(1, 1, -1), self.rows[r0:r1].view(1, -1, 1)

    def paint(self, win, cover: Tensor, z: Tensor, label, light: Tensor, u: Tensor | None = None,
              v: Tensor | None = None) -> None:
        """Write the part where it covers and is nearer (`[T, h, w]` tensors; label may be an int)."""
        rows, cols = win[0], win[1]
        depth = self.depth[:, rows, cols]
        take = cover & (z > depth)  # [T, h, w]
        torch.where(take, z, depth, out=depth)
        ids = self.labels[:, rows, cols]
        if isinstance(label, Tensor):
            torch.where(take, label, ids, out=ids)
        else:
            ids.masked_fill_(take, label)
        buf = self.light[:, rows, cols]
        torch.where(take, light, buf, out=buf)
        if u is not None:
            buf = self.u[:, rows, cols]
            torch.where(take, u, buf, out=buf)
            buf = self.v[:, rows, cols]
            torch.where(take, v, buf, out=buf)

    def compose(self, plate: Tensor, palette: Tensor, mosaic_rgba: Tensor, video: Tensor) -> None:
        """Write video `[T, 3, H, W]`: palette colours and garment textures, shaded, on the person,
        the plate elsewhere. Garment pixels that land on an atlas hole become skin (label too)."""
        n = self.height * self.width
        flat = self.labels.view(-1)
        idx = torch.nonzero(flat).squeeze(1)  # [N] person pixels of the flat [T, H, W] buffer
        label = flat.index_select(0, idx).long()
        rgb = palette.index_select(0, label)  # [N, 3]
        rows = torch.nonzero(label >= UPPER).squeeze(1)  # [G] garment rows of idx
        if rows.numel():
            at = idx.index_select(0, rows)
            rgba = sample_atlas(mosaic_rgba, self.u.view(-1).index_select(0, at), self.v.view(-1).index_select(0, at))
            hole = rgba[:, 3] < 0.5  # [G]
            rgb.index_copy_(0, rows, torch.where(hole[:, None], palette[SKIN], rgba[:, :3]))
            flat.index_copy_(0, at, torch.where(hole, SKIN, label.index_select(0, rows)).to(torch.uint8))
        shade = self.light.view(-1).index_select(0, idx).mul_(0.2).add_(0.8)  # mild: 0.8 at the rim
        rgb = (rgb * shade[:, None]).clamp_(0.0, 1.0)
        video.copy_(plate[None].expand_as(video))
        base = idx + (idx // n) * (2 * n)  # flat index of channel 0 in [T, 3, H, W]
        out = video.view(-1)
        for c in range(3):
            out.index_copy_(0, base + c * n, rgb[:, c].contiguous())


def _bounds(points: list[np.ndarray], pad) -> tuple[float, float, float, float]:
    """Box around view-space points (each `[T, 3]`) padded by `pad` (scalar or `[T]`)."""
    xs = np.concatenate([p[:, 0] - pad for p in points] + [p[:, 0] + pad for p in points])
    ys = np.concatenate([p[:, 1] - pad for p in points] + [p[:, 1] + pad for p in points])
    return float(xs.min()), float(xs.max()), float(ys.min()), float(ys.max())


def _mosaic_uv(ax: Tensor, ay: Tensor, col, row, res: int) -> tuple[Tensor, Tensor]:
    """Atlas coordinates of tile (col: 0 front / 1 back, row: 0 upper / 1 lower) -> mosaic (u, v)."""
    lim = 1.0 - 1.0 / res  # keep bilinear taps inside the tile
    return 0.5 * ax.clamp(-lim, lim) - 0.5 + col, 0.5 * ay.clamp(-lim, lim) - 0.5 + row


class _Renderer:
    """Paints one run of frames into `labels` (a `[T, H, W]` uint8 view, zero on entry)."""

    def __init__(self, person: Person, garments: Mapping[str, Garment], pose: Pose, labels: Tensor,
                 mosaic_rgba: Tensor, face: FaceStyle) -> None:
        self.person, self.pose, self.face = person, pose, face
        self.d: BodyDims = person.dims()
        self.upper, self.lower = garments["upper"], garments["lower"]
        self.tu, self.tl = TEMPLATES[self.upper.shape], TEMPLATES[self.lower.shape]
        self.canvas = _Canvas(labels)
        self.mosaic = mosaic_rgba  # [4, 2 res, 2 res]
        self.res = mosaic_rgba.shape[-1] // 2
        self.joints = pose.joints  # [T, J, 3]
        self.facing = pose.facing
        self.back = np.cos(self.facing) < 0  # [T] the back atlas is seen on limbs
        self.pad = 2.0 / labels.shape[-2]  # one pixel in frame units

    def palette(self) -> Tensor:
        """Colour of each surface label `[12, 3]` (garment labels: skin, their fallback at atlas holes)."""
        p = self.person
        skin, hair = np.asarray(p.skin), np.asarray(p.hair)
        rows = {BACKGROUND: (0.0, 0.0, 0.0), SKIN: skin, FACE: skin, HAIR: hair, SHOES: p.shoes, EYES: p.eyes,
                MOUTH: 0.55 * skin + np.array([0.3, 0.0, 0.02]), GLASSES: (0.05, 0.05, 0.06),
                MOLE: (0.25, 0.14, 0.08), BEARD: 0.85 * hair, UPPER: skin, LOWER: skin}
        return torch.tensor(np.array([np.asarray(rows[i], dtype=np.float64) for i in range(len(rows))]),
                            dtype=torch.float32).clamp(0.0, 1.0)

    def j(self, name: str) -> np.ndarray:
        return self.joints[:, J[name]]  # [T, 3]

    # ---- torso (and skirt): tapered tubes with cylinder coordinates ----

    def torso(self) -> None:
        d, f = self.d, self.facing
        n, p = self.j("neck"), self.j("pelvis")
        e = p[:, :2] - n[:, :2]
        length = np.maximum(np.hypot(e[:, 0], e[:, 1]), 1e-4)  # [T] screen length of neck -> hip line
        r_sh, r_w, r_h = _projected(d.shoulder_hw, d.chest_d, f), _projected(d.waist_hw, d.waist_d, f), \
            _projected(d.hip_hw, d.hip_d, f)
        knots = [(0.0, np.full_like(f, 1.25 * d.neck_r)), (0.035, 0.8 * r_sh), (0.11, r_sh), (0.6, r_w),
                 (1.0, r_h), (TORSO_END_B, 0.9 * r_h)]
        end = n.copy()
        end[:, :2] = n[:, :2] + TORSO_END_B * e
        win = self.canvas.window(*_bounds([n, end], float(max(r_sh.max(), r_h.max())) + self.pad))
        if win is None:
            return
        x, y = win[2], win[3]
        dx, dy = x - _t(n[:, 0]), y - _t(n[:, 1])  # [T, 1, w], [T, h, 1]
        b = dx * _t(e[:, 0] / length ** 2) + dy * _t(e[:, 1] / length ** 2)  # [T, h, w] axis fraction
        lat = dx * _t(e[:, 1] / length) - dy * _t(e[:, 0] / length)  # signed distance, + = image right
        hw = _t(knots[0][1]).expand_as(b)
        for (b0, v0), (b1, v1) in zip(knots[:-1], knots[1:]):
            hw = hw + ((b - b0) * (1.0 / (b1 - b0))).clamp_(0.0, 1.0) * _t(v1 - v0)
        cover = (b >= 0.0) & (b <= TORSO_END_B) & (lat.abs() <= hw)
        a = (lat / hw).clamp_(-1.0, 1.0)
        bulge = torch.sqrt(1.0 - a * a)
        u, back = self._cylinder(a, d.shoulder_hw, d.chest_d)
        z = _t(n[:, 2]) + b * _t(p[:, 2] - n[:, 2]) + bulge * _t(d.shoulder_hw * d.chest_d / r_sh)
        xu, yu, on_upper = torso_upper_uv(self.tu, u, b)
        xl, yl, on_lower = torso_lower_uv(self.tl, u, b, d.torso_len, d.leg_len)
        label = torch.where(on_upper, UPPER, torch.where(on_lower, LOWER, SKIN)).to(torch.uint8)
        mu, mv = _mosaic_uv(torch.where(on_upper, xu, xl), torch.where(on_upper, yu, yl), back.float(),
                            (~on_upper).float(), self.res)
        self.canvas.paint(win, cover, z, label, bulge, mu, mv)

    def _cylinder(self, a: Tensor, hw: float, depth: float) -> tuple[Tensor, Tensor]:
        """Lateral unit a in [-1, 1] across a turned elliptic tube -> (atlas lateral unit, back side)."""
        f = self.facing
        alpha = _t(np.arctan2(depth * np.sin(f), hw * np.cos(f)))
        theta = torch.asin(a) - alpha  # angle around the body, 0 = front centre
        back = torch.cos(theta) < 0
        s = torch.sin(theta)
        return torch.where(back, -s, s), back

    def skirt(self) -> None:
        t: LowerTemplate = self.tl
        d, f = self.d, self.facing
        n, p = self.j("neck"), self.j("pelvis")
        e = p - n  # [T, 3]
        length = np.maximum(np.hypot(e[:, 0], e[:, 1]), 1e-4)
        top = n + WAIST_B * e
        scale = skirt_length(t, d.torso_len, d.leg_len) / d.torso_len
        hem = top + scale * e
        hw0, hw1, _ = t.skirt
        flare = d.hip_hw * (0.5 + 0.55 * hw1 / hw0)
        r_top = _projected(1.08 * d.waist_hw, 1.1 * d.waist_d, f)
        r_hem = _projected(flare, 0.8 * flare, f)
        win = self.canvas.window(*_bounds([top, hem], float(r_hem.max()) + self.pad))
        if win is None:
            return
        x, y = win[2], win[3]
        span = length * scale  # [T] screen length waist -> hem
        dx, dy = x - _t(top[:, 0]), y - _t(top[:, 1])
        bs = dx * _t(e[:, 0] / (length * span)) + dy * _t(e[:, 1] / (length * span))  # [T, h, w]
        lat = dx * _t(e[:, 1] / length) - dy * _t(e[:, 0] / length)
        hw = _t(r_top) + _t(r_hem - r_top) * bs.clamp(0.0, 1.0) ** 0.75
        cover = (bs >= 0.0) & (bs <= 1.0) & (lat.abs() <= hw)
        a = (lat / hw).clamp_(-1.0, 1.0)
        bulge = torch.sqrt(1.0 - a * a)
        u, back = self._cylinder(a, d.hip_hw, d.hip_d)
        z = _t(top[:, 2]) + bs * _t(hem[:, 2] - top[:, 2]) + bulge * (1.15 * d.hip_d + 0.14 * d.leg_len * bs)
        xs, ys = skirt_uv(t, u, bs)
        mu, mv = _mosaic_uv(xs, ys, back.float(), 1.0, self.res)
        self.canvas.paint(win, cover, z, LOWER, bulge, mu, mv)

    # ---- limbs: capsules with (along, across) coordinates ----

    def limb(self, a3: np.ndarray, b3: np.ndarray, radius: float, label: int, garment_row: int | None = None,
             side: float = 0.0, along0: float = 0.0, along1: float = 1.0, bulge: float = 1.0) -> None:
        """A capsule a -> b. With `garment_row` (0 upper, 1 lower) it is dressed by that garment's
        sleeve/leg where the template reaches: `along0..along1` is its span of the whole limb."""
        win = self.canvas.window(*_bounds([a3, b3], radius + self.pad))
        if win is None:
            return
        x, y = win[2], win[3]
        ex, ey = b3[:, 0] - a3[:, 0], b3[:, 1] - a3[:, 1]  # [T]
        inv = 1.0 / (ex * ex + ey * ey + 1e-12)
        dx, dy = x - _t(a3[:, 0]), y - _t(a3[:, 1])  # [T, 1, w], [T, h, 1]
        h = torch.addcmul(dx * _t(ex * inv), dy, _t(ey * inv)).clamp_(0.0, 1.0)  # [T, h, w] along the axis
        rx = torch.addcmul(dx, h, _t(-ex))
        ry = torch.addcmul(dy, h, _t(-ey))
        d2 = torch.addcmul(rx * rx, ry, ry)  # squared distance to the axis
        cover = d2 <= radius * radius
        light = d2.mul_(-1.0 / radius ** 2).add_(1.0).clamp_(0.0, 1.0)  # 1 on the axis, 0 at the rim
        z = torch.addcmul(_t(a3[:, 2]), h, _t(b3[:, 2] - a3[:, 2])).add_(light, alpha=bulge * radius)
        template = None if garment_row is None else (self.tu if garment_row == 0 else self.tl)
        # the wearer's right limb is the atlas-left one on the front, the atlas-right one on the back
        mapping = None if template is None else limb_map(template, _t(np.where(self.back, -side, side)), along0, along1)
        if mapping is None:
            self.canvas.paint(win, cover, z, label, light)
            return
        norm = np.maximum(np.hypot(ex, ey), 1e-4) * radius
        lat = torch.addcmul(dx * _t(ey / norm), dy, _t(-ex / norm)).clamp_(-1.0, 1.0)
        coords = []
        back = _t(self.back.astype(np.float32))
        for coeffs, col, row in ((mapping[0], back, 0.0), (mapping[1], 0.0, float(garment_row))):
            p, q, r, w = (0.5 * c for c in coeffs)  # atlas -> mosaic: half scale, shifted into the tile
            offset = col + row - 0.5
            lo, hi = offset - 0.5 + 0.5 / self.res, offset + 0.5 - 0.5 / self.res
            c = torch.addcmul(p + offset, h, q).addcmul_(lat, torch.addcmul(r, h, w))
            coords.append(torch.clamp(c, min=lo, max=hi))
        on = h <= mapping[2]
        labels = torch.where(on, UPPER if garment_row == 0 else LOWER, label).to(torch.uint8)
        self.canvas.paint(win, cover, z, labels, light, coords[0], coords[1])

    def arms_and_legs(self) -> None:
        d = self.d
        arm_split = d.upper_arm / d.arm_len
        leg_split = d.thigh / d.leg_len
        for s, side in (("r", -1.0), ("l", 1.0)):
            sh, el, wr = self.j(f"shoulder_{s}"), self.j(f"elbow_{s}"), self.j(f"wrist_{s}")
            self.limb(sh, el, d.arm_r, SKIN, 0, side, 0.0, arm_split)
            self.limb(el, wr, d.forearm_r, SKIN, 0, side, arm_split, 1.0)
            hand = wr.copy()
            hand[:, :2] += 0.6 * d.hand_r * (wr[:, :2] - el[:, :2]) / np.maximum(
                np.hypot(*(wr[:, :2] - el[:, :2]).T), 1e-4)[:, None]
            self.limb(hand, hand, d.hand_r, SKIN)
            hip, knee, ankle, toe = self.j(f"hip_{s}"), self.j(f"knee_{s}"), self.j(f"ankle_{s}"), self.j(f"toe_{s}")
            self.limb(hip, knee, d.thigh_r, SKIN, 1, side, 0.0, leg_split)
            self.limb(knee, ankle, d.shin_r, SKIN, 1, side, leg_split, 1.0)
            self.limb(ankle, toe, d.foot_r, SHOES)

    # ---- head, neck and hair ----

    def head(self) -> None:
        d, person = self.d, self.person
        c = self.j("head")
        self.limb(self.j("neck"), c, d.neck_r, SKIN)
        if person.hair_style == "long":  # a shallow bulge keeps it behind the head and the torso
            self.limb(self.j("hair_top"), self.j("hair_bottom"), d.head_rx, HAIR, bulge=0.3)
        if person.hair_style == "bun":
            bun = self.j("bun")
            self.limb(bun, bun, self.face.bun_r * d.head_rx, HAIR, bulge=0.3)
        win = self.canvas.window(*_bounds([c], max(d.head_rx, d.head_ry) + self.pad))
        if win is None:
            return
        x, y = win[2], win[3]
        nx = (x - _t(c[:, 0])) * (1.0 / d.head_rx)  # [T, 1, w]
        ny = (y - _t(c[:, 1])) * (1.0 / d.head_ry)  # [T, h, 1]
        r2 = nx * nx + ny * ny
        nz = torch.sqrt((1.0 - r2).clamp_(min=0.0))
        cf, sf = _t(np.cos(self.facing)), _t(np.sin(self.facing))
        lx, lz = nx * cf - nz * sf, nx * sf + nz * cf  # head frame: x wearer's left, z front, y = ny down
        z = _t(c[:, 2]) + d.head_rx * nz
        self.canvas.paint(win, r2 <= 1.0, z, self._face(lx, ny, lz), nz)

    def _face(self, lx: Tensor, ly: Tensor, lz: Tensor) -> Tensor:
        """Colour ids `[T, h, w]` of head-sphere points (head frame, unit sphere, y down)."""
        p, style = self.person, self.face
        ids = torch.full(torch.broadcast_shapes(lx.shape, ly.shape, lz.shape), FACE, dtype=torch.uint8)

        def put(where: Tensor, label: int) -> None:
            ids.masked_fill_(where, label)

        front = lz > 0.3
        ax = lx.abs()
        eye_d2 = (ax - 0.36) ** 2 + (ly + 0.05) ** 2
        if p.beard:
            put((ly > 0.28) & (lz > -0.2), BEARD)
        put(((ly - 0.52).abs() < style.mouth_hh) & (ax < 0.26) & front, MOUTH)
        put(front & (eye_d2 < style.eye_r ** 2), EYES)
        put(front & ((ly + 0.36).abs() < style.brow_hh) & ((ax - 0.36).abs() < 0.2), HAIR)  # brows
        if p.glasses:
            inner, outer = style.glasses
            ring = (eye_d2 > inner ** 2) & (eye_d2 < outer ** 2)
            bridge = (ax < 0.12) & ((ly + 0.08).abs() < style.bridge_hh)
            put(front & (ring | bridge), GLASSES)
        if p.mole is not None:
            mx, my = p.mole
            my = my + style.mole_dy
            put(front & ((lx - mx) ** 2 + (ly - my) ** 2 < style.mole_r ** 2), MOLE)
        if p.hair_style != "bald":
            reach = {"short": 0.95, "bun": 0.95, "long": 1.55}[p.hair_style]
            put(ly < -0.5 + reach * ((0.35 - lz) * (1.0 / 1.1)).clamp(0.0, 1.0), HAIR)
        return ids

    def run(self, plate: Tensor, video: Tensor) -> list[int]:
        """Paint all parts, write `video` (`[T, 3, H, W]` view), return the touched box."""
        self.torso()
        if self.tl.skirt is not None:
            self.skirt()
        self.arms_and_legs()
        self.head()
        self.canvas.compose(plate, self.palette(), self.mosaic, video)
        return self.canvas.box


def render_pose(person: Person, garments: Mapping[str, Garment], pose: Pose, plate: Tensor,
                atlas_res: int | None = None, face: FaceStyle = FaceStyle()) -> Clip:
    """Render `person` wearing `garments` ({"upper": .., "lower": ..}) in `pose` over `plate` `[3, H, W]`.

    Garment atlases are painted at the flat-lay resolution `min(H, W)` and area-averaged to
    `atlas_res` texels (default `max(16, H // 2)`: about one texel per pixel of a torso at the
    full-body scale); `face` sizes the face marks.
    """
    missing = {"upper", "lower"} - set(garments)
    if missing:
        raise ValueError(f"garments needs an 'upper' and a 'lower' garment; missing {sorted(missing)}")
    for kind in ("upper", "lower"):
        if garments[kind].kind != kind:
            raise ValueError(f"garments[{kind!r}] is a {garments[kind].kind} garment")
    if plate.dim() != 3 or plate.shape[0] != 3:
        raise ValueError(f"plate must be a [3, H, W] image, got {list(plate.shape)}")
    plate = plate.float()
    (height, width), frames = plate.shape[-2:], pose.frames
    res = max(16, height // 2) if atlas_res is None else atlas_res
    atlases = mosaic(garments["upper"], garments["lower"], res, size=min(height, width))  # [4, 2 res, 2 res]
    video = torch.empty((frames, 3, height, width))
    labels = torch.zeros((frames, height, width), dtype=torch.uint8)
    # Parts are evaluated on the union of their windows over the frames of a run; a person who
    # travels across the frame is rendered in shorter runs so those windows stay tight.
    travel = float(np.ptp(pose.joints[:, J["pelvis"], 0]))
    runs = int(min(max(1, math.ceil(travel / _RUN_TRAVEL)), max(1, frames // _MIN_RUN)))
    box = [height, 0, width, 0]
    for chunk in np.array_split(np.arange(frames), runs):
        t0, t1 = int(chunk[0]), int(chunk[-1]) + 1
        b = _Renderer(person, garments, pose.select(slice(t0, t1)), labels[t0:t1], atlases, face).run(
            plate, video[t0:t1])
        box = [min(box[0], b[0]), max(box[1], b[1]), min(box[2], b[2]), max(box[3], b[3])]
    return Clip(video, masks_from_labels(labels, box), plate, labels, pose)


def render_clip(person: Person, garments: Mapping[str, Garment], motion: MotionParams,
                background: Tensor | BackgroundSpec, frames: int, size: int | None = None,
                fps: float = FPS, start: int = 0) -> Clip:
    """Render `frames` frames of `person` doing `motion` over `background` (a plate or a spec)."""
    if isinstance(background, BackgroundSpec):
        if size is None:
            raise ValueError("size is needed to render a background spec")
        plate = render_background(background, size)
    else:
        plate = background
        if size is not None and plate.shape[-1] != size:
            raise ValueError(f"the plate is {plate.shape[-1]} px but size is {size}")
    return render_pose(person, garments, pose_clip(person, motion, frames, fps, start), plate)
