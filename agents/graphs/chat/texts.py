"""What Alfred says in the calendar and knowledge flows, in plain words, in the person's language (Django i18n).

The model never writes these: the sentences that state a change, a refusal or a result are ours, so they
say exactly what is true. `say(language, key, **values)` renders one.
"""

from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

LEVEL_WORDS = {
    "view": lambda: pgettext("calendar access level", "view"),
    "book": lambda: pgettext("calendar access level", "book"),
    "manage": lambda: pgettext("calendar access level", "manage"),
    None: lambda: pgettext("calendar access level", "no access"),
}

TEXTS = {
    "looking_up": lambda: _("Looking up your practice's members and calendars…"),
    "checking": lambda: _("Checking the current access…"),
    "applying": lambda: _("Applying the change…"),
    "ask_member": lambda: _("Who should this apply to?"),
    "ask_member_among": lambda: _("Which {words} do you mean: {options}?"),
    "ask_calendar": lambda: _("Which calendar: {options}?"),
    "ask_level": lambda: _("Which access should {member} have on {calendar}: view, book or manage?"),
    "member_unknown": lambda: _(
        "I can't find “{words}” among the members of your practice. I can only change access for members "
        "of your own practice."
    ),
    "calendar_unknown": lambda: _("I can't find a calendar matching “{words}” among the calendars you can see."),
    "no_calendar": lambda: _("You don't have a calendar whose access you can change."),
    "not_manager": lambda: _(
        "You can't change who has access to {calendar}: only its owner ({owner}) or a member with manage "
        "access can. You could ask {owner}."
    ),
    "self_change": lambda: _("You can't change your own access. Ask the calendar's owner or a manager."),
    "owner_access": lambda: _("{member} owns {calendar}: the owner always manages their own calendar."),
    "already": lambda: _("{member} already has {level} access to {calendar}. Nothing to change."),
    "nothing_to_revoke": lambda: _("{member} has no access to {calendar}. Nothing to remove."),
    "propose": lambda: _("Here is the change I can make: {summary}. Please confirm or reject it."),
    "summary_change": lambda: _("{member}: {before} → {after} on {calendar}"),
    "executed": lambda: _("Done: {summary}."),
    "rejected": lambda: _("All right, I changed nothing."),
    "expired": lambda: _("This proposal has expired; nothing was changed. Ask me again if you still need it."),
    "state_changed": lambda: _(
        "The access changed since I proposed this, so I did not apply it. Ask me again and I'll start from the "
        "current state."
    ),
    "api_refused": lambda: _("The platform refused the change: {detail} Nothing was changed."),
    "failed": lambda: _("Something went wrong and nothing was changed. You can try again or ask for a person."),
    "superseded": lambda: _("I set the previous proposal aside."),
    "searching_articles": lambda: _("Searching the help articles…"),
    "writing_answer": lambda: _("Writing the answer from the articles…"),
    "checking_answer": lambda: _("Checking the answer against the articles…"),
    "knowledge_unknown": lambda: _(
        "I couldn't find this in our help articles, and I'd rather not guess. Would you like me to pass you to "
        "a person from support? Just answer yes."
    ),
    "handoff": lambda: _("I've passed this conversation to the support team. Someone will answer you here."),
    "refuse": lambda: _(
        "I can't help with that. I can change who can view, book or manage your calendars, and pass you to a "
        "person from support."
    ),
    "or": lambda: _("or"),
}


def say(language: str, key: str, **values) -> str:
    with translation.override(language):
        rendered = {
            name: level_word(language, value) if name in ("level", "before", "after") else value
            for name, value in values.items()
        }
        return TEXTS[key]().format(**rendered)


def outcome_text(language: str, outcome) -> str:
    """What Alfred says once a proposal was carried out or refused (`outcome`: tools.Outcome)."""
    key = {"executed": "executed", "expired": "expired", "rejected": "rejected"}.get(outcome.status)
    if key is None:
        key = {"state_changed": "state_changed", "api_refused": "api_refused"}.get(outcome.code, "failed")
    return say(language, key, summary=outcome.detail, detail=outcome.detail)


def level_word(language: str, level: str | None) -> str:
    with translation.override(language):
        return LEVEL_WORDS[level]()


def options_text(language: str, names: list[str]) -> str:
    """ "A, B or C" in the person's language."""
    if len(names) <= 1:
        return "".join(names)
    with translation.override(language):
        return ", ".join(names[:-1]) + f" {TEXTS['or']()} " + names[-1]
