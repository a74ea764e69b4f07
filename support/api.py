"""Platform API: calendars and their access grants. Thin views: the rules live in services."""

from django.contrib.auth import get_user_model
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from governance.api import UserBriefSerializer
from governance.authentication import calling_service, calling_token
from governance.errors import NotFound, ValidationFailed
from support.models import AccessLevel, ActionProposal
from support.platform_client import PROPOSAL_HEADER
from support.selectors import calendar_accesses, calendar_get_for_member, calendars_for_user
from support.services import calendar_access_revoke, calendar_access_set


class AccessSerializer(serializers.Serializer):
    user = UserBriefSerializer()
    level = serializers.CharField()
    granted_by = UserBriefSerializer(allow_null=True)
    updated_at = serializers.DateTimeField()


class CalendarListView(ListAPIView):
    """Calendars the caller owns or has access to, with the caller's own level on each."""

    @extend_schema_serializer(component_name="Calendar")
    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        name = serializers.CharField()
        organization_id = serializers.IntegerField()
        owner = UserBriefSerializer()
        my_level = serializers.CharField()

    serializer_class = OutputSerializer

    def get_queryset(self):
        return calendars_for_user(user=self.request.user)


class CalendarAccessListView(ListAPIView):
    """Grants of a calendar; for its owner and its managers."""

    serializer_class = AccessSerializer

    def get_queryset(self):
        return calendar_accesses(user=self.request.user, calendar_id=self.kwargs["calendar_id"])


PROPOSAL_PARAMETER = OpenApiParameter(
    PROPOSAL_HEADER,
    int,
    OpenApiParameter.HEADER,
    description="The confirmed proposal this change carries out (agents only): its audit entry links to it.",
)


def _proposal_carried_out(request, *, calendar_id: int, user_id: int, level: str | None) -> int | None:
    """The proposal named by the caller, checked: the caller's own, being carried out now, with exactly these
    arguments. A mismatch is refused (nothing changed): an audit link must never point at the wrong proposal."""
    raw = request.headers.get(PROPOSAL_HEADER)
    if raw is None:
        return None
    proposal = (
        ActionProposal.objects.filter(pk=int(raw), requested_by=request.user, status=ActionProposal.Status.EXECUTING)
        .only("arguments", "action")
        .first()
        if raw.isdigit()
        else None
    )
    expected = {"calendar_id": calendar_id, "user_id": user_id}
    if (
        proposal is None
        or {key: proposal.arguments.get(key) for key in expected} != expected
        or (level is None) != (proposal.action == "revoke")
        or (level is not None and proposal.arguments.get("level") != level)
    ):
        raise ValidationFailed("This change is not the one the named proposal carries out.", code="proposal_mismatch")
    return proposal.pk


class CalendarAccessDetailView(APIView):
    """Grant or change (PUT, idempotent) or revoke (DELETE) one member's access to a calendar."""

    caller_scope = "calendar_access_write"

    class InputSerializer(serializers.Serializer):
        level = serializers.ChoiceField(choices=AccessLevel.choices)

    def _target(self, request, calendar_id: int, user_id: int):
        # Scoped: a calendar outside the caller's practices and a user outside the calendar's are 404.
        calendar = calendar_get_for_member(user=request.user, calendar_id=calendar_id)
        user = (
            get_user_model().objects.filter(pk=user_id, memberships__organization_id=calendar.organization_id).first()
        )
        if user is None:
            raise NotFound("No such member in this practice.", code="member_not_found")
        return calendar, user

    @extend_schema(
        request=InputSerializer,
        responses={200: AccessSerializer, 201: AccessSerializer},
        parameters=[PROPOSAL_PARAMETER],
    )
    def put(self, request, calendar_id: int, user_id: int):
        payload = self.InputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        calendar, user = self._target(request, calendar_id, user_id)
        level = payload.validated_data["level"]
        access, created = calendar_access_set(
            actor=request.user,
            calendar=calendar,
            user=user,
            level=level,
            via=calling_service(request),
            proposal_id=_proposal_carried_out(request, calendar_id=calendar.pk, user_id=user.pk, level=level),
            token=calling_token(request),
        )
        return Response(
            AccessSerializer(access).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )

    @extend_schema(responses={204: None}, parameters=[PROPOSAL_PARAMETER])
    def delete(self, request, calendar_id: int, user_id: int):
        calendar, user = self._target(request, calendar_id, user_id)
        proposal_id = _proposal_carried_out(request, calendar_id=calendar.pk, user_id=user.pk, level=None)
        calendar_access_revoke(
            actor=request.user,
            calendar=calendar,
            user=user,
            via=calling_service(request),
            proposal_id=proposal_id,
            token=calling_token(request),
        )
        return Response(status=status.HTTP_204_NO_CONTENT)
