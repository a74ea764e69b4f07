"""The language a person sees: one of settings.LANGUAGES, remembered on their account once they choose."""

from django.conf import settings


def supported_language(code: str) -> str | None:
    """`code` if Alfred offers that language, else None (a stale or forged value must not break a page)."""
    return code if code in dict(settings.LANGUAGES) else None


def user_preferred_language_set(*, user, language: str) -> bool:
    """Remember a user's language choice; False (and nothing saved) for a language Alfred does not offer."""
    language = supported_language(language)
    if language is None:
        return False
    if user.preferred_language != language:  # no write, and no audit entry, when nothing changes
        user.preferred_language = language
        user.save(update_fields=["preferred_language"])
    return True
