"""Request middleware of the governance app."""

from django.utils import translation

from governance.languages import supported_language


class PreferredLanguageMiddleware:
    """Activate a logged-in user's preferred language, over what the browser or the cookie asks for.

    Goes right after AuthenticationMiddleware (it needs request.user). LocaleMiddleware, earlier in the
    chain, still chooses for anonymous people and for users with no preference; its response half then
    reports whichever language is active, so Content-Language stays right either way.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        language = self._preferred_language(request)
        if language:
            translation.activate(language)
            request.LANGUAGE_CODE = translation.get_language()
        return self.get_response(request)

    @staticmethod
    def _preferred_language(request) -> str | None:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        return supported_language(user.preferred_language)
