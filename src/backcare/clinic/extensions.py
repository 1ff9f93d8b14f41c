"""Places on the clinic's pages that apps above the clinic fill, so the clinic shows their part without importing
them (the layers in .importlinter). An app registers in its AppConfig.ready().

- `POLICY_SECTIONS`: fields shown in the clinic settings page's "Policies" fieldset, beside the cancellation
  window, validated and saved with it in one transaction (billing: the late-cancellation and no-show fees).
- `COURSE_PANELS`: a block on the course page (billing: the course's package and its sessions used).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms

from backcare.clinic.models import Clinic, Course


@dataclass(frozen=True)
class PolicySection:
    name: str
    # (clinic, POST data or None) -> a form with a prefix of its own
    form: Callable[[Clinic, Any], forms.Form]
    # (clinic, the valid form, the user, the request) -> what changed, {field: [before, after]}; audits itself
    save: Callable[[Clinic, forms.Form, Any, Any], dict[str, list[Any]]]


# (course, the user) -> (template name, its context) or None to show nothing
CoursePanel = Callable[[Course, Any], tuple[str, dict[str, Any]] | None]

POLICY_SECTIONS: list[PolicySection] = []
COURSE_PANELS: list[CoursePanel] = []


def register_policy_section(section: PolicySection) -> None:
    if all(s.name != section.name for s in POLICY_SECTIONS):
        POLICY_SECTIONS.append(section)


def register_course_panel(panel: CoursePanel) -> None:
    if panel not in COURSE_PANELS:
        COURSE_PANELS.append(panel)


def course_panels(course: Course, user: Any) -> list[tuple[str, dict[str, Any]]]:
    return [shown for panel in COURSE_PANELS if (shown := panel(course, user)) is not None]
