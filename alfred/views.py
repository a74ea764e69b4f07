"""Small site-wide views: the favicon under the address browsers ask for by themselves."""

from django.templatetags.static import static
from django.views.generic import RedirectView


class FaviconView(RedirectView):
    """/favicon.ico, asked for by browsers on pages without <link rel="icon"> (JSON, the API docs): the SVG mark.

    Not permanent: browsers keep a permanent redirect for good, and the static file's address may change."""

    def get_redirect_url(self, *args, **kwargs) -> str:
        return static("alfred/favicon.svg")


favicon = FaviconView.as_view()
