"""origination

Revision ID: 0004
Revises: 0003
Origination in blocks, one per part, each between its own begin and end marks:
borrowers, KYC evidence, watch lists and screening (the borrowers block); the
other parts add theirs beside it.

Create Date: 2026-12-01 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from lendcore.store.migrations.ddl import append_only, drop_append_only

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

APPLICATION_APPEND_ONLY = ("policies", "policy_activations", "decisions")
MODEL_APPEND_ONLY = ("models", "model_activations")  # models
BORROWER_APPEND_ONLY = ("kyc_checks", "watch_lists", "watch_list_entries", "screening_results")


def _id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # --- borrowers (begin) -------------------------------------------------------------
    op.create_table(
        "borrower_groups",
        sa.Column("id", _id(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.String(length=32), nullable=False),
        sa.CheckConstraint(
            "kind IN ('household', 'companies')", name=op.f("ck_borrower_groups_kind")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_borrower_groups")),
        sa.UniqueConstraint("name", name=op.f("uq_borrower_groups_name")),
    )
    op.create_table(
        "borrowers",
        sa.Column("id", _id(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("date_of_birth", sa.Date(), nullable=True),
        sa.Column("registered_on", sa.Date(), nullable=True),
        sa.Column("email", sa.String(length=200), nullable=True),
        sa.Column("phone", sa.String(length=200), nullable=True),
        sa.Column("address", sa.String(length=500), nullable=True),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("national_id_encrypted", sa.Text(), nullable=True),
        sa.Column("national_id_hash", sa.String(length=64), nullable=True),
        sa.Column("national_id_masked", sa.String(length=16), nullable=True),
        sa.Column("monthly_income_minor", sa.BigInteger(), nullable=False),
        sa.Column("monthly_obligations_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("employment_status", sa.String(length=16), nullable=True),
        sa.Column("employer", sa.String(length=200), nullable=True),
        sa.Column("employed_since", sa.Date(), nullable=True),
        sa.Column("group_id", _id(), nullable=True),
        sa.Column("kyc_outcome", sa.String(length=10), nullable=True),
        sa.Column("kyc_valid_until", sa.Date(), nullable=True),
        sa.Column("screening_status", sa.String(length=16), nullable=False),
        sa.Column("screened_at", sa.String(length=32), nullable=True),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("created_at", sa.String(length=32), nullable=False),
        sa.Column("updated_at", sa.String(length=32), nullable=False),
        sa.CheckConstraint("kind IN ('person', 'business')", name=op.f("ck_borrowers_kind")),
        sa.CheckConstraint(
            "monthly_income_minor >= 0", name=op.f("ck_borrowers_income_not_negative")
        ),
        sa.CheckConstraint(
            "monthly_obligations_minor >= 0", name=op.f("ck_borrowers_obligations_not_negative")
        ),
        sa.CheckConstraint(
            "screening_status IN ('not-screened', 'clear', 'pending', 'hit')",
            name=op.f("ck_borrowers_screening_status"),
        ),
        sa.ForeignKeyConstraint(
            ["group_id"], ["borrower_groups.id"], name=op.f("fk_borrowers_group_id_borrower_groups")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_borrowers")),
        sa.UniqueConstraint("national_id_hash", name=op.f("uq_borrowers_national_id_hash")),
    )
    op.create_index(op.f("ix_borrowers_group_id"), "borrowers", ["group_id"], unique=False)
    op.create_table(
        "kyc_checks",
        sa.Column("id", _id(), autoincrement=True, nullable=False),
        sa.Column("borrower_id", _id(), nullable=False),
        sa.Column("outcome", sa.String(length=10), nullable=False),
        sa.Column("document_type", sa.String(length=32), nullable=False),
        sa.Column("document_number_encrypted", sa.Text(), nullable=False),
        sa.Column("document_number_masked", sa.String(length=16), nullable=False),
        sa.Column("checked_by", sa.String(length=100), nullable=False),
        sa.Column("checked_on", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("recorded_at", sa.String(length=32), nullable=False),
        sa.CheckConstraint(
            "outcome IN ('pending', 'verified', 'rejected')", name=op.f("ck_kyc_checks_outcome")
        ),
        sa.ForeignKeyConstraint(
            ["borrower_id"], ["borrowers.id"], name=op.f("fk_kyc_checks_borrower_id_borrowers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kyc_checks")),
    )
    op.create_index(op.f("ix_kyc_checks_borrower_id"), "kyc_checks", ["borrower_id"], unique=False)
    op.create_table(
        "watch_lists",
        sa.Column("id", _id(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=300), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("entry_count", sa.Integer(), nullable=False),
        sa.Column("loaded_by", sa.String(length=100), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("loaded_at", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_watch_lists")),
        sa.UniqueConstraint("name", "version", name=op.f("uq_watch_lists_name_version")),
    )
    op.create_table(
        "watch_list_entries",
        sa.Column("id", _id(), autoincrement=True, nullable=False),
        sa.Column("watch_list_id", _id(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("date_of_birth", sa.Date(), nullable=True),
        sa.Column("birth_year", sa.SmallInteger(), nullable=True),
        sa.Column("country", sa.String(length=200), nullable=True),
        sa.Column("list_name", sa.String(length=200), nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["watch_list_id"],
            ["watch_lists.id"],
            name=op.f("fk_watch_list_entries_watch_list_id_watch_lists"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_watch_list_entries")),
    )
    op.create_index(
        op.f("ix_watch_list_entries_watch_list_id"),
        "watch_list_entries",
        ["watch_list_id"],
        unique=False,
    )
    op.create_table(
        "screening_results",
        sa.Column("id", _id(), autoincrement=True, nullable=False),
        sa.Column("borrower_id", _id(), nullable=False),
        sa.Column("subject_name", sa.String(length=200), nullable=False),
        sa.Column("subject_date_of_birth", sa.Date(), nullable=True),
        sa.Column("lists", sa.String(length=500), nullable=False),
        sa.Column("entries_checked", sa.Integer(), nullable=False),
        sa.Column("candidates", sa.Integer(), nullable=False),
        sa.Column("new_hits", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("threshold_x100", sa.Integer(), nullable=False),
        sa.Column("screened_by", sa.String(length=100), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("screened_at", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["borrower_id"],
            ["borrowers.id"],
            name=op.f("fk_screening_results_borrower_id_borrowers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_screening_results")),
    )
    op.create_index(
        op.f("ix_screening_results_borrower_id"),
        "screening_results",
        ["borrower_id"],
        unique=False,
    )
    op.create_table(
        "screening_hits",
        sa.Column("id", _id(), autoincrement=True, nullable=False),
        sa.Column("borrower_id", _id(), nullable=False),
        sa.Column("result_id", _id(), nullable=False),
        sa.Column("entry_id", _id(), nullable=False),
        sa.Column("match_key", sa.String(length=64), nullable=False),
        sa.Column("list_name", sa.String(length=200), nullable=False),
        sa.Column("entry_name", sa.String(length=200), nullable=False),
        sa.Column("entry_reference", sa.String(length=200), nullable=True),
        sa.Column("score_x100", sa.Integer(), nullable=False),
        sa.Column("name_score_x100", sa.Integer(), nullable=False),
        sa.Column("dob_match", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("approval_id", _id(), nullable=True),
        sa.Column("resolved_by", sa.String(length=100), nullable=True),
        sa.Column("approved_by", sa.String(length=100), nullable=True),
        sa.Column("resolved_at", sa.String(length=32), nullable=True),
        sa.Column("resolution_note", sa.String(length=500), nullable=True),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("created_at", sa.String(length=32), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'cleared', 'confirmed')", name=op.f("ck_screening_hits_status")
        ),
        sa.ForeignKeyConstraint(
            ["borrower_id"], ["borrowers.id"], name=op.f("fk_screening_hits_borrower_id_borrowers")
        ),
        sa.ForeignKeyConstraint(
            ["result_id"],
            ["screening_results.id"],
            name=op.f("fk_screening_hits_result_id_screening_results"),
        ),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["watch_list_entries.id"],
            name=op.f("fk_screening_hits_entry_id_watch_list_entries"),
        ),
        sa.ForeignKeyConstraint(
            ["approval_id"],
            ["pending_approvals.id"],
            name=op.f("fk_screening_hits_approval_id_pending_approvals"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_screening_hits")),
        sa.UniqueConstraint(
            "borrower_id", "match_key", name=op.f("uq_screening_hits_borrower_id_match_key")
        ),
    )
    op.create_index(op.f("ix_screening_hits_status"), "screening_hits", ["status"], unique=False)
    append_only(BORROWER_APPEND_ONLY)
    # --- borrowers (end) ---------------------------------------------------------------
    # --- applications (begin) ----------------------------------------------------------
    op.create_table(
        "policies",
        sa.Column("id", _id(), autoincrement=True, nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("document_json", sa.Text(), nullable=False),
        sa.Column("loaded_by", sa.String(length=100), nullable=False),
        sa.Column("approved_by", sa.String(length=100), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("created_at", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policies")),
        sa.UniqueConstraint("version", name=op.f("uq_policies_version")),
    )
    op.create_table(
        "policy_activations",
        sa.Column("id", _id(), autoincrement=True, nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("approved_by", sa.String(length=100), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("created_at", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["version"], ["policies.version"], name=op.f("fk_policy_activations_version_policies")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_activations")),
    )
    op.create_table(
        "applications",
        sa.Column("id", _id(), autoincrement=True, nullable=False),
        sa.Column("borrower_id", _id(), nullable=False),
        sa.Column("product_code", sa.String(length=64), nullable=False),
        sa.Column("product_version", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("term", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=200), nullable=False),
        sa.Column("monthly_income_minor", sa.BigInteger(), nullable=False),
        sa.Column("monthly_obligations_minor", sa.BigInteger(), nullable=False),
        sa.Column("features_json", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("decision_id", _id(), nullable=True),
        sa.Column("decided_by", sa.String(length=100), nullable=True),
        sa.Column("entered_by", sa.String(length=100), nullable=False),
        sa.Column("entered_by_user_id", _id(), nullable=True),
        sa.Column("loan_id", _id(), nullable=True),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("expires_on", sa.Date(), nullable=False),
        sa.Column("created_at", sa.String(length=32), nullable=False),
        sa.CheckConstraint("amount_minor > 0", name=op.f("ck_applications_amount_positive")),
        sa.ForeignKeyConstraint(
            ["borrower_id"], ["borrowers.id"], name=op.f("fk_applications_borrower_id_borrowers")
        ),
        sa.ForeignKeyConstraint(
            ["loan_id"], ["loans.id"], name=op.f("fk_applications_loan_id_loans")
        ),
        sa.ForeignKeyConstraint(
            ["product_code", "product_version"],
            ["products.code", "products.version"],
            name=op.f("fk_applications_product_code_products"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_applications")),
        sa.UniqueConstraint("loan_id", name=op.f("uq_applications_loan_id")),
    )
    op.create_index(
        op.f("ix_applications_borrower_id"), "applications", ["borrower_id"], unique=False
    )
    op.create_index(op.f("ix_applications_status"), "applications", ["status"], unique=False)
    op.create_table(
        "decisions",
        sa.Column("id", _id(), autoincrement=True, nullable=False),
        sa.Column("application_id", _id(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("inputs_json", sa.Text(), nullable=False),
        sa.Column("decision_json", sa.Text(), nullable=False),
        sa.Column("policy_version", sa.String(length=64), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("created_at", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["applications.id"],
            name=op.f("fk_decisions_application_id_applications"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decisions")),
    )
    op.create_index(
        op.f("ix_decisions_application_id"), "decisions", ["application_id"], unique=False
    )
    append_only(APPLICATION_APPEND_ONLY)
    # --- applications (end) ------------------------------------------------------------

    # --- models (begin) ----------------------------------------------------------------
    op.create_table(
        "models",
        sa.Column("id", _id(), autoincrement=True, nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("artifact_json", sa.Text(), nullable=False),
        sa.Column("training_json", sa.Text(), nullable=False),
        sa.Column("registered_by", sa.String(length=100), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("created_at", sa.String(length=32), nullable=False),
        sa.CheckConstraint("kind IN ('scorecard', 'lightgbm')", name=op.f("ck_models_kind")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_models")),
        sa.UniqueConstraint("version", name=op.f("uq_models_version")),
    )
    op.create_table(
        "model_activations",
        sa.Column("id", _id(), autoincrement=True, nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("made_by", sa.String(length=100), nullable=False),
        sa.Column("approved_by", sa.String(length=100), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("created_at", sa.String(length=32), nullable=False),
        sa.CheckConstraint(
            "role IN ('champion', 'challenger')", name=op.f("ck_model_activations_role")
        ),
        sa.ForeignKeyConstraint(
            ["version"], ["models.version"], name=op.f("fk_model_activations_version_models")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_activations")),
    )
    op.create_index(op.f("ix_model_activations_role"), "model_activations", ["role"], unique=False)
    append_only(MODEL_APPEND_ONLY)
    # --- models (end) ------------------------------------------------------------------


def downgrade() -> None:
    # --- models (begin) ----------------------------------------------------------------
    drop_append_only(MODEL_APPEND_ONLY, drop_function=False)
    op.drop_index(op.f("ix_model_activations_role"), table_name="model_activations")
    op.drop_table("model_activations")
    op.drop_table("models")
    # --- models (end) ------------------------------------------------------------------
    # --- applications (begin) ----------------------------------------------------------
    drop_append_only(APPLICATION_APPEND_ONLY, drop_function=False)
    op.drop_index(op.f("ix_decisions_application_id"), table_name="decisions")
    op.drop_table("decisions")
    op.drop_index(op.f("ix_applications_status"), table_name="applications")
    op.drop_index(op.f("ix_applications_borrower_id"), table_name="applications")
    op.drop_table("applications")
    op.drop_table("policy_activations")
    op.drop_table("policies")
    # --- applications (end) ------------------------------------------------------------
    # --- borrowers (begin) -------------------------------------------------------------
    drop_append_only(BORROWER_APPEND_ONLY, drop_function=False)
    op.drop_index(op.f("ix_screening_hits_status"), table_name="screening_hits")
    op.drop_table("screening_hits")
    op.drop_index(op.f("ix_screening_results_borrower_id"), table_name="screening_results")
    op.drop_table("screening_results")
    op.drop_index(op.f("ix_watch_list_entries_watch_list_id"), table_name="watch_list_entries")
    op.drop_table("watch_list_entries")
    op.drop_table("watch_lists")
    op.drop_index(op.f("ix_kyc_checks_borrower_id"), table_name="kyc_checks")
    op.drop_table("kyc_checks")
    op.drop_index(op.f("ix_borrowers_group_id"), table_name="borrowers")
    op.drop_table("borrowers")
    op.drop_table("borrower_groups")
    # --- borrowers (end) ---------------------------------------------------------------
