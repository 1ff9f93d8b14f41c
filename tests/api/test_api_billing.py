"""The billing operations beyond who may call them (test_api_matrix.py): money as integer minor units with its
currency, an invoice's lines, credit notes and payments, the Idempotency-Key of payments (a retried POST records
once; the same key for another payment is a 409), refunds within the client's credit, packages' remaining sessions,
keyset pages, and the audit of every read."""

from __future__ import annotations

from api_support import call, fields_named, problem


def pay(w, key, role="front_desk", **changes):
    body = {"client": w.x["client"], "amount": 1250, "currency": "GBP", "method": "card", "invoice": w.x["invoice"]}
    body.update(changes)
    return call("POST", "/api/payments", token=w.tokens[role], body=body, **{"Idempotency-Key": key})


def test_invoice_detail_has_lines_credit_notes_payments_and_minor_units(w):
    data = call("GET", f"/api/invoices/{w.x['invoice']}", token=w.tokens["front_desk"]).json()
    assert data["kind"] == "invoice" and data["currency"] == "GBP"
    assert data["total"] == data["net"] + data["tax"] == 6000
    assert [line["amount"] for line in data["lines"]] == [6000]
    assert [(c["kind"], c["total"], c["credits"]) for c in data["credit_notes"]] == [("credit_note", 500, data["id"])]
    assert [(p["amount"], p["method"]) for p in data["payments"]] == [(1000, "card")]
    assert data["outstanding"] == 6000 - 500 - 1000


def test_a_retried_payment_is_recorded_once_and_a_reused_key_for_another_is_refused(w):
    from backcare.billing.models import Payment

    before = Payment.objects.count()
    first = pay(w, "retry-0001")
    again = pay(w, "retry-0001")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json()
    assert Payment.objects.count() == before + 1
    other = pay(w, "retry-0001", amount=999)
    assert other.status_code == 409
    assert "amount" in problem(other)["detail"] and problem(other)["payment"] == first.json()["id"]
    # the key is the caller's own: the owner's same key is another payment
    assert pay(w, "retry-0001", role="owner").status_code == 201
    assert Payment.objects.count() == before + 2


def test_a_payment_without_key_or_in_another_currency_is_refused_naming_the_field(w):
    body = {"client": w.x["client"], "amount": 1250, "currency": "GBP", "method": "card"}
    missing = call("POST", "/api/payments", token=w.tokens["front_desk"], body=body)
    assert missing.status_code == 400 and "Idempotency-Key" in problem(missing)["detail"]
    euros = pay(w, "euro-00001", currency="EUR")
    assert euros.status_code == 422 and fields_named(euros) == {"currency"}
    alien = pay(w, "alien-0001", invoice=w.y["invoice"])
    assert alien.status_code == 422 and fields_named(alien) == {"invoice"}
    nothing = pay(w, "zero-00001", amount=0)
    assert nothing.status_code == 400 and fields_named(nothing) == {"amount"}


def test_a_refund_is_at_most_the_client_s_credit(w):
    from backcare.billing import services

    body = {"client": w.x["client"], "amount": 500, "currency": "GBP", "method": "cash"}
    refused = call("POST", "/api/refunds", token=w.tokens["owner"], body=body, **{"Idempotency-Key": "refund-001"})
    assert refused.status_code == 422 and fields_named(refused) == {"amount"}
    owed = services.balance(w.world.x.client)
    pay(w, "cover-0001", amount=owed + 700, invoice=None)
    done = call("POST", "/api/refunds", token=w.tokens["owner"], body=body, **{"Idempotency-Key": "refund-002"})
    assert done.status_code == 201 and done.json()["kind"] == "refund"
    assert services.balance(w.world.x.client) == -200


def test_lists_are_each_caller_s_share_and_page_by_cursor(w):
    from backcare.billing.models import Invoice

    def ids(role, path):
        return {item["id"] for item in call("GET", f"{path}?limit=200", token=w.tokens[role]).json()["items"]}

    clinic = set(Invoice.objects.filter(clinic=w.world.clinic).values_list("pk", flat=True))
    assert ids("front_desk", "/api/invoices") == clinic
    own = set(Invoice.objects.filter(therapist=w.world.therapist_a).values_list("pk", flat=True))
    assert own and ids("therapist", "/api/invoices") == own  # no package invoice, no Y's
    xs = set(Invoice.objects.filter(client=w.world.x.client).values_list("pk", flat=True))
    assert ids("client", "/api/invoices") == xs
    assert {p["client"] for p in call("GET", "/api/payments", token=w.tokens["other_client"]).json()["items"]} == {
        w.world.y.client.pk
    }
    seen, cursor = [], ""
    while True:
        page = call("GET", f"/api/invoices?limit=2{cursor}", token=w.tokens["owner"]).json()
        seen += [item["id"] for item in page["items"]]
        if page["next_cursor"] is None:
            break
        cursor = f"&cursor={page['next_cursor']}"
    assert seen == sorted(clinic, key=lambda pk: (Invoice.objects.get(pk=pk).issued_at, pk)) and len(seen) > 2


def test_a_package_says_the_sessions_used_and_remaining(w):
    from backcare.billing import services
    from backcare.billing.models import Package
    from backcare.scheduling.models import Appointment

    package = Package.objects.get(pk=w.x["package"])
    appointment = Appointment.objects.get(pk=w.x["appointment_today"])
    assert services.bill_session(appointment, by=w.world.therapist_a.user) is not None
    data = call("GET", f"/api/packages/{package.pk}", token=w.tokens["therapist"]).json()
    assert (data["sessions"], data["used"], data["remaining"]) == (4, 1, 3)
    assert data["price"] == 20000 and data["currency"] == "GBP" and data["status"] == "active"


def test_every_read_of_billing_is_audited(w):
    from backcare.clinic.models import AuditEvent

    def events():
        return AuditEvent.objects.filter(action="view", user=w.world.front_desk.user)

    before = events().count()
    call("GET", f"/api/invoices/{w.x['invoice']}", token=w.tokens["front_desk"])
    call("GET", f"/api/packages/{w.x['package']}", token=w.tokens["front_desk"])
    call("GET", "/api/payments", token=w.tokens["front_desk"])
    new = list(events().order_by("id")[before:])
    assert [e.detail["page"] for e in new] == ["API: invoice", "API: package", "API: payments"]
    assert new[0].client_id == w.world.x.client.pk
    assert set(new[2].detail["clients"]) == {w.world.x.client.pk, w.world.y.client.pk}
