"""Billing: prices, invoices and credit notes, payments and refunds, packages for courses, cancellation fees.

A ledger an accountant can trust (docs/billing.md): money is integer minor units of the clinic's currency, every
document is numbered in one gapless sequence per clinic, nothing issued is ever changed (the database refuses it),
and a client's balance is always invoices minus credit notes minus payments plus refunds.
"""
