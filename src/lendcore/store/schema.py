"""The one SQLAlchemy Core schema for SQLite and PostgreSQL.

Alembic migrations are generated from this metadata; a test checks that a
migrated database and this module agree. Amounts are BIGINT minor units.
Timestamps that enter the audit chain are ISO 8601 UTC text, so they
round-trip byte for byte on both databases.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

# Naming convention so constraint names are the same on both databases and
# migrations can refer to them.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite only auto-assigns INTEGER PRIMARY KEY (a rowid alias), not BIGINT.
Id = BigInteger().with_variant(Integer, "sqlite")

# The institution: one row holding the business date end of day advances.
institution = Table(
    "institution",
    metadata,
    Column("id", SmallInteger, primary_key=True, autoincrement=False),
    Column("business_date", Date, nullable=False),
    Column("updated_at", String(32), nullable=False),
    CheckConstraint("id = 1", name="singleton"),
)

accounts = Table(
    "accounts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("code", String(64), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("type", String(16), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("normal_side", String(6), nullable=False),
    Column("parent_id", Id, ForeignKey("accounts.id"), nullable=True),
    Column("status", String(8), nullable=False),
    Column("balance_constraint", String(16), nullable=False),
    Column("opened_on", Date, nullable=False),
    Column("closed_on", Date, nullable=True),
    Column("created_at", String(32), nullable=False),
    CheckConstraint("type IN ('asset', 'liability', 'equity', 'income', 'expense')", name="type"),
    CheckConstraint("normal_side IN ('debit', 'credit')", name="normal_side"),
    CheckConstraint("status IN ('open', 'closed')", name="status"),
    CheckConstraint(
        "balance_constraint IN ('none', 'non_negative', 'non_positive')",
        name="balance_constraint",
    ),
)
Index("ix_accounts_parent_id", accounts.c.parent_id)

# Current balance per account, maintained in the booking transaction. Pending
# amounts are reserved by holds and count against balance constraints.
account_balances = Table(
    "account_balances",
    metadata,
    Column("account_id", Id, ForeignKey("accounts.id"), primary_key=True, autoincrement=False),
    Column("debits_posted", BigInteger, nullable=False),
    Column("credits_posted", BigInteger, nullable=False),
    Column("debits_pending", BigInteger, nullable=False),
    Column("credits_pending", BigInteger, nullable=False),
    CheckConstraint(
        "debits_posted >= 0 AND credits_posted >= 0 "
        "AND debits_pending >= 0 AND credits_pending >= 0",
        name="non_negative_totals",
    ),
)

# Cumulative posted totals at the end of each business date on which the
# account moved: the balance as of any past date is one indexed lookup.
account_daily_balances = Table(
    "account_daily_balances",
    metadata,
    Column("account_id", Id, ForeignKey("accounts.id"), primary_key=True, autoincrement=False),
    Column("business_date", Date, primary_key=True),
    Column("debits_posted", BigInteger, nullable=False),
    Column("credits_posted", BigInteger, nullable=False),
)

journal_entries = Table(
    "journal_entries",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("idempotency_key", String(128), nullable=False, unique=True),
    Column("request_hash", String(64), nullable=False),
    Column("business_date", Date, nullable=False),
    Column("value_date", Date, nullable=False),
    Column("recorded_at", String(32), nullable=False),
    Column("description", String(500), nullable=False),
    Column("metadata_json", Text, nullable=False),
    Column("reverses_entry_id", Id, ForeignKey("journal_entries.id"), nullable=True, unique=True),
    Column("hold_id", Id, ForeignKey("holds.id"), nullable=True, unique=True),
    Column("entry_digest", String(64), nullable=False),
)
Index("ix_journal_entries_business_date", journal_entries.c.business_date)

postings = Table(
    "postings",
    metadata,
    Column(
        "entry_id",
        Id,
        ForeignKey("journal_entries.id"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("line_no", SmallInteger, primary_key=True, autoincrement=False),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("side", String(1), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    CheckConstraint("side IN ('D', 'C')", name="side"),
    CheckConstraint("amount_minor > 0", name="amount_positive"),
)
Index("ix_postings_account_id_entry_id", postings.c.account_id, postings.c.entry_id)

# Two-phase transfers: a hold reserves an amount moving from one account to
# another; it is later posted (in full or in part), voided, or expires.
holds = Table(
    "holds",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("idempotency_key", String(128), nullable=False, unique=True),
    Column("request_hash", String(64), nullable=False),
    Column("debit_account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("credit_account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(8), nullable=False),
    Column("expires_on", Date, nullable=False),
    Column("business_date", Date, nullable=False),
    Column("resolved_on", Date, nullable=True),
    Column("description", String(500), nullable=False),
    Column("metadata_json", Text, nullable=False),
    Column("recorded_at", String(32), nullable=False),
    CheckConstraint("amount_minor > 0", name="amount_positive"),
    CheckConstraint("status IN ('pending', 'posted', 'voided', 'expired')", name="status"),
)
Index("ix_holds_status_expires_on", holds.c.status, holds.c.expires_on)

# The audit chain: each seal covers one entry or a batch of entries (by id)
# and the previous seal's hash. Append-only like the journal.
ledger_seals = Table(
    "ledger_seals",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("prev_hash", String(64), nullable=False),
    Column("seal_hash", String(64), nullable=False),
    Column("entry_ids", Text, nullable=False),
    Column("entry_count", Integer, nullable=False),
    Column("sealed_at", String(32), nullable=False),
)

# The head of the chain: a single row locked last in every booking
# transaction, so seals follow commit order.
ledger_chain_head = Table(
    "ledger_chain_head",
    metadata,
    Column("id", SmallInteger, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("seal_hash", String(64), nullable=False),
    CheckConstraint("id = 1", name="singleton"),
)


# --- identity -------------------------------------------------------------------

users = Table(
    "users",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("display_name", String(200), nullable=False),
    Column("status", String(8), nullable=False),
    Column("password_hash", String(200), nullable=True),
    Column("created_at", String(32), nullable=False),
    Column("created_by", String(100), nullable=False),
    CheckConstraint("status IN ('active', 'disabled')", name="status"),
)

user_roles = Table(
    "user_roles",
    metadata,
    Column("user_id", Id, ForeignKey("users.id"), primary_key=True, autoincrement=False),
    Column("role", String(32), primary_key=True),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("key_id", String(32), nullable=False, unique=True),
    Column("user_id", Id, ForeignKey("users.id"), nullable=False),
    Column("secret_hash", String(64), nullable=False),
    Column("label", String(200), nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("expires_at", String(32), nullable=False),
    Column("revoked_at", String(32), nullable=True),
)

# Installation-wide settings (the token signing key lives here).
settings = Table(
    "settings",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

# --- the command audit log: append-only, with its own hash chain --------------------

audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("recorded_at", String(32), nullable=False),
    Column("business_date", Date, nullable=False),
    Column("actor", String(100), nullable=False),
    Column("actor_kind", String(16), nullable=False),
    Column("roles", String(200), nullable=False),
    Column("command", String(64), nullable=False),
    Column("request_id", String(64), nullable=False),
    Column("inputs_json", Text, nullable=False),
    Column("outcome", String(8), nullable=False),
    Column("error_code", String(64), nullable=True),
    Column("result_json", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("record_hash", String(64), nullable=False),
    CheckConstraint("outcome IN ('ok', 'refused', 'failed')", name="outcome"),
)
Index("ix_audit_log_command", audit_log.c.command)
Index("ix_audit_log_actor", audit_log.c.actor)

audit_chain_head = Table(
    "audit_chain_head",
    metadata,
    Column("id", SmallInteger, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("record_hash", String(64), nullable=False),
    CheckConstraint("id = 1", name="singleton"),
)

# --- maker-checker ----------------------------------------------------------------

pending_approvals = Table(
    "pending_approvals",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("command", String(64), nullable=False),
    Column("payload_json", Text, nullable=False),
    Column("summary", String(500), nullable=False),
    Column("idempotency_key", String(128), nullable=True, unique=True),
    Column("status", String(10), nullable=False),
    Column("maker", String(100), nullable=False),
    Column("maker_user_id", Id, ForeignKey("users.id"), nullable=True),
    Column("business_date", Date, nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("checker", String(100), nullable=True),
    Column("checker_user_id", Id, ForeignKey("users.id"), nullable=True),
    Column("decided_at", String(32), nullable=True),
    Column("note", String(500), nullable=True),
    Column("result_json", Text, nullable=True),
    CheckConstraint("status IN ('pending', 'executed', 'rejected')", name="status"),
)
Index("ix_pending_approvals_status", pending_approvals.c.status)

# --- events: the transactional outbox and its deliveries ---------------------------------

outbox_events = Table(
    "outbox_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("event_type", String(64), nullable=False),
    Column("aggregate_type", String(32), nullable=False),
    Column("aggregate_id", String(64), nullable=False),
    Column("business_date", Date, nullable=False),
    Column("recorded_at", String(32), nullable=False),
    Column("payload_json", Text, nullable=False),
)

webhooks = Table(
    "webhooks",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("url", String(500), nullable=False),
    Column("secret", String(200), nullable=False),
    Column("event_types", String(500), nullable=False),
    Column("active", SmallInteger, nullable=False),
    # Outbox id up to which events have been queued for this webhook.
    Column("queued_through", BigInteger, nullable=False),
    Column("created_at", String(32), nullable=False),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("webhook_id", Id, ForeignKey("webhooks.id"), primary_key=True, autoincrement=False),
    Column("outbox_id", Id, ForeignKey("outbox_events.id"), primary_key=True, autoincrement=False),
    Column("aggregate_key", String(100), nullable=False),
    Column("status", String(10), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", String(32), nullable=False),
    Column("last_error", String(500), nullable=True),
    Column("delivered_at", String(32), nullable=True),
    CheckConstraint("status IN ('pending', 'delivered', 'dead')", name="status"),
)
Index(
    "ix_webhook_deliveries_status",
    webhook_deliveries.c.status,
    webhook_deliveries.c.next_attempt_at,
)

# Where each stream publisher (e.g. NATS) has got to in the outbox.
publisher_cursors = Table(
    "publisher_cursors",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("published_through", BigInteger, nullable=False),
)

# --- HTTP idempotency: the response to a POST, replayed for its Idempotency-Key ------------

idempotency_records = Table(
    "idempotency_records",
    metadata,
    Column("actor", String(100), primary_key=True),
    Column("key", String(128), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("status_code", SmallInteger, nullable=False),
    Column("response_json", Text, nullable=False),
    Column("created_at", String(32), nullable=False),
)


# --- products: versioned definitions; a change is a new version, never an update ----------

products = Table(
    "products",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("code", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("name", String(200), nullable=False),
    Column("currency", String(3), nullable=False),
    # Canonical JSON (sorted keys, no spaces) of the validated product.
    Column("definition_json", Text, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("loaded_by", String(100), nullable=False),
    Column("approved_by", String(100), nullable=False),
    Column("business_date", Date, nullable=False),
    Column("created_at", String(32), nullable=False),
    UniqueConstraint("code", "version"),
    CheckConstraint("version >= 1", name="version_positive"),
)


# --- loans: the booked contract, its events, and the state replayed from them -------------

loans = Table(
    "loans",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("product_code", String(64), nullable=False),
    Column("product_version", Integer, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("borrower", String(200), nullable=True),
    Column("approved_minor", BigInteger, nullable=False),
    # The settled schedule terms the loan was booked with (JSON).
    Column("terms_json", Text, nullable=False),
    # Summary of the state replayed at the last command (for lists and end of day).
    Column("status", String(16), nullable=False),
    Column("principal_outstanding_minor", BigInteger, nullable=False),
    Column("overdue_minor", BigInteger, nullable=False),
    Column("days_past_due", Integer, nullable=False),
    Column("state_as_of", Date, nullable=False),
    # What the ledger holds for this loan, per accounting role (JSON): the next
    # command books the difference between the replayed state and this.
    Column("positions_json", Text, nullable=False),
    # The replay just after the loan's last event (servicing.replay.resume): the
    # next read or command starts there. A cache of the events, never the record.
    Column("last_seq", Integer, nullable=False),
    # Credit risk at booking (from the decision) and forbearance, for IFRS 9 staging.
    Column("pd_origination", String(32), nullable=True),
    Column("risk_band", String(8), nullable=True),
    Column("forborne", Boolean, nullable=False, server_default=text("false")),
    Column("booked_by", String(100), nullable=False),
    Column("business_date", Date, nullable=False),
    Column("created_at", String(32), nullable=False),
    ForeignKeyConstraint(
        ["product_code", "product_version"], ["products.code", "products.version"]
    ),
    CheckConstraint("approved_minor > 0", name="approved_positive"),
)
Index("ix_loans_status", loans.c.status)

loan_events = Table(
    "loan_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("loan_id", Id, ForeignKey("loans.id"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("value_date", Date, nullable=False),
    Column("business_date", Date, nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("payload_json", Text, nullable=False),
    Column("idempotency_key", String(200), nullable=True, unique=True),
    # The journal entry that booked this event's effect (none when it changed nothing).
    Column("entry_id", Id, nullable=True),
    Column("actor", String(100), nullable=False),
    Column("created_at", String(32), nullable=False),
    UniqueConstraint("loan_id", "seq"),
    CheckConstraint("amount_minor >= 0", name="amount_not_negative"),
)


# --- borrowers (begin): borrowers, KYC evidence, watch lists and screening -----------------

# Connected parties (a household, a group of companies): exposure is summed over a group.
borrower_groups = Table(
    "borrower_groups",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),
    Column("created_by", String(100), nullable=False),
    Column("created_at", String(32), nullable=False),
    CheckConstraint("kind IN ('household', 'companies')", name="kind"),
)

borrowers = Table(
    "borrowers",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("kind", String(8), nullable=False),
    Column("name", String(200), nullable=False),
    Column("date_of_birth", Date, nullable=True),
    Column("registered_on", Date, nullable=True),
    Column("email", String(200), nullable=True),
    Column("phone", String(200), nullable=True),
    Column("address", String(500), nullable=True),
    Column("country", String(2), nullable=True),
    # The national id: AES-GCM ciphertext, an HMAC-SHA256 for finding duplicates,
    # and the masked form shown to people (origination.protect).
    Column("national_id_encrypted", Text, nullable=True),
    Column("national_id_hash", String(64), nullable=True, unique=True),
    Column("national_id_masked", String(16), nullable=True),
    Column("monthly_income_minor", BigInteger, nullable=False),
    Column("monthly_obligations_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("employment_status", String(16), nullable=True),
    Column("employer", String(200), nullable=True),
    Column("employed_since", Date, nullable=True),
    Column("group_id", Id, ForeignKey("borrower_groups.id"), nullable=True),
    # The latest KYC check's outcome and validity (the status depends on the date).
    Column("kyc_outcome", String(10), nullable=True),
    Column("kyc_valid_until", Date, nullable=True),
    Column("screening_status", String(16), nullable=False),
    Column("screened_at", String(32), nullable=True),
    Column("created_by", String(100), nullable=False),
    Column("business_date", Date, nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("updated_at", String(32), nullable=False),
    CheckConstraint("kind IN ('person', 'business')", name="kind"),
    CheckConstraint("monthly_income_minor >= 0", name="income_not_negative"),
    CheckConstraint("monthly_obligations_minor >= 0", name="obligations_not_negative"),
    CheckConstraint(
        "screening_status IN ('not-screened', 'clear', 'pending', 'hit')", name="screening_status"
    ),
)
Index("ix_borrowers_group_id", borrowers.c.group_id)

# KYC evidence, append-only: a new check is a new row; the latest one decides.
kyc_checks = Table(
    "kyc_checks",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("borrower_id", Id, ForeignKey("borrowers.id"), nullable=False),
    Column("outcome", String(10), nullable=False),
    Column("document_type", String(32), nullable=False),
    Column("document_number_encrypted", Text, nullable=False),
    Column("document_number_masked", String(16), nullable=False),
    Column("checked_by", String(100), nullable=False),
    Column("checked_on", Date, nullable=False),
    Column("valid_until", Date, nullable=True),
    Column("note", String(500), nullable=False),
    Column("business_date", Date, nullable=False),
    Column("recorded_at", String(32), nullable=False),
    CheckConstraint("outcome IN ('pending', 'verified', 'rejected')", name="outcome"),
)
Index("ix_kyc_checks_borrower_id", kyc_checks.c.borrower_id)

# A watch list is loaded as a version; screening reads each name's latest version.
watch_lists = Table(
    "watch_lists",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False),
    Column("version", Integer, nullable=False),
    Column("source", String(300), nullable=False),
    Column("digest", String(64), nullable=False),
    Column("entry_count", Integer, nullable=False),
    Column("loaded_by", String(100), nullable=False),
    Column("business_date", Date, nullable=False),
    Column("loaded_at", String(32), nullable=False),
    UniqueConstraint("name", "version"),
)

watch_list_entries = Table(
    "watch_list_entries",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("watch_list_id", Id, ForeignKey("watch_lists.id"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("date_of_birth", Date, nullable=True),
    Column("birth_year", SmallInteger, nullable=True),
    Column("country", String(200), nullable=True),
    Column("list_name", String(200), nullable=False),
    Column("reference", String(200), nullable=True),
)
Index("ix_watch_list_entries_watch_list_id", watch_list_entries.c.watch_list_id)

# One row per screening of a borrower (append-only): what was screened, against what.
screening_results = Table(
    "screening_results",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("borrower_id", Id, ForeignKey("borrowers.id"), nullable=False),
    Column("subject_name", String(200), nullable=False),
    Column("subject_date_of_birth", Date, nullable=True),
    Column("lists", String(500), nullable=False),
    Column("entries_checked", Integer, nullable=False),
    Column("candidates", Integer, nullable=False),
    Column("new_hits", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("threshold_x100", Integer, nullable=False),
    Column("screened_by", String(100), nullable=False),
    Column("business_date", Date, nullable=False),
    Column("screened_at", String(32), nullable=False),
)
Index("ix_screening_results_borrower_id", screening_results.c.borrower_id)

# A candidate match referred to a person; cleared or confirmed with a second person.
# Scores are hundredths of a point (0 to 10000). `match_key` names the borrower's
# screened name and birth and the list entry: the same pair never refers twice.
screening_hits = Table(
    "screening_hits",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("borrower_id", Id, ForeignKey("borrowers.id"), nullable=False),
    Column("result_id", Id, ForeignKey("screening_results.id"), nullable=False),
    Column("entry_id", Id, ForeignKey("watch_list_entries.id"), nullable=False),
    Column("match_key", String(64), nullable=False),
    Column("list_name", String(200), nullable=False),
    Column("entry_name", String(200), nullable=False),
    Column("entry_reference", String(200), nullable=True),
    Column("score_x100", Integer, nullable=False),
    Column("name_score_x100", Integer, nullable=False),
    Column("dob_match", String(8), nullable=False),
    Column("status", String(10), nullable=False),
    Column("approval_id", Id, ForeignKey("pending_approvals.id"), nullable=True),
    Column("resolved_by", String(100), nullable=True),
    Column("approved_by", String(100), nullable=True),
    Column("resolved_at", String(32), nullable=True),
    Column("resolution_note", String(500), nullable=True),
    Column("business_date", Date, nullable=False),
    Column("created_at", String(32), nullable=False),
    UniqueConstraint("borrower_id", "match_key"),
    CheckConstraint("status IN ('pending', 'cleared', 'confirmed')", name="status"),
)
Index("ix_screening_hits_status", screening_hits.c.status)

# --- borrowers (end) ---------------------------------------------------------------------


# --- applications, credit policies and decisions ----------------------------------------

policies = Table(
    "policies",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    # SHA-256 of the canonical policy document: a decision names the rules it ran.
    Column("version", String(64), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("document_json", Text, nullable=False),
    Column("loaded_by", String(100), nullable=False),
    Column("approved_by", String(100), nullable=False),
    Column("business_date", Date, nullable=False),
    Column("created_at", String(32), nullable=False),
)

policy_activations = Table(
    "policy_activations",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("version", String(64), ForeignKey("policies.version"), nullable=False),
    Column("approved_by", String(100), nullable=False),
    Column("business_date", Date, nullable=False),
    Column("created_at", String(32), nullable=False),
)

applications = Table(
    "applications",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("borrower_id", Id, ForeignKey("borrowers.id"), nullable=False),
    Column("product_code", String(64), nullable=False),
    Column("product_version", Integer, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("term", Integer, nullable=False),
    Column("purpose", String(200), nullable=False),
    Column("monthly_income_minor", BigInteger, nullable=False),
    Column("monthly_obligations_minor", BigInteger, nullable=False),
    # The scorecard's characteristics as entered (JSON).
    Column("features_json", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("outcome", String(16), nullable=True),
    Column("decision_id", Id, nullable=True),
    Column("decided_by", String(100), nullable=True),
    Column("entered_by", String(100), nullable=False),
    Column("entered_by_user_id", Id, nullable=True),
    Column("loan_id", Id, ForeignKey("loans.id"), nullable=True, unique=True),
    Column("business_date", Date, nullable=False),
    Column("expires_on", Date, nullable=False),
    Column("created_at", String(32), nullable=False),
    ForeignKeyConstraint(
        ["product_code", "product_version"], ["products.code", "products.version"]
    ),
    CheckConstraint("amount_minor > 0", name="amount_positive"),
)
Index("ix_applications_borrower_id", applications.c.borrower_id)
Index("ix_applications_status", applications.c.status)

decisions = Table(
    "decisions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("application_id", Id, ForeignKey("applications.id"), nullable=False),
    # engine: the decision engine; person: a credit approver on a referral;
    # override: the engine's outcome changed with a reason and a second approval.
    Column("kind", String(16), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("inputs_json", Text, nullable=False),
    Column("decision_json", Text, nullable=False),
    Column("policy_version", String(64), nullable=False),
    Column("model_version", String(64), nullable=False),
    Column("actor", String(100), nullable=False),
    Column("note", String(500), nullable=True),
    Column("business_date", Date, nullable=False),
    Column("created_at", String(32), nullable=False),
)
Index("ix_decisions_application_id", decisions.c.application_id)


# --- models (begin): scoring model artifacts and which is champion/challenger -------------

# A model artifact, stored whole: its version is the SHA-256 of its canonical JSON.
models = Table(
    "models",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("version", String(64), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),
    Column("name", String(200), nullable=False),
    Column("artifact_json", Text, nullable=False),
    # Training metadata (rows, bad rate, source, libraries) as JSON, for lists.
    Column("training_json", Text, nullable=False),
    Column("registered_by", String(100), nullable=False),
    Column("business_date", Date, nullable=False),
    Column("created_at", String(32), nullable=False),
    CheckConstraint("kind IN ('scorecard', 'lightgbm')", name="kind"),
)

# Activations, append-only: the latest row of a role names its model.
model_activations = Table(
    "model_activations",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("role", String(16), nullable=False),
    Column("version", String(64), ForeignKey("models.version"), nullable=False),
    Column("made_by", String(100), nullable=False),
    Column("approved_by", String(100), nullable=False),
    Column("business_date", Date, nullable=False),
    Column("created_at", String(32), nullable=False),
    CheckConstraint("role IN ('champion', 'challenger')", name="role"),
)
Index("ix_model_activations_role", model_activations.c.role)

# --- models (end) ---------------------------------------------------------------------------


# Tables the database itself keeps append-only (triggers in the migration).
APPEND_ONLY_TABLES: tuple[str, ...] = (
    "journal_entries",
    "postings",
    "ledger_seals",
    "audit_log",
    "outbox_events",
    "products",
    "loan_events",
    "kyc_checks",
    "watch_lists",
    "watch_list_entries",
    "screening_results",
    "policies",
    "policy_activations",
    "decisions",
    "models",  # models
    "model_activations",  # models
)


# --- end of day: runs, the loans behind each posting, IFRS 9 provisions ---------------------

eod_runs = Table(
    "eod_runs",
    metadata,
    # One row per closed business date, written in the same transaction as the
    # day's postings: a date is closed whole or not at all.
    Column("business_date", Date, primary_key=True),
    Column("engine", String(16), nullable=False),
    Column("actor", String(100), nullable=False),
    Column("started_at", String(32), nullable=False),
    Column("finished_at", String(32), nullable=False),
    Column("summary_json", Text, nullable=False),
)

gl_drill = Table(
    "gl_drill",
    metadata,
    # What each loan contributed to a summarised end-of-day entry: one row per
    # entry, the loans' parts per role as a Parquet body (`loan_id` and a column
    # per role the entry moves), since a night's entries stand for every loan.
    Column("entry_id", Id, primary_key=True),
    Column("loans", Integer, nullable=False),
    Column("body", LargeBinary, nullable=False),
)

loan_provisions = Table(
    "loan_provisions",
    metadata,
    # Each loan's IFRS 9 stage and expected credit loss at the last close.
    Column("loan_id", Id, ForeignKey("loans.id"), primary_key=True),
    Column("business_date", Date, nullable=False),
    Column("stage", SmallInteger, nullable=False),
    Column("qualifying_stage", SmallInteger, nullable=True),
    Column("qualifying_since", Date, nullable=True),
    Column("pd_now", String(32), nullable=False),
    Column("exposure_minor", BigInteger, nullable=False),
    Column("ecl_minor", BigInteger, nullable=False),
)

provision_movements = Table(
    "provision_movements",
    metadata,
    # The day's change in the loss allowance, by cause (IFRS 7 reconciliation).
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("business_date", Date, nullable=False),
    Column("product_code", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("stage_from", SmallInteger, nullable=True),
    Column("stage_to", SmallInteger, nullable=True),
    Column("loans", Integer, nullable=False),
    # The allowance taken out of stage_from and put into stage_to; their sum is the change.
    Column("amount_out_minor", BigInteger, nullable=False),
    Column("amount_in_minor", BigInteger, nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
)
Index("ix_provision_movements_date", provision_movements.c.business_date)

provision_stage_mix = Table(
    "provision_stage_mix",
    metadata,
    Column("business_date", Date, nullable=False),
    Column("product_code", String(64), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("stage", SmallInteger, nullable=False),
    Column("loans", Integer, nullable=False),
    Column("exposure_minor", BigInteger, nullable=False),
    Column("ecl_minor", BigInteger, nullable=False),
    PrimaryKeyConstraint("business_date", "product_code", "stage"),
)

delinquency_history = Table(
    "delinquency_history",
    metadata,
    # Each loan's delinquency state at each month end, from which IFRS 9 may
    # estimate the book's own transition matrix.
    Column("month", Date, nullable=False),
    Column("loan_id", Id, nullable=False),
    Column("state", String(8), nullable=False),
    PrimaryKeyConstraint("month", "loan_id"),
)


eod_image = Table(
    "eod_image",
    metadata,
    # End of day's image of the decoded book: each active loan's snapshot as the
    # kernel's columns (Parquet), valid for a loan while its `last_seq` is the
    # one recorded here. A cache the database keeps, so it is consistent with
    # the loans, travels with backups and can always be dropped: end of day
    # decodes whatever the image lacks.
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("kind", String(8), nullable=False),  # base (whole slices) or delta (loans that moved)
    Column("format", String(16), nullable=False),  # digest of the kernel's columns
    Column("first_loan_id", Id, nullable=False),
    Column("last_loan_id", Id, nullable=False),
    Column("loans", Integer, nullable=False),
    Column("written_on", Date, nullable=False),
    Column("loans_body", LargeBinary, nullable=False),
    Column("dues_body", LargeBinary, nullable=False),
)


loan_snapshots = Table(
    "loan_snapshots",
    metadata,
    # A loan's replay just after its last event (servicing.replay.resume), where
    # its next read or command starts. Written by the loan's commands only, and
    # kept apart from the loan's row: end of day rewrites every row each night,
    # and a row that carried its snapshot would be rewritten with it.
    Column("loan_id", Id, ForeignKey("loans.id"), primary_key=True),
    Column("snapshot_json", Text, nullable=False),
)
