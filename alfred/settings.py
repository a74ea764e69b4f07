"""Alfred's settings: one env-driven file. `.env.example` documents every variable.

With no environment at all, Alfred runs on its embedded defaults (see `alfred/embedded.py`): local
PostgreSQL + pgvector, local Redis, local login, development keys generated under `var/`.
Setting `DATABASE_URL`, `REDIS_URL`, `OIDC_*`, ... switches to real external services.
"""

from datetime import timedelta
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from alfred import embedded
from alfred.env import celery_broker_url, envbool, envint, envlist, envstr

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = embedded.VAR_DIR

DEBUG = envbool("DEBUG", False)
DATABASE_URL = envstr("DATABASE_URL")
REDIS_URL = envstr("REDIS_URL")
# Development secrets (generated under var/) are allowed only in DEBUG or on the embedded database:
# a deployment that brings its own database must bring its own secrets too.
DEV_SECRETS = DEBUG or not DATABASE_URL

SECRET_KEY = envstr("SECRET_KEY")
if not SECRET_KEY:
    if not DEV_SECRETS:
        raise ImproperlyConfigured("SECRET_KEY (or SECRET_KEY_FILE) is required when DATABASE_URL is set")
    from governance.keys import dev_secret_key

    SECRET_KEY = dev_secret_key(VAR_DIR)

ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS")
SITE_URL = envstr("SITE_URL", "http://localhost:8000")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "auditlog",
    "mozilla_django_oidc",
    "governance",
    "knowledge",
    "agents",
    "support",
]

MIDDLEWARE = [
    "governance.correlation.CorrelationIdMiddleware",  # first: everything a request causes carries its id
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "governance.middleware.PreferredLanguageMiddleware",  # a logged-in user's language wins
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "auditlog.middleware.AuditlogMiddleware",
]

# Audit entries carry the correlation id of the request, frame or turn that made them (governance.correlation).
AUDITLOG_CID_GETTER = "governance.correlation.current"

ROOT_URLCONF = "alfred.urls"
ASGI_APPLICATION = "alfred.asgi.application"
AUTH_USER_MODEL = "governance.User"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------------
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=envint("DB_CONN_MAX_AGE", 0))}
else:
    _embedded_db = embedded.postgres_database()
    embedded.postgres_ensure_database(_embedded_db.pop("_EMBEDDED_ADMIN_URI"), _embedded_db["NAME"])
    DATABASES = {"default": _embedded_db}
DATABASES["default"].setdefault("TEST", {})["NAME"] = envstr("TEST_DATABASE_NAME", "test_alfred")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: Celery broker and Channels layer --------------------------------------------------------
if not REDIS_URL:
    embedded.redis_start()
    REDIS_URL = embedded.redis_url()


CELERY_BROKER_URL = celery_broker_url(REDIS_URL)
CELERY_TASK_IGNORE_RESULT = True  # tasks report through the database and the channel layer
CELERY_TASK_SOFT_TIME_LIMIT = envint("CELERY_TASK_SOFT_TIME_LIMIT", 120)
CELERY_TASK_TIME_LIMIT = envint("CELERY_TASK_TIME_LIMIT", 150)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Celery's Django fixup closes the database connection before and after every task unless this is set
# (then every 2 x N tasks); alfred.celery closes it instead the Django way (CONN_MAX_AGE, health checks).
CELERY_DB_REUSE_MAX = envint("CELERY_DB_REUSE_MAX", 0) or None
# A task of a worker that died without acknowledging it goes back to the queue after this many seconds.
# Longer than the longest task (CELERY_TASK_TIME_LIMIT): a slow turn delivered twice waits on the
# conversation's lock, then finds its message answered.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": envint("CELERY_VISIBILITY_TIMEOUT", 300),
    "unacked_restore_interval": envint("CELERY_RESTORE_INTERVAL", 10),
    "unacked_restore_throttle": 1,
}
# Daily, the audit chain head is logged (and appended to AUDIT_HEAD_DIR/audit-heads.jsonl when set): keep it
# outside the database, see governance.audit_chain. `make run` embeds beat in its worker; a deployment runs
# `celery -A alfred beat` once.
CELERY_BEAT_SCHEDULE = {
    "audit-head-export": {
        "task": "governance.audit_head_export",
        "schedule": crontab(hour=envint("AUDIT_HEAD_HOUR", 0), minute=5),
    }
}
AUDIT_HEAD_DIR = envstr("AUDIT_HEAD_DIR")
EXPORTS_DIR = Path(envstr("EXPORTS_DIR", str(VAR_DIR / "exports")))  # audit trail exports (CSV, JSON, FHIR)
CELERY_WORKER_PREFETCH_MULTIPLIER = 1  # a turn waits for no other turn queued behind it in the same worker
HEALTH_CELERY_TIMEOUT = float(envstr("HEALTH_CELERY_TIMEOUT", "1.0"))  # seconds /healthz waits for a worker

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        # socket_timeout None: an idle WebSocket must not be dropped by a read timeout (see docs/adr/0001).
        "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": None}]},
    }
}

# Shared by every process (rate limits per person hold across ASGI replicas, a member's identity-provider token
# waits here for a staff approval). Redis, as the broker and the channel layer.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL, "KEY_PREFIX": "alfred"}
}

# --- Auth and sessions -----------------------------------------------------------------------------
AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
SESSION_COOKIE_AGE = envint("SESSION_COOKIE_AGE", 8 * 3600)  # one working day
SESSION_SAVE_EVERY_REQUEST = False
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = envbool("SECURE_COOKIES", not DEBUG and SITE_URL.startswith("https://"))
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
if envbool("TRUST_X_FORWARDED_PROTO", False):  # only behind a TLS proxy that sets the header itself
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

# OIDC login (Keycloak) is on when OIDC_OP_ISSUER is set. mozilla-django-oidc has no discovery:
# every endpoint is set explicitly (docs/keycloak.md).
OIDC_OP_ISSUER = envstr("OIDC_OP_ISSUER")
OIDC_ENABLED = bool(OIDC_OP_ISSUER)
OIDC_RP_CLIENT_ID = envstr("OIDC_RP_CLIENT_ID")
OIDC_RP_CLIENT_SECRET = envstr("OIDC_RP_CLIENT_SECRET")
OIDC_RP_SIGN_ALGO = envstr("OIDC_RP_SIGN_ALGO", "RS256")
OIDC_RP_SCOPES = envstr("OIDC_RP_SCOPES", "openid email profile")
OIDC_OP_AUTHORIZATION_ENDPOINT = envstr("OIDC_OP_AUTHORIZATION_ENDPOINT")
OIDC_OP_TOKEN_ENDPOINT = envstr("OIDC_OP_TOKEN_ENDPOINT")
OIDC_OP_USER_ENDPOINT = envstr("OIDC_OP_USER_ENDPOINT")
OIDC_OP_JWKS_ENDPOINT = envstr("OIDC_OP_JWKS_ENDPOINT")
OIDC_OP_LOGOUT_ENDPOINT = envstr("OIDC_OP_LOGOUT_ENDPOINT")
OIDC_OP_LOGOUT_URL_METHOD = "governance.oidc.provider_logout_url"  # POST /oidc/logout/ ends the IdP session too
OIDC_ROLES_CLAIM = envstr("OIDC_ROLES_CLAIM", "realm_access.roles")  # dotted path in ID token/userinfo claims
OIDC_SUPPORT_ROLE = envstr("OIDC_SUPPORT_ROLE", "alfred-support")  # -> platform_role support (+ is_staff)
OIDC_COMPLIANCE_ROLE = envstr("OIDC_COMPLIANCE_ROLE", "alfred-compliance")  # -> platform_role compliance
OIDC_USE_PKCE = envbool("OIDC_USE_PKCE", True)  # S256; Keycloak supports it for confidential clients too
OIDC_API_AUDIENCE = envstr("OIDC_API_AUDIENCE", "alfred-api")  # `aud` required in Keycloak access tokens
OIDC_STORE_ACCESS_TOKEN = True  # the agents act with the user's own token
OIDC_STORE_ID_TOKEN = True
OIDC_TIMEOUT = envint("OIDC_TIMEOUT", 5)
OIDC_JWKS_REFRESH_INTERVAL = envint("OIDC_JWKS_REFRESH_INTERVAL", 60)  # at most one refetch a minute
if OIDC_ENABLED:
    AUTHENTICATION_BACKENDS.insert(0, "governance.oidc.AlfredOIDCBackend")
    if OIDC_RP_SIGN_ALGO not in ("RS256", "RS384", "RS512", "ES256", "ES384", "EdDSA"):
        raise ImproperlyConfigured("OIDC_RP_SIGN_ALGO must be an asymmetric algorithm")

# --- Service identities and tokens (docs/adr/0003) ---------------------------------------------------
KEYS_DIR = Path(envstr("KEYS_DIR", str(VAR_DIR / "keys")))
SERVICE_JWT_AUDIENCE = envstr("SERVICE_JWT_AUDIENCE", "alfred-platform-api")
SERVICE_JWT_MAX_LIFETIME = timedelta(minutes=5)
SERVICE_NAME = envstr("SERVICE_NAME", "agents")  # the identity this deployment's workers sign as
SERVICE_PRIVATE_KEY = envstr("SERVICE_PRIVATE_KEY")  # PEM; or SERVICE_PRIVATE_KEY_FILE
LOCAL_TOKEN_ISSUER = envstr("LOCAL_TOKEN_ISSUER", SITE_URL.rstrip("/") + "/local")
LOCAL_TOKEN_AUDIENCE = envstr("LOCAL_TOKEN_AUDIENCE", "alfred-api")
LOCAL_TOKEN_LIFETIME = timedelta(seconds=envint("LOCAL_TOKEN_LIFETIME", 300))
LOCAL_ISSUER_PRIVATE_KEY = envstr("LOCAL_ISSUER_PRIVATE_KEY")  # PEM; or LOCAL_ISSUER_PRIVATE_KEY_FILE
if not DEV_SECRETS and not OIDC_ENABLED and not LOCAL_ISSUER_PRIVATE_KEY:
    raise ImproperlyConfigured("LOCAL_ISSUER_PRIVATE_KEY (or _FILE) is required in local login mode")
if DEV_SECRETS:
    from governance.keys import ensure_dev_keys

    ensure_dev_keys(KEYS_DIR, SERVICE_NAME)
    SERVICE_PRIVATE_KEY = SERVICE_PRIVATE_KEY or (KEYS_DIR / f"{SERVICE_NAME}.private.pem").read_text()
    LOCAL_ISSUER_PRIVATE_KEY = LOCAL_ISSUER_PRIVATE_KEY or (KEYS_DIR / "local-issuer.private.pem").read_text()
JWT_LEEWAY = timedelta(seconds=envint("JWT_LEEWAY", 10))
# Which calling services each group of endpoints accepts. Writes to calendar access: the agents only.
API_ALLOWED_CALLERS = {
    "read": envlist("API_READ_CALLERS", "agents"),
    "calendar_access_write": envlist("API_CALENDAR_ACCESS_WRITE_CALLERS", "agents"),
    # Knowledge curation and search: no service by default. Curating is a person's work (staff, in a browser),
    # and the agents search in-process through knowledge.retrieval, so no token path needs to be open.
    "knowledge": envlist("API_KNOWLEDGE_CALLERS", ""),
}

# --- Agents: LLM provider and chat limits -----------------------------------------------------------------
LLM_PROVIDER = envstr("LLM_PROVIDER", "openai" if envstr("LLM_BASE_URL") else "offline")  # offline | openai
LLM_BASE_URL = envstr("LLM_BASE_URL")  # any OpenAI-compatible endpoint, e.g. https://api.openai.com/v1
LLM_MODEL = envstr("LLM_MODEL", "gpt-4o-mini")
LLM_API_KEY = envstr("LLM_API_KEY")  # or LLM_API_KEY_FILE
LLM_TIMEOUT = float(envstr("LLM_TIMEOUT", "30"))  # seconds per model call
LLM_MAX_RETRIES = envint("LLM_MAX_RETRIES", 2)
LLM_TEMPERATURE = float(envstr("LLM_TEMPERATURE", "0"))
# Prices to estimate the cost of each call, per million tokens (input, output), in EUR.
LLM_PRICE_INPUT = float(envstr("LLM_PRICE_INPUT", "0"))
LLM_PRICE_OUTPUT = float(envstr("LLM_PRICE_OUTPUT", "0"))
# The offline engine streams the replies a model would write (refusals) at about a model's pace; 0: at once.
OFFLINE_REPLY_WORDS_PER_SECOND = float(envstr("OFFLINE_REPLY_WORDS_PER_SECOND", "30"))
# --- Knowledge: embeddings and retrieval ------------------------------------------------------------------------
EMBEDDINGS_PROVIDER = envstr("EMBEDDINGS_PROVIDER", "local")  # local (all-MiniLM-L6-v2 on CPU) | openai
EMBEDDINGS_DEVICE = envstr("EMBEDDINGS_DEVICE", "cpu")
EMBEDDINGS_BASE_URL = envstr("EMBEDDINGS_BASE_URL", LLM_BASE_URL)  # an OpenAI-compatible /embeddings endpoint
EMBEDDINGS_MODEL = envstr("EMBEDDINGS_MODEL", "text-embedding-3-small")
EMBEDDINGS_API_KEY = envstr("EMBEDDINGS_API_KEY", LLM_API_KEY)
EMBEDDINGS_TIMEOUT = float(envstr("EMBEDDINGS_TIMEOUT", "30"))
EMBEDDINGS_SEND_DIMENSIONS = envbool("EMBEDDINGS_SEND_DIMENSIONS", True)  # ask the endpoint for 384 dimensions
KNOWLEDGE_EF_SEARCH = envint("KNOWLEDGE_EF_SEARCH", 100)  # HNSW candidates per query (recall vs. speed)
KNOWLEDGE_CANDIDATES = envint("KNOWLEDGE_CANDIDATES", 40)  # neighbours and text matches fused per query
KNOWLEDGE_RESULTS = envint("KNOWLEDGE_RESULTS", 5)  # chunks handed to the answer
# A chunk is answered from when its cosine similarity to the question reaches the first value, or the second
# when the question's words also match it (all-MiniLM-L6-v2 scale; other models may need other values).
KNOWLEDGE_MIN_SIMILARITY = float(envstr("KNOWLEDGE_MIN_SIMILARITY", "0.35"))
KNOWLEDGE_MIN_SIMILARITY_WITH_WORDS = float(envstr("KNOWLEDGE_MIN_SIMILARITY_WITH_WORDS", "0.25"))
# Where the agents reach the platform API (over HTTP, with both tokens).
PLATFORM_API_URL = envstr("PLATFORM_API_URL", f"http://127.0.0.1:{envstr('PORT', '8000')}")
PLATFORM_API_TIMEOUT = float(envstr("PLATFORM_API_TIMEOUT", "10"))
CHAT_MAX_FRAME_BYTES = envint("CHAT_MAX_FRAME_BYTES", 16 * 1024)  # a larger WebSocket frame is refused
CHAT_MAX_MESSAGE_CHARS = envint("CHAT_MAX_MESSAGE_CHARS", 4000)
CHAT_FRAMES_PER_MINUTE = envint("CHAT_FRAMES_PER_MINUTE", 60)  # per connection; a burst of 10 is allowed
CHAT_PROPOSAL_TTL = envint("CHAT_PROPOSAL_TTL", 15 * 60)  # seconds a proposal can be confirmed
# Per person, across all their sockets and tabs (a socket also has CHAT_FRAMES_PER_MINUTE): turns they may
# start per minute, and conversations they may open per hour. Past either, an error frame says when to retry.
CHAT_TURNS_PER_MINUTE = envint("CHAT_TURNS_PER_MINUTE", 20)
CHAT_CONVERSATIONS_PER_HOUR = envint("CHAT_CONVERSATIONS_PER_HOUR", 60)
# Proposals that a member of staff approves after the member confirmed them. Rules, comma-separated:
# manage_grant (any change that gives manage), delegated_manager (asked by a manager who is not the
# calendar's owner), revoke (any removal), any (every proposal). Empty: no approval.
STAFF_APPROVAL_RULES = envlist("STAFF_APPROVAL_RULES", "manage_grant,delegated_manager")
STAFF_APPROVAL_TTL = envint("STAFF_APPROVAL_TTL", 8 * 3600)  # seconds a confirmed proposal can wait for approval
CONSOLE_TAKE_OVER_WAIT = float(envstr("CONSOLE_TAKE_OVER_WAIT", "10"))  # seconds a take-over waits for a running turn
CHAT_RECURSION_LIMIT = envint("CHAT_RECURSION_LIMIT", 40)  # LangGraph steps per run (its default is 10007)
LANGGRAPH_SCHEMA = envstr("LANGGRAPH_SCHEMA", "langgraph")  # the checkpointer's tables live apart from Django's
if set(STAFF_APPROVAL_RULES) - {"manage_grant", "delegated_manager", "revoke", "any"}:
    raise ImproperlyConfigured("STAFF_APPROVAL_RULES takes manage_grant, delegated_manager, revoke and any")
if LLM_PROVIDER not in ("offline", "openai"):
    raise ImproperlyConfigured("LLM_PROVIDER must be offline or openai")

# --- API -------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "governance.authentication.ServiceTokenAuthentication",
        "governance.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "governance.authentication.AllowedCaller",
    ],
    "DEFAULT_PAGINATION_CLASS": "alfred.api.Pagination",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "alfred.api.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Alfred platform API",
    "DESCRIPTION": "Practice data and calendar access, called with a service JWT and the user's own token.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
}

# --- Internationalisation --------------------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("fr", "Français")]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
TIME_ZONE = envstr("TIME_ZONE", "Europe/Paris")
USE_TZ = True

# --- Static files ----------------------------------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns about a missing root; we serve from finders
WHITENOISE_USE_FINDERS = True  # serve from the apps' folders without a collectstatic step

# --- Logging ---------------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(cid)s] %(message)s"}},
    "filters": {"correlation": {"()": "governance.correlation.CorrelationFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["correlation"]}},
    "root": {"handlers": ["console"], "level": envstr("LOG_LEVEL", "INFO")},
    "loggers": {"pgserver": {"level": "WARNING"}, "daphne": {"level": "WARNING"}},
}
