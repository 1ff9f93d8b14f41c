"""The body map: the region codes of the contract vocabulary drawn as a front and a back view (a region seen from
both, such as a shoulder, is drawn on both and either shape ticks the same box), with one checkbox per region for
the keyboard and screen readers. The stored chart stays {code: marks}.

Used by `templates/clinic/includes/bodymap.html`:
`{% include "clinic/includes/bodymap.html" with name="regions" selected=codes avoid=codes %}`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import template

from backcare.clinical.vocabulary import REGIONS

register = template.Library()


def _rect(x: float, y: float, w: float, h: float, r: float = 4) -> str:
    return (
        f"M{x + r} {y}h{w - 2 * r}a{r} {r} 0 0 1 {r} {r}v{h - 2 * r}a{r} {r} 0 0 1 {-r} {r}"
        f"h{-(w - 2 * r)}a{r} {r} 0 0 1 {-r} {-r}v{-(h - 2 * r)}a{r} {r} 0 0 1 {r} {-r}Z"
    )


def _ellipse(cx: float, cy: float, rx: float, ry: float) -> str:
    return f"M{cx - rx} {cy}a{rx} {ry} 0 1 0 {2 * rx} 0a{rx} {ry} 0 1 0 {-2 * rx} 0Z"


def _polygon(*points: tuple[float, float]) -> str:
    return "M" + "L".join(f"{x} {y}" for x, y in points) + "Z"


# Front view centred on x=100 (the client's right on the viewer's left); back view centred on x=300
# (the client's left on the viewer's left). Each region is drawn exactly once, on the view where it is seen.
SHAPES: dict[str, tuple[str, str]] = {
    "head": ("front", _ellipse(100, 30, 20, 24)),
    "neck": ("front", _rect(90, 54, 20, 14, 3)),
    "shoulder_right": ("front", _ellipse(62, 80, 14, 12)),
    "shoulder_left": ("front", _ellipse(138, 80, 14, 12)),
    "chest": ("front", _rect(77, 70, 46, 52)),
    "abdomen": ("front", _rect(77, 124, 46, 42)),
    "arm_right": ("front", _polygon((50, 94), (66, 94), (62, 200), (60, 222), (44, 222), (46, 200))),
    "arm_left": ("front", _polygon((134, 94), (150, 94), (154, 200), (156, 222), (140, 222), (138, 200))),
    "hip_right": ("front", _rect(70, 168, 16, 28)),
    "hip_left": ("front", _rect(114, 168, 16, 28)),
    "groin": ("front", _polygon((88, 168), (112, 168), (112, 186), (100, 206), (88, 186))),
    "thigh_right": ("front", _polygon((70, 198), (96, 198), (98, 210), (96, 284), (74, 284))),
    "thigh_left": ("front", _polygon((104, 198), (130, 198), (126, 284), (104, 284), (102, 210))),
    "leg_right": ("front", _rect(75, 288, 20, 92)),
    "leg_left": ("front", _rect(105, 288, 20, 92)),
    "foot_right": ("front", _ellipse(82, 392, 13, 9)),
    "foot_left": ("front", _ellipse(118, 392, 13, 9)),
    "upper_back": ("back", _rect(272, 70, 56, 38)),
    "mid_back": ("back", _rect(274, 110, 52, 28)),
    "lower_back": ("back", _rect(274, 140, 52, 26)),
    "buttock_left": ("back", _rect(272, 168, 18, 38, 8)),
    "sacrum": ("back", _polygon((292, 168), (308, 168), (300, 200))),
    "buttock_right": ("back", _rect(310, 168, 18, 38, 8)),
}

# The regions seen from behind too, drawn again on the back view with the same code (so the stored chart keeps one
# entry per code): the back of the head and neck, the shoulders, arms, thighs, legs and heels. The back view has the
# client's left on the viewer's left.
BACK_SHAPES: dict[str, str] = {
    "head": _ellipse(300, 30, 20, 24),
    "neck": _rect(290, 54, 20, 14, 3),
    "shoulder_left": _ellipse(262, 80, 14, 12),
    "shoulder_right": _ellipse(338, 80, 14, 12),
    "arm_left": _polygon((250, 94), (266, 94), (262, 200), (260, 222), (244, 222), (246, 200)),
    "arm_right": _polygon((334, 94), (350, 94), (354, 200), (356, 222), (340, 222), (338, 200)),
    "thigh_left": _polygon((272, 208), (298, 208), (296, 284), (274, 284)),
    "thigh_right": _polygon((302, 208), (328, 208), (326, 284), (304, 284)),
    "leg_left": _rect(275, 288, 20, 92),
    "leg_right": _rect(305, 288, 20, 92),
    "foot_left": _ellipse(282, 392, 13, 9),
    "foot_right": _ellipse(318, 392, 13, 9),
}

assert set(SHAPES) == set(REGIONS), "the body map must draw every region of the vocabulary"
assert set(BACK_SHAPES) <= set(REGIONS)


def _codes(value: Any) -> set[str]:
    if not value:
        return set()
    if isinstance(value, str):
        return {value}
    if isinstance(value, Iterable):
        return {str(v) for v in value}
    return set()


@register.simple_tag
def bodymap_regions(selected: Any = None, avoid: Any = None) -> list[dict[str, Any]]:
    """Every region in vocabulary order: code, plain name, its view ("front" or "back", where it is listed), every
    shape path it is drawn with (front and back for a region seen from both), and whether selected or to avoid."""
    chosen, avoided = _codes(selected), _codes(avoid)
    return [
        {
            "code": code,
            "name": name,
            "view": SHAPES[code][0],
            "paths": [SHAPES[code][1], *([BACK_SHAPES[code]] if code in BACK_SHAPES else [])],
            "selected": code in chosen,
            "avoid": code in avoided,
        }
        for code, name in REGIONS.items()
    ]


@register.filter
def region_name(code: str) -> str:
    """The plain name of a region code (the code itself when unknown)."""
    return REGIONS.get(code, code)
