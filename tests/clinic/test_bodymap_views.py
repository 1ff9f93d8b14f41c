"""The larger body map: regions seen from behind are drawn on the back view too (either shape ticks the same box),
every region keeps one checkbox for the keyboard, and the stored chart keeps its {code: marks} shape."""

from __future__ import annotations

import re

from django.template import Context, Template

from backcare.clinic.templatetags.bodymap import BACK_SHAPES, SHAPES, bodymap_regions
from backcare.clinical.vocabulary import REGIONS


def render(**context: object) -> str:
    template = Template('{% include "clinic/includes/bodymap.html" with name="treated" selected=selected %}')
    return template.render(Context(context))


def test_every_region_is_drawn_and_the_ones_seen_from_behind_twice():
    assert set(SHAPES) == set(REGIONS)
    for code in ("shoulder_left", "shoulder_right", "thigh_left", "leg_right", "neck", "head"):
        assert code in BACK_SHAPES
    regions = {r["code"]: r for r in bodymap_regions()}
    assert len(regions["shoulder_left"]["paths"]) == 2 and len(regions["lower_back"]["paths"]) == 1


def test_the_drawing_scales_and_every_region_has_a_labelled_checkbox():
    html = render(selected=["shoulder_left"])
    assert 'viewBox="0 0 400 420"' in html and 'aria-hidden="true"' in html
    assert len(re.findall(r'data-region="shoulder_left"', html)) == 2
    assert len(re.findall(r'class="region selected" data-region="shoulder_left"', html)) == 2
    for code in REGIONS:
        assert f'id="id_treated_{code}" name="treated" value="{code}"' in html
        assert f'for="id_treated_{code}"' in html
    assert 'class="outline"' not in html  # no shapes that look clickable but are not
