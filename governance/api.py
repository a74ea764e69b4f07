"""Platform API: who am I, and who is in my practice."""

from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from governance.selectors import organization_members, user_memberships


class UserBriefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField(source="display_name")
    first_name = serializers.CharField()
    last_name = serializers.CharField()


class MeView(APIView):
    @extend_schema_serializer(component_name="Me")
    class OutputSerializer(serializers.Serializer):
        class MembershipSerializer(serializers.Serializer):
            organization_id = serializers.IntegerField()
            organization_name = serializers.CharField(source="organization.name")
            role = serializers.CharField()

        id = serializers.IntegerField()
        username = serializers.CharField()
        name = serializers.CharField(source="display_name")
        email = serializers.EmailField()
        platform_role = serializers.CharField()
        memberships = MembershipSerializer(many=True, source="memberships_active")

    @extend_schema(responses=OutputSerializer)
    def get(self, request):
        request.user.memberships_active = user_memberships(user=request.user)
        return Response(self.OutputSerializer(request.user).data)


class OrganizationMembersView(ListAPIView):
    @extend_schema_serializer(component_name="Member")
    class OutputSerializer(serializers.Serializer):
        user = UserBriefSerializer()
        role = serializers.CharField()
        is_active = serializers.BooleanField()

    serializer_class = OutputSerializer

    def get_queryset(self):
        return organization_members(user=self.request.user, organization_id=self.kwargs["organization_id"])
