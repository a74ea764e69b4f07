"""What Alfred says in the calendar and knowledge flows, in plain words, in the person's language (Django i18n).

The model never writes these: the sentences that state a change, a refusal or a result are ours, so they
say exactly what is true. `say(language, key, **values)` renders one.
"""

from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

# The levels as the form names them: the same msgids and context as support.models.AccessLevel's labels,
# so a sentence and the form's options say the same word ("View", "Book", "Manage"; "Consulter"… in French).
LEVEL_WORDS = {
    "view": lambda: pgettext("calendar access level", "View"),
    "book": lambda: pgettext("calendar access level", "Book"),
    "manage": lambda: pgettext("calendar access level", "Manage"),
}
LEVELS = ("view", "book", "manage")

# A proposal in plain words, per action and level (and, for a change, the level it replaces): whole sentences,
# so that a translator never has to assemble pieces. Keys: (level, the level a change replaces); (None, None) is
# a removal.
SUMMARIES = {
    ("view", None): lambda: _("{member} will be able to see {calendar}"),
    ("book", None): lambda: _("{member} will be able to book appointments in {calendar}"),
    ("manage", None): lambda: _("{member} will be able to manage {calendar}, including who has access to it"),
    ("view", "book"): lambda: _("{member} will be able to see {calendar} instead of booking appointments"),
    ("view", "manage"): lambda: _("{member} will be able to see {calendar} instead of managing it"),
    ("book", "view"): lambda: _("{member} will be able to book appointments in {calendar} instead of only seeing it"),
    ("book", "manage"): lambda: _("{member} will be able to book appointments in {calendar} instead of managing it"),
    ("manage", "view"): lambda: _(
        "{member} will be able to manage {calendar}, including who has access to it, instead of only seeing it"
    ),
    ("manage", "book"): lambda: _(
        "{member} will be able to manage {calendar}, including who has access to it, instead of booking appointments"
    ),
    (None, None): lambda: _("{member} will no longer have access to {calendar}"),
}

# What is true once a proposal was carried out, per level (None: the access was removed).
DONE = {
    "view": lambda: _("Done: {member} can now see {calendar}."),
    "book": lambda: _("Done: {member} can now book appointments in {calendar}."),
    "manage": lambda: _("Done: {member} can now manage {calendar} (including who has access to it)."),
    None: lambda: _("Done: {member} no longer has access to {calendar}."),
}

TEXTS = {
    "looking_up": lambda: _("Looking up your practice's members and calendars…"),
    "checking": lambda: _("Checking the current access…"),
    "applying": lambda: _("Applying the change…"),
    "ask_member": lambda: _("Who should this apply to?"),
    "ask_member_among": lambda: _("Which {words} do you mean: {options}?"),
    "ask_calendar": lambda: _("Which calendar: {options}?"),
    "ask_level": lambda: _("Which access should {member} have on {calendar}: {options}?"),
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
    "executed": lambda: _("Done: {summary}."),  # a proposal stored before its done-sentence was (no `done`)
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
        rendered = {name: level_word(language, value) if name == "level" else value for name, value in values.items()}
        return TEXTS[key]().format(**rendered)


def summary_text(
    language: str, *, action: str, member: str, calendar: str, level: str | None, before: str | None
) -> str:
    """A proposal in plain words: "Karim Haddad will be able to book appointments in Consultations Dr Martin"."""
    with translation.override(language):
        key = (None, None) if action == "revoke" else (level, before if action == "change" else None)
        return SUMMARIES[key]().format(member=member, calendar=calendar)


def done_text(language: str, *, action: str, member: str, calendar: str, level: str | None) -> str:
    """What is true once the proposal was carried out: "Done: Karim Haddad can now book appointments in …"."""
    with translation.override(language):
        return DONE[None if action == "revoke" else level]().format(member=member, calendar=calendar)


def outcome_text(language: str, outcome) -> str:
    """What Alfred says once a proposal was carried out or refused (`outcome`: tools.Outcome). An executed
    proposal says its own done-sentence (`outcome.done`, stored with it in the person's language)."""
    if outcome.status == "executed" and outcome.done:
        return outcome.done
    key = {"executed": "executed", "expired": "expired", "rejected": "rejected"}.get(outcome.status)
    if key is None:
        key = {"state_changed": "state_changed", "api_refused": "api_refused"}.get(outcome.code, "failed")
    return say(language, key, summary=outcome.detail, detail=outcome.detail)


def level_word(language: str, level: str) -> str:
    """A level as the form names it ("Book"; "Réserver" in French)."""
    with translation.override(language):
        return LEVEL_WORDS[level]()


def levels_text(language: str) -> str:
    """ "View, Book or Manage", as the form names them, in the person's language."""
    return options_text(language, [level_word(language, level) for level in LEVELS])


def options_text(language: str, names: list[str]) -> str:
    """ "A, B or C" in the person's language."""
    if len(names) <= 1:
        return "".join(names)
    with translation.override(language):
        return ", ".join(names[:-1]) + f" {TEXTS['or']()} " + names[-1]
