"""Settings for the test suite: the real components of alfred.settings, kept apart from a running Alfred.

Only two things change: the tests use their own Redis database (so a worker of a running `make run`
never picks up a test's task), and a fast password hasher (speed only).
"""

from alfred.env import celery_broker_url, envstr, redis_url_with_db
from alfred.settings import *  # noqa: F403
from alfred.settings import REDIS_URL

REDIS_URL = envstr("TEST_REDIS_URL") or redis_url_with_db(REDIS_URL, 15)
CELERY_BROKER_URL = celery_broker_url(REDIS_URL)
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": None}], "prefix": "alfred-test"},
    }
}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "alfred-test",
    }
}
