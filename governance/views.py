"""Pages of the governance app: login and the landing page that sends each person where they work."""

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views import i18n

from governance.languages import user_preferred_language_set
from governance.selectors import user_memberships


class LoginView(auth_views.LoginView):
    template_name = "registration/login.html"
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs):
        return super().get_context_data(oidc_enabled=settings.OIDC_ENABLED, **kwargs)


@login_required
def home(request):
    return render(request, "home.html", {"memberships": user_memberships(user=request.user)})


def set_language(request):
    """Django's set_language (cookie and redirect), which also saves a logged-in user's choice.

    Saved on the account, the choice follows the person to other browsers and devices, and
    PreferredLanguageMiddleware makes it win over the browser's Accept-Language.
    """
    response = i18n.set_language(request)
    if request.method == "POST" and request.user.is_authenticated:
        user_preferred_language_set(user=request.user, language=request.POST.get(i18n.LANGUAGE_QUERY_PARAMETER, ""))
    return response
