from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from alfred.health import healthz
from alfred.views import favicon
from governance import api as governance_api
from governance import views as governance_views
from governance.oidc import oidc_urlpatterns
from knowledge import api as knowledge_api
from knowledge import reader as knowledge_reader
from support import api as support_api
from support.views import chat as chat_views
from support.views import compliance as compliance_views

api_v1 = [
    path("me/", governance_api.MeView.as_view(), name="me"),
    path(
        "organizations/<int:organization_id>/members/",
        governance_api.OrganizationMembersView.as_view(),
        name="organization-members",
    ),
    path("calendars/", support_api.CalendarListView.as_view(), name="calendars"),
    path(
        "calendars/<int:calendar_id>/access/", support_api.CalendarAccessListView.as_view(), name="calendar-access-list"
    ),
    path(
        "calendars/<int:calendar_id>/access/<int:user_id>/",
        support_api.CalendarAccessDetailView.as_view(),
        name="calendar-access-detail",
    ),
    path("articles/", knowledge_api.ArticleListView.as_view(), name="articles"),
    path("articles/<int:article_id>/", knowledge_api.ArticleDetailView.as_view(), name="article-detail"),
    path("articles/<int:article_id>/publish/", knowledge_api.ArticlePublishView.as_view(), name="article-publish"),
    path("articles/<int:article_id>/archive/", knowledge_api.ArticleArchiveView.as_view(), name="article-archive"),
    path("articles/<int:article_id>/revisions/", knowledge_api.RevisionListView.as_view(), name="article-revisions"),
    path(
        "articles/<int:article_id>/revisions/<int:number>/restore/",
        knowledge_api.RevisionRestoreView.as_view(),
        name="article-revision-restore",
    ),
    path("knowledge/search/", knowledge_api.SearchView.as_view(), name="knowledge-search"),
]

urlpatterns = [
    path("", governance_views.home, name="home"),
    path("healthz", healthz, name="healthz"),
    path("favicon.ico", favicon, name="favicon"),  # asked for by browsers on pages without <link rel="icon">
    path("chat/", chat_views.chat, name="chat"),
    path("chat/<int:conversation_id>/", chat_views.chat, name="chat-conversation"),
    path("console/knowledge/", include("knowledge.urls")),
    path("console/", include("support.urls")),
    path("compliance/actions/<int:proposal_id>/", compliance_views.agent_action, name="compliance-chain"),
    path("compliance/", include("governance.urls")),
    path("kb/<slug:slug>/", knowledge_reader.article_read, name="knowledge-article"),
    path("accounts/login/", governance_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("i18n/setlang/", governance_views.set_language, name="set_language"),  # also saves a user's choice
    path("oidc/", include(oidc_urlpatterns())),  # always routed; 404 unless settings.OIDC_ENABLED
    path("admin/", admin.site.urls),
    path("api/v1/", include((api_v1, "api"), namespace="api")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
]
