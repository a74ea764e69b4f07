"""The chat page: a member's conversations and one open conversation, rendered on the server.

The page works before the socket connects (the history is in the HTML); static/support/chat.js then
joins the conversation with `resume` after the last event seq the page shows (docs/chat-protocol.md).
"""

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import render
from django.utils.translation import get_language, gettext_lazy, ngettext
from django.utils.translation import gettext as _

from governance.errors import NotFound
from governance.selectors import user_memberships
from support.models import AccessLevel, Conversation
from support.selectors import (
    ChatWelcome,
    chat_welcome,
    conversation_get_for_user,
    conversation_messages,
    conversations_for_user,
)

CONVERSATIONS_PER_PAGE = 30


def chat_strings() -> dict:
    """Every sentence chat.js shows, translated here (the page hands them over with json_script).

    Placeholders are `{name}`: chat.js and `result_text` fill them the same way.
    """
    return {
        "you": _("You"),
        "alfred": "Alfred",
        "sending": _("Sending…"),
        "not_sent": _("Not sent."),
        "writing": _("Alfred is writing…"),
        "sources": _("Sources"),
        "new_conversation": _("New conversation"),
        "roles": {"support": _("Support")},  # a staff message's author: "Sophie Durand · Support"
        "participant": {
            "joined": _("{name} from the support team joined the conversation."),
            "left": _("{name} left the conversation. Alfred answers again."),
        },
        "composer": {"alfred": _("Your message to Alfred"), "support": _("Your message to support")},
        "connection": {
            "connecting": _("Connecting…"),
            "connected": _("Connected"),
            "reconnecting": _("Reconnecting…"),
            "offline": _("You are offline. Alfred will reconnect when your connection is back."),
            "ended": _("Your session has ended. Log in again to continue."),
        },
        "states": state_words(),
        "proposal": {
            "grant": _("Proposed change: give access"),
            "change": _("Proposed change: change access"),
            "revoke": _("Proposed change: remove access"),
            "other": _("Proposed change"),
            "member": _("Member"),
            "calendar": _("Calendar"),
            "level": _("Access"),
            "confirm": _("Confirm"),
            "reject": _("Reject"),
            "sending": _("Sending your decision…"),
        },
        "levels": level_words(),
        "choice": _("Choose an answer:"),
        "result": {
            "executed": _("Done: {summary}"),
            "rejected": _("Rejected: nothing was changed."),
            "expired": _("Expired: nothing was changed."),
            "set_aside": _("Set aside for your newer request: nothing was changed."),
            "edited": _("Changed: Alfred checks your edited request and proposes it again."),
            "state_changed": _("Not done: the access changed in the meantime. Nothing was changed."),
            "api_refused": _("Not done: the platform refused the change. Nothing was changed."),
            "failed": _("Not done: something went wrong. Nothing was changed."),
            "awaiting_approval": _("Confirmed. The support team must approve this change before it is made."),
            "approved": _("Approved by {reviewer}. Making the change…"),
            "refused": _("Not approved by support: {reason}. Nothing was changed."),
            "taken_over": _("Set aside: a person from support took over. Nothing was changed."),
            "handed_back": _("Set aside when the conversation went back to Alfred. Nothing was changed."),
            "closed": _("Set aside: the conversation was closed. Nothing was changed."),
        },
        "errors": {
            "too_large": _("This message is too large to send."),
            "too_fast": _("You are sending messages too quickly. Wait a moment and try again."),
            "too_long": _("Your message is too long: {max} characters at most.").replace(
                "{max}", str(settings.CHAT_MAX_MESSAGE_CHARS)
            ),
            "empty_message": _("Write a message first."),
            "not_found": _("This conversation or proposal cannot be found. Reload the page."),
            "no_practice": _("The chat is for members of a practice."),
            "stale_proposal": _("This proposal has changed. Reload the page to see the current one."),
            "expired": _("This proposal has expired: nothing was changed. Ask Alfred again if you still need it."),
            "already_decided": _("This proposal was already decided."),
            "closed": _("This conversation is closed. Start a new conversation."),
            "rate_limited": ngettext(
                "You are sending many messages. Wait {seconds} second, then send it again.",
                "You are sending many messages. Wait {seconds} seconds, then send it again.",
                2,
            ),
            "rate_limited_one": ngettext(
                "You are sending many messages. Wait {seconds} second, then send it again.",
                "You are sending many messages. Wait {seconds} seconds, then send it again.",
                1,
            ),
            "not_waiting": _("This conversation is no longer waiting for a person."),
            "generic": _("Something went wrong. Please try again."),
            "reference": _("Reference: {id}"),
        },
    }


def state_words() -> dict:
    """What the status line says for each run state, and for who answers the conversation when nobody runs.

    `with_staff` names the person (`{name}`); `with_staff_unnamed` is for an assignee the page cannot name.
    """
    return {
        "idle": "",
        "queued": _("Queued: Alfred will start in a moment."),
        "running": _("Alfred is working…"),
        "waiting_confirmation": _("Waiting for your confirmation."),
        "waiting_approval": _("Waiting for approval by the support team."),
        "done": _("Done."),
        "failed": _("Failed."),
        "handed_off": _("Waiting for a person from support. Your messages are kept for them."),
        "with_staff": _("{name} from support is answering you."),
        "with_staff_unnamed": _("A person from support is answering you."),
        "closed": _("This conversation is closed. Start a new conversation to ask something else."),
    }


# Run states that say more than who answers (the same list is in chat.js): while one of them is the latest,
# the status line shows it; otherwise a conversation waiting for a person, with one or closed says so.
ACTIVE_RUN_STATES = ("queued", "running", "waiting_confirmation", "waiting_approval", "failed")


def status_line(*, run_status: str, conversation_status: str, assignee: str, strings: dict) -> tuple[str, str]:
    """The status line's state and words (chat.js has the same rules): closed always says so; waiting for a
    person or with one says so unless a run state is more telling; otherwise the run state."""
    words = strings["states"]
    if conversation_status == "closed" or (
        conversation_status in ("handed_off", "with_staff") and run_status not in ACTIVE_RUN_STATES
    ):
        if conversation_status == "with_staff":
            text = words["with_staff"].replace("{name}", assignee) if assignee else words["with_staff_unnamed"]
        else:
            text = words[conversation_status]
        return conversation_status, text
    return run_status, words.get(run_status, "")


def participant_text(participant: dict, strings: dict) -> str:
    """The centred line for a person from support joining or leaving (chat.js has the same rules)."""
    sentence = strings["participant"].get(participant.get("action"), "")
    return sentence.replace("{name}", participant.get("name") or strings["roles"]["support"])


def level_words() -> dict:
    """The access levels as the page names them ("View", "Book", "Manage"; "Consulter"… in French)."""
    return {level.value: str(level.label) for level in AccessLevel}


EXPIRED_CODES = ("set_aside", "edited", "taken_over", "handed_back", "closed")  # each with its own sentence


def result_text(result: dict, strings: dict) -> str:
    """The sentence a proposal's form shows once it is decided (chat.js has the same rules).

    A later result of the same proposal replaces an earlier one (confirmed, then approved, then done).
    """
    texts = strings["result"]
    status, code = result.get("status"), result.get("code") or ""
    if status == "executed":  # its own done-sentence; a result stored before proposals had one: its summary
        return result.get("done") or texts["executed"].replace("{summary}", result.get("summary") or "")
    if status == "awaiting_approval":
        return texts["awaiting_approval"]
    if status == "confirmed":
        reviewer = result.get("reviewer") or strings["roles"]["support"]
        return texts["approved"].replace("{reviewer}", reviewer) if code == "approved" else ""
    if status == "rejected":
        if code == "refused":
            reason = str(result.get("reason") or "").strip().rstrip(".")  # the sentence puts its own full stop
            return texts["refused"].replace("{reason}", reason)
        return texts["rejected"]
    if status == "expired":
        return texts[code] if code in EXPIRED_CODES else texts["expired"]
    return texts[code] if code in ("state_changed", "api_refused") else texts["failed"]


def _proposal_view(item: dict, strings: dict) -> dict:
    """A stored proposal form, ready for the template: its selects, their options, and its result."""
    proposal = item["form"].get("proposal", {})
    fields = []
    for name in ("member", "calendar", "level"):
        field = (proposal.get("fields") or {}).get(name)
        if not field or (name == "level" and field.get("value") is None):  # a removal has no level to pick
            continue
        options = [
            {
                "value": option.get("value"),
                "label": strings["levels"].get(option.get("value"), option.get("label"))
                if name == "level"
                else option.get("label"),
                "selected": str(option.get("value")) == str(field.get("value")),
            }
            for option in field.get("options", [])
        ]
        fields.append(
            {"name": name, "label": strings["proposal"][name], "value": field.get("value"), "options": options}
        )
    action = proposal.get("action")
    return {
        **item,
        "proposal": proposal,
        "legend": strings["proposal"].get(action, strings["proposal"]["other"]),
        "fields": fields,
        "result_text": result_text(item["result"], strings) if item["result"] else "",
    }


@login_required
def chat(request, conversation_id: int | None = None):
    """The member's conversations (newest first, 30 a page) and, at /chat/<id>/, one of them with its history.

    Someone who is no active member of a practice gets a page saying what the chat is for; another
    person's conversation is a 404, as is one that does not exist. Who answers the conversation (its
    `status`: open, handed_off, with_staff, closed) and the name of the person from support who has it
    shape the status line, the "Back to Alfred" notice and the composer, as chat.js does live.
    """
    if not user_memberships(user=request.user).exists():
        return render(request, "support/chat_members_only.html", status=403)
    conversations = conversations_for_user(user=request.user).only("id", "title", "run_status", "updated_at")
    page = Paginator(conversations, CONVERSATIONS_PER_PAGE).get_page(request.GET.get("page"))
    strings = chat_strings()
    conversation, items = None, []
    if conversation_id is not None:
        try:
            conversation = conversation_get_for_user(user=request.user, conversation_id=conversation_id)
        except NotFound:
            raise Http404("No such conversation.") from None
        # The conversation (and its last seq) is read before its events: an event stored in between is in
        # the page *and* replayed after the resume, where chat.js drops it by its seq (never zero times).
        items = [
            _item_view(item, strings)
            for item in conversation_messages(user=request.user, conversation_id=conversation.pk)
        ]
    examples = []
    if not items:  # the welcome shows only before the first message
        welcome = chat_welcome(
            user=request.user,
            language=get_language() or settings.LANGUAGE_CODE,
            article_slugs={slug for _question, slugs in HOW_TO_EXAMPLES for slug in slugs},
        )
        examples = welcome_examples(welcome)
    run_status = conversation.run_status if conversation else ""
    conversation_status = conversation.status if conversation else Conversation.Status.OPEN
    assignee = ""
    if conversation_status == Conversation.Status.WITH_STAFF and conversation.assignee_id:
        assignee = conversation.assignee.display_name  # one more query, only while a person has it
    status_state, status_words = status_line(
        run_status=run_status, conversation_status=conversation_status, assignee=assignee, strings=strings
    )
    with_support = conversation_status in (Conversation.Status.HANDED_OFF, Conversation.Status.WITH_STAFF)
    return render(
        request,
        "support/chat.html",
        {
            "page_obj": page,
            "conversation": conversation,
            "items": items,
            "last_seq": conversation.last_seq if conversation else 0,
            "run_status": run_status,
            "conversation_status": conversation_status,
            "assignee": assignee,
            "closed": conversation_status == Conversation.Status.CLOSED,
            "status_state": status_state,
            "status_words": status_words,
            "composer_label": strings["composer"]["support" if with_support else "alfred"],
            "chat_strings": strings,
            "examples": examples,
            "max_chars": settings.CHAT_MAX_MESSAGE_CHARS,
        },
    )


def _item_view(item: dict, strings: dict) -> dict:
    if item["kind"] == "participant":
        return {**item, "text": participant_text(item["participant"], strings)}
    if item["kind"] == "message":
        message = item["message"]
        return {**item, "sources": message_sources(message) if message.get("role") == "assistant" else []}
    if item["kind"] != "form":
        return item
    if item["form"].get("kind") == "proposal":
        return _proposal_view(item, strings)
    return {**item, "options": _choice_options(item, strings)}


def site_path(url) -> str | None:
    """A citation's link, only when it is a path on this site (chat.js's `sitePath` has the same rule): "/kb/x/"
    yes; "//evil.example/", "/\\evil.example/" (browsers read both as another host), "https://…" or a path with
    spaces or control characters, no."""
    if not isinstance(url, str) or not url.startswith("/") or url.startswith("//") or "\\" in url:
        return None
    return None if any(ord(char) <= 0x20 or ord(char) == 0x7F for char in url) else url


def message_sources(message: dict) -> list[dict]:
    """The "Sources" under an answer from the knowledge base, as chat.js's `renderSources` builds them:
    "[1] Title" (a link to the article's page when its url is a path on this site) and " — Section"."""
    sources = []
    for citation in message.get("citations") or []:
        if not isinstance(citation, dict):
            continue
        number = citation.get("n")
        if isinstance(number, bool) or not isinstance(number, int):
            number = int(number) if isinstance(number, str) and number.strip().isdigit() else None
        section = " › ".join(str(citation.get("heading") or "").split(" › ")[1:])
        sources.append(
            {
                "n": number or None,
                "label": f"[{number or '?'}] {citation.get('title') or citation.get('slug') or ''}",
                "url": site_path(citation.get("url")),
                "section": section,
            }
        )
    return sources


# How-to examples for the welcome, each with the help articles that answer it (knowledge/demo_articles): the
# first one whose article is published in the member's language is shown, else the first one. Keep each
# question in the words its article uses, so that retrieval finds it.
HOW_TO_EXAMPLES = (
    (gettext_lazy("How do I cancel an appointment?"), ("annuler-deplacer-rendez-vous",)),
    (gettext_lazy("How do I set up SMS reminders?"), ("sms-email-reminders",)),
)


def welcome_examples(welcome: ChatWelcome) -> list[str]:
    """What a new conversation offers to send, in the member's language: a change to one of their own calendars
    for a real colleague (or, without a calendar they own or manage, a question about who gives access), then a
    how-to question the knowledge base can answer."""
    if welcome.colleague and welcome.calendar:
        # Translators: an example the member can send to Alfred; {member} is a colleague's name, {calendar} the
        # name of one of the member's calendars ("Give Karim Haddad booking access to Consultations Dr Martin").
        change = _("Give {member} booking access to {calendar}").format(
            member=welcome.colleague, calendar=welcome.calendar
        )
    else:
        change = _("Who can give permissions on a calendar?")
    answered = [str(question) for question, slugs in HOW_TO_EXAMPLES if welcome.articles.intersection(slugs)]
    return [change, answered[0] if answered else str(HOW_TO_EXAMPLES[0][0])]


def _choice_options(item: dict, strings: dict) -> list[dict]:
    """A question's options: the label is what the answer sends; levels show in the page's language."""
    form = item["form"]
    return [
        {
            "label": option.get("label", ""),
            "display": strings["levels"].get(option.get("label"), option.get("label", ""))
            if form.get("field") == "level"
            else option.get("label", ""),
        }
        for option in form.get("options", [])
    ]
