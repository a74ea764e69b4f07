"""Slot extraction without a generative model: action, member, calendar, owner and level from the words
of one message, matched against the practice's real names (accent- and case-insensitive).

Members are returned as the words the person used ("Tom" stays "Tom" even though it may mean Tom Fisher
or Tomas Reyes): the graph's `resolve` step decides, with `match_candidates`. A calendar is returned by
its real name when the person's words (with bilingual synonyms: "mon agenda de chirurgie" -> "Dr Novak
surgery") and its owner ("my", "Dr Okafor's", "l'agenda du Dr Okafor") single it out, else as the
words used, else not at all.
"""

import re
from dataclasses import dataclass

from agents.providers.base import Candidate, SlotContext, Slots
from agents.providers.offline.intents import ACCESS_NOUN, SELF_REQUEST
from agents.providers.offline.matching import CONCEPTS, PREFIX, STOPWORDS, concept, concepts_match, score_candidate
from agents.providers.offline.text import ENGLISH_WORDS, FRENCH_WORDS, Token, fold, nfc, tokenize, word_set
from agents.providers.offline.text import words as word_list

LEVELS = ("view", "book", "manage")
SELF = "me"  # the member slot when the person asks access for themselves
_FOR_ME = re.compile(r"\b(give me|grant me|let me|donnez-moi|donne-moi|accordez-moi)\b")
_LEVEL_PATTERNS = {
    "manage": re.compile(
        r"\bmanag(e|es|er|ing|ement)\b|\bfull (access|rights|control|permissions?)\b|\badmin(istrator)?\b"
        r"|\bger(er|e|ez)\b|\bgestion(naire)?\b|\bacces (complet|total)\b|\btous les droits\b|\bcontrole total\b"
    ),
    "book": re.compile(
        r"\b(appointments? )?book(s|ed|ing|ings)?( (appointments?|patients?|slots?))?\b"
        r"|\bschedul(e|ing) (appointments?|patients?)\b|\b(make|add|create|take) (appointments?|bookings?)\b"
        r"|\breserv(er|e|ez|ation|ations)\b|\bprendre (des )?(rendez-vous|rdv)\b|\bprise de (rendez-vous|rdv)\b"
        r"|\bplanifier\b"
    ),
    "view": re.compile(
        r"\bview(s|ing|er)?\b|\bview-only\b|\bsee(ing)?\b|\blook( at)?\b|\bread(-only| only|ing)?\b"
        r"|\blecture( seule)?\b|\bvoi(r|t)\b|\bconsult(er|e)\b|\ben consultation\b|\bvisualis(er|ation)\b"
    ),
}
_NEGATED = re.compile(r"\b(instead of|rather than|not|pas|au lieu de|plutot que|from|sans)\s+(\S+\s+)?$")
_TARGETED = re.compile(r"\b(to|into|en|as)\s+$")
_ACTIONS = {
    "revoke": re.compile(
        r"\b(remove|removes|revoke|withdraw|delete|unshare|take away|take off|cut off|stop sharing|no longer"
        r"|not anymore|anymore|should not|shouldn't|must not|mustn't)\b|\b(retir|supprim|enlev|ot|revoqu)(e|er|ez)\b"
        r"|\bne \w+ plus\b|\bn'\w+ plus\b|\bne plus\b"
    ),
    "change": re.compile(
        r"\b(change|modify|upgrade|downgrade|switch|update|promote|demote|bump)\b|\b(modifi|chang)(e|er|ez)\b"
        r"|(?<!mot de )\bpass(e|er|ez)\b"
    ),
    "grant": re.compile(
        r"\b(give|grant|let|allow|add|share|enable|provide)\b|\b(donn|accord|autoris|partag|ajout)(e|er|ez)\b"
    ),
}
_EVERYONE = re.compile(r"\b(everyone|everybody|all (the )?(staff|members|users)|tout le monde|toute l'equipe)\b")
_MINE = re.compile(r"\b(mine|le mien|la mienne)\b")
_CALENDAR_WORDS = word_set("calendar calendars agenda agendas calendrier planning schedule diary one")
_MY = word_set("my mon ma mes")
_DOCTOR = word_set("dr doctor docteur doc pr prof professor")
_OF = word_set("of de du d")
_ACCESS_WORDS = word_set("access acces rights right permission permissions droits droit")
LEVEL_WORDS = word_set("view viewing see book booking manage managing read lecture gestion")
_CALENDAR_QUESTION = re.compile(r"\b(calendars?|agendas?|calendriers?)\b")
_MEMBER_QUESTION = re.compile(r"\b(who|whom|qui|members?|membres?|person|personne)\b")
NOT_NAMES = (
    STOPWORDS
    | ENGLISH_WORDS
    | FRENCH_WORDS
    | frozenset(CONCEPTS)
    | word_set(
        "i give grant let allow add share remove revoke change upgrade downgrade please system show tell ignore "
        "actually instead sorry okay ok yes no oui non plutot finalement fait donne accorde autorise partage "
        "retire supprime enleve modifie passe everyone everybody"
    )
)


@dataclass(frozen=True)
class Run:
    """Adjacent name-like words: a member, or a calendar's owner."""

    tokens: tuple[Token, ...]
    text: str
    known: bool  # at least one word belongs to a real member's name


def find_level(text: str, folded: str, action: str | None) -> tuple[str | None, list[tuple[int, int]]]:
    """The access level asked for and the spans its words took ("book appointments" is a level,
    not a calendar). Negated levels ("instead of view", "from manage") are left out; of the rest,
    a change takes the target ("to view"), anything else the highest level."""
    found: list[tuple[int, str, bool]] = []
    spans: list[tuple[int, int]] = []
    for level, pattern in _LEVEL_PATTERNS.items():
        for match in pattern.finditer(folded):
            spans.append(match.span())
            if not _NEGATED.search(folded[: match.start()]):
                found.append((match.start(), level, bool(_TARGETED.search(folded[: match.start()]))))
    if not found:
        return None, spans
    targeted = sorted(item for item in found if item[2])
    if action == "change" and targeted:
        return targeted[-1][1], spans
    return max(found, key=lambda item: (LEVELS.index(item[1]), item[0]))[1], spans


def find_action(folded: str) -> str | None:
    for action in ("revoke", "change", "grant"):
        if _ACTIONS[action].search(folded):
            return action
    return None


def _sentence_start(text: str, tokens: list[Token], position: int) -> bool:
    if position == 0:
        return True
    return bool(re.search(r"[.!?:;]", text[tokens[position - 1].end : tokens[position].start]))


def _adjacent(text: str, left: Token, right: Token) -> bool:
    return text[left.end : right.start].strip() == ""


def name_runs(text: str, tokens: list[Token], members: list[Candidate]) -> list[Run]:
    """Runs of adjacent words that are real members' names (or prefixes of them, "Tom" for Tomas) or
    capitalised words that look like names of people not in the practice ("Sam Carter")."""
    name_words = {word for member in members for word in word_list(member.name)}
    runs: list[list[tuple[Token, bool]]] = []
    for position, token in enumerate(tokens):
        initial = _sentence_start(text, tokens, position)
        known = _is_known_name(token, initial, name_words)
        unknown = not known and token.capitalized and token.key not in NOT_NAMES and len(token.key) > 1
        if not (known or unknown):
            continue
        if runs and runs[-1][-1][0] is tokens[position - 1] and _adjacent(text, tokens[position - 1], token):
            runs[-1].append((token, known))
        else:
            runs.append([(token, known)])
    return [_as_run(text, trimmed) for run in runs if (trimmed := _drop_initial_word(text, tokens, run))]


def _drop_initial_word(text: str, tokens: list[Token], run: list[tuple[Token, bool]]) -> list[tuple[Token, bool]]:
    """A capitalised unknown word opening a sentence is a name only when another unknown capitalised word
    follows ("Sam Carter needs ..."), not in "Take away Tom's access" or "Switch Léa to view"."""
    token, known = run[0]
    if known or not _sentence_start(text, tokens, tokens.index(token)):
        return run
    if len(run) > 1 and not run[1][1]:
        return run
    return run[1:]


def _is_known_name(token: Token, initial: bool, name_words: set[str]) -> bool:
    if token.key in name_words:
        return token.key not in NOT_NAMES or (token.capitalized and not initial)
    if not token.capitalized or len(token.key) < PREFIX or token.key in NOT_NAMES:
        return False
    return any(word.startswith(token.key) for word in name_words)


def _as_run(text: str, run: list[tuple[Token, bool]]) -> Run:
    tokens = tuple(token for token, _ in run)
    return Run(tokens, text[tokens[0].start : tokens[-1].end], any(known for _, known in run))


def is_owner(run: Run, text: str, tokens: list[Token], *, calendar_answer: bool, calendars: list[Candidate]) -> bool:
    """Whether a name run names a calendar's owner ("Dr Okafor", "Ben's calendar", "l'agenda de Ben")
    rather than the member who gets access ("Tom Fisher's access")."""
    first = tokens.index(run.tokens[0])
    last = tokens.index(run.tokens[-1])
    before = [token.key for token in tokens[max(0, first - 2) : first]]
    if before and before[-1] in _DOCTOR:
        return True
    if len(before) == 2 and before[1] in _OF and (before[0] in _CALENDAR_WORDS or before[0] in CONCEPTS):
        return True
    if re.match(r"'s?\b|'(?=\s|$)", fold(text)[run.tokens[-1].end :]):
        following = [token.key for token in tokens[last + 1 : last + 5] if token.key != "s"]
        return not any(word in _ACCESS_WORDS or word in LEVEL_WORDS for word in following[:3])
    return calendar_answer and owns_a_calendar(run.text, calendars)


def owns_a_calendar(words: str, calendars: list[Candidate]) -> bool:
    return any(score_candidate(words, Candidate(cal.id, cal.extra))[0] >= PREFIX for cal in calendars)


def find_owner_me(tokens: list[Token], folded: str) -> bool:
    """ "my calendar", "my surgery one", "mon agenda", "mine", "le mien"."""
    if _MINE.search(folded):
        return True
    for position, token in enumerate(tokens):
        if token.key in _MY:
            following = [other.key for other in tokens[position + 1 : position + 5]]
            if any(word in _CALENDAR_WORDS or word in CONCEPTS for word in following):
                return True
    return False


def _is_me(owner: str, me: str) -> bool:
    return bool(me) and score_candidate(owner, Candidate(0, me))[0] >= PREFIX


def calendars_of(owner: str | None, context: SlotContext) -> list[Candidate]:
    """The calendars `owner` ("me" or a name) may mean; all of them when no owner was said."""
    if owner is None:
        return list(context.calendars)
    if owner == "me":
        if not context.me:
            return list(context.calendars)
        return [cal for cal in context.calendars if _is_me(cal.extra, context.me)]
    return [
        cal
        for cal in context.calendars
        if score_candidate(owner, Candidate(cal.id, cal.extra))[0] >= PREFIX
        or score_candidate(owner, Candidate(cal.id, cal.name))[0] >= PREFIX
    ]


def _descriptor_score(descriptors: list[str], calendar: Candidate) -> int:
    name_words = set(word_list(calendar.name))
    score = 0
    for word in descriptors:
        if word in name_words or any(concept(word) and concept(word) == concept(name) for name in name_words):
            score += 2
        elif any(concepts_match(word, name) for name in name_words):
            score += 1
    return score


def resolve_calendar(descriptors: list[Token], owner: str | None, context: SlotContext) -> str | None:
    """The real calendar name when the words and the owner single one out, else the words themselves."""
    pool = calendars_of(owner, context)
    if descriptors:
        keys = [token.key for token in descriptors]
        scored = [(_descriptor_score(keys, cal), cal) for cal in pool]
        best = max((score for score, _ in scored), default=0)
        winners = [cal for score, cal in scored if score == best and score > 0]
        if len(winners) == 1:
            return winners[0].name
        return " ".join(token.text for token in descriptors)
    if owner is not None and len(pool) == 1:
        return pool[0].name
    return None


def _full_calendar_name(folded: str, calendars: list[Candidate]) -> Candidate | None:
    for calendar in calendars:
        name = " ".join(fold(calendar.name).split())
        if name and re.search(rf"\b{re.escape(name)}\b", folded):
            return calendar
    return None


@dataclass
class Reading:
    """Everything one message says, before merging with what was understood before."""

    action: str | None = None
    level: str | None = None
    member: str | None = None
    owner: str | None = None  # "me" or the owner's name as said
    access_noun: bool = False
    descriptors: tuple[Token, ...] = ()
    full_calendar: str | None = None


def _calendar_answer(question: str) -> bool:
    folded = fold(question)
    return bool(_CALENDAR_QUESTION.search(folded)) and not _MEMBER_QUESTION.search(folded)


def _negated(run: Run, tokens: list[Token]) -> bool:
    position = tokens.index(run.tokens[0])
    return position > 0 and tokens[position - 1].key in {"not", "pas"}


def _owner_words(run: Run, context: SlotContext) -> str:
    return "me" if _is_me(run.text, context.me) else run.text


def _covered(token: Token, spans: list[tuple[int, int]]) -> bool:
    return any(start < token.end and token.start < end for start, end in spans)


def read_message(text: str, context: SlotContext) -> Reading:
    """What one message says about each slot, on its own."""
    text = nfc(text)
    folded = fold(text)
    tokens = tokenize(text)
    action = find_action(folded)
    level, spans = find_level(text, folded, action)
    reading = Reading(action=action, level=level, access_noun=bool(ACCESS_NOUN.search(folded)))
    answer = bool(context.question) and _calendar_answer(context.question)
    runs = [run for run in name_runs(text, tokens, context.members) if not _negated(run, tokens)]
    owners = [run for run in runs if is_owner(run, text, tokens, calendar_answer=answer, calendars=context.calendars)]
    members = [run for run in runs if run not in owners]
    if members:
        reading.member = members[0].text
    elif everyone := _EVERYONE.search(folded):
        reading.member = text[everyone.start() : everyone.end()]
    elif _FOR_ME.search(folded) or (SELF_REQUEST.search(folded) and action is None):
        # "I'd like manage access to…" (no giving verb) or "give me…": the person asks for themselves,
        # and the graph says why it cannot. "Je voudrais partager mon agenda" gives to someone not named yet.
        reading.member = SELF
    if owners:
        reading.owner = _owner_words(owners[0], context)
    elif find_owner_me(tokens, folded):
        reading.owner = "me"
    spans += [(run.tokens[0].start, run.tokens[-1].end) for run in runs]
    if full := _full_calendar_name(folded, context.calendars):
        reading.full_calendar = full.name
    reading.descriptors = tuple(t for t in tokens if t.key in CONCEPTS and not _covered(t, spans))
    return reading


def merge(reading: Reading, previous: Slots | None, context: SlotContext) -> Slots:
    """The new message's slots over the previous ones: only what the message says is replaced. A level
    correction ("actually, make it booking", "change it to view") keeps the earlier action."""
    before = previous or Slots()
    action = before.action
    if reading.action and not (before.action and reading.action == "change" and reading.level):
        action = reading.action
    owner = reading.owner or before.calendar_owner
    calendar = before.calendar
    if reading.full_calendar:
        calendar = reading.full_calendar
    elif reading.descriptors or reading.owner:
        calendar = resolve_calendar(list(reading.descriptors), owner, context)
    level = reading.level or before.level
    if action == "revoke" and reading.level and not reading.action:
        action = "change"  # "remove his access" then "actually, just view": a downgrade
    if action is None and (level or reading.access_noun):
        action = "grant"
    if action == "revoke":
        level = None  # removing access removes every level
    member = reading.member or before.member
    return Slots(
        action=action,
        member=member[:200] if member else None,
        calendar=calendar[:200] if calendar else None,
        calendar_owner=owner[:200] if owner else None,
        level=level,
    )


def extract(text: str, context: SlotContext) -> Slots:
    """The calendar-access request in `text`, merged over `context.previous` (answers, corrections)."""
    return merge(read_message(text, context), context.previous, context)
