"""The support console, under /console/ (the knowledge base's pages are under /console/knowledge/)."""

from django.urls import path

from support.views import console

app_name = "console"

urlpatterns = [
    path("", console.inbox, name="inbox"),
    path("approvals/", console.approvals, name="approvals"),
    path("conversations/<int:conversation_id>/", console.conversation, name="conversation"),
    path("conversations/<int:conversation_id>/take-over/", console.take_over, name="take-over"),
    path("conversations/<int:conversation_id>/hand-back/", console.hand_back, name="hand-back"),
    path("conversations/<int:conversation_id>/close/", console.close, name="close"),
    path("conversations/<int:conversation_id>/reply/", console.reply, name="reply"),
    path("proposals/<int:proposal_id>/approve/", console.approve, name="approve"),
    path("proposals/<int:proposal_id>/refuse/", console.refuse, name="refuse"),
]
