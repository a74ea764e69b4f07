"""Staff API of the knowledge base: curate articles (revisions, publish, archive, restore) and try the search.

Thin views: every write goes through knowledge.services. Support staff (and superusers) only, in a browser
session (CSRF on writes) or with both tokens from a service on the "knowledge" allowed-caller list.
"""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from governance.api import UserBriefSerializer
from governance.authentication import AllowedCaller
from governance.errors import NotAllowed, NotFound
from knowledge.markdown import render_html
from knowledge.models import Article
from knowledge.retrieval import search
from knowledge.selectors import article_get_for_staff, articles_for_staff, unpublished_changes
from knowledge.services import (
    ArticleContent,
    article_archive,
    article_create,
    article_publish,
    article_restore,
    article_update,
)

SEARCH_MAX_RESULTS = 20


class IsSupportStaff(BasePermission):
    """Support staff and superusers. A refusal is a NotAllowed, so it is recorded as a security event."""

    def has_permission(self, request, view) -> bool:
        if not request.user.is_support_staff:
            raise NotAllowed("Only support staff can use the knowledge base API.", code="staff_only")
        return True


class StaffAPIMixin:
    permission_classes = [IsAuthenticated, AllowedCaller, IsSupportStaff]
    caller_scope = "knowledge"


class ArticleSerializer(serializers.Serializer):
    """An article as listed: its state, never its text."""

    id = serializers.IntegerField()
    slug = serializers.CharField()
    title = serializers.CharField()
    language = serializers.CharField()
    tags = serializers.ListField(child=serializers.CharField())
    status = serializers.ChoiceField(choices=Article.Status.choices)
    index_state = serializers.ChoiceField(choices=Article.IndexState.choices)
    index_error = serializers.CharField()
    indexed_at = serializers.DateTimeField(allow_null=True)
    published_revision = serializers.IntegerField(
        source="published_revision.number", allow_null=True, help_text="Number of the revision readers see."
    )
    latest_revision = serializers.IntegerField(source="latest_revision_number", allow_null=True)
    has_unpublished_changes = serializers.SerializerMethodField()
    updated_at = serializers.DateTimeField()
    updated_by = UserBriefSerializer(allow_null=True)

    def get_has_unpublished_changes(self, article) -> bool:
        return unpublished_changes(article)


class ArticleDetailSerializer(ArticleSerializer):
    body = serializers.CharField(help_text="Markdown of the working copy (the latest revision).")
    html = serializers.SerializerMethodField(help_text="The body rendered to sanitized HTML.")
    created_at = serializers.DateTimeField()

    def get_html(self, article) -> str:
        return render_html(article.body)


class ArticleContentSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=200)
    language = serializers.CharField(max_length=8, default="en")
    body = serializers.CharField(trim_whitespace=False)
    tags = serializers.ListField(child=serializers.CharField(max_length=50), max_length=30, default=list)
    note = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)

    def content(self) -> ArticleContent:
        data = self.validated_data
        return ArticleContent(title=data["title"], language=data["language"], body=data["body"], tags=data["tags"])


class ArticleListView(StaffAPIMixin, ListAPIView):
    """Articles by title, filtered by status, language and words of their title, slug or text; or a new article."""

    class FilterSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=Article.Status.choices, required=False, allow_blank=True)
        language = serializers.CharField(max_length=8, required=False, allow_blank=True)
        q = serializers.CharField(max_length=200, required=False, allow_blank=True)

    class ArticleCreateSerializer(ArticleContentSerializer):
        slug = serializers.CharField(
            max_length=120, required=False, default="", allow_blank=True, help_text="Made from the title if blank."
        )
        publish = serializers.BooleanField(default=False)

    serializer_class = ArticleSerializer

    def get_queryset(self):
        filters = self.FilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        return articles_for_staff(**filters.validated_data)

    @extend_schema(parameters=[FilterSerializer])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(request=ArticleCreateSerializer, responses={201: ArticleDetailSerializer})
    def post(self, request):
        payload = self.ArticleCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        article = article_create(
            actor=request.user,
            slug=payload.validated_data["slug"],
            content=payload.content(),
            publish=payload.validated_data["publish"],
            note=payload.validated_data["note"],
        )
        article = article_get_for_staff(article_id=article.pk)
        return Response(ArticleDetailSerializer(article).data, status=status.HTTP_201_CREATED)


class ArticleDetailView(StaffAPIMixin, APIView):
    """One article with its Markdown and its rendering. PUT and PATCH save a new revision (none if nothing
    changed); a published article keeps serving its published revision until it is published again."""

    @extend_schema(responses=ArticleDetailSerializer)
    def get(self, request, article_id: int):
        return Response(ArticleDetailSerializer(article_get_for_staff(article_id=article_id)).data)

    @extend_schema(request=ArticleContentSerializer, responses=ArticleDetailSerializer)
    def put(self, request, article_id: int):
        return self._update(request, article_id, partial=False)

    @extend_schema(request=ArticleContentSerializer, responses=ArticleDetailSerializer)
    def patch(self, request, article_id: int):
        return self._update(request, article_id, partial=True)

    def _update(self, request, article_id: int, *, partial: bool):
        article = article_get_for_staff(article_id=article_id)
        current = {"title": article.title, "language": article.language, "body": article.body, "tags": article.tags}
        merged = partial and isinstance(request.data, dict)  # a body that is no object fails validation below
        payload = ArticleContentSerializer(data={**current, **request.data} if merged else request.data)
        payload.is_valid(raise_exception=True)
        article_update(
            actor=request.user, article=article, content=payload.content(), note=payload.validated_data["note"]
        )
        return Response(ArticleDetailSerializer(article_get_for_staff(article_id=article_id)).data)


class ArticlePublishView(StaffAPIMixin, APIView):
    """Make the latest revision the one readers and Alfred see; it is indexed by a worker after this request."""

    @extend_schema(request=None, responses=ArticleDetailSerializer)
    def post(self, request, article_id: int):
        article_publish(actor=request.user, article=article_get_for_staff(article_id=article_id))
        return Response(ArticleDetailSerializer(article_get_for_staff(article_id=article_id)).data)


class ArticleArchiveView(StaffAPIMixin, APIView):
    """Take the article out of answers and searches now."""

    @extend_schema(request=None, responses=ArticleDetailSerializer)
    def post(self, request, article_id: int):
        article_archive(actor=request.user, article=article_get_for_staff(article_id=article_id))
        return Response(ArticleDetailSerializer(article_get_for_staff(article_id=article_id)).data)


class RevisionSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    title = serializers.CharField()
    language = serializers.CharField()
    tags = serializers.ListField(child=serializers.CharField())
    body = serializers.CharField()
    note = serializers.CharField()
    author = UserBriefSerializer(allow_null=True)
    created_at = serializers.DateTimeField()
    is_published = serializers.SerializerMethodField(help_text="The revision readers and Alfred see.")

    def get_is_published(self, revision) -> bool:
        return revision.pk == self.context["published_revision_id"]


class RevisionListView(StaffAPIMixin, ListAPIView):
    """Every revision of an article, newest first."""

    serializer_class = RevisionSerializer

    def get_queryset(self):
        self.article = article_get_for_staff(article_id=self.kwargs["article_id"])
        return self.article.revisions.select_related("author").order_by("-number")

    def get_serializer_context(self):
        article = getattr(self, "article", None)  # None while drf-spectacular inspects the view
        return {**super().get_serializer_context(), "published_revision_id": article and article.published_revision_id}


class RevisionRestoreView(StaffAPIMixin, APIView):
    """Make an old revision's content the working copy again, as a new revision (publish to make it live)."""

    @extend_schema(request=None, responses=ArticleDetailSerializer)
    def post(self, request, article_id: int, number: int):
        article = article_get_for_staff(article_id=article_id)
        revision = article.revisions.filter(number=number).first()
        if revision is None:
            raise NotFound("No such revision of this article.")
        article_restore(actor=request.user, article=article, revision=revision)
        return Response(ArticleDetailSerializer(article_get_for_staff(article_id=article_id)).data)


class HitSerializer(serializers.Serializer):
    article_id = serializers.IntegerField()
    chunk_id = serializers.IntegerField()
    slug = serializers.CharField()
    title = serializers.CharField()
    language = serializers.CharField()
    heading_path = serializers.CharField()
    text = serializers.CharField()
    score = serializers.FloatField(help_text="Fused score (reciprocal rank fusion); higher is better.")
    similarity = serializers.FloatField(help_text="Cosine similarity between the question and the passage.")
    vector_rank = serializers.IntegerField(allow_null=True, help_text="Rank among the nearest vectors (1 is best).")
    text_rank = serializers.IntegerField(allow_null=True, help_text="Rank among the full-text matches (1 is best).")


class SearchResultsSerializer(serializers.Serializer):
    results = HitSerializer(many=True)


class SearchView(StaffAPIMixin, APIView):
    """What Alfred would retrieve for a question: passages of published articles only, best first."""

    class QuerySerializer(serializers.Serializer):
        q = serializers.CharField(max_length=2000)
        language = serializers.CharField(max_length=8, required=False, help_text="The question's language: en, fr…")
        limit = serializers.IntegerField(min_value=1, max_value=SEARCH_MAX_RESULTS, required=False)

    @extend_schema(parameters=[QuerySerializer], responses=SearchResultsSerializer)
    def get(self, request):
        query = self.QuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        hits = search(
            query.validated_data["q"],
            language=query.validated_data.get("language"),
            limit=query.validated_data.get("limit"),
        )
        return Response(SearchResultsSerializer({"results": hits}).data)
