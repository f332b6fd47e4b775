"""Webhook signing and verification, and the other pure rules of delivery
(backoff, event-type matching, URL and secret validation)."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from lendcore.errors import InvalidInput
from lendcore.events_signing import (
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    TOLERANCE_S_DEFAULT,
    sign,
    signature_header,
    verify,
)
from lendcore.services.publisher import RetryPolicy, backoff_delay_s, event_subject
from lendcore.services.webhooks import (
    event_type_matches,
    normalise_event_types,
    validate_secret,
    validate_webhook_url,
)

SECRET = "whsec_test-secret-0123456789"
BODY = b'{"event_id":"e1","type":"account.opened"}'
NOW = 1_790_000_000


def check(headers: dict[str, str], body: bytes = BODY, *, now_s: float = NOW, **kw: str) -> bool:
    return verify(
        kw.get("secret", SECRET),
        timestamp=headers[HEADER_TIMESTAMP],
        body=body,
        signature_header_value=headers[HEADER_SIGNATURE],
        now_s=now_s,
    )


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    # Recomputed independently, as a receiver in another language would.
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    headers = sign(SECRET, NOW, BODY)
    assert headers == {HEADER_TIMESTAMP: str(NOW), HEADER_SIGNATURE: f"sha256={expected}"}


def test_a_signed_body_verifies() -> None:
    assert check(sign(SECRET, NOW, BODY))


@pytest.mark.parametrize(
    "tamper",
    [
        lambda h, b: (h, b + b" "),  # body changed, even by whitespace
        lambda h, b: ({**h, HEADER_TIMESTAMP: str(NOW + 1)}, b),  # timestamp moved
        lambda h, b: ({**h, HEADER_SIGNATURE: h[HEADER_SIGNATURE].upper()}, b),
        lambda h, b: ({**h, HEADER_SIGNATURE: h[HEADER_SIGNATURE][7:]}, b),  # no prefix
        lambda h, b: ({**h, HEADER_SIGNATURE: ""}, b),
        lambda h, b: ({**h, HEADER_SIGNATURE: "sha256=" + "0" * 64}, b),
        lambda h, b: ({**h, HEADER_SIGNATURE: "sha256=é"}, b),
        lambda h, b: ({**h, HEADER_TIMESTAMP: "-5"}, b),
        lambda h, b: ({**h, HEADER_TIMESTAMP: "1e9"}, b),
        lambda h, b: ({**h, HEADER_TIMESTAMP: "１２３"}, b),  # non-ASCII digits
        lambda h, b: ({**h, HEADER_TIMESTAMP: "9" * 40}, b),
        lambda h, b: ({**h, HEADER_SIGNATURE: "sha256=a," * 200}, b),
    ],
)
def test_anything_altered_does_not_verify(tamper: object) -> None:
    headers, body = tamper(sign(SECRET, NOW, BODY), BODY)  # type: ignore[operator]
    assert not check(headers, body)


def test_the_wrong_secret_does_not_verify() -> None:
    assert not check(sign(SECRET, NOW, BODY), secret="whsec_someone-else-entirely")
    assert not check(sign(SECRET, NOW, BODY), secret="")


def test_old_or_future_timestamps_are_refused() -> None:
    headers = sign(SECRET, NOW, BODY)
    assert check(headers, now_s=NOW + TOLERANCE_S_DEFAULT)
    assert check(headers, now_s=NOW - TOLERANCE_S_DEFAULT)
    assert not check(headers, now_s=NOW + TOLERANCE_S_DEFAULT + 1)  # a replay
    assert not check(headers, now_s=NOW - TOLERANCE_S_DEFAULT - 1)


def test_any_of_several_signatures_may_match() -> None:
    # Rotation: the header may list an old and a new signature.
    headers = sign(SECRET, NOW, BODY)
    other = signature_header("whsec_the-previous-secret-00", str(NOW), BODY)
    assert check({**headers, HEADER_SIGNATURE: f"{other}, {headers[HEADER_SIGNATURE]}"})


def test_sign_refuses_an_empty_secret_or_negative_time() -> None:
    with pytest.raises(ValueError):
        sign("", NOW, BODY)
    with pytest.raises(ValueError):
        sign(SECRET, -1, BODY)


# --- backoff ---------------------------------------------------------------------------------


def test_backoff_doubles_from_the_base_up_to_the_cap() -> None:
    policy = RetryPolicy(base_delay_s=2, factor=2, delay_cap_s=60, jitter=0.2)
    assert [backoff_delay_s(n, policy, 0.0) for n in range(1, 8)] == [2, 4, 8, 16, 32, 60, 60]
    # A huge attempt count neither overflows nor passes the cap.
    assert backoff_delay_s(10_000, policy, 0.0) == 60


def test_jitter_only_shortens_the_delay_within_its_fraction() -> None:
    policy = RetryPolicy(base_delay_s=10, factor=2, delay_cap_s=100, jitter=0.2)
    assert backoff_delay_s(1, policy, 0.5) == pytest.approx(9.0)
    assert 8.0 < backoff_delay_s(1, policy, 0.999) <= 10.0
    with pytest.raises(ValueError):
        backoff_delay_s(1, policy, 1.0)
    with pytest.raises(ValueError):
        backoff_delay_s(0, policy, 0.0)


def test_default_policy_gives_up_after_about_an_hour() -> None:
    policy = RetryPolicy()
    waited = sum(backoff_delay_s(n, policy, 0.0) for n in range(1, policy.max_attempts))
    assert 3_600 <= waited <= 2 * 3_600


@pytest.mark.parametrize(
    "bad",
    [
        {"max_attempts": 0},
        {"max_attempts": 1_000},
        {"base_delay_s": 0},
        {"base_delay_s": 10, "delay_cap_s": 5},
        {"factor": 0.5},
        {"jitter": 1.0},
        {"timeout_s": 0},
        {"timeout_s": 600},
    ],
)
def test_a_policy_without_limits_is_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**bad)  # type: ignore[arg-type]


# --- matching and validation ------------------------------------------------------------------


def test_event_type_matching() -> None:
    assert event_type_matches("account.opened", None)
    assert event_type_matches("account.opened", ("account.opened",))
    assert event_type_matches("account.closed", ("account.*",))
    assert event_type_matches("journal_entry.booked", ("hold.*", "journal_entry.booked"))
    assert not event_type_matches("account.opened", ("account.closed",))
    # A prefix matches whole tokens only: `account.*` is not `accounting.x`.
    assert not event_type_matches("accounting.closed", ("account.*",))
    assert not event_type_matches("account", ("account.*",))


def test_event_types_are_normalised_and_checked() -> None:
    assert normalise_event_types(None) is None
    assert normalise_event_types([]) is None
    assert normalise_event_types(["user.created", " account.* ", "user.created"]) == (
        "account.*",
        "user.created",
    )
    for bad in (["Account.Opened"], ["*"], ["account..opened"], ["a,b"], ["x" * 65]):
        with pytest.raises(InvalidInput):
            normalise_event_types(bad)
    with pytest.raises(InvalidInput):
        normalise_event_types([f"type_{n}.happened" for n in range(51)])


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/hook",
        "example.com/hook",
        "http:///nohost",
        "https://user:pass@example.com/hook",
        "https://example.com/hook#frag",
        "https://example.com/" + "x" * 500,
        "",
    ],
)
def test_bad_webhook_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidInput):
        validate_webhook_url(url)


def test_good_webhook_urls_pass() -> None:
    assert (
        validate_webhook_url(" https://example.com/hooks?x=1 ") == "https://example.com/hooks?x=1"
    )
    assert validate_webhook_url("http://127.0.0.1:8080/") == "http://127.0.0.1:8080/"


def test_secrets_must_be_long_printable_ascii() -> None:
    assert validate_secret("a" * 16) == "a" * 16
    for bad in ("short", "a" * 201, " " + "a" * 20, "a" * 15 + "\n", "é" * 20):
        with pytest.raises(InvalidInput):
            validate_secret(bad)


def test_event_subjects() -> None:
    assert event_subject("lendcore.events", "journal_entry.booked") == (
        "lendcore.events.journal_entry.booked"
    )
    # Characters NATS gives meaning to never reach a subject.
    assert event_subject("p", "odd type.>*") == "p.odd_type.__"
