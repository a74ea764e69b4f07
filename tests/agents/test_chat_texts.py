"""What Alfred says about a change, in plain words, in English and French: the proposal's summary, the sentence
once it is done, and the level names, which are the form's own ("View", "Book", "Manage")."""

from types import SimpleNamespace

import pytest
from django.utils import translation

from agents.graphs.chat import nodes
from agents.graphs.chat.resolution import resolve_request
from agents.graphs.chat.texts import (
    DONE,
    SUMMARIES,
    TEXTS,
    done_text,
    level_word,
    levels_text,
    outcome_text,
    say,
    summary_text,
)
from agents.graphs.chat.tools import Calendar, Member, Outcome, Practice, Proposal
from agents.providers.base import Slots
from support.models import AccessLevel

NBSP = "\xa0"  # French puts one before a colon
KARIM, CALENDAR = "Karim Haddad", "Consultations Dr Martin"

SUMMARY_CASES = [
    # (action, level, before, English, French)
    (
        "grant",
        "view",
        None,
        "Karim Haddad will be able to see Consultations Dr Martin",
        "Karim Haddad pourra consulter Consultations Dr Martin",
    ),
    (
        "grant",
        "book",
        None,
        "Karim Haddad will be able to book appointments in Consultations Dr Martin",
        "Karim Haddad pourra prendre des rendez-vous dans Consultations Dr Martin",
    ),
    (
        "grant",
        "manage",
        None,
        "Karim Haddad will be able to manage Consultations Dr Martin, including who has access to it",
        "Karim Haddad pourra gérer Consultations Dr Martin, y compris qui y a accès",
    ),
    (
        "change",
        "view",
        "book",
        "Karim Haddad will be able to see Consultations Dr Martin instead of booking appointments",
        "Karim Haddad pourra consulter Consultations Dr Martin au lieu de prendre des rendez-vous",
    ),
    (
        "change",
        "view",
        "manage",
        "Karim Haddad will be able to see Consultations Dr Martin instead of managing it",
        "Karim Haddad pourra consulter Consultations Dr Martin au lieu de le gérer",
    ),
    (
        "change",
        "book",
        "view",
        "Karim Haddad will be able to book appointments in Consultations Dr Martin instead of only seeing it",
        "Karim Haddad pourra prendre des rendez-vous dans Consultations Dr Martin au lieu de seulement le consulter",
    ),
    (
        "change",
        "book",
        "manage",
        "Karim Haddad will be able to book appointments in Consultations Dr Martin instead of managing it",
        "Karim Haddad pourra prendre des rendez-vous dans Consultations Dr Martin au lieu de le gérer",
    ),
    (
        "change",
        "manage",
        "view",
        "Karim Haddad will be able to manage Consultations Dr Martin, including who has access to it, instead of "
        "only seeing it",
        "Karim Haddad pourra gérer Consultations Dr Martin, y compris qui y a accès, au lieu de seulement le consulter",
    ),
    (
        "change",
        "manage",
        "book",
        "Karim Haddad will be able to manage Consultations Dr Martin, including who has access to it, instead of "
        "booking appointments",
        "Karim Haddad pourra gérer Consultations Dr Martin, y compris qui y a accès, au lieu de prendre des "
        "rendez-vous",
    ),
    (
        "revoke",
        None,
        "book",
        "Karim Haddad will no longer have access to Consultations Dr Martin",
        "Karim Haddad n’aura plus accès à Consultations Dr Martin",
    ),
]

DONE_CASES = [
    # (action, level, English, French)
    (
        "grant",
        "view",
        "Done: Karim Haddad can now see Consultations Dr Martin.",
        f"C’est fait{NBSP}: Karim Haddad peut maintenant consulter Consultations Dr Martin.",
    ),
    (
        "change",
        "book",
        "Done: Karim Haddad can now book appointments in Consultations Dr Martin.",
        f"C’est fait{NBSP}: Karim Haddad peut maintenant prendre des rendez-vous dans Consultations Dr Martin.",
    ),
    (
        "grant",
        "manage",
        "Done: Karim Haddad can now manage Consultations Dr Martin (including who has access to it).",
        f"C’est fait{NBSP}: Karim Haddad peut maintenant gérer Consultations Dr Martin (y compris qui y a accès).",
    ),
    (
        "revoke",
        None,
        "Done: Karim Haddad no longer has access to Consultations Dr Martin.",
        f"C’est fait{NBSP}: Karim Haddad n’a plus accès à Consultations Dr Martin.",
    ),
]


@pytest.mark.parametrize(("action", "level", "before", "english", "french"), SUMMARY_CASES)
def test_a_proposal_is_summed_up_in_plain_words(action, level, before, english, french):
    names = {"action": action, "member": KARIM, "calendar": CALENDAR, "level": level, "before": before}
    assert summary_text("en", **names) == english
    assert summary_text("fr", **names) == french


def test_every_summary_is_tested():
    tested = {(None, None) if action == "revoke" else (level, before) for action, level, before, *_ in SUMMARY_CASES}
    assert tested == set(SUMMARIES)


@pytest.mark.parametrize(("action", "level", "english", "french"), DONE_CASES)
def test_a_done_change_says_what_is_now_true(action, level, english, french):
    names = {"action": action, "member": KARIM, "calendar": CALENDAR, "level": level}
    assert done_text("en", **names) == english
    assert done_text("fr", **names) == french


def test_a_grant_and_a_change_to_the_same_level_end_the_same_way():
    grant = done_text("en", action="grant", member=KARIM, calendar=CALENDAR, level="book")
    assert grant == done_text("en", action="change", member=KARIM, calendar=CALENDAR, level="book")
    assert {None if action == "revoke" else level for action, level, *_ in DONE_CASES} == set(DONE)


def test_an_executed_outcome_says_its_done_sentence():
    done = "Done: Karim Haddad can now see Consultations Dr Martin."
    assert outcome_text("en", Outcome("executed", detail="Karim Haddad will be able to see …", done=done)) == done
    # A proposal stored before proposals had a done-sentence still says what was done.
    legacy = Outcome("executed", detail="Karim Haddad: no access → view on Consultations Dr Martin")
    assert outcome_text("en", legacy) == "Done: Karim Haddad: no access → view on Consultations Dr Martin."


@pytest.mark.parametrize("language", ["en", "fr"])
def test_levels_are_named_as_the_form_names_them(language):
    with translation.override(language):
        labels = {level.value: str(level.label) for level in AccessLevel}
    assert {level: level_word(language, level) for level in ("view", "book", "manage")} == labels


@pytest.mark.parametrize(
    ("language", "levels", "question", "already"),
    [
        (
            "en",
            "View, Book or Manage",
            "Which access should Karim Haddad have on Consultations Dr Martin: View, Book or Manage?",
            "Karim Haddad already has Book access to Consultations Dr Martin. Nothing to change.",
        ),
        (
            "fr",
            "Consulter, Réserver ou Gérer",
            f"Quel accès donner à Karim Haddad sur Consultations Dr Martin{NBSP}: Consulter, Réserver ou Gérer{NBSP}?",
            "Karim Haddad a déjà l’accès « Réserver » à Consultations Dr Martin. Rien à modifier.",
        ),
    ],
)
def test_sentences_that_name_a_level_use_the_form_words(language, levels, question, already):
    assert levels_text(language) == levels
    assert say(language, "ask_level", member=KARIM, calendar=CALENDAR, options=levels) == question
    assert say(language, "already", member=KARIM, level="book", calendar=CALENDAR).replace("\u202f", " ").replace(
        NBSP, " "
    ) == already.replace(NBSP, " ")


def test_every_sentence_has_a_french_translation():
    sentences = [*TEXTS.values(), *SUMMARIES.values(), *DONE.values()]
    for sentence in sentences:
        with translation.override("en"):
            english = sentence()
        with translation.override("fr"):
            french = sentence()
        assert french != english or english == "", english


# --- the nodes: propose stores both sentences, execute says the done-sentence ----------------------------------

ME = Member(id=1, name="Claire Martin")
MEMBER = Member(id=2, name=KARIM)
CAL = Calendar(id=10, name=CALENDAR, owner_id=1, owner_name="Claire Martin", my_level="manage")


class FakeTools:
    """Records what the graph says and stores; `level` is Karim's current level on the calendar."""

    def __init__(self, level=None):
        self.level = level
        self.said: list[str] = []
        self.asked: list[dict] = []
        self.proposed: dict = {}

    def status(self, text):
        pass

    def practice(self):
        return Practice(me=ME, members=[ME, MEMBER], calendars=[CAL])

    def current_level(self, *, calendar_id, member_id):
        return self.level

    def say(self, text, *, key="", citations=None):
        self.said.append(text)

    def ask(self, *, question, field, options):
        self.asked.append({"question": question, "field": field, "options": options})

    def propose(self, **values):
        self.proposed = {**values, "said_before": list(self.said)}
        return Proposal(id=7, hash="h", summary=values["summary"])

    def execute(self, *, proposal_id):
        return Outcome("executed", detail=self.proposed["summary"], done=self.proposed["done"])


def runtime(tools):
    return SimpleNamespace(context=SimpleNamespace(tools=tools))


@pytest.mark.parametrize(
    ("language", "proposal_message", "done"),
    [
        (
            "en",
            "Here is the change I can make: Karim Haddad will be able to book appointments in Consultations Dr Martin "
            "instead of only seeing it. Please confirm or reject it.",
            "Done: Karim Haddad can now book appointments in Consultations Dr Martin.",
        ),
        (
            "fr",
            f"Voici la modification que je peux faire{NBSP}: Karim Haddad pourra prendre des rendez-vous dans "
            "Consultations Dr Martin au lieu de seulement le consulter. Veuillez la confirmer ou la rejeter.",
            f"C’est fait{NBSP}: Karim Haddad peut maintenant prendre des rendez-vous dans Consultations Dr Martin.",
        ),
    ],
)
def test_propose_stores_the_summary_and_the_done_sentence_and_execute_says_it(language, proposal_message, done):
    tools = FakeTools(level="view")
    change = {"action": "change", "calendar_id": CAL.id, "member_id": MEMBER.id, "level": "book", "before": "view"}
    state = {"language": language, "pending_change": change, "message_id": 3}

    assert nodes.propose(state, runtime(tools)) == {"proposal_id": 7, "question": ""}
    assert tools.said == [proposal_message]
    assert tools.proposed["said_before"] == [proposal_message]  # the message comes before its form
    assert tools.proposed["done"] == done

    nodes.execute({**state, "proposal_id": 7}, runtime(tools))
    assert tools.said[-1] == done


def test_the_level_question_offers_the_form_words():
    tools = FakeTools()
    slots = Slots(action="grant", member=KARIM, calendar=CALENDAR)

    verdict = resolve_request(slots, language="fr", tools=tools)

    assert verdict.question == "level"
    assert tools.asked[0]["question"] == (
        f"Quel accès donner à Karim Haddad sur Consultations Dr Martin{NBSP}: Consulter, Réserver ou Gérer{NBSP}?"
    )
