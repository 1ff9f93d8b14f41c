"""Outcome instruments: STarT Back risk grouping, pain NRS, Roland-Morris disability and meaningful change.

Pure standard-library code: the clinical core must run without the web framework.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

StartBackGroup = Literal["low", "medium", "high"]

# --- Keele STarT Back Screening Tool (Hill et al. 2008, Arthritis Rheum 59:632) ---------------------------

START_BACK_COPYRIGHT = (
    "The Keele STarT Back Screening Tool is copyright Keele University 2007; "
    "free for non-commercial use (clinical and research). "
    "Commercial use requires a licence from Keele University."
)

START_BACK_ITEMS: tuple[str, ...] = (
    "My back pain has spread down my leg(s) at some time in the last 2 weeks",
    "I have had pain in the shoulder or neck at some time in the last 2 weeks",
    "I have only walked short distances because of my back pain",
    "In the last 2 weeks, I have dressed more slowly than usual because of back pain",
    "It's not really safe for a person with a condition like mine to be physically active",
    "Worrying thoughts have been going through my mind a lot of the time",
    "I feel that my back pain is terrible and it's never going to get any better",
    "In general I have not enjoyed all the things I used to enjoy",
    "Overall, how bothersome has your back pain been in the last 2 weeks?",
)
"""The nine items in published order; items 1-8 are agree/disagree, item 9 is answered from BOTHERSOMENESS."""

BOTHERSOMENESS: Mapping[str, str] = MappingProxyType(
    {
        "not_at_all": "Not at all",
        "slightly": "Slightly",
        "moderately": "Moderately",
        "very_much": "Very much",
        "extremely": "Extremely",
    }
)
"""Item 9 answer codes (as in the intake contract) and their printed labels, mildest first."""

BOTHERSOME_SCORING = frozenset({"very_much", "extremely"})
"""Item 9 answers that score a point."""

PSYCHOSOCIAL_FIRST_ITEM = 5
"""Items 5-9 form the psychosocial subscale."""

MATCHED_CARE: Mapping[StartBackGroup, str] = MappingProxyType(
    {"low": "self_management_advice", "medium": "physiotherapy", "high": "psychological_support"}
)
"""Care matched to each risk group, as in the STarT Back trial (Hill et al. 2011, Lancet 378:1560)."""

MATCHED_CARE_TEXT: Mapping[str, str] = MappingProxyType(
    {
        "self_management_advice": "Advice, reassurance and self-management support",
        "physiotherapy": "Physiotherapy for pain and function",
        "psychological_support": "Psychologically informed physiotherapy",
    }
)


@dataclass(frozen=True)
class StartBackScore:
    """A scored STarT Back questionnaire: total 0-9, psychosocial subscale 0-5 and the risk group."""

    total: int
    psychosocial: int
    group: StartBackGroup

    @property
    def care(self) -> str:
        """The matched-care code for this group."""
        return MATCHED_CARE[self.group]


def score_start_back(agree: Sequence[bool], bothersomeness: str) -> StartBackScore:
    """Score items 1-8 (True = agree) and item 9 (a BOTHERSOMENESS code) into a risk group."""
    if len(agree) != 8:
        raise ValueError(f"STarT Back needs exactly 8 agree/disagree answers (items 1-8), got {len(agree)}")
    if not all(isinstance(answer, bool) for answer in agree):
        raise ValueError(f"STarT Back answers must be True (agree) or False (disagree), got {list(agree)!r}")
    if bothersomeness not in BOTHERSOMENESS:
        raise ValueError(
            f"Unknown STarT Back bothersomeness {bothersomeness!r}; expected one of {', '.join(BOTHERSOMENESS)}"
        )
    points = [int(answer) for answer in agree] + [int(bothersomeness in BOTHERSOME_SCORING)]
    total = sum(points)
    psychosocial = sum(points[PSYCHOSOCIAL_FIRST_ITEM - 1 :])
    group: StartBackGroup
    if psychosocial >= 4:
        group = "high"
    elif total >= 4:
        group = "medium"
    else:
        group = "low"
    return StartBackScore(total=total, psychosocial=psychosocial, group=group)


# --- Pain numeric rating scale ---------------------------------------------------------------------------

NRS_MIN, NRS_MAX = 0, 10


def _check_whole(value: object, what: str, low: int, high: int) -> int:
    # bool is an int subclass; True must not pass as a score of 1.
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{what} must be a whole number from {low} to {high}, got {value!r}")
    return value


def validate_nrs(value: int) -> int:
    """Return a pain rating if it is a whole number 0-10 (0 = no pain, 10 = worst imaginable)."""
    return _check_whole(value, "Pain NRS", NRS_MIN, NRS_MAX)


# --- Roland-Morris Disability Questionnaire (Roland and Morris 1983, Spine 8:141) --------------------------

RMDQ_ITEMS: tuple[str, ...] = (
    "I stay at home most of the time because of my back.",
    "I change position frequently to try and get my back comfortable.",
    "I walk more slowly than usual because of my back.",
    "Because of my back I am not doing any of the jobs that I usually do around the house.",
    "Because of my back, I use a handrail to get upstairs.",
    "Because of my back, I lie down to rest more often.",
    "Because of my back, I have to hold on to something to get out of an easy chair.",
    "Because of my back, I try to get other people to do things for me.",
    "I get dressed more slowly than usual because of my back.",
    "I only stand for short periods of time because of my back.",
    "Because of my back, I try not to bend or kneel down.",
    "I find it difficult to get out of a chair because of my back.",
    "My back is painful almost all the time.",
    "I find it difficult to turn over in bed because of my back.",
    "My appetite is not very good because of my back pain.",
    "I have trouble putting on my socks (or stockings) because of the pain in my back.",
    "I only walk short distances because of my back.",
    "I sleep less well because of my back.",
    "Because of my back pain, I get dressed with help from someone else.",
    "I sit down for most of the day because of my back.",
    "I avoid heavy jobs around the house because of my back.",
    "Because of my back pain, I am more irritable and bad tempered with people than usual.",
    "Because of my back, I go upstairs more slowly than usual.",
    "I stay in bed most of the time because of my back.",
)
"""The 24 statements of the original English RMDQ, in order; the client ticks those true of them today."""

RMDQ_MIN, RMDQ_MAX = 0, len(RMDQ_ITEMS)
ODI_MIN, ODI_MAX = 0, 100


def score_rmdq(ticked: Sequence[bool]) -> int:
    """Count the ticked statements (0-24); one True/False per RMDQ_ITEMS entry."""
    if len(ticked) != RMDQ_MAX:
        raise ValueError(f"RMDQ needs exactly {RMDQ_MAX} answers, one per statement, got {len(ticked)}")
    if not all(isinstance(tick, bool) for tick in ticked):
        raise ValueError(f"RMDQ answers must be True (ticked) or False, got {list(ticked)!r}")
    return sum(ticked)


# --- Meaningful change -----------------------------------------------------------------------------------

# Minimal important change, Ostelo et al. 2008, Spine 33:90 (international consensus for low back pain).
PAIN_MIC_POINTS = 2
RMDQ_MIC_POINTS = 5
ODI_MIC_POINTS = 10
MIC_PERCENT = 30
"""Improvement of this percentage of baseline also counts as meaningful, for pain and RMDQ (not ODI here)."""


@dataclass(frozen=True)
class Change:
    """Change from a baseline score where lower is better; points and percent are positive for improvement."""

    measure: str
    baseline: int
    current: int
    points: int
    percent: float | None
    meaningful: bool
    worse: bool
    show_percent: bool = True

    def describe(self) -> str:
        """One sentence, e.g. 'Pain fell from 7 to 4 (3 points, 43%): a meaningful improvement.'"""
        if self.points == 0:
            return f"{self.measure} stayed at {self.baseline}: no change."
        size = f"{abs(self.points)} point{'' if abs(self.points) == 1 else 's'}"
        if self.show_percent and self.percent is not None:
            size += f", {round(abs(self.percent))}%" + (" higher" if self.worse else "")
        moved = f"{self.measure} {'rose' if self.worse else 'fell'} from {self.baseline} to {self.current}"
        if self.worse:
            verdict = "worse than at baseline"
        elif self.meaningful:
            verdict = "a meaningful improvement"
        else:
            verdict = "an improvement, but not yet a meaningful one"
        return f"{moved} ({size}): {verdict}."


def _change(
    measure: str, baseline: int, current: int, mic_points: int, use_percent: bool, low: int, high: int
) -> Change:
    _check_whole(baseline, f"{measure} baseline", low, high)
    _check_whole(current, f"{measure} current score", low, high)
    points = baseline - current
    percent = None if baseline == 0 else 100 * points / baseline
    # Integer comparison, so that exactly 30% is not lost to floating-point rounding.
    by_percent = use_percent and baseline > 0 and points * 100 >= MIC_PERCENT * baseline
    meaningful = points > 0 and (points >= mic_points or by_percent)
    return Change(
        measure=measure,
        baseline=baseline,
        current=current,
        points=points,
        percent=percent,
        meaningful=meaningful,
        worse=current > baseline,
        show_percent=use_percent,
    )


def pain_change(baseline: int, current: int) -> Change:
    """Pain NRS change; meaningful at 2 points or 30% of baseline."""
    return _change("Pain", baseline, current, PAIN_MIC_POINTS, True, NRS_MIN, NRS_MAX)


def rmdq_change(baseline: int, current: int) -> Change:
    """Roland-Morris change; meaningful at 5 points or 30% of baseline."""
    return _change("Roland-Morris score", baseline, current, RMDQ_MIC_POINTS, True, RMDQ_MIN, RMDQ_MAX)


def odi_change(baseline: int, current: int) -> Change:
    """Oswestry Disability Index change (whole percent 0-100); meaningful at 10 points only."""
    return _change("Oswestry score", baseline, current, ODI_MIC_POINTS, False, ODI_MIN, ODI_MAX)


# --- Descriptions for display ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Instrument:
    """What an instrument is, for display: its score range, source and licence."""

    key: str
    name: str
    minimum: int
    maximum: int
    source: str
    licence: str


INSTRUMENTS: Mapping[str, Instrument] = MappingProxyType(
    {
        "start_back": Instrument(
            key="start_back",
            name="Keele STarT Back Screening Tool",
            minimum=0,
            maximum=9,
            source=(
                "Hill JC et al. A primary care back pain screening tool: identifying patient subgroups "
                "for initial treatment. Arthritis Rheum 2008;59:632-641."
            ),
            licence=START_BACK_COPYRIGHT,
        ),
        "pain_nrs": Instrument(
            key="pain_nrs",
            name="Pain numeric rating scale (0 = no pain, 10 = worst pain imaginable)",
            minimum=NRS_MIN,
            maximum=NRS_MAX,
            source=(
                "Dworkin RH et al. Core outcome measures for chronic pain clinical trials: "
                "IMMPACT recommendations. Pain 2005;113:9-19."
            ),
            licence="Free to use; no licence needed.",
        ),
        "rmdq": Instrument(
            key="rmdq",
            name="Roland-Morris Disability Questionnaire",
            minimum=RMDQ_MIN,
            maximum=RMDQ_MAX,
            source=(
                "Roland M, Morris R. A study of the natural history of back pain. Part I: development of a "
                "reliable and sensitive measure of disability in low-back pain. Spine 1983;8:141-144."
            ),
            licence="Free to use; no permission needed for the original English version.",
        ),
        "odi": Instrument(
            key="odi",
            name="Oswestry Disability Index",
            minimum=ODI_MIN,
            maximum=ODI_MAX,
            source="Fairbank JCT, Pynsent PB. The Oswestry Disability Index. Spine 2000;25:2940-2953.",
            licence=(
                "Licensed by Mapi Research Trust; the questionnaire is not included here, "
                "only the clinic's recorded total (0-100) is used."
            ),
        ),
    }
)
"""The instruments the clinic records, by key."""
