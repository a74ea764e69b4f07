"""Staff console of the knowledge base, under /console/knowledge/."""

from django.urls import path

from knowledge import views

app_name = "knowledge"

urlpatterns = [
    path("", views.article_list, name="articles"),
    path("new/", views.article_new, name="article-new"),
    path("<int:article_id>/", views.article_edit, name="article-edit"),
    path("<int:article_id>/archive/", views.article_archive_view, name="article-archive"),
    path("<int:article_id>/revisions/", views.revision_list, name="revisions"),
    path("<int:article_id>/revisions/<int:number>/restore/", views.revision_restore, name="revision-restore"),
    path("preview/", views.preview, name="preview"),
    path("status/", views.index_status, name="status"),
    path("reindex/", views.reindex_everything, name="reindex"),
]
