"""Money as integers of the currency's minor unit: parsing what staff type, showing amounts, tax."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from backcare.billing.models import CURRENCIES

SYMBOLS = {"GBP": "£", "EUR": "€", "USD": "$", "JPY": "¥"}


class MoneyError(ValueError):
    pass


def parse(text: str, currency: str) -> int:
    """'12.50' in GBP -> 1250. Refuses words, negatives and more decimals than the currency has."""
    exponent = CURRENCIES.get(currency, 2)
    cleaned = (text or "").strip().replace(",", "").lstrip("£€$¥").strip()
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise MoneyError(f"Enter an amount such as {format_plain(1250, currency)}.") from None
    if not value.is_finite() or value < 0:
        raise MoneyError("Enter an amount of zero or more.")
    minor = value.scaleb(exponent)
    if minor != minor.to_integral_value():
        raise MoneyError(f"{currency} amounts have at most {exponent} decimal places.")
    if minor > 10**9:
        raise MoneyError("That amount is too large.")
    return int(minor)


def format_plain(minor: int, currency: str) -> str:
    exponent = CURRENCIES.get(currency, 2)
    sign = "-" if minor < 0 else ""
    whole, part = divmod(abs(minor), 10**exponent)
    return f"{sign}{whole:,}" + (f".{part:0{exponent}d}" if exponent else "")


def format_money(minor: int, currency: str) -> str:
    symbol = SYMBOLS.get(currency)
    plain = format_plain(minor, currency)
    if symbol is None:
        return f"{plain} {currency}"
    return f"-{symbol}{plain[1:]}" if plain.startswith("-") else f"{symbol}{plain}"


def tax_on(net: int, rate_bp: int) -> int:
    """Tax on a net amount, rounded half up to the minor unit (integers only)."""
    return (net * rate_bp + 5000) // 10000


def split_gross(gross: int, rate_bp: int) -> tuple[int, int]:
    """A gross amount as (net, tax) with net + tax == gross exactly."""
    net = (gross * 10000 + (10000 + rate_bp) // 2) // (10000 + rate_bp)
    return net, gross - net
