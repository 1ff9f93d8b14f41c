from __future__ import annotations

from django import template

from backcare.billing.money import format_money

register = template.Library()


@register.filter
def money(minor: int | None, currency: str) -> str:
    return "" if minor is None else format_money(int(minor), currency)


@register.filter
def negate(value: int) -> int:
    return -int(value)
