"""Synthetic top-down ceiling-camera frames of an operating room in each of the five states.

No real OR video exists, so the project renders its own training and test footage: a
schematic but detailed scene (floor, walls, cabinets, OR table, anaesthesia machine, back
table, surgical lights on booms, staff, patient, drapes, cleaning cart, waste) drawn to the
visual specification in ``docs/vision.md``, seen through a randomised camera (zoom, rotation,
perspective tilt, barrel distortion) and randomised imaging (lighting level and gradient,
glare, shadow, white balance, blur, sensor noise, JPEG compression). A :class:`Setup` is one
camera and room installation; :data:`TRAIN_RANGES` and :data:`SHIFT_RANGES` document the
ranges its parameters are drawn from.

Needs ``numpy`` and ``opencv-python-headless`` (the ``vision`` extra); only vision commands
import this module.
"""

from __future__ import annotations

import colorsys
import csv
import functools
import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vision.states import STATES

# --------------------------------------------------------------------------------------------
# Parameter ranges
# --------------------------------------------------------------------------------------------

TRAIN_RANGES: dict[str, tuple[float, float]] = {
    "zoom": (0.85, 1.15),
    "rotation": (-25.0, 25.0),
    "tilt": (0.0, 0.12),
    "distortion": (0.0, 0.12),
    "light_level": (0.8, 1.15),
    "light_gradient": (0.0, 0.25),
    "glare_strength": (0.0, 0.3),
    "shadow_strength": (0.0, 0.25),
    "floor_sat": (0.03, 0.3),
    "floor_val": (0.55, 0.85),
    "wall_sat": (0.03, 0.3),
    "wall_val": (0.6, 0.9),
    "scrub_hue": (150.0, 240.0),
    "gown_hue": (150.0, 230.0),
    "noise_sigma": (1.0, 7.0),
    "blur_sigma": (0.0, 1.0),
    "jpeg_quality": (55.0, 95.0),
    "drop_prob": (0.0, 0.03),
    "freeze_prob": (0.0, 0.03),
}
"""Training range ``(low, high)`` of every documented :class:`Setup` parameter. Units: zoom is
camera magnification (the frame spans ``5.4 / zoom`` metres of floor around the OR table;
lower = higher camera or wider lens); rotation in degrees; tilt the perspective coefficient
(0 = camera looks straight down); distortion the barrel coefficient k1 (a pixel at normalised
radius r shows the scene at radius ``r (1 + k1 r^2)``); light_level a gain; light_gradient the
gain change across the frame; glare_strength the peak of the brightest glare spot (fraction of
full scale); shadow_strength the darkening inside the shadow; ``*_sat``/``*_val`` HSV
saturation/value (0-1); hues in degrees (150-240 = green to blue); noise_sigma in grey levels;
blur_sigma in pixels at 320 px; jpeg_quality the OpenCV JPEG quality; drop_prob/freeze_prob
per video frame."""

SHIFT_RANGES: dict[str, tuple[tuple[float, float], ...]] = {
    "zoom": ((0.6, 0.78), (1.25, 1.45)),
    "rotation": ((-70.0, -35.0), (35.0, 70.0)),
    "tilt": ((0.18, 0.3),),
    "distortion": ((0.2, 0.35),),
    "light_level": ((0.35, 0.6), (1.35, 1.7)),
    "light_gradient": ((0.4, 0.6),),
    "glare_strength": ((0.45, 0.8),),
    "shadow_strength": ((0.4, 0.6),),
    "floor_sat": ((0.45, 0.75),),
    "floor_val": ((0.25, 0.42),),
    "wall_sat": ((0.45, 0.75),),
    "wall_val": ((0.3, 0.45),),
    "scrub_hue": ((270.0, 420.0),),
    "gown_hue": ((260.0, 400.0),),
    "noise_sigma": ((12.0, 20.0),),
    "blur_sigma": ((1.6, 2.5),),
    "jpeg_quality": ((12.0, 30.0),),
    "drop_prob": ((0.08, 0.15),),
    "freeze_prob": ((0.08, 0.15),),
}
"""Domain-shift ranges, all outside :data:`TRAIN_RANGES` (hues are taken modulo 360: scrubs
and gowns in purples, pinks, reds, oranges, yellows)."""

SHIFT_AXES: dict[str, tuple[str, ...]] = {
    "camera": ("zoom", "rotation", "tilt"),
    "lens": ("distortion",),
    "lighting": ("light_level", "light_gradient", "glare_strength", "shadow_strength"),
    "colours": ("floor_sat", "floor_val", "wall_sat", "wall_val", "scrub_hue", "gown_hue"),
    "quality": ("noise_sigma", "blur_sigma", "jpeg_quality"),
    "stream": ("drop_prob", "freeze_prob"),
}
"""Groups of parameters shifted together. A shifted set-up shifts 1-3 of the image axes
(every axis but ``stream``) plus ``stream`` with probability 1/2; inside a shifted axis each
parameter leaves its training range with probability 1/2, at least one always does."""

_HUES = ("scrub_hue", "gown_hue")
_OUTSIDE = (38, 38, 42)  # beyond the walls / out of the camera's view


def _hsv(h: float, s: float, v: float) -> tuple[int, int, int]:
    """BGR of a hue in degrees and saturation/value in 0-1."""
    r, g, b = colorsys.hsv_to_rgb((h % 360.0) / 360.0, min(max(s, 0.0), 1.0),
                                  min(max(v, 0.0), 1.0))
    return (round(b * 255), round(g * 255), round(r * 255))


def _scale(c: tuple[int, ...], f: float) -> tuple[int, int, int]:
    return tuple(int(min(255, max(0, round(x * f)))) for x in c)  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------
# Set-up
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setup:
    """One camera and room installation (every field fixed for the whole video of a room)."""

    # camera
    zoom: float
    rotation: float
    tilt: float
    tilt_dir: float
    distortion: float
    view_dx: float
    view_dy: float
    # room geometry (metres; origin at the room centre, x right, y down)
    room_w: float
    room_h: float
    door_wall: int
    door_pos: float
    cabinets: tuple[tuple[int, float, float], ...]
    tile: float
    tile_contrast: float
    floor_hue: float
    floor_sat: float
    floor_val: float
    wall_hue: float
    wall_sat: float
    wall_val: float
    # OR table and equipment
    table_x: float
    table_y: float
    table_angle: float
    table_len: float
    table_wid: float
    anaesthesia_side: int
    anaesthesia_offset: tuple[float, float]
    back_table_side: int
    back_table_offset: tuple[float, float]
    back_table_size: tuple[float, float]
    cart_pos: tuple[float, float]
    extras: tuple[tuple[str, float, float], ...]
    n_lights: int
    light_park: tuple[tuple[float, float], ...]
    # people and textiles
    n_staff_max: int
    person_scale: float
    scrub_hue: float
    scrub_sat: float
    scrub_val: float
    anaesthesia_hue: float
    gown_hue: float
    gown_sat: float
    gown_val: float
    drape_hue: float
    drape_val: float
    cap_hues: tuple[float, ...]
    # lighting
    light_level: float
    light_gradient: float
    light_dir: float
    vignette: float
    white_balance: tuple[float, float, float]
    glare: tuple[tuple[float, float, float, float], ...]
    glare_strength: float
    shadow: tuple[tuple[float, float], ...]
    shadow_strength: float
    # image quality and stream
    noise_sigma: float
    blur_sigma: float
    jpeg_quality: int
    drop_prob: float
    freeze_prob: float
    shifted: tuple[str, ...] = ()

    @classmethod
    def sample(cls, rng: np.random.Generator, shift: bool = False) -> Setup:
        """Draw a set-up: training ranges, or (``shift=True``) some parameters from
        :data:`SHIFT_RANGES` (which are recorded in ``shifted``)."""
        shifted: set[str] = set()
        if shift:
            image_axes = [a for a in SHIFT_AXES if a != "stream"]
            k = int(rng.integers(1, 4))
            axes = [image_axes[i] for i in sorted(rng.choice(len(image_axes), k, replace=False))]
            if rng.random() < 0.5:
                axes.append("stream")
            for a in axes:
                names = SHIFT_AXES[a]
                pick = [n for n in names if rng.random() < 0.5]
                if not pick:
                    pick = [names[int(rng.integers(len(names)))]]
                shifted.update(pick)

        def draw(name: str) -> float:
            if name in shifted:
                ranges = SHIFT_RANGES[name]
                lo, hi = ranges[int(rng.integers(len(ranges)))]
            else:
                lo, hi = TRAIN_RANGES[name]
            x = float(rng.uniform(lo, hi))
            return x % 360.0 if name in _HUES else x

        u = rng.uniform
        room_w, room_h = float(u(6.0, 7.5)), float(u(6.0, 7.5))
        table_angle = float(rng.choice([0.0, 90.0, 180.0, 270.0]) + u(-12, 12))
        table_len, table_wid = float(u(1.9, 2.2)), float(u(0.5, 0.6))
        n_cab = int(rng.integers(2, 6))
        cabinets = tuple((int(rng.integers(4)), float(u(0.1, 0.9)), float(u(0.8, 2.0)))
                         for _ in range(n_cab))
        extras = tuple((str(rng.choice(["iv_pole", "kick_bucket", "stool", "warmer", "monitor"])),
                        float(u(-0.42, 0.42)), float(u(-0.42, 0.42)))
                       for _ in range(int(rng.integers(2, 6))))
        n_lights = int(rng.integers(2, 4))
        light_park = tuple((float(u(-1.2, 1.2)), float(rng.choice([-1, 1]) * u(1.1, 1.6)))
                           for _ in range(n_lights))
        zoom = draw("zoom")
        n_glare = int(rng.integers(2, 5)) if "glare_strength" in shifted else int(rng.integers(0, 3))
        glare_strength = draw("glare_strength")
        glare = tuple((float(u(-0.9, 0.9)), float(u(-0.9, 0.9)), float(u(0.04, 0.18)),
                       glare_strength * (1.0 if i == 0 else float(u(0.4, 1.0))))
                      for i in range(n_glare))
        c = (float(u(-0.8, 0.8)), float(u(-0.8, 0.8)))
        shadow = tuple((c[0] + float(r * math.cos(a)), c[1] + float(r * math.sin(a)))
                       for a, r in zip(np.sort(u(0, 2 * math.pi, 5)), u(0.4, 1.1, 5), strict=True))
        scrub_hue = draw("scrub_hue")
        return cls(
            zoom=zoom, rotation=draw("rotation"), tilt=draw("tilt"),
            tilt_dir=float(u(0, 2 * math.pi)), distortion=draw("distortion"),
            view_dx=float(u(-0.4, 0.4)), view_dy=float(u(-0.4, 0.4)),
            room_w=room_w, room_h=room_h, door_wall=int(rng.integers(4)),
            door_pos=float(u(0.2, 0.8)), cabinets=cabinets, tile=float(u(0.3, 0.9)),
            tile_contrast=float(u(0.0, 0.08)), floor_hue=float(u(0, 360)),
            floor_sat=draw("floor_sat"), floor_val=draw("floor_val"),
            wall_hue=float(u(0, 360)), wall_sat=draw("wall_sat"), wall_val=draw("wall_val"),
            table_x=float(u(-0.5, 0.5)), table_y=float(u(-0.5, 0.5)), table_angle=table_angle,
            table_len=table_len, table_wid=table_wid,
            anaesthesia_side=int(rng.choice([-1, 1])),
            anaesthesia_offset=(float(u(0.45, 0.8)), float(u(0.35, 0.8))),
            back_table_side=int(rng.choice([-1, 1])),
            back_table_offset=(float(u(0.3, 0.9)), float(u(1.1, 1.5))),
            back_table_size=(float(u(1.1, 1.5)), float(u(0.55, 0.75))),
            cart_pos=(float(u(-0.42, 0.42)), float(u(-0.42, 0.42))), extras=extras,
            n_lights=n_lights, light_park=light_park, n_staff_max=int(rng.integers(3, 6)),
            person_scale=float(u(0.9, 1.1)), scrub_hue=scrub_hue, scrub_sat=float(u(0.3, 0.7)),
            scrub_val=float(u(0.35, 0.75)),
            anaesthesia_hue=(scrub_hue + float(u(-20, 20))) % 360.0 if "scrub_hue" in shifted
            else float(u(*TRAIN_RANGES["scrub_hue"])),
            gown_hue=draw("gown_hue"), gown_sat=float(u(0.25, 0.55)),
            gown_val=float(u(0.6, 0.85)), drape_hue=float(u(150, 230)),
            drape_val=float(u(0.45, 0.75)),
            cap_hues=tuple(float(h) for h in u(0, 360, 4)),
            light_level=draw("light_level"), light_gradient=draw("light_gradient"),
            light_dir=float(u(0, 2 * math.pi)), vignette=float(u(0.0, 0.3)),
            white_balance=tuple(float(x) for x in u(0.92, 1.08, 3)),  # type: ignore[arg-type]
            glare=glare, glare_strength=glare_strength, shadow=shadow,
            shadow_strength=draw("shadow_strength"), noise_sigma=draw("noise_sigma"),
            blur_sigma=draw("blur_sigma"), jpeg_quality=int(round(draw("jpeg_quality"))),
            drop_prob=draw("drop_prob"), freeze_prob=draw("freeze_prob"),
            shifted=tuple(sorted(shifted)),
        )


def out_of_range(setup: Setup) -> tuple[str, ...]:
    """Names of the set-up's documented parameters outside :data:`TRAIN_RANGES`."""
    out = []
    for name, (lo, hi) in TRAIN_RANGES.items():
        x = float(getattr(setup, name))
        if not lo <= x <= hi:
            out.append(name)
    return tuple(out)


# --------------------------------------------------------------------------------------------
# Drawing in world coordinates (metres)
# --------------------------------------------------------------------------------------------

_SH = 4  # fixed-point bits for sub-pixel drawing
_AA = cv2.LINE_AA


class _Canvas:
    """A BGR image that maps world metres to pixels; drawing helpers take metres."""

    def __init__(self, img: np.ndarray, ppm: float, x0: float, y0: float) -> None:
        self.img, self.ppm, self.x0, self.y0 = img, ppm, x0, y0

    def p(self, x: float, y: float) -> tuple[int, int]:
        k = self.ppm * (1 << _SH)
        return (int(round((x - self.x0) * k)), int(round((y - self.y0) * k)))

    def r(self, m: float) -> int:
        return max(1, int(round(m * self.ppm * (1 << _SH))))

    def px(self, m: float) -> int:
        return max(1, int(round(m * self.ppm)))

    def poly(self, pts: list[tuple[float, float]], col: tuple[int, ...],
             img: np.ndarray | None = None) -> None:
        arr = np.array([self.p(x, y) for x, y in pts], dtype=np.int32)
        cv2.fillPoly(self.img if img is None else img, [arr], col, _AA, _SH)

    def outline(self, pts: list[tuple[float, float]], col: tuple[int, ...], w: float,
                closed: bool = True) -> None:
        arr = np.array([self.p(x, y) for x, y in pts], dtype=np.int32)
        cv2.polylines(self.img, [arr], closed, col, self.px(w), _AA, _SH)

    def circle(self, x: float, y: float, rad: float, col: tuple[int, ...],
               img: np.ndarray | None = None) -> None:
        cv2.circle(self.img if img is None else img, self.p(x, y), self.r(rad), col, -1, _AA, _SH)

    def ring(self, x: float, y: float, rad: float, col: tuple[int, ...], w: float) -> None:
        cv2.circle(self.img, self.p(x, y), self.r(rad), col, self.px(w), _AA, _SH)

    def ellipse(self, x: float, y: float, a: float, b: float, ang: float,
                col: tuple[int, ...], img: np.ndarray | None = None) -> None:
        cv2.ellipse(self.img if img is None else img, self.p(x, y), (self.r(a), self.r(b)),
                    math.degrees(ang), 0, 360, col, -1, _AA, _SH)

    def line(self, p: tuple[float, float], q: tuple[float, float], col: tuple[int, ...],
             w: float) -> None:
        cv2.line(self.img, self.p(*p), self.p(*q), col, self.px(w), _AA, _SH)

    def rect(self, cx: float, cy: float, length: float, width: float, ang: float,
             col: tuple[int, ...], img: np.ndarray | None = None) -> None:
        self.poly(_rect_pts(cx, cy, length, width, ang), col, img)

    def blend(self, alpha: float, draw: Callable[[np.ndarray], None]) -> None:
        over = self.img.copy()
        draw(over)
        cv2.addWeighted(over, alpha, self.img, 1.0 - alpha, 0.0, dst=self.img)


def _rect_pts(cx: float, cy: float, length: float, width: float, ang: float,
              rnd: float = 0.0) -> list[tuple[float, float]]:
    """Corners of a rectangle (length along ``ang``), optionally with rounded corners."""
    c, s = math.cos(ang), math.sin(ang)
    hl, hw = length / 2, width / 2
    if rnd <= 0:
        loc = [(-hl, -hw), (hl, -hw), (hl, hw), (-hl, hw)]
    else:
        rnd = min(rnd, hl, hw)
        loc = []
        for (ux, uy), a0 in (((hl - rnd, hw - rnd), 0), ((-hl + rnd, hw - rnd), 90),
                             ((-hl + rnd, -hw + rnd), 180), ((hl - rnd, -hw + rnd), 270)):
            for k in range(5):
                a = math.radians(a0 + k * 22.5)
                loc.append((ux + rnd * math.cos(a), uy + rnd * math.sin(a)))
    return [(cx + c * x - s * y, cy + s * x + c * y) for x, y in loc]


def _blob(cx: float, cy: float, rad: float, rng: np.random.Generator,
          n: int = 11) -> list[tuple[float, float]]:
    """An irregular closed shape (crumpled linen, a waste bag)."""
    angs = np.sort(rng.uniform(0, 2 * math.pi, n))
    rads = rad * rng.uniform(0.6, 1.15, n)
    return [(cx + float(r * math.cos(a)), cy + float(r * math.sin(a)))
            for a, r in zip(angs, rads, strict=True)]


class _Table:
    """Table frame: u along the table (head end negative), v across."""

    def __init__(self, s: Setup) -> None:
        self.cx, self.cy = s.table_x, s.table_y
        self.a = math.radians(s.table_angle)
        self.c, self.s = math.cos(self.a), math.sin(self.a)
        self.L, self.W = s.table_len, s.table_wid

    def w(self, u: float, v: float) -> tuple[float, float]:
        return (self.cx + self.c * u - self.s * v, self.cy + self.s * u + self.c * v)

    def ang(self, da: float = 0.0) -> float:
        return self.a + da


@functools.lru_cache(maxsize=64)
def _palette(s: Setup) -> dict[str, tuple[int, int, int]]:
    floor = _hsv(s.floor_hue, s.floor_sat, s.floor_val)
    return {
        "floor": floor,
        "floor_line": _scale(floor, 1.0 - 2.5 * s.tile_contrast - 0.04),
        "wall": _hsv(s.wall_hue, s.wall_sat, s.wall_val),
        "wall_edge": _hsv(s.wall_hue, s.wall_sat, s.wall_val * 0.7),
        "scrub": _hsv(s.scrub_hue, s.scrub_sat, s.scrub_val),
        "scrub_anaes": _hsv(s.anaesthesia_hue, s.scrub_sat, s.scrub_val * 0.9),
        "gown": _hsv(s.gown_hue, s.gown_sat, s.gown_val),
        "drape": _hsv(s.drape_hue, 0.65, s.drape_val),
        "drape_dark": _hsv(s.drape_hue, 0.7, s.drape_val * 0.72),
        "drape_light": _hsv(s.drape_hue, 0.5, min(1.0, s.drape_val * 1.15)),
        "steel": (186, 184, 180),
        "steel_dark": (120, 118, 115),
        "pad": (52, 50, 54),
        "linen": (238, 240, 240),
        "machine": (95, 98, 100),
    }


# --------------------------------------------------------------------------------------------
# Static background of a set-up (floor, walls, cabinets, furniture, equipment)
# --------------------------------------------------------------------------------------------


def _view_half(s: Setup) -> float:
    """Half the side of the square the camera sees at the floor, in metres."""
    return 2.7 / s.zoom


@functools.lru_cache(maxsize=16)
def _background(s: Setup, size: int) -> tuple[np.ndarray, float, float, float]:
    ppm = 1.15 * size / (2 * _view_half(s))
    margin = 1.0
    x0, y0 = -s.room_w / 2 - margin, -s.room_h / 2 - margin
    nx, ny = math.ceil((s.room_w + 2 * margin) * ppm), math.ceil((s.room_h + 2 * margin) * ppm)
    img = np.empty((ny, nx, 3), np.uint8)
    img[:] = _OUTSIDE
    cv = _Canvas(img, ppm, x0, y0)
    pal = _palette(s)
    hw, hh = s.room_w / 2, s.room_h / 2
    rng = np.random.default_rng(zlib.crc32(repr(s).encode()))
    cv.poly([(-hw, -hh), (hw, -hh), (hw, hh), (-hw, hh)], pal["floor"])
    # mottled floor texture and tile seams
    tex = cv2.resize(rng.normal(0, 1, (12, 12)).astype(np.float32), (nx, ny),
                     interpolation=cv2.INTER_CUBIC)
    f = img.astype(np.float32) * (1.0 + 0.035 * tex[..., None])
    img[:] = np.clip(f, 0, 255).astype(np.uint8)
    x = -hw + s.tile
    while x < hw:
        cv.line((x, -hh), (x, hh), pal["floor_line"], 0.015)
        x += s.tile
    y = -hh + s.tile
    while y < hh:
        cv.line((-hw, y), (hw, y), pal["floor_line"], 0.015)
        y += s.tile
    # walls (seen from above as a band), door, cabinets
    wt = 0.35
    for pts in (
        [(-hw - wt, -hh - wt), (hw + wt, -hh - wt), (hw, -hh), (-hw, -hh)],
        [(hw + wt, -hh - wt), (hw + wt, hh + wt), (hw, hh), (hw, -hh)],
        [(hw + wt, hh + wt), (-hw - wt, hh + wt), (-hw, hh), (hw, hh)],
        [(-hw - wt, hh + wt), (-hw - wt, -hh - wt), (-hw, -hh), (-hw, hh)],
    ):
        cv.poly(pts, pal["wall"])
    cv.outline([(-hw, -hh), (hw, -hh), (hw, hh), (-hw, hh)], pal["wall_edge"], 0.04)

    def on_wall(wall: int, pos: float, depth: float) -> tuple[float, float, float]:
        if wall == 0:
            return (-hw + pos * s.room_w, -hh + depth, 0.0)
        if wall == 1:
            return (hw - depth, -hh + pos * s.room_h, math.pi / 2)
        if wall == 2:
            return (-hw + pos * s.room_w, hh - depth, 0.0)
        return (-hw + depth, -hh + pos * s.room_h, math.pi / 2)

    for wall, pos, length in s.cabinets:
        cx, cy, a = on_wall(wall, pos, 0.22)
        cv.rect(cx, cy, length, 0.44, a, _scale(pal["wall"], 0.9))
        cv.outline(_rect_pts(cx, cy, length, 0.44, a), _scale(pal["wall"], 0.65), 0.02)
        for k in range(1, max(2, int(length / 0.5))):
            d = -length / 2 + k * length / max(2, int(length / 0.5))
            cv.line((cx + d * math.cos(a) - 0.2 * math.sin(a), cy + d * math.sin(a)
                     + 0.2 * math.cos(a)),
                    (cx + d * math.cos(a) + 0.2 * math.sin(a), cy + d * math.sin(a)
                     - 0.2 * math.cos(a)), _scale(pal["wall"], 0.7), 0.015)
    dx, dy, da = on_wall(s.door_wall, s.door_pos, -0.15)
    cv.rect(dx, dy, 1.5, 0.3, da, (150, 150, 148))
    cv.rect(dx, dy, 0.5, 0.12, da, (205, 200, 190))
    # furniture along the walls / around the table
    for kind, fx, fy in s.extras:
        x, y = fx * s.room_w, fy * s.room_h
        if kind == "iv_pole":
            for k in range(5):
                a = k * 2 * math.pi / 5
                cv.line((x, y), (x + 0.25 * math.cos(a), y + 0.25 * math.sin(a)), (60, 60, 60),
                        0.03)
            cv.circle(x, y, 0.04, (200, 200, 200))
        elif kind == "kick_bucket":
            cv.circle(x, y, 0.2, (150, 150, 150))
            cv.circle(x, y, 0.16, (175, 176, 178))
        elif kind == "stool":
            cv.circle(x, y, 0.19, (40, 40, 40))
            cv.circle(x, y, 0.15, (70, 68, 66))
        elif kind == "warmer":
            cv.rect(x, y, 0.5, 0.4, 0.3, (215, 215, 210))
            cv.rect(x, y, 0.3, 0.1, 0.3, (120, 120, 120))
        else:
            cv.rect(x, y, 0.6, 0.45, 0.0, (70, 70, 72))
            cv.rect(x, y - 0.05, 0.5, 0.08, 0.0, (30, 30, 30))
    # OR table and anaesthesia machine
    tb = _Table(s)
    cv.poly(_rect_pts(*tb.w(0, 0), tb.L + 0.06, tb.W + 0.06, tb.a, 0.08), (135, 135, 138))
    cv.poly(_rect_pts(*tb.w(0, 0), tb.L, tb.W, tb.a, 0.07), pal["pad"])
    cv.poly(_rect_pts(*tb.w(-tb.L / 2 - 0.12, 0), 0.22, 0.28, tb.a, 0.06), pal["pad"])
    for k in (-1, 1):
        cv.line(tb.w(-tb.L / 2 + 0.1, k * tb.W / 2), tb.w(tb.L / 2 - 0.1, k * tb.W / 2),
                (150, 150, 152), 0.02)
    du, dv = s.anaesthesia_offset
    ax, ay = tb.w(-tb.L / 2 - du, s.anaesthesia_side * dv)
    cv.rect(ax, ay, 0.7, 0.6, tb.a, pal["machine"])
    cv.rect(ax, ay, 0.6, 0.5, tb.a, _scale(pal["machine"], 1.25))
    sx, sy = tb.w(-tb.L / 2 - du - 0.12, s.anaesthesia_side * dv)
    cv.rect(sx, sy, 0.08, 0.42, tb.a, (40, 40, 40))
    cv.rect(sx, sy, 0.05, 0.36, tb.a, (130, 110, 60))
    for k in range(3):
        cv.circle(*tb.w(-tb.L / 2 - du + 0.12, s.anaesthesia_side * dv - 0.15 + k * 0.15),
                  0.04, ((60, 160, 60), (200, 200, 200), (60, 60, 200))[k])
    return img, ppm, x0, y0


# --------------------------------------------------------------------------------------------
# People, patient, textiles, equipment that change with the state
# --------------------------------------------------------------------------------------------


def _person(cv: _Canvas, x: float, y: float, facing: float, body: tuple[int, ...],
            cap: tuple[int, ...], skin: tuple[int, ...], gowned: bool, gloves: bool,
            scale: float, reach: float, capdots: bool) -> tuple[float, float]:
    """A person seen from above (shoulders, arms, capped head); returns the hands' midpoint."""
    f = (math.cos(facing), math.sin(facing))
    r = (-math.sin(facing), math.cos(facing))
    a = facing + math.pi / 2

    def at(df: float, dr: float) -> tuple[float, float]:
        return (x + scale * (f[0] * df + r[0] * dr), y + scale * (f[1] * df + r[1] * dr))

    dark = _scale(body, 0.55)
    hands = [at(0.12 + 0.28 * reach, k * (0.16 - 0.04 * reach)) for k in (-1, 1)]
    if gowned:
        cv.ellipse(*at(-0.07, 0), 0.29 * scale, 0.21 * scale, a, dark)
        cv.ellipse(*at(-0.07, 0), 0.27 * scale, 0.19 * scale, a, _scale(body, 0.9))
        for k, h in zip((-1, 1), hands, strict=True):
            cv.line(at(0.0, k * 0.2), h, dark, 0.11 * scale)
            cv.line(at(0.0, k * 0.2), h, body, 0.085 * scale)
            cv.circle(*h, 0.045 * scale, skin if not gloves else (214, 226, 232))
        cv.ellipse(x, y, 0.26 * scale, 0.15 * scale, a, body)
    else:
        for k, h in zip((-1, 1), hands, strict=True):
            cv.line(at(0.02, k * 0.21), h, _scale(skin, 0.8), 0.075 * scale)
            cv.line(at(0.02, k * 0.21), h, skin, 0.06 * scale)
            cv.circle(*h, 0.04 * scale, skin)
        cv.ellipse(x, y, 0.245 * scale, 0.135 * scale, a, dark)
        cv.ellipse(x, y, 0.23 * scale, 0.12 * scale, a, body)
        for k in (-1, 1):
            cv.circle(*at(0.0, k * 0.2), 0.06 * scale, body)
    hx, hy = at(0.03, 0)
    cv.circle(hx, hy, 0.105 * scale, _scale(cap, 0.6))
    cv.circle(hx, hy, 0.095 * scale, cap)
    if capdots:
        for k in range(4):
            cv.circle(hx + 0.045 * scale * math.cos(k * 1.7), hy + 0.045 * scale
                      * math.sin(k * 1.7), 0.018 * scale, _scale(cap, 0.5))
    return ((hands[0][0] + hands[1][0]) / 2, (hands[0][1] + hands[1][1]) / 2)


_SKIN = ((175, 200, 235), (140, 170, 215), (95, 130, 180), (60, 85, 125), (120, 160, 205))


class _Actor:
    """A person with a base position and slow wander over time ``t`` (minutes)."""

    def __init__(self, lr: np.random.Generator, u: float, v: float, target: tuple[float, float],
                 amp: float, kind: str, skin: tuple[int, ...], cap: tuple[int, ...]) -> None:
        self.u, self.v, self.target, self.amp, self.kind = u, v, target, amp, kind
        self.skin, self.cap = skin, cap
        self.capdots = bool(lr.random() < 0.3)
        self.ph = lr.uniform(0, 2 * math.pi, 3)
        self.om = lr.uniform(2 * math.pi / 12, 2 * math.pi / 2.5, 3)
        self.reach = float(lr.uniform(0.3, 1.0))

    def pose(self, t: float) -> tuple[float, float, float]:
        du = self.amp * math.sin(self.om[0] * t + self.ph[0])
        dv = self.amp * math.sin(self.om[1] * t + self.ph[1])
        u, v = self.u + du, self.v + dv
        face = math.atan2(self.target[1] - v, self.target[0] - u)
        return u, v, face + 0.35 * math.sin(self.om[2] * t + self.ph[2])


def _staff(lr: np.random.Generator, s: Setup, tb: _Table, spots: list[tuple[float, float]],
           n: int, amp: float, kinds: list[str]) -> list[_Actor]:
    idx = lr.permutation(len(spots))[:n]
    out = []
    for k, i in enumerate(idx):
        u, v = spots[i]
        u += float(lr.uniform(-0.2, 0.2))
        v += float(lr.uniform(-0.15, 0.15))
        target = (float(np.clip(u, -tb.L / 2, tb.L / 2)), 0.0) if abs(v) > 0.1 else (0.0, 0.0)
        cap = _hsv(s.cap_hues[int(lr.integers(len(s.cap_hues)))], float(lr.uniform(0.2, 0.7)),
                   float(lr.uniform(0.5, 0.95)))
        out.append(_Actor(lr, u, v, target, amp, kinds[k % len(kinds)],
                          _SKIN[int(lr.integers(len(_SKIN)))], cap))
    return out


def _draw_actor(cv: _Canvas, tb: _Table, act: _Actor, t: float, s: Setup,
                pal: dict[str, tuple[int, int, int]]) -> tuple[float, float, float]:
    u, v, face = act.pose(t)
    x, y = tb.w(u, v)
    gowned = act.kind in ("gowned", "gowned_bare")
    body = {"gowned": pal["gown"], "gowned_bare": pal["gown"], "anaes": pal["scrub_anaes"]}.get(
        act.kind, pal["scrub"])
    hx, hy = _person(cv, x, y, face + tb.a, body, act.cap, act.skin, gowned,
                     act.kind == "gowned", s.person_scale, act.reach, act.capdots)
    return hx, hy, face + tb.a


def _linen(cv: _Canvas, tb: _Table, lr: np.random.Generator) -> None:
    cv.poly(_rect_pts(*tb.w(0, 0), tb.L - 0.04, tb.W + 0.04, tb.a, 0.06), (236, 238, 238))
    for _ in range(3):
        u = float(lr.uniform(-tb.L / 2 + 0.2, tb.L / 2 - 0.2))
        cv.line(tb.w(u, -tb.W / 2 + 0.03), tb.w(u + float(lr.uniform(-0.1, 0.1)),
                tb.W / 2 - 0.03), (205, 208, 210), 0.012)
    if lr.random() < 0.7:  # pillow / headrest
        cv.poly(_rect_pts(*tb.w(-tb.L / 2 + 0.18, 0), 0.25, 0.38, tb.a, 0.08), (250, 250, 250))
        cv.outline(_rect_pts(*tb.w(-tb.L / 2 + 0.18, 0), 0.25, 0.38, tb.a, 0.08),
                   (200, 200, 205), 0.01)
    if lr.random() < 0.6:  # folded blanket at the foot
        col = ((235, 225, 200), (240, 240, 240), (220, 200, 170))[int(lr.integers(3))]
        cv.rect(*tb.w(tb.L / 2 - 0.3, 0), 0.35, tb.W - 0.1, tb.a, col)
        cv.line(tb.w(tb.L / 2 - 0.3, -tb.W / 2 + 0.05), tb.w(tb.L / 2 - 0.3, tb.W / 2 - 0.05),
                _scale(col, 0.85), 0.01)


def _armboards(cv: _Canvas, tb: _Table, pal: dict[str, tuple[int, int, int]]) -> None:
    for k in (-1, 1):
        cv.poly(_rect_pts(*tb.w(-tb.L / 2 + 0.55, k * (tb.W / 2 + 0.28)), 0.16, 0.6, tb.a, 0.05),
                pal["pad"])


def _patient(cv: _Canvas, tb: _Table, lr: np.random.Generator, arms_out: bool,
             skin: tuple[int, ...]) -> None:
    """The patient supine on the table: gown, blanket over the legs, arms, capped head."""
    L = tb.L
    hu = -L / 2 + 0.17
    cap = ((225, 200, 170), (240, 240, 240), (210, 220, 150))[int(lr.integers(3))]
    gown = ((225, 195, 150), (195, 225, 195), (235, 225, 210), (200, 200, 235))[
        int(lr.integers(4))]
    blanket = ((245, 245, 245), (240, 205, 150), (185, 215, 240))[int(lr.integers(3))]
    body = [(-L / 2 + 0.3, -0.16), (-L / 2 + 0.36, -0.25), (0.0, -0.22), (0.45, -0.19),
            (L / 2 - 0.05, -0.15), (L / 2 - 0.05, 0.15), (0.45, 0.19), (0.0, 0.22),
            (-L / 2 + 0.36, 0.25), (-L / 2 + 0.3, 0.16)]
    cv.poly([tb.w(u, v * 1.08) for u, v in body], _scale(gown, 0.7))
    cv.poly([tb.w(u, v) for u, v in body], gown)
    for _ in range(14):  # gown print
        cv.circle(*tb.w(float(lr.uniform(-L / 2 + 0.4, 0.0)), float(lr.uniform(-0.18, 0.18))),
                  0.015, _scale(gown, 0.6))
    for k in (-1, 1):
        if arms_out:
            cv.line(tb.w(-L / 2 + 0.42, k * 0.22), tb.w(-L / 2 + 0.55, k * (tb.W / 2 + 0.5)),
                    _scale(skin, 0.8), 0.095)
            cv.line(tb.w(-L / 2 + 0.42, k * 0.22), tb.w(-L / 2 + 0.55, k * (tb.W / 2 + 0.5)),
                    skin, 0.08)
            cv.rect(*tb.w(-L / 2 + 0.55, k * (tb.W / 2 + 0.35)), 0.05, 0.1, tb.a,
                    (235, 235, 235))
        else:
            cv.line(tb.w(-L / 2 + 0.42, k * 0.24), tb.w(0.05, k * 0.24), skin, 0.07)
    bu0 = float(lr.uniform(-0.15, 0.1))
    blank = [(bu0, -0.27), (0.45, -0.26), (L / 2 + 0.02, -0.24), (L / 2 + 0.02, 0.24),
             (0.45, 0.26), (bu0, 0.27)]
    cv.poly([tb.w(u, v) for u, v in blank], _scale(blanket, 0.85))
    cv.poly([tb.w(u, v * 0.9) for u, v in blank], blanket)
    cv.line(tb.w(bu0 + 0.1, 0.0), tb.w(L / 2 - 0.12, 0.0), _scale(blanket, 0.8), 0.02)
    for k in (-1, 1):
        cv.circle(*tb.w(L / 2 - 0.1, k * 0.09), 0.065, _scale(blanket, 0.92))
    cv.circle(*tb.w(hu, 0), 0.125, _scale(skin, 0.7))
    cv.circle(*tb.w(hu, 0), 0.115, skin)
    cv.ellipse(*tb.w(hu - 0.05, 0), 0.085, 0.115, tb.a, cap)
    cv.circle(*tb.w(hu + 0.07, 0), 0.02, _scale(skin, 0.7))


def _tray(cv: _Canvas, x: float, y: float, a: float, lr: np.random.Generator, messy: bool) -> None:
    cv.rect(x, y, 0.48, 0.26, a, (150, 150, 150))
    cv.rect(x, y, 0.44, 0.22, a, (196, 196, 198))
    c, s = math.cos(a), math.sin(a)
    for k in range(int(lr.integers(4, 8))):
        if messy:
            da = float(lr.uniform(0, math.pi))
            dx, dy = float(lr.uniform(-0.18, 0.18)), float(lr.uniform(-0.08, 0.08))
        else:
            da = 0.0
            dx, dy = -0.02, -0.08 + k * 0.03
        px, py = x + c * dx - s * dy, y + s * dx + c * dy
        ca, sa = math.cos(a + da), math.sin(a + da)
        cv.line((px - 0.15 * ca, py - 0.15 * sa), (px + 0.15 * ca, py + 0.15 * sa),
                (90, 90, 95), 0.008)
        cv.ring(px - 0.17 * ca, py - 0.17 * sa, 0.018, (90, 90, 95), 0.006)


def _back_table(cv: _Canvas, s: Setup, tb: _Table, pal: dict[str, tuple[int, int, int]],
                lr: np.random.Generator, mode: str) -> tuple[float, float]:
    """The instrument back table: ``bare``, ``open`` (sterile wrap, trays laid out),
    ``covered`` (sterile set-up covered with a drape) or ``used`` (crumpled wrap, instruments
    scattered); returns its centre."""
    du, dv = s.back_table_offset
    x, y = tb.w(tb.L / 2 + du, s.back_table_side * dv)
    bl, bw = s.back_table_size
    a = tb.a
    cv.rect(x, y, bl + 0.04, bw + 0.04, a, pal["steel_dark"])
    cv.rect(x, y, bl, bw, a, pal["steel"])
    if mode == "bare":
        c, sn = math.cos(a), math.sin(a)
        cv.line((x - c * bl * 0.45 - sn * bw * 0.2, y - sn * bl * 0.45 + c * bw * 0.2),
                (x + c * bl * 0.45 - sn * bw * 0.2, y + sn * bl * 0.45 + c * bw * 0.2),
                (215, 215, 215), 0.03)
        return x, y
    if mode == "used":
        cv.poly(_blob(x, y, bl * 0.45, lr), pal["drape_dark"])
        cv.poly(_blob(x, y, bl * 0.3, lr), pal["drape"])
        for _ in range(int(lr.integers(1, 3))):
            _tray(cv, x + float(lr.uniform(-0.3, 0.3)), y + float(lr.uniform(-0.15, 0.15)),
                  float(lr.uniform(0, math.pi)), lr, True)
        for _ in range(int(lr.integers(2, 6))):
            cv.circle(x + float(lr.uniform(-0.4, 0.4)), y + float(lr.uniform(-0.2, 0.2)),
                      float(lr.uniform(0.01, 0.03)), (40, 40, 150))
        return x, y
    cv.rect(x, y, bl + 0.2, bw + 0.2, a, pal["drape_dark"])
    cv.rect(x, y, bl + 0.12, bw + 0.12, a, pal["drape"])
    if mode == "covered":
        cv.line((x, y), (x + 0.3 * math.cos(a), y + 0.3 * math.sin(a)), pal["drape_dark"], 0.01)
        return x, y
    c, sn = math.cos(a), math.sin(a)
    ntray = int(lr.integers(2, 4))
    for k in range(ntray):
        off = -bl / 2 + 0.3 + k * (bl - 0.5) / max(1, ntray - 1)
        side = -0.12 if k % 2 == 0 else 0.1
        _tray(cv, x + c * off - sn * side, y + sn * off + c * side, a, lr, False)
    bx, by = x + c * (bl / 2 - 0.15) + sn * 0.15, y + sn * (bl / 2 - 0.15) - c * 0.15
    cv.circle(bx, by, 0.13, (165, 165, 168))
    cv.circle(bx, by, 0.1, (205, 205, 208))
    if lr.random() < 0.6:  # folded sterile gowns and towels
        gx, gy = x - c * (bl / 2 - 0.12) + sn * 0.18, y - sn * (bl / 2 - 0.12) - c * 0.18
        cv.rect(gx, gy, 0.2, 0.22, a, pal["gown"])
        cv.rect(gx + sn * 0.25, gy - c * 0.25, 0.18, 0.14, a, (245, 245, 245))
    return x, y


def _lights(cv: _Canvas, s: Setup, tb: _Table, spots: list[tuple[float, float]],
            on: bool) -> None:
    mx, my = tb.w(0.0, 0.0)
    col_arm = (165, 165, 170)
    heads = [tb.w(u, v) for u, v in spots]
    for hx, hy in heads:
        cv.line((mx, my), (hx, hy), _scale(col_arm, 0.7), 0.11)
        cv.line((mx, my), (hx, hy), col_arm, 0.08)
    cv.circle(mx, my, 0.12, (150, 150, 155))
    rad = 0.27
    for hx, hy in heads:
        if on:
            cv.blend(0.25, lambda im, hx=hx, hy=hy: cv.circle(hx, hy, rad * 1.9, (225, 245, 255),
                                                             im))
            cv.blend(0.35, lambda im, hx=hx, hy=hy: cv.circle(hx, hy, rad * 1.35, (235, 250, 255),
                                                             im))
            _lamp_head(cv, hx, hy, rad, ((170, 170, 172), (245, 252, 255), (255, 255, 255)))
        else:
            _lamp_head(cv, hx, hy, rad, ((110, 110, 112), (150, 150, 152), (118, 120, 122)))
        cv.circle(hx, hy, rad * 0.16, (70, 70, 70))


def _lamp_head(cv: _Canvas, hx: float, hy: float, rad: float,
               colours: tuple[tuple[int, int, int], ...]) -> None:
    """A surgical light's head: rim, face and a ring of six bulbs (colours: rim, face, bulbs)."""
    rim, face, bulb = colours
    cv.circle(hx, hy, rad, rim)
    cv.circle(hx, hy, rad * 0.9, face)
    for k in range(6):
        a = k * math.pi / 3
        cv.circle(hx + rad * 0.55 * math.cos(a), hy + rad * 0.55 * math.sin(a), rad * 0.17, bulb)


def _drape(cv: _Canvas, tb: _Table, pal: dict[str, tuple[int, int, int]],
           lr: np.random.Generator) -> float:
    """Sterile drape over the patient; returns the incision window's ``u``."""
    screen = -tb.L / 2 + 0.38
    foot = tb.L / 2 + float(lr.uniform(0.3, 0.6))
    half = tb.W / 2 + float(lr.uniform(0.35, 0.55))
    pts = [tb.w(screen, -half), tb.w(foot, -half), tb.w(foot, half), tb.w(screen, half)]
    cv.poly(pts, pal["drape_dark"])
    cv.poly([tb.w(screen + 0.03, -tb.W / 2 - 0.1), tb.w(foot - 0.06, -tb.W / 2 - 0.1),
             tb.w(foot - 0.06, tb.W / 2 + 0.1), tb.w(screen + 0.03, tb.W / 2 + 0.1)],
            pal["drape"])
    for _ in range(4):  # folds
        u = float(lr.uniform(screen + 0.2, foot - 0.1))
        cv.line(tb.w(u, -half + 0.05), tb.w(u + float(lr.uniform(-0.15, 0.15)), -tb.W / 2),
                pal["drape_dark"], 0.015)
        cv.line(tb.w(u, half - 0.05), tb.w(u + float(lr.uniform(-0.15, 0.15)), tb.W / 2),
                pal["drape_dark"], 0.015)
    cv.line(tb.w(screen, -half - 0.1), tb.w(screen, half + 0.1), pal["drape_dark"], 0.08)
    cv.line(tb.w(screen, -half - 0.1), tb.w(screen, half + 0.1), pal["drape_light"], 0.05)
    win = float(lr.uniform(-0.35, 0.3))
    wl, ww = float(lr.uniform(0.18, 0.3)), float(lr.uniform(0.12, 0.2))
    cv.poly(_rect_pts(*tb.w(win, 0), wl + 0.06, ww + 0.06, tb.a, 0.02), (60, 110, 170))
    cv.poly(_rect_pts(*tb.w(win, 0), wl, ww, tb.a, 0.02), (95, 135, 190))
    cv.line(tb.w(win - wl * 0.35, 0), tb.w(win + wl * 0.35, 0), (50, 40, 150), 0.02)
    for _ in range(int(lr.integers(2, 5))):  # instruments lying on the drape
        u, v = float(lr.uniform(win - 0.5, win + 0.6)), float(lr.uniform(-0.3, 0.3))
        da = float(lr.uniform(0, math.pi))
        p = tb.w(u, v)
        cv.line(p, (p[0] + 0.2 * math.cos(da), p[1] + 0.2 * math.sin(da)), (200, 200, 205), 0.012)
    cable = [tb.w(win + 0.1, 0.05)] + [tb.w(win + 0.1 + 0.25 * k, 0.1 + 0.08 * k * k)
                                       for k in range(1, 6)]
    cv.outline(cable, (230, 230, 225), 0.015, closed=False)
    if lr.random() < 0.7:  # Mayo stand over the foot
        cv.rect(*tb.w(tb.L / 2 - 0.15, 0), 0.32, 0.5, tb.a, pal["drape_light"])
        _tray(cv, *tb.w(tb.L / 2 - 0.15, 0), tb.a + math.pi / 2, lr, False)
    return win


def _turnover_kit(cv: _Canvas, s: Setup, tb: _Table, pal: dict[str, tuple[int, int, int]],
                  lr: np.random.Generator) -> tuple[float, float]:
    """Cleaning cart, waste bags, used linen; returns the cart position."""
    cu, cv_ = s.cart_pos
    cx, cy = tb.w(float(np.sign(cu)) * (0.9 + 2.5 * abs(cu)) + float(lr.uniform(-0.3, 0.3)),
                  float(np.sign(cv_)) * (1.1 + 1.5 * abs(cv_)) + float(lr.uniform(-0.3, 0.3)))
    ca = float(lr.uniform(0, math.pi))
    body = ((30, 200, 235), (150, 150, 150), (160, 100, 40))[int(lr.integers(3))]
    cv.rect(cx, cy, 1.0, 0.55, ca, _scale(body, 0.6))
    cv.rect(cx, cy, 0.95, 0.5, ca, body)
    c, sn = math.cos(ca), math.sin(ca)
    for k, col in enumerate(((200, 120, 40), (40, 40, 200))):
        d = -0.25 + 0.25 * k
        cv.circle(cx + c * d, cy + sn * d, 0.15, _scale(col, 0.7))
        cv.circle(cx + c * d, cy + sn * d, 0.12, col)
    cv.ellipse(cx + c * 0.33, cy + sn * 0.33, 0.16, 0.22, ca, (35, 35, 35))
    for k in range(3):
        cv.circle(cx + c * (0.12 + 0.05 * k) - sn * 0.18, cy + sn * (0.12 + 0.05 * k)
                  + c * 0.18, 0.035, ((60, 200, 60), (220, 220, 220), (60, 160, 230))[k])
    for _ in range(int(lr.integers(1, 4))):  # waste bags on the floor
        u, v = float(lr.uniform(-1.6, 1.6)), float(lr.choice([-1, 1]) * lr.uniform(0.8, 1.6))
        col = ((40, 200, 230), (45, 45, 200), (35, 35, 35), (225, 225, 220))[int(lr.integers(4))]
        bx, by = tb.w(u, v)
        cv.poly(_blob(bx, by, float(lr.uniform(0.2, 0.3)), lr), _scale(col, 0.8))
        cv.poly(_blob(bx, by, 0.17, lr), col)
        cv.circle(bx, by, 0.04, _scale(col, 0.6))
    if lr.random() < 0.8:  # used linen heap / hamper
        u, v = float(lr.uniform(-1.2, 1.5)), float(lr.choice([-1, 1]) * lr.uniform(0.9, 1.5))
        lx, ly = tb.w(u, v)
        if lr.random() < 0.5:
            cv.circle(lx, ly, 0.3, (150, 90, 40))
            cv.circle(lx, ly, 0.25, (120, 70, 30))
        cv.poly(_blob(lx, ly, 0.3, lr, 14), (200, 203, 205))
        cv.poly(_blob(lx, ly, 0.2, lr, 12), (232, 234, 235))
        for _ in range(int(lr.integers(1, 4))):
            cv.circle(lx + float(lr.uniform(-0.15, 0.15)), ly + float(lr.uniform(-0.15, 0.15)),
                      float(lr.uniform(0.015, 0.04)), (60, 60, 140))
    return cx, cy


def _used_linen_on_table(cv: _Canvas, tb: _Table, lr: np.random.Generator) -> None:
    x, y = tb.w(float(lr.uniform(-0.4, 0.4)), 0)
    cv.poly(_blob(x, y, 0.5, lr, 16), (198, 200, 202))
    cv.poly(_blob(x, y, 0.35, lr, 14), (228, 230, 231))
    for _ in range(int(lr.integers(1, 5))):
        cv.circle(x + float(lr.uniform(-0.25, 0.25)), y + float(lr.uniform(-0.2, 0.2)),
                  float(lr.uniform(0.015, 0.05)), (70, 70, 150))


def _mop(cv: _Canvas, hand: tuple[float, float], face: float, t: float, ph: float,
         wet: bool) -> None:
    sweep = face + 0.6 * math.sin(2 * math.pi * t / 0.7 + ph)
    hx, hy = hand
    mx, my = hx + 1.0 * math.cos(sweep), hy + 1.0 * math.sin(sweep)
    if wet:
        cv.blend(0.25, lambda im: cv.ellipse(mx, my, 0.75, 0.45, face + math.pi / 2,
                                             (245, 245, 245), im))
    cv.line((hx, hy), (mx, my), (170, 120, 60), 0.03)
    cv.rect(mx, my, 0.14, 0.45, sweep, (190, 195, 200))
    cv.rect(mx, my, 0.1, 0.4, sweep, (225, 228, 230))


def _scene(canvas: _Canvas, state: str, s: Setup, lr: np.random.Generator, t: float) -> None:
    pal = _palette(s)
    tb = _Table(s)
    L, W = tb.L, tb.W
    skin = _SKIN[int(lr.integers(len(_SKIN)))]
    arms_out = bool(lr.random() < 0.6)
    if state in ("patient_in_room", "procedure") or lr.random() < 0.4:
        _armboards(canvas, tb, pal)
    park = [(pu + float(lr.uniform(-0.3, 0.3)), pv + float(lr.uniform(-0.3, 0.3)))
            for pu, pv in s.light_park]
    actors: list[_Actor] = []
    side = [(-0.4, -(W / 2 + 0.35)), (0.3, -(W / 2 + 0.35)), (-0.4, W / 2 + 0.35),
            (0.3, W / 2 + 0.35), (L / 2 + 0.4, 0.0)]
    du, dv = s.back_table_offset
    btu, btv = L / 2 + du, s.back_table_side * dv
    near_bt = [(btu - 0.2, btv - s.back_table_side * 0.6), (btu + 0.75, btv),
               (btu, btv + s.back_table_side * 0.6)]
    head = (-L / 2 - 0.4, float(lr.uniform(-0.15, 0.15)))
    lights_on = False
    lights_over = False
    if state == "idle":
        _back_table(canvas, s, tb, pal, lr, "bare")
    elif state == "setup":
        _linen(canvas, tb, lr)
        _back_table(canvas, s, tb, pal, lr, "open")
        n = int(lr.integers(1, 4))
        kinds = ["scrubs"] * 3
        if lr.random() < 0.3:
            kinds[0] = "gowned"
        actors = _staff(lr, s, tb, near_bt[:2] + side + [head], n, 0.35, kinds)
        lights_over = bool(lr.random() < 0.3)
    elif state == "patient_in_room":
        _linen(canvas, tb, lr)
        _back_table(canvas, s, tb, pal, lr, "covered" if lr.random() < 0.5 else "open")
        _patient(canvas, tb, lr, arms_out, skin)
        anaes = _staff(lr, s, tb, [head], 1, 0.08, ["anaes"])
        n = int(lr.integers(1, min(3, s.n_staff_max - 1) + 1))
        kinds = ["scrubs"] * 3
        if lr.random() < 0.35:
            kinds[0] = "gowned_bare"  # partly gowned
        actors = anaes + _staff(lr, s, tb, side[:4] + near_bt[:1], n, 0.2, kinds)
        lights_on = bool(lr.random() < 0.2)
        lights_over = lights_on or bool(lr.random() < 0.3)
    elif state == "procedure":
        _back_table(canvas, s, tb, pal, lr, "open")
        _patient(canvas, tb, lr, arms_out, skin)
        win = _drape(canvas, tb, pal, lr)
        anaes = _staff(lr, s, tb, [head], 1, 0.06, ["anaes"])
        ng = int(lr.integers(3, s.n_staff_max + 1))
        half = W / 2 + 0.6
        spots = [(win, -half), (win, half), (win + 0.6, -half), (win + 0.6, half),
                 (win - 0.55, -half), (L / 2 + 0.75, 0.0)]
        spots = spots[:2] + [spots[i + 2] for i in lr.permutation(4)]
        gowned = [_Actor(lr, u + float(lr.uniform(-0.1, 0.1)), v, (u, 0.0), 0.05, "gowned",
                         _SKIN[int(lr.integers(len(_SKIN)))],
                         _hsv(s.cap_hues[int(lr.integers(len(s.cap_hues)))], 0.5, 0.8))
                  for u, v in spots[:ng]]
        actors = anaes + gowned
        if lr.random() < 0.7:
            actors += _staff(lr, s, tb, near_bt, 1, 0.4, ["scrubs"])
        lights_on = lights_over = True
        park = [(win + du_, dv_) for du_, dv_ in
                [(-0.55, -0.6), (0.6, 0.6), (0.1, -0.95)][: s.n_lights]]
    elif state == "turnover":
        if lr.random() < 0.5:
            _used_linen_on_table(canvas, tb, lr)
        _back_table(canvas, s, tb, pal, lr, "used" if lr.random() < 0.5 else "bare")
        _turnover_kit(canvas, s, tb, pal, lr)
        n = int(lr.integers(1, 4))
        actors = _staff(lr, s, tb, side + near_bt[:1] + [head], n, 0.3, ["scrubs"])
        if lr.random() < 0.75:  # someone mopping the floor, facing away from the table
            mu = float(lr.uniform(-L / 2, L / 2))
            mv = float(lr.choice([-1, 1]) * lr.uniform(0.9, 1.3))
            mop = _staff(lr, s, tb, [(mu, mv)], 1, 0.5, ["mop"])[0]
            mop.target = (mu + float(lr.uniform(-1, 1)), mv * 3.0)
            actors.insert(0, mop)
            actors = actors[:3]
    else:
        raise ValueError(f"unknown state {state!r}; expected one of {STATES}")
    if state != "procedure" and lights_over:
        park = [(float(lr.uniform(-0.6, 1.0)), float(lr.choice([-1, 1]) * lr.uniform(0.7, 1.0)))
                for _ in range(s.n_lights)]
    for act in actors:
        hx, hy, face = _draw_actor(canvas, tb, act, t, s, pal)
        if act.kind == "mop":
            _mop(canvas, (hx, hy), face, t, float(act.ph[0]), True)
    _lights(canvas, s, tb, park, lights_on)


# --------------------------------------------------------------------------------------------
# Camera and imaging
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=16)
def _maps(s: Setup, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Output pixel -> canvas pixel maps: barrel distortion, perspective tilt, rotation, zoom."""
    _, ppm, x0, y0 = _background(s, size)
    c = (np.arange(size, dtype=np.float64) + 0.5) / size * 2.0 - 1.0
    xn, yn = np.meshgrid(c, c)
    f = 1.0 + s.distortion * (xn * xn + yn * yn)
    xs, ys = xn * f, yn * f
    w = 1.0 + s.tilt * (math.cos(s.tilt_dir) * xs + math.sin(s.tilt_dir) * ys)
    xp, yp = xs / w, ys / w
    th = math.radians(s.rotation)
    xr = math.cos(th) * xp - math.sin(th) * yp
    yr = math.sin(th) * xp + math.cos(th) * yp
    v = _view_half(s)
    wx, wy = s.table_x + s.view_dx + v * xr, s.table_y + s.view_dy + v * yr
    return ((wx - x0) * ppm - 0.5).astype(np.float32), ((wy - y0) * ppm - 0.5).astype(np.float32)


@functools.lru_cache(maxsize=16)
def _lighting(s: Setup, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel gain (lighting level, gradient, vignette, shadow) and additive glare."""
    c = (np.arange(size, dtype=np.float32) + 0.5) / size * 2.0 - 1.0
    xn, yn = np.meshgrid(c, c)
    gain = s.light_level * (1.0 + 0.5 * s.light_gradient * (math.cos(s.light_dir) * xn
                                                            + math.sin(s.light_dir) * yn))
    gain *= 1.0 - s.vignette * (xn * xn + yn * yn) / 2.0
    mask = np.zeros((size, size), np.float32)
    pts = np.array([[(x + 1) / 2 * size, (y + 1) / 2 * size] for x, y in s.shadow], np.int32)
    cv2.fillPoly(mask, [pts], 1.0)
    mask = cv2.GaussianBlur(mask, (0, 0), size * 0.04)
    gain *= 1.0 - s.shadow_strength * mask
    glare = np.zeros((size, size), np.float32)
    for gx, gy, gr, ga in s.glare:
        glare += 255.0 * ga * np.exp(-((xn - gx) ** 2 + (yn - gy) ** 2) / (2 * gr * gr))
    wb = np.array(s.white_balance, np.float32)
    return (gain[..., None] * wb).astype(np.float32), glare[..., None]


def _render(state: str, s: Setup, rng: np.random.Generator, t: float, size: int,
            scene_seed: int | None) -> tuple[np.ndarray, bytes]:
    bg, ppm, x0, y0 = _background(s, size)
    canvas = _Canvas(bg.copy(), ppm, x0, y0)
    lr = rng if scene_seed is None else np.random.default_rng(scene_seed)
    _scene(canvas, state, s, lr, t)
    mx, my = _maps(s, size)
    img = cv2.remap(canvas.img, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                    borderValue=_OUTSIDE)
    gain, glare = _lighting(s, size)
    f = img.astype(np.float32) * (gain * np.float32(1.0 + 0.03 * rng.standard_normal())) + glare
    if s.blur_sigma > 0.05:
        f = cv2.GaussianBlur(f, (0, 0), s.blur_sigma * size / 320.0)
    f += rng.standard_normal(f.shape, dtype=np.float32) * np.float32(s.noise_sigma)
    img = np.clip(f + 0.5, 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(s.jpeg_quality)])
    if not ok:  # pragma: no cover
        raise RuntimeError("JPEG encoding failed")
    return cv2.imdecode(buf, cv2.IMREAD_COLOR), buf.tobytes()


def render_frame(state: str, setup: Setup, rng: np.random.Generator, t: float = 0.0,
                 size: int = 320, *, scene_seed: int | None = None) -> np.ndarray:
    """One ``size`` x ``size`` BGR uint8 frame of the room in ``state`` at minute ``t``; the
    scene layout comes from ``scene_seed`` when given (stable across frames), else from ``rng``."""
    if state not in STATES:
        raise ValueError(f"unknown state {state!r}; expected one of {STATES}")
    return _render(state, setup, rng, t, size, scene_seed)[0]


# --------------------------------------------------------------------------------------------
# Video and data sets
# --------------------------------------------------------------------------------------------


def _fourcc(path: Path) -> int:
    return cv2.VideoWriter_fourcc(*("mp4v" if path.suffix.lower() == ".mp4" else "MJPG"))


def render_video(timeline: list[tuple[float, float, str]], setup: Setup, path: str | Path,
                 seed: int, start: float | None = None, end: float | None = None,
                 seconds_per_frame: float = 60.0, size: int = 320,
                 fps: float = 10.0) -> list[tuple[int, float, str]]:
    """Write a video (``.avi`` MJPG, ``.mp4`` mp4v) of ``[start, end)`` minutes, one frame per
    ``seconds_per_frame``, with dropped/frozen frames; returns ``[(index, minute, true_state)]``."""
    from vision.timeline import state_at

    start = timeline[0][0] if start is None else float(start)
    end = timeline[-1][1] if end is None else float(end)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), _fourcc(path), float(fps), (size, size))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {path}")
    seg_starts = [a for a, _, _ in timeline]
    out: list[tuple[int, float, str]] = []
    prev: np.ndarray | None = None
    step = seconds_per_frame / 60.0
    n = max(0, math.ceil((end - start) / step - 1e-9))
    try:
        for i in range(n):
            t = start + i * step
            state = state_at(timeline, t)
            rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1, i)))
            u = rng.random()
            if u < setup.drop_prob:
                continue
            if prev is not None and u < setup.drop_prob + setup.freeze_prob:
                img = prev
            else:
                seg = int(np.searchsorted(seg_starts, t, side="right")) - 1
                scene_seed = int(np.random.SeedSequence(seed, spawn_key=(2, seg))
                                 .generate_state(1)[0])
                img = _render(state, setup, rng, t, size, scene_seed)[0]
            writer.write(img)
            out.append((len(out), t, state))
            prev = img
    finally:
        writer.release()
    return out


def _key(name: str, shift: bool) -> int:
    return zlib.crc32(f"{name}|{int(shift)}".encode())


def render_dataset(out_dir: str | Path, n_per_class: int, seed: int, shift: bool = False,
                   size: int = 224, setups: int = 50,
                   key: str = "all") -> list[tuple[str, str, str, str]]:
    """Write ``n_per_class`` images per state to ``out_dir/<state>/`` from ``setups`` set-ups (0:
    one per image) and ``labels.csv``; returns its rows ``(file, state, setup_id, shifted)``."""
    out_dir = Path(out_dir)
    k = _key(key, shift)
    jobs = sorted(((j + c) % setups if setups > 0 else c * n_per_class + j, c, j)
                  for c in range(len(STATES)) for j in range(n_per_class))
    for state in STATES:
        (out_dir / state).mkdir(parents=True, exist_ok=True)
        for old in (out_dir / state).glob("*.jpg"):  # a smaller re-render leaves no strays
            old.unlink()
    rows: list[tuple[str, str, str, str]] = []
    setup: Setup | None = None
    for i, (si, c, j) in enumerate(jobs):  # grouped by set-up: its rasters are built once
        if i == 0 or si != jobs[i - 1][0]:
            ss = np.random.SeedSequence(seed, spawn_key=(k, 0, si))
            setup = Setup.sample(np.random.default_rng(ss), shift=shift)
        assert setup is not None
        state = STATES[c]
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(k, 1, c, j)))
        t = float(rng.uniform(0, 600))
        _, data = _render(state, setup, rng, t, size, None)
        name = f"{state}/{key}_{j:05d}.jpg"
        (out_dir / name).write_bytes(data)
        rows.append((name, state, f"{key}-{si:04d}", ";".join(setup.shifted)))
    rows.sort(key=lambda r: (STATES.index(r[1]), r[0]))
    with open(out_dir / "labels.csv", "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(("file", "state", "setup_id", "shifted"))
        w.writerows(rows)
    return rows


def render_split(root: str | Path, split: str, n_per_class: int, seed: int,
                 shift: bool = False, size: int = 224, setups: int = 50) -> Path:
    """Write the Ultralytics classification split ``root/split/<state>/*.jpg`` (plus
    ``labels.csv``) from an RNG stream of its own per ``(seed, split, shift)``; returns it."""
    out = Path(root) / split
    render_dataset(out, n_per_class, seed, shift=shift, size=size, setups=setups, key=split)
    return out
