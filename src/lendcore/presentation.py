"""JSON documents of service results: one shape for the CLI's --json and the HTTP API.

Amounts are decimal strings in major units with the currency beside them, never
floats; dates are ISO 8601.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from lendcore.ledger.verify import VerifyReport
from lendcore.money import currency, format_minor
from lendcore.origination.borrowers import Borrower, KycCheck
from lendcore.schedules.engine import Schedule
from lendcore.services.applications import Application, Replay, StoredDecision
from lendcore.services.approvals import PendingApproval
from lendcore.services.audit import AuditEntry
from lendcore.services.borrowers import (
    BorrowerView,
    ScreeningHit,
    ScreeningOutcome,
    ScreeningSummary,
    WatchList,
    WatchListLoad,
)
from lendcore.services.identity import ApiKey, User
from lendcore.services.ledger import Account, Balance, BookedEntry, Hold, TrialBalance
from lendcore.services.loans import LoanSummary, LoanView
from lendcore.services.policies import PolicyVersion
from lendcore.services.products import ProductSubmission, StoredProduct
from lendcore.services.webhooks import Delivery, Webhook


def amount(amount_minor: int, currency_code: str) -> str:
    """Minor units as a decimal string in major units, e.g. 123456 USD -> "1234.56"."""
    return format_minor(amount_minor, currency(currency_code).exponent)


def iso(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def account_doc(a: Account) -> dict[str, Any]:
    return {
        "code": a.code,
        "name": a.name,
        "type": a.type.value,
        "currency": a.currency,
        "normal_side": a.normal_side.value,
        "parent": a.parent_code,
        "status": a.status.value,
        "balance_constraint": a.balance_constraint.value,
        "opened_on": a.opened_on,
        "closed_on": a.closed_on,
    }


def entry_doc(e: BookedEntry) -> dict[str, Any]:
    return {
        "id": e.id,
        "idempotency_key": e.idempotency_key,
        "business_date": e.business_date,
        "value_date": e.value_date,
        "recorded_at": e.recorded_at,
        "description": e.description,
        "metadata": dict(e.metadata),
        "reverses_entry_id": e.reverses_entry_id,
        "hold_id": e.hold_id,
        "replayed": e.replayed,
        "postings": [
            {
                "account": p.account,
                "side": "debit" if p.side.value == "D" else "credit",
                "amount": amount(p.amount_minor, p.currency),
                "currency": p.currency,
            }
            for p in e.postings
        ],
    }


def hold_doc(h: Hold) -> dict[str, Any]:
    return {
        "id": h.id,
        "idempotency_key": h.idempotency_key,
        "debit_account": h.debit_account,
        "credit_account": h.credit_account,
        "amount": amount(h.amount_minor, h.currency),
        "currency": h.currency,
        "status": h.status,
        "expires_on": h.expires_on,
        "business_date": h.business_date,
        "resolved_on": h.resolved_on,
        "description": h.description,
    }


def balance_doc(b: Balance) -> dict[str, Any]:
    return {
        "account": b.account,
        "currency": b.currency,
        "normal_side": b.normal_side.value,
        "as_of": b.as_of,
        "balance": amount(b.posted, b.currency),
        "available": amount(b.available, b.currency),
        "debits_posted": amount(b.debits_posted, b.currency),
        "credits_posted": amount(b.credits_posted, b.currency),
        "debits_pending": amount(b.debits_pending, b.currency),
        "credits_pending": amount(b.credits_pending, b.currency),
    }


def trial_balance_doc(tb: TrialBalance) -> dict[str, Any]:
    return {
        "as_of": tb.as_of,
        "balanced": tb.balanced,
        "accounts": [
            {
                "code": r.code,
                "name": r.name,
                "type": r.type.value,
                "currency": r.currency,
                "parent": r.parent_code,
                "debit": amount(r.debit_minor, r.currency),
                "credit": amount(r.credit_minor, r.currency),
            }
            for r in tb.rows
        ],
        "totals": [
            {"currency": cur, "debit": amount(d, cur), "credit": amount(c, cur)}
            for cur, (d, c) in sorted(tb.totals.items())
        ],
    }


def verify_doc(report: VerifyReport) -> dict[str, Any]:
    return {
        "ok": report.ok,
        "entries_checked": report.entries_checked,
        "postings_checked": report.postings_checked,
        "seals_checked": report.seals_checked,
        "accounts_checked": report.accounts_checked,
        "audit_records_checked": report.audit_records_checked,
        "chain_head": {"seq": report.head_seq, "hash": report.head_hash},
        "first_bad_entry": report.first_bad_entry,
        "problems": [
            {
                "code": p.code,
                "message": p.message,
                "entry_id": p.entry_id,
                "account": p.account,
                "seal_seq": p.seal_seq,
            }
            for p in report.problems
        ],
    }


def user_doc(u: User) -> dict[str, Any]:
    return {
        "username": u.username,
        "display_name": u.display_name,
        "status": u.status,
        "roles": sorted(r.value for r in u.roles),
        "created_at": u.created_at,
        "has_password": u.has_password,
    }


def apikey_doc(k: ApiKey) -> dict[str, Any]:
    return {
        "key_id": k.key_id,
        "username": k.username,
        "label": k.label,
        "created_at": k.created_at,
        "expires_at": k.expires_at,
        "revoked_at": k.revoked_at,
        "active": k.active,
    }


def approval_doc(a: PendingApproval) -> dict[str, Any]:
    return {
        "id": a.id,
        "command": a.command,
        "summary": a.summary,
        "status": a.status,
        "maker": a.maker,
        "business_date": a.business_date,
        "created_at": a.created_at,
        "checker": a.checker,
        "decided_at": a.decided_at,
        "note": a.note,
        "payload": dict(a.payload),
        "result": None if a.result is None else dict(a.result),
    }


def audit_doc(e: AuditEntry) -> dict[str, Any]:
    return {
        "seq": e.seq,
        "recorded_at": e.recorded_at,
        "business_date": e.business_date,
        "actor": e.actor,
        "actor_kind": e.actor_kind,
        "roles": e.roles,
        "command": e.command,
        "request_id": e.request_id,
        "inputs": dict(e.inputs),
        "outcome": e.outcome,
        "error_code": e.error_code,
        "result": dict(e.result),
    }


def webhook_doc(w: Webhook) -> dict[str, Any]:
    return {
        "id": w.id,
        "url": w.url,
        "event_types": None if w.event_types is None else list(w.event_types),
        "active": w.active,
        "queued_through": w.queued_through,
        "created_at": w.created_at,
    }


def delivery_doc(d: Delivery) -> dict[str, Any]:
    return {
        "webhook_id": d.webhook_id,
        "outbox_id": d.outbox_id,
        "event_id": d.event_id,
        "event_type": d.event_type,
        "aggregate_key": d.aggregate_key,
        "status": d.status,
        "attempts": d.attempts,
        "next_attempt_at": d.next_attempt_at,
        "last_error": d.last_error,
        "delivered_at": d.delivered_at,
    }


def product_version_doc(p: StoredProduct) -> dict[str, Any]:
    """A stored product version without its settings (lists, version histories)."""
    product = p.product
    return {
        "code": p.code,
        "version": p.version,
        "name": product.name,
        "currency": product.currency,
        "amortization": product.amortization.value,
        "frequency": product.frequency,
        "interest_method": product.interest.method.value,
        "digest": p.digest,
        "loaded_by": p.loaded_by,
        "approved_by": p.approved_by,
        "business_date": p.business_date,
        "created_at": p.created_at,
    }


def product_doc(p: StoredProduct) -> dict[str, Any]:
    """A stored product version with all its settings (amounts as decimal strings)."""
    return {**product_version_doc(p), "definition": p.product.model_dump(mode="json")}


def product_submission_doc(s: ProductSubmission) -> dict[str, Any]:
    return {
        "outcome": s.outcome,
        "code": s.code,
        "digest": s.digest,
        "changes": list(s.changes),
        "approval": None if s.approval is None else approval_doc(s.approval),
        "current": None if s.current is None else product_version_doc(s.current),
    }


def loan_summary_doc(s: LoanSummary) -> dict[str, Any]:
    return {
        "id": s.id,
        "product": s.product_code,
        "product_version": s.product_version,
        "currency": s.currency,
        "borrower": s.borrower,
        "approved": amount(s.approved_minor, s.currency),
        "status": s.status,
        "principal_outstanding": amount(s.principal_outstanding_minor, s.currency),
        "overdue": amount(s.overdue_minor, s.currency),
        "days_past_due": s.days_past_due,
        "state_as_of": iso(s.state_as_of),
    }


def loan_doc(v: LoanView) -> dict[str, Any]:
    """A loan whole: contract, balances, arrears, schedule with paid and unpaid, and a
    page of its history with how each repayment in it was applied."""
    cur = v.currency
    st = v.state

    def money(value: int) -> str:
        return amount(value, cur)

    def parts(values: dict[str, int]) -> dict[str, str]:
        return {k: money(n) for k, n in values.items()}

    t = v.terms
    return {
        "id": v.id,
        "product": v.product_code,
        "product_version": v.product_version,
        "currency": cur,
        "borrower": v.borrower,
        "approved": money(v.approved_minor),
        "terms": {
            "annual_rate": str(t.annual_rate),
            "term": t.term,
            "frequency": t.frequency.name,
            "day_count": t.day_count.value,
            "method": t.method.value,
            "amortization": t.amortization.value,
            "start": iso(t.start),
            "first_repayment": iso(t.first_repayment),
        },
        "status": st.status.value,
        "as_of": iso(st.as_of),
        "balances": {
            "disbursed": money(st.disbursed),
            "principal_outstanding": money(st.principal_outstanding),
            "interest_accrued": money(st.interest_accrued),
            "overdue": money(st.overdue),
            "overpayment": money(st.overpayment),
            "payoff": money(max(st.payoff, 0)),
        },
        "arrears": {
            "days_past_due": st.days_past_due,
            "bucket": st.bucket,
            "overdue_by_component": parts(st.overdue_by_component),
        },
        "closed_on": iso(st.closed_on),
        "written_off_on": iso(st.written_off_on),
        "instalments": [
            {
                "number": i.number,
                "due_date": iso(i.due_date),
                "principal": money(i.principal),
                "interest": money(i.interest),
                "fees": money(i.fees),
                "penalties": money(i.penalties),
                "total": money(i.total),
                "paid": parts(i.paid),
                "waived": parts(i.waived),
                "outstanding": money(i.outstanding),
                "status": instalment_status(i.outstanding, i.fallen_due, i.due_date, st.as_of),
            }
            for i in st.instalments
        ],
        "history": [
            {
                "seq": h.seq,
                "kind": h.kind,
                "value_date": iso(h.value_date),
                "business_date": iso(h.business_date),
                "amount": money(h.amount_minor),
                "details": dict(h.payload),
                "entry_id": h.entry_id,
                "actor": h.actor,
                "recorded_at": h.created_at,
            }
            for h in v.history
        ],
        # Pass as the history cursor to read the events before this page.
        "history_next_cursor": None if v.history_next is None else str(v.history_next),
        "allocations": [
            {
                "seq": a.seq,
                "value_date": iso(a.value_date),
                "amount": money(a.amount),
                "penalty": money(a.penalty),
                "fee": money(a.fee),
                "interest": money(a.interest),
                "principal": money(a.principal + a.prepaid_principal),
                "overpayment": money(a.overpayment),
                "recovery": money(a.recovery),
            }
            for a in v.allocations
        ],
        "ledger": {
            "positions": parts(st.positions),
            "posted": parts(dict(v.posted)),
        },
    }


def instalment_status(outstanding: int, fallen_due: bool, due: date, as_of: date) -> str:
    if outstanding == 0 and fallen_due:
        return "paid"
    if not fallen_due:
        return "future"
    return "overdue" if due < as_of else "due"


def schedule_doc(s: Schedule) -> dict[str, Any]:
    """A repayment schedule: `lendcore schedule preview --json` and POST /v1/schedules/preview."""

    def money(amount_minor: int) -> str:
        return format_minor(amount_minor, s.exponent)

    return {
        "currency": s.currency,
        "instalments": [
            {
                "number": i.number,
                "due_date": i.due_date.isoformat(),
                "principal": money(i.principal),
                "interest": money(i.interest),
                "fees": money(i.fees),
                "total": money(i.total),
                "outstanding": money(i.outstanding),
            }
            for i in s.instalments
        ],
        "totals": {
            "principal": money(s.principal),
            "interest": money(s.interest),
            "fees": money(s.fees),
            "total": money(s.total),
        },
    }


# --- borrowers, KYC and screening (the national id only ever masked) ------------------


def borrower_doc(b: Borrower) -> dict[str, Any]:
    return {
        "id": b.id,
        "kind": b.kind,
        "name": b.name,
        "date_of_birth": iso(b.date_of_birth),
        "registered_on": iso(b.registered_on),
        "email": b.email,
        "phone": b.phone,
        "address": b.address,
        "country": b.country,
        "national_id_masked": b.national_id_masked,
        "currency": b.currency,
        "monthly_income": amount(b.monthly_income_minor, b.currency),
        "monthly_obligations": amount(b.monthly_obligations_minor, b.currency),
        "employment": {
            "status": b.employment_status,
            "employer": b.employer,
            "since": iso(b.employed_since),
        },
        "group": None if b.group_id is None else {"id": b.group_id, "name": b.group_name},
        "kyc_status": b.kyc_status,
        "kyc_valid_until": iso(b.kyc_valid_until),
        "screening_status": b.screening_status,
        "created_by": b.created_by,
        "created_on": iso(b.created_on),
        "updated_at": b.updated_at,
    }


def kyc_check_doc(c: KycCheck) -> dict[str, Any]:
    return {
        "id": c.id,
        "borrower_id": c.borrower_id,
        "outcome": c.outcome.value,
        "document_type": c.document_type,
        "document_number_masked": c.document_number_masked,
        "checked_by": c.checked_by,
        "checked_on": iso(c.checked_on),
        "valid_until": iso(c.valid_until),
        "note": c.note,
        "recorded_at": c.recorded_at,
    }


def screening_hit_doc(h: ScreeningHit) -> dict[str, Any]:
    return {
        "id": h.id,
        "borrower_id": h.borrower_id,
        "borrower_name": h.borrower_name,
        "list": h.list_name,
        "entry": {
            "name": h.entry_name,
            "reference": h.entry_reference,
            "date_of_birth": iso(h.entry_date_of_birth),
            "birth_year": h.entry_birth_year,
            "country": h.entry_country,
        },
        "score": f"{h.score:.2f}",
        "name_score": f"{h.name_score:.2f}",
        "dob_match": h.dob_match,
        "status": h.status,
        "approval_id": h.approval_id,
        "resolved_by": h.resolved_by,
        "approved_by": h.approved_by,
        "resolved_at": h.resolved_at,
        "resolution_note": h.resolution_note,
        "business_date": iso(h.business_date),
        "created_at": h.created_at,
    }


def borrower_view_doc(v: BorrowerView) -> dict[str, Any]:
    return {
        **borrower_doc(v.borrower),
        "group_members": list(v.group_members),
        "kyc_checks": [kyc_check_doc(c) for c in v.kyc_checks],
        "screening_hits": [screening_hit_doc(h) for h in v.hits],
    }


def screening_outcome_doc(o: ScreeningOutcome) -> dict[str, Any]:
    return {
        "borrower_id": o.borrower_id,
        "screening_status": o.status,
        "lists": list(o.lists),
        "entries_checked": o.entries_checked,
        "candidates": o.candidates,
        "threshold": f"{o.threshold:.2f}",
        "new_hits": [screening_hit_doc(h) for h in o.new_hits],
    }


def screening_summary_doc(s: ScreeningSummary) -> dict[str, Any]:
    return {
        "borrowers_screened": s.borrowers_screened,
        "new_hits": s.new_hits,
        "by_status": dict(s.by_status),
    }


def watch_list_doc(w: WatchList) -> dict[str, Any]:
    return {
        "id": w.id,
        "name": w.name,
        "version": w.version,
        "source": w.source,
        "digest": w.digest,
        "entry_count": w.entry_count,
        "loaded_by": w.loaded_by,
        "business_date": iso(w.business_date),
        "loaded_at": w.loaded_at,
    }


def watch_list_load_doc(w: WatchListLoad) -> dict[str, Any]:
    return {
        "outcome": w.outcome,
        "watch_list": watch_list_doc(w.watch_list),
        "screened": None if w.screened is None else screening_summary_doc(w.screened),
    }


def application_doc(a: Application) -> dict[str, Any]:
    return {
        "id": a.id,
        "borrower_id": a.borrower_id,
        "product": a.product_code,
        "product_version": a.product_version,
        "currency": a.currency,
        "amount": amount(a.amount_minor, a.currency),
        "term": a.term,
        "purpose": a.purpose,
        "status": a.status,
        "outcome": a.outcome,
        "decision_id": a.decision_id,
        "decided_by": a.decided_by,
        "entered_by": a.entered_by,
        "loan_id": a.loan_id,
        "business_date": iso(a.business_date),
        "expires_on": iso(a.expires_on),
        "created_at": a.created_at,
    }


def decision_doc(d: StoredDecision) -> dict[str, Any]:
    """A stored decision: outcome, reasons, score, price, versions, and its inputs."""
    currency_code = str(d.inputs.get("currency", "USD"))
    body = dict(d.decision)
    return {
        "id": d.id,
        "application_id": d.application_id,
        "kind": d.kind,
        "outcome": d.outcome,
        "reasons": body.get("reasons", []),
        "score": body.get("score"),
        "pd": body.get("pd"),
        "band": body.get("band"),
        "annual_rate": body.get("annual_rate"),
        "instalment": amount(int(body.get("instalment_minor", 0)), currency_code),
        "stress_payment_monthly": amount(
            int(body.get("stress_payment_monthly_minor", 0)), currency_code
        ),
        "dti": body.get("dti"),
        "pti": body.get("pti"),
        "policy_version": d.policy_version,
        "model_version": d.model_version,
        "challenger": body.get("challenger"),
        "actor": d.actor,
        "note": d.note,
        "business_date": iso(d.business_date),
        "created_at": d.created_at,
        "inputs": dict(d.inputs),
    }


def replay_doc(r: Replay) -> dict[str, Any]:
    return {
        "decision_id": r.decision_id,
        "reproduced": r.reproduced,
        "differences": list(r.differences),
        "stored": dict(r.stored),
        "replayed": dict(r.replayed),
    }


def policy_doc(p: PolicyVersion, *, with_document: bool = False) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "version": p.version,
        "name": p.name,
        "active": p.active,
        "loaded_by": p.loaded_by,
        "approved_by": p.approved_by,
        "business_date": iso(p.business_date),
        "created_at": p.created_at,
    }
    if with_document:
        doc["document"] = dict(p.document)
    return doc
