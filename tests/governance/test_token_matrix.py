"""The platform API's token matrix, through the real endpoints and the real verifiers.

A call carries a browser session, or two tokens together: the calling service's JWT (Authorization:
Bearer) and the user's access token (X-User-Token). Every refusal below is checked for its status, its
JSON code, the security event it leaves, and (the write under attack being "give Tomas `book` on
Dr Novak's calendar") for leaving the database as it was.
"""

import json
import socket
import time
from datetime import timedelta

import jwt
import pytest
from auditlog.models import LogEntry
from rest_framework.test import APIClient

from governance.keys import public_pem
from governance.models import SecurityEvent
from governance.tokens import issue_local_user_token
from support.models import CalendarAccess
from tests.governance.conftest import LOCAL_ISSUER
from tests.governance.jwt_helpers import (
    DROP,
    b64url,
    ec_key,
    ed25519_key,
    forge,
    idp_access_claims,
    idp_id_token_claims,
    local_user_claims,
    now,
    public_jwk,
    service_claims,
)

# --- Helpers ---------------------------------------------------------------------------------------


def grant_url(practice) -> str:
    return f"/api/v1/calendars/{practice.novak_main.pk}/access/{practice.tomas.pk}/"


def call(client, method: str, url: str, *, service=None, user=None, authorization=None, data=None):
    headers = {}
    if service is not None:
        headers["Authorization"] = f"Bearer {service}"
    if authorization is not None:
        headers["Authorization"] = authorization
    if user is not None:
        headers["X-User-Token"] = user
    return getattr(client, method)(url, data, format="json", headers=headers)


def put_grant(client, practice, **tokens):
    """The write under attack: give Tomas `book` on Dr Novak's main calendar."""
    return call(client, "put", grant_url(practice), data={"level": "book"}, **tokens)


def database_state():
    grants = sorted(CalendarAccess.objects.values_list("calendar_id", "user_id", "level", "granted_by_id"))
    return grants, LogEntry.objects.count()


def assert_refused(response, *, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    assert response.json()["code"] == code


def assert_one_security_event(kind: str, reason: str, **fields) -> None:
    """Exactly one security event was recorded, of this kind and reason (and these other fields)."""
    (event,) = SecurityEvent.objects.exclude(kind="login")  # a session test's own login is an event too
    assert (event.kind, event.reason) == (kind, reason)
    assert {name: getattr(event, name) for name in fields} == fields


def service_token(keys, **claims) -> str:
    return keys.agents.sign(service_claims(**claims))


def local_token(keys, user_id, *, typ="at+jwt", **claims) -> str:
    return keys.local_issuer.sign(local_user_claims(user_id, issuer=LOCAL_ISSUER, **claims), typ=typ)


# --- Presence of the tokens ------------------------------------------------------------------------


def test_no_credentials_at_all_is_401(api, practice, keys):
    before = database_state()

    response = put_grant(api, practice)

    assert_refused(response, status=401, code="not_authenticated")
    assert response["WWW-Authenticate"] == 'Bearer realm="alfred-platform-api"'
    assert database_state() == before
    assert_one_security_event("unauthenticated", "no_credentials", method="PUT")


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param("Bearer", id="bearer-without-token"),
        pytest.param("Basic YW5uYTpwdw==", id="basic-scheme"),
        pytest.param("Bearer two tokens", id="bearer-with-spaces"),
    ],
)
def test_malformed_authorization_header_is_refused(api, practice, keys, authorization):
    before = database_state()

    response = put_grant(api, practice, authorization=authorization, user=issue_local_user_token(practice.anna))

    assert_refused(response, status=401, code="malformed_authorization")
    assert database_state() == before
    assert_one_security_event(
        "service_token_refused", "malformed_authorization", method="PUT", path=grant_url(practice)
    )


def test_bearer_garbage_is_refused(api, practice, keys):
    before = database_state()

    response = put_grant(api, practice, service="garbage", user=issue_local_user_token(practice.anna))

    assert_refused(response, status=401, code="malformed")
    assert database_state() == before
    assert_one_security_event("service_token_refused", "malformed")


def test_service_token_alone_is_refused(api, practice, keys):
    before = database_state()

    response = put_grant(api, practice, service=service_token(keys))

    assert_refused(response, status=401, code="missing")
    assert database_state() == before
    assert_one_security_event("user_token_refused", "missing", service="agents")


def test_user_token_alone_is_refused(api, practice, keys):
    before = database_state()

    response = put_grant(api, practice, user=issue_local_user_token(practice.anna))

    assert_refused(response, status=401, code="malformed_authorization")
    assert database_state() == before
    assert_one_security_event("service_token_refused", "malformed_authorization")


# --- The service token -----------------------------------------------------------------------------


def _strip_signature(token: str) -> str:
    return token.rsplit(".", 1)[0] + "."


def _swap_payload(token: str, claims: dict) -> str:
    header, _payload, signature = token.split(".")
    return f"{header}.{b64url(json.dumps(claims).encode())}.{signature}"


SERVICE_TOKEN_REFUSALS = [
    # Algorithms
    pytest.param(
        lambda k: forge({"alg": "none", "kid": k.agents.kid}, service_claims()), "bad_algorithm", id="alg-none"
    ),
    pytest.param(lambda k: forge({"alg": "none"}, service_claims()), "bad_algorithm", id="alg-none-no-kid"),
    pytest.param(
        lambda k: forge({"alg": "HS256", "kid": k.agents.kid}, service_claims(), hmac_key=public_pem(k.agents.private)),
        "bad_algorithm",
        id="hs256-keyed-with-the-public-key",
    ),
    # Time
    pytest.param(lambda k: service_token(k, iat=now() - 180, exp=now() - 60), "expired", id="expired"),
    pytest.param(lambda k: service_token(k, nbf=now() + 3600), "not_yet_valid", id="nbf-in-the-future"),
    pytest.param(lambda k: service_token(k, iat=now() + 3600, exp=now() + 3660), "not_yet_valid", id="iat-in-future"),
    pytest.param(lambda k: service_token(k, exp=now() + 301), "lifetime_too_long", id="lifetime-5-min-and-1-s"),
    pytest.param(lambda k: service_token(k, exp=now() + 86400), "lifetime_too_long", id="lifetime-a-day"),
    pytest.param(lambda k: service_token(k, exp=str(now() + 60)), "lifetime_too_long", id="exp-as-a-numeric-string"),
    # Issuer and subject
    pytest.param(lambda k: service_token(k, iss="reports", sub="reports"), "unknown_service", id="iss-unregistered"),
    pytest.param(lambda k: service_token(k, iss="agent", sub="agent"), "unknown_service", id="iss-prefix"),
    pytest.param(
        lambda k: service_token(k, iss="agents-evil", sub="agents-evil"), "unknown_service", id="iss-extended"
    ),
    pytest.param(lambda k: service_token(k, iss=["agents"]), "unknown_service", id="iss-not-a-string"),
    pytest.param(lambda k: service_token(k, iss=DROP), "unknown_service", id="iss-missing"),
    pytest.param(lambda k: service_token(k, sub="reports"), "bad_subject", id="sub-not-iss"),
    pytest.param(lambda k: service_token(k, sub=DROP), "missing_claim", id="sub-missing"),
    # Audience and required claims
    pytest.param(lambda k: service_token(k, aud=DROP), "missing_claim", id="aud-missing"),
    pytest.param(lambda k: service_token(k, aud="alfred-api"), "bad_audience", id="aud-wrong"),
    pytest.param(lambda k: service_token(k, jti=DROP), "missing_claim", id="jti-missing"),
    pytest.param(lambda k: service_token(k, exp=DROP), "missing_claim", id="exp-missing"),
    pytest.param(lambda k: service_token(k, iat=DROP), "missing_claim", id="iat-missing"),
    # Keys
    pytest.param(lambda k: k.agents.sign(service_claims(), kid="no-such-kid"), "unknown_kid", id="kid-unknown"),
    pytest.param(lambda k: k.agents.sign(service_claims(), kid=DROP), "no_kid", id="kid-missing"),
    pytest.param(lambda k: ed25519_key().sign(service_claims()), "unknown_kid", id="key-not-registered"),
    pytest.param(
        lambda k: ed25519_key().sign(service_claims(), kid=k.agents.kid),
        "bad_signature",
        id="key-not-registered-claiming-the-registered-kid",
    ),
    pytest.param(lambda k: _strip_signature(service_token(k)), "bad_signature", id="signature-stripped"),
    pytest.param(
        lambda k: _swap_payload(service_token(k), service_claims(exp=now() + 290)),
        "bad_signature",
        id="payload-swapped",
    ),
    # Key-carrying and critical headers, on an otherwise valid token signed by the registered key
    pytest.param(lambda k: k.agents.sign(service_claims(), jku="https://evil.test/jwks"), "forbidden_header", id="jku"),
    pytest.param(
        lambda k: k.agents.sign(service_claims(), x5u="https://evil.test/x.pem"), "forbidden_header", id="x5u"
    ),
    pytest.param(lambda k: k.agents.sign(service_claims(), x5c=["MIIBIjANBgkq"]), "forbidden_header", id="x5c"),
    pytest.param(
        lambda k: k.agents.sign(service_claims(), jwk=public_jwk(k.agents)), "forbidden_header", id="jwk-embedded"
    ),
    pytest.param(lambda k: k.agents.sign(service_claims(), crit=["b64"], b64=True), "forbidden_header", id="crit"),
    # PyJWT itself rejects a critical extension it does not know, before the verifier's own header check.
    pytest.param(lambda k: k.agents.sign(service_claims(), crit=["exp"]), "malformed", id="crit-unknown-extension"),
    # Structure and size
    pytest.param(lambda k: k.agents.sign(b"[]"), "malformed", id="payload-not-a-json-object"),
    pytest.param(lambda k: forge(["EdDSA"], service_claims()), "malformed", id="header-not-a-json-object"),
    pytest.param(lambda k: service_token(k, padding="x" * 9000), "too_large", id="over-the-size-limit"),
    # Another kind of token in the service slot
    pytest.param(
        lambda k: k.local_issuer.sign(local_user_claims(1, issuer=LOCAL_ISSUER), typ="at+jwt"),
        "unknown_service",
        id="a-user-token",
    ),
]


@pytest.mark.parametrize(("make_token", "reason"), SERVICE_TOKEN_REFUSALS)
def test_service_token_refused(api, practice, keys, make_token, reason):
    token = make_token(keys)
    before = database_state()

    response = put_grant(api, practice, service=token, user=issue_local_user_token(practice.anna))

    assert_refused(response, status=401, code=reason)
    assert database_state() == before
    assert_one_security_event("service_token_refused", reason)


def test_service_token_of_exactly_five_minutes_is_accepted(api, practice, keys):
    issued = now()
    token = service_token(keys, iat=issued, exp=issued + 300)

    response = call(api, "get", "/api/v1/me/", service=token, user=issue_local_user_token(practice.anna))

    assert response.status_code == 200, response.content


def test_key_of_another_service_cannot_sign_for_agents(api, practice, keys):
    reports_key = ed25519_key()
    keys.register("reports", reports_key)
    token = reports_key.sign(service_claims("agents"))
    before = database_state()

    response = put_grant(api, practice, service=token, user=issue_local_user_token(practice.anna))

    assert_refused(response, status=401, code="unknown_kid")
    assert database_state() == before
    assert_one_security_event("service_token_refused", "unknown_kid")


def test_token_naming_a_registered_key_of_another_type_is_refused(api, practice, keys, idp_keys):
    keys.register("agents", idp_keys[0])  # an RSA key: key ids cover RSA too, EdDSA tokens cannot use it
    token = keys.agents.sign(service_claims(), kid=idp_keys[0].kid)
    before = database_state()

    response = put_grant(api, practice, service=token, user=issue_local_user_token(practice.anna))

    assert_refused(response, status=401, code="bad_key")
    assert database_state() == before
    assert_one_security_event("service_token_refused", "bad_key")


# --- Rotation of a service's keys ------------------------------------------------------------------


def test_rotation_both_keys_present_both_accepted(api, practice, keys):
    new_key = ed25519_key()
    keys.register("agents", new_key)

    old = call(api, "get", "/api/v1/me/", service=service_token(keys), user=issue_local_user_token(practice.anna))
    new = call(
        api, "get", "/api/v1/me/", service=new_key.sign(service_claims()), user=issue_local_user_token(practice.anna)
    )

    assert (old.status_code, new.status_code) == (200, 200)


def test_rotation_old_key_removed_is_refused_new_key_accepted(api, practice, keys):
    new_key = ed25519_key()
    keys.register("agents", new_key)
    old_token = service_token(keys)
    assert (
        call(api, "get", "/api/v1/me/", service=old_token, user=issue_local_user_token(practice.anna)).status_code
        == 200
    )

    keys.unregister("agents", keys.agents)
    before = database_state()
    refused = put_grant(api, practice, service=old_token, user=issue_local_user_token(practice.anna))
    accepted = put_grant(
        api, practice, service=new_key.sign(service_claims()), user=issue_local_user_token(practice.anna)
    )

    assert_refused(refused, status=401, code="unknown_kid")
    assert_one_security_event("service_token_refused", "unknown_kid")
    assert accepted.status_code == 201, accepted.content
    assert database_state() != before


# --- The caller lists ------------------------------------------------------------------------------


def test_second_service_may_read_but_not_write(api, practice, keys, settings):
    reports_key = ed25519_key()
    keys.register("reports", reports_key)
    settings.API_ALLOWED_CALLERS["read"].append("reports")
    anna_token = issue_local_user_token(practice.anna)

    read = call(api, "get", "/api/v1/calendars/", service=reports_key.sign(service_claims("reports")), user=anna_token)
    before = database_state()
    write = put_grant(api, practice, service=reports_key.sign(service_claims("reports")), user=anna_token)

    assert read.status_code == 200, read.content
    assert_refused(write, status=403, code="caller_not_allowed")
    assert database_state() == before
    assert_one_security_event("caller_not_allowed", "calendar_access_write", service="reports", user=practice.anna)


def test_service_not_on_the_read_list_cannot_read(api, practice, keys):
    reports_key = ed25519_key()
    keys.register("reports", reports_key)

    response = call(
        api,
        "get",
        "/api/v1/calendars/",
        service=reports_key.sign(service_claims("reports")),
        user=issue_local_user_token(practice.anna),
    )

    assert_refused(response, status=403, code="caller_not_allowed")
    assert_one_security_event("caller_not_allowed", "read", service="reports")


# --- The user token, local mode ----------------------------------------------------------------------


LOCAL_USER_TOKEN_REFUSALS = [
    pytest.param(lambda k, p: "garbage", "malformed", id="garbage"),
    pytest.param(lambda k, p: local_token(k, p.anna.pk, iat=now() - 400, exp=now() - 60), "expired", id="expired"),
    pytest.param(lambda k, p: local_token(k, p.anna.pk, iss="https://evil.test/local"), "bad_issuer", id="wrong-iss"),
    pytest.param(lambda k, p: local_token(k, p.anna.pk, iss=LOCAL_ISSUER + "x"), "bad_issuer", id="iss-extended"),
    pytest.param(lambda k, p: local_token(k, p.anna.pk, aud="alfred-platform-api"), "bad_audience", id="wrong-aud"),
    pytest.param(lambda k, p: local_token(k, p.anna.pk, aud=DROP), "missing_claim", id="aud-missing"),
    pytest.param(lambda k, p: local_token(k, p.anna.pk, jti=DROP), "missing_claim", id="jti-missing"),
    pytest.param(
        lambda k, p: ed25519_key().sign(local_user_claims(p.anna.pk, issuer=LOCAL_ISSUER), typ="at+jwt"),
        "unknown_kid",
        id="another-key",
    ),
    pytest.param(
        lambda k, p: ed25519_key().sign(
            local_user_claims(p.anna.pk, issuer=LOCAL_ISSUER), typ="at+jwt", kid=k.local_issuer.kid
        ),
        "bad_signature",
        id="another-key-claiming-the-issuer-kid",
    ),
    pytest.param(
        lambda k, p: forge(
            {"alg": "none", "typ": "at+jwt", "kid": k.local_issuer.kid},
            local_user_claims(p.anna.pk, issuer=LOCAL_ISSUER),
        ),
        "bad_algorithm",
        id="alg-none",
    ),
    pytest.param(
        lambda k, p: forge(
            {"alg": "HS256", "typ": "at+jwt", "kid": k.local_issuer.kid},
            local_user_claims(p.anna.pk, issuer=LOCAL_ISSUER),
            hmac_key=public_pem(k.local_issuer.private),
        ),
        "bad_algorithm",
        id="hs256-keyed-with-the-public-key",
    ),
    pytest.param(lambda k, p: local_token(k, p.anna.pk, typ="JWT"), "not_an_access_token", id="typ-jwt"),
    pytest.param(lambda k, p: local_token(k, p.anna.pk, typ=DROP), "not_an_access_token", id="typ-missing"),
    pytest.param(
        lambda k, p: local_token(
            k, p.anna.pk, typ="JWT", aud="alfred", azp="alfred", nonce="n-0S6", auth_time=now(), jti=DROP
        ),
        "not_an_access_token",
        id="id-token-shaped",
    ),
    pytest.param(lambda k, p: service_token(k), "not_an_access_token", id="a-service-token"),
    pytest.param(
        lambda k, p: issue_local_user_token(p.anna, lifetime=timedelta(days=1)),
        "lifetime_too_long",
        id="lifetime-a-day",
    ),
    pytest.param(lambda k, p: local_token(k, 987654321), "unknown_user", id="unknown-user-id"),
    pytest.param(lambda k, p: local_token(k, "9" * 30), "unknown_user", id="user-id-beyond-bigint"),
    pytest.param(lambda k, p: local_token(k, "anna"), "unknown_user", id="user-id-not-a-number"),
    pytest.param(lambda k, p: local_token(k, p.anna.pk, padding="x" * 9000), "too_large", id="over-the-size-limit"),
]


@pytest.mark.parametrize(("make_token", "reason"), LOCAL_USER_TOKEN_REFUSALS)
def test_local_user_token_refused(api, practice, keys, make_token, reason):
    token = make_token(keys, practice)
    before = database_state()

    response = put_grant(api, practice, service=service_token(keys), user=token)

    assert_refused(response, status=401, code=reason)
    assert database_state() == before
    assert_one_security_event("user_token_refused", reason, service="agents")


def test_local_token_of_an_inactive_user_is_refused(api, practice, keys):
    token = issue_local_user_token(practice.anna)
    practice.anna.is_active = False
    practice.anna.save()
    before = database_state()

    response = put_grant(api, practice, service=service_token(keys), user=token)

    assert_refused(response, status=401, code="unknown_user")
    assert database_state() == before
    assert_one_security_event("user_token_refused", "unknown_user")


def test_local_token_of_a_deleted_user_is_refused(api, practice, keys):
    token = issue_local_user_token(practice.lea)
    practice.lea.delete()
    before = database_state()

    response = put_grant(api, practice, service=service_token(keys), user=token)

    assert_refused(response, status=401, code="unknown_user")
    assert database_state() == before
    assert_one_security_event("user_token_refused", "unknown_user")


# --- The user token, OIDC mode -----------------------------------------------------------------------


@pytest.fixture
def oidc_anna(practice, idp):
    practice.anna.oidc_issuer = idp.issuer
    practice.anna.oidc_subject = "kc-anna"
    practice.anna.save()
    return practice.anna


def idp_token(idp, key=None, **claims) -> str:
    return (key or idp.key).sign(idp_access_claims("kc-anna", issuer=idp.issuer, **claims), typ="JWT")


def test_idp_access_token_works(api, practice, keys, idp, oidc_anna):
    token = idp_token(idp)

    me = call(api, "get", "/api/v1/me/", service=service_token(keys), user=token)
    grant = put_grant(api, practice, service=service_token(keys), user=token)

    assert me.status_code == 200, me.content
    assert me.json()["username"] == "anna"
    assert grant.status_code == 201, grant.content
    assert idp.jwks.requests == 1


def test_idp_access_token_typed_by_header_rfc9068_works(api, keys, idp, oidc_anna):
    token = idp.key.sign(idp_access_claims("kc-anna", issuer=idp.issuer, typ=DROP), typ="at+jwt")

    response = call(api, "get", "/api/v1/me/", service=service_token(keys), user=token)

    assert response.status_code == 200, response.content


OIDC_USER_TOKEN_REFUSALS = [
    pytest.param(
        lambda idp, stranger: idp.key.sign(idp_id_token_claims("kc-anna", issuer=idp.issuer)),
        "bad_audience",
        id="id-token",
    ),
    pytest.param(
        lambda idp, stranger: idp.key.sign(
            idp_id_token_claims("kc-anna", issuer=idp.issuer, aud=["alfred", "alfred-api"])
        ),
        "not_an_access_token",
        id="id-token-with-the-api-audience",
    ),
    pytest.param(lambda idp, stranger: idp_token(idp, typ=DROP), "not_an_access_token", id="typ-missing"),
    pytest.param(lambda idp, stranger: idp_token(idp, aud=DROP), "missing_claim", id="aud-missing"),
    pytest.param(lambda idp, stranger: idp_token(idp, aud=["account"]), "bad_audience", id="aud-wrong"),
    pytest.param(lambda idp, stranger: idp_token(idp, iss=idp.issuer[:-1]), "bad_issuer", id="iss-prefix"),
    pytest.param(lambda idp, stranger: idp_token(idp, iss=idp.issuer + "-evil"), "bad_issuer", id="iss-extended"),
    pytest.param(lambda idp, stranger: idp_token(idp, iat=now() - 400, exp=now() - 60), "expired", id="expired"),
    pytest.param(lambda idp, stranger: idp_token(idp, sub="kc-nobody"), "unknown_user", id="unknown-subject"),
    pytest.param(
        lambda idp, stranger: stranger.sign(
            idp_access_claims("kc-anna", issuer=idp.issuer), typ="JWT", kid=idp.key.kid
        ),
        "bad_signature",
        id="another-key-claiming-the-idp-kid",
    ),
    pytest.param(
        lambda idp, stranger: forge(
            {"alg": "HS256", "kid": idp.key.kid},
            idp_access_claims("kc-anna", issuer=idp.issuer),
            hmac_key=public_pem(idp.key.private),
        ),
        "bad_algorithm",
        id="hs256-keyed-with-the-idp-public-key",
    ),
    pytest.param(
        lambda idp, stranger: forge(
            {"alg": "none", "kid": idp.key.kid}, idp_access_claims("kc-anna", issuer=idp.issuer)
        ),
        "bad_algorithm",
        id="alg-none",
    ),
]


@pytest.mark.parametrize(("make_token", "reason"), OIDC_USER_TOKEN_REFUSALS)
def test_oidc_user_token_refused(api, practice, keys, idp, idp_keys, oidc_anna, make_token, reason):
    token = make_token(idp, idp_keys[2])
    before = database_state()

    response = put_grant(api, practice, service=service_token(keys), user=token)

    assert_refused(response, status=401, code=reason)
    assert database_state() == before
    assert_one_security_event("user_token_refused", reason, service="agents")


def test_local_mode_token_is_refused_in_oidc_mode(api, practice, keys, idp, oidc_anna):
    before = database_state()

    response = put_grant(api, practice, service=service_token(keys), user=issue_local_user_token(practice.anna))

    assert_refused(response, status=401, code="bad_algorithm")
    assert database_state() == before
    assert_one_security_event("user_token_refused", "bad_algorithm", service="agents")


def test_oidc_token_of_an_inactive_user_is_refused(api, practice, keys, idp, oidc_anna):
    oidc_anna.is_active = False
    oidc_anna.save()
    before = database_state()

    response = put_grant(api, practice, service=service_token(keys), user=idp_token(idp))

    assert_refused(response, status=401, code="unknown_user")
    assert database_state() == before
    assert_one_security_event("user_token_refused", "unknown_user", service="agents")


def test_oidc_user_is_matched_by_issuer_and_subject(api, practice, keys, idp, oidc_anna):
    oidc_anna.oidc_issuer = "https://another-idp.test/realms/alfred"
    oidc_anna.save()

    response = put_grant(api, practice, service=service_token(keys), user=idp_token(idp))

    assert_refused(response, status=401, code="unknown_user")


def test_unknown_kid_refetches_once_then_never_again_within_the_interval(api, practice, keys, idp, idp_keys, oidc_anna):
    stranger = idp_keys[2]
    before = database_state()

    first = put_grant(api, practice, service=service_token(keys), user=idp_token(idp, key=stranger))
    requests_after_first = idp.jwks.requests
    second = put_grant(
        api,
        practice,
        service=service_token(keys),
        user=stranger.sign(idp_access_claims("kc-anna", issuer=idp.issuer), kid="forged-2"),
    )
    valid = call(api, "get", "/api/v1/me/", service=service_token(keys), user=idp_token(idp))

    assert_refused(first, status=401, code="unknown_kid")
    assert_refused(second, status=401, code="unknown_kid")
    assert requests_after_first == 1
    assert idp.jwks.requests == 1
    assert database_state() == before
    assert list(SecurityEvent.objects.values_list("kind", "reason")) == [("user_token_refused", "unknown_kid")] * 2
    assert valid.status_code == 200  # the key set fetched for the first refusal serves the valid token


def test_rotated_idp_key_is_picked_up_on_first_use(api, keys, idp, idp_keys, settings, oidc_anna):
    settings.OIDC_JWKS_REFRESH_INTERVAL = 0.2
    old_key, new_key = idp_keys[0], idp_keys[1]
    assert call(api, "get", "/api/v1/me/", service=service_token(keys), user=idp_token(idp)).status_code == 200

    idp.jwks.keys = [public_jwk(new_key)]
    time.sleep(0.25)
    with_new_key = call(api, "get", "/api/v1/me/", service=service_token(keys), user=idp_token(idp, key=new_key))
    with_dropped_key = call(api, "get", "/api/v1/me/", service=service_token(keys), user=idp_token(idp, key=old_key))

    assert with_new_key.status_code == 200, with_new_key.content
    assert_refused(with_dropped_key, status=401, code="unknown_kid")
    assert idp.jwks.requests == 2


def test_encryption_key_of_the_idp_does_not_verify_tokens(api, practice, keys, idp, idp_keys, oidc_anna):
    idp.jwks.keys = [public_jwk(idp.key), public_jwk(idp_keys[1], use="enc", alg="RSA-OAEP")]

    response = put_grant(api, practice, service=service_token(keys), user=idp_token(idp, key=idp_keys[1]))

    assert_refused(response, status=401, code="unknown_kid")


def test_rs256_token_naming_an_ec_key_of_the_idp_is_refused(api, practice, keys, idp, idp_keys, oidc_anna):
    ec = ec_key()
    idp.jwks.keys = [public_jwk(idp.key), public_jwk(ec)]
    token = idp_keys[2].sign(idp_access_claims("kc-anna", issuer=idp.issuer), kid=ec.kid)
    before = database_state()

    response = put_grant(api, practice, service=service_token(keys), user=token)

    assert_refused(response, status=401, code="bad_key")
    assert database_state() == before
    assert_one_security_event("user_token_refused", "bad_key")


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param({"status": 500, "body": b"Internal Server Error"}, id="http-500"),
        pytest.param({"body": b"<html>maintenance</html>"}, id="not-json"),
        pytest.param({"body": b"[]"}, id="json-not-an-object"),
        pytest.param({"body": b'{"keys": "none"}'}, id="keys-not-a-list"),
        pytest.param({"body": b'{"keys": [{"kty": "nope"}]}'}, id="no-usable-key"),
        pytest.param({"delay": 0.5}, id="too-slow"),
        pytest.param({"down": True}, id="connection-refused"),
    ],
)
def test_jwks_endpoint_failing_refuses_the_token_without_a_500(api, practice, keys, idp, settings, oidc_anna, failure):
    settings.OIDC_TIMEOUT = 0.2
    if failure.pop("down", False):
        settings.OIDC_OP_JWKS_ENDPOINT = f"http://127.0.0.1:{_closed_port()}/certs"
    for name, value in failure.items():
        setattr(idp.jwks, name, value)
    before = database_state()

    response = put_grant(api, practice, service=service_token(keys), user=idp_token(idp))

    assert_refused(response, status=401, code="unknown_kid")
    assert database_state() == before
    assert_one_security_event("user_token_refused", "unknown_kid")


# --- Authorized calls, end to end --------------------------------------------------------------------


def test_owner_through_the_agents_end_to_end(api, practice, keys):
    jtis = []

    def as_anna(method, url, data=None):
        token = service_token(keys)
        jtis.append(jwt.decode(token, options={"verify_signature": False})["jti"])
        return call(api, method, url, service=token, user=issue_local_user_token(practice.anna), data=data)

    access_list = f"/api/v1/calendars/{practice.novak_main.pk}/access/"

    me = as_anna("get", "/api/v1/me/")
    calendars = as_anna("get", "/api/v1/calendars/")
    accesses = as_anna("get", access_list)
    granted = as_anna("put", grant_url(practice), {"level": "book"})
    again = as_anna("put", grant_url(practice), {"level": "book"})
    changed = as_anna("put", grant_url(practice), {"level": "manage"})
    revoked = as_anna("delete", grant_url(practice))

    assert me.status_code == 200 and me.json()["username"] == "anna"
    assert calendars.status_code == 200
    assert [c["name"] for c in calendars.json()["results"]] == ["Dr Novak appointments", "Dr Novak surgery"]
    assert accesses.status_code == 200
    assert [(a["user"]["id"], a["level"]) for a in accesses.json()["results"]] == [(practice.tom.pk, "view")]
    assert (granted.status_code, granted.json()["level"]) == (201, "book")
    assert (again.status_code, again.json()["level"]) == (200, "book")
    assert (changed.status_code, changed.json()["level"]) == (200, "manage")
    assert revoked.status_code == 204
    assert not CalendarAccess.objects.filter(calendar=practice.novak_main, user=practice.tomas).exists()
    entries = LogEntry.objects.get_for_model(CalendarAccess).filter(object_repr__contains="tomas").order_by("pk")
    assert [e.action for e in entries] == [LogEntry.Action.CREATE, LogEntry.Action.UPDATE, LogEntry.Action.DELETE]
    data = {"service": "agents", "organization": practice.org.pk}
    # Each change names the service token it came with (its jti): the grant, the change and the revoke.
    assert [(e.actor, e.additional_data) for e in entries] == [
        (practice.anna, {**data, "token": jti}) for jti in (jtis[3], jtis[5], jtis[6])
    ]
    assert not SecurityEvent.objects.exists()


def test_viewer_cannot_grant_through_the_agents(api, practice, keys):
    before = database_state()

    response = put_grant(api, practice, service=service_token(keys), user=issue_local_user_token(practice.tom))

    assert_refused(response, status=403, code="not_calendar_manager")
    assert database_state() == before
    assert_one_security_event("access_denied", "not_calendar_manager", service="agents", user=practice.tom)


def test_member_of_another_practice_sees_no_harbour_calendar(api, practice, keys):
    iris_token = issue_local_user_token(practice.iris)
    before = database_state()

    listing = call(
        api, "get", f"/api/v1/calendars/{practice.novak_main.pk}/access/", service=service_token(keys), user=iris_token
    )
    write = put_grant(api, practice, service=service_token(keys), user=issue_local_user_token(practice.iris))

    assert_refused(listing, status=404, code="not_found")
    assert_refused(write, status=404, code="not_found")
    assert database_state() == before


# --- Browser session ---------------------------------------------------------------------------------


def test_session_can_read(practice):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(practice.anna)

    response = client.get("/api/v1/calendars/")

    assert response.status_code == 200
    assert len(response.json()["results"]) == 2


def test_session_write_without_csrf_token_is_refused(practice):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(practice.anna)
    before = database_state()

    response = put_grant(client, practice)

    assert_refused(response, status=403, code="permission_denied")
    assert "CSRF" in response.json()["detail"]
    assert database_state() == before
    assert_one_security_event("csrf_refused", "csrf_failed", user=practice.anna)


def test_session_write_with_csrf_token_works(practice):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(practice.anna)
    client.get("/")  # the page sets the CSRF cookie, as a browser would get it
    csrf_token = client.cookies["csrftoken"].value

    response = client.put(grant_url(practice), {"level": "book"}, format="json", headers={"X-CSRFToken": csrf_token})

    assert response.status_code == 201, response.content
    entry = LogEntry.objects.get_for_model(CalendarAccess).latest("pk")
    assert (entry.actor, entry.additional_data) == (practice.anna, {"organization": practice.org.pk})  # no service
