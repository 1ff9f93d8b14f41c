"""Property: for any sequence of invoices, payments, credit notes and refunds, the client's balance equals invoices
minus credit notes minus payments plus refunds (counted independently here from what each operation returned), the
statement's last running balance equals it, and the documents are numbered 1..n without a gap. Each example runs in
a transaction that is rolled back."""

from __future__ import annotations

import itertools

from django.core.exceptions import ValidationError
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backcare.billing import services
from backcare.billing.models import Invoice

SETTINGS = settings(
    deadline=None, max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
amount = st.integers(1, 20000)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("invoice"), st.integers(0, 3)),
        st.tuples(st.just("pay"), amount, st.sampled_from(["cash", "card", "transfer"]), st.booleans()),
        st.tuples(st.just("credit"), amount),
        st.tuples(st.just("refund"), amount),
    ),
    max_size=12,
)
_keys = itertools.count()


@SETTINGS
@given(ops=operations)
def test_balance_is_always_invoices_minus_credits_minus_payments_plus_refunds(billing, ops):
    with transaction.atomic():
        expected, issued = 0, []
        desk, owner = billing.front_desk.user, billing.owner.user
        for op in ops:
            try:
                if op[0] == "invoice":
                    invoice = services.bill_session(billing.appointment(days=1 + len(issued), hour=8 + op[1]), by=owner)
                    issued.append(invoice)
                    expected += invoice.total
                elif op[0] == "pay":
                    target = issued[-1] if issued and op[3] else None
                    payment, _ = services.take_payment(
                        billing.client, op[1], op[2], key=f"p{next(_keys)}", by=desk, invoice=target
                    )
                    expected -= payment.amount
                elif op[0] == "credit" and issued:
                    note = services.credit_note(issued[-1], op[1], "Correction", by=owner)
                    expected -= note.total
                elif op[0] == "refund":
                    payment, _ = services.take_payment(
                        billing.client, op[1], "cash", key=f"r{next(_keys)}", by=desk, kind="refund"
                    )
                    expected += payment.amount
            except ValidationError:
                pass  # a credit above what is left, a refund above the credit: refused, and nothing recorded
            assert services.balance(billing.client) == expected
        entries = services.statement(billing.client)
        assert (entries[-1].running if entries else 0) == expected
        numbers = sorted(Invoice.objects.filter(clinic=billing.clinic).values_list("number", flat=True))
        assert numbers == list(range(1, len(numbers) + 1))
        for invoice in issued:
            assert 0 <= services.outstanding(invoice) <= invoice.total
        transaction.set_rollback(True)
