"""Load and validate an evaluation dataset (../shared/DATASET.md) into plain, checked data.

Any file in the format is accepted; anything else is refused with every problem listed, each naming
its field (`cases[3] (grant-fr).expect.grants.novak-main.tim: unknown member`), so a typo in a dataset
is never silently scored as a pass. Keys are checked strictly: an unknown key is an error, not ignored.
"""

from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROLES = ("practitioner", "secretary", "assistant", "admin")
LEVELS = ("view", "book", "manage")
INTENTS = ("calendar_access", "knowledge", "handoff", "other")
EXPECT_KEYS = ("intent", "grants", "cites", "cites_any", "not_cites", "handoff", "not_intent")


class DatasetError(Exception):
    """The file cannot be evaluated: unreadable, not YAML, or not in the dataset format."""

    def __init__(self, path: Path | str, problems: list[str]):
        self.path = str(path)
        self.problems = problems
        listed = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"{self.path} is not a valid evaluation dataset:\n{listed}")


@dataclass(frozen=True)
class Member:
    key: str
    name: str
    email: str
    role: str
    organization: str  # the organization's key


@dataclass(frozen=True)
class CalendarSpec:
    key: str
    name: str
    owner: str  # a member key
    organization: str


@dataclass(frozen=True)
class GrantSpec:
    calendar: str
    member: str
    level: str


@dataclass(frozen=True)
class Organization:
    key: str
    name: str


@dataclass
class World:
    organizations: list[Organization] = field(default_factory=list)
    members: dict[str, Member] = field(default_factory=dict)  # by key, in file order
    calendars: dict[str, CalendarSpec] = field(default_factory=dict)
    grants: list[GrantSpec] = field(default_factory=list)
    articles: Path | None = None  # the folder of Markdown articles, resolved against the dataset's folder

    def level(self, calendar: str, member: str) -> str | None:
        """A member's access to a calendar as the world is written: manage for its owner (implicit)."""
        if self.calendars[calendar].owner == member:
            return "manage"
        return next((g.level for g in self.grants if g.calendar == calendar and g.member == member), None)


@dataclass(frozen=True)
class Turn:
    say: str | None = None
    confirm: bool | None = None

    @property
    def kind(self) -> str:
        return "say" if self.say is not None else "confirm"


@dataclass(frozen=True)
class Case:
    id: str
    member: str  # the `as` member: the person chatting
    turns: tuple[Turn, ...]
    expect: dict  # validated; `grants` is {calendar key: {member key: level or None}}


@dataclass
class Dataset:
    path: Path
    world: World
    cases: list[Case]


class _Checker:
    """Collects problems, each prefixed with the path of the field it is about."""

    def __init__(self):
        self.problems: list[str] = []

    def problem(self, where: str, text: str) -> None:
        self.problems.append(f"{where}: {text}")

    def mapping(self, value, where: str, *, required: tuple = (), optional: tuple = ()) -> dict | None:
        if not isinstance(value, dict):
            self.problem(where, f"expected a mapping, got {_kind(value)}")
            return None
        for key in required:
            if key not in value:
                self.problem(where, f"missing required key `{key}`")
        for key in value:
            if key not in required and key not in optional:
                allowed = ", ".join(required + optional)
                self.problem(f"{where}.{key}", f"unknown key (allowed here: {allowed})")
        return value

    def text(self, value, where: str) -> str | None:
        if not isinstance(value, str) or not value.strip():
            self.problem(where, f"expected a non-empty string, got {_kind(value)}")
            return None
        return value

    def listing(self, value, where: str, *, allow_empty: bool = True) -> list:
        if value is None and allow_empty:
            return []
        if not isinstance(value, list):
            self.problem(where, f"expected a list, got {_kind(value)}")
            return []
        if not value and not allow_empty:
            self.problem(where, "expected at least one item")
        return value

    def choice(self, value, where: str, choices: tuple) -> str | None:
        if value not in choices:
            self.problem(where, f"expected one of {', '.join(choices)}, got {value!r}")
            return None
        return value

    def unique(self, key: str, seen: dict, where: str, what: str) -> bool:
        if key in seen:
            self.problem(where, f"duplicate {what} key {key!r} (keys must be unique in the file)")
            return False
        return True


def _kind(value) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


def load_dataset(path: str | Path) -> Dataset:
    """Read and validate a dataset file. Raises DatasetError listing every problem found."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise DatasetError(path, [f"cannot read the file: {error.strerror or error}"]) from error
    except UnicodeDecodeError as error:
        raise DatasetError(path, [f"the file is not UTF-8 text: {error}"]) from error
    except yaml.YAMLError as error:
        raise DatasetError(path, [f"not valid YAML: {error}"]) from error
    checker = _Checker()
    top = checker.mapping(raw, "(top level)", required=("world", "cases"))
    if top is None or "world" not in top:
        raise DatasetError(path, checker.problems)
    world = _world(checker, top["world"], path.parent)
    cases = _cases(checker, top.get("cases"), world) if "cases" in top else []
    if checker.problems:
        raise DatasetError(path, checker.problems)
    return Dataset(path=path, world=world, cases=cases)


def _world(checker: _Checker, raw, folder: Path) -> World:
    world = World()
    spec = checker.mapping(raw, "world", required=("organizations",), optional=("articles",))
    if spec is None:
        return world
    organizations = checker.listing(spec.get("organizations"), "world.organizations", allow_empty=False)
    for index, organization in enumerate(organizations):
        _organization(checker, organization, f"world.organizations[{index}]", world)
    if spec.get("articles") is not None and checker.text(spec["articles"], "world.articles"):
        world.articles = (folder / spec["articles"]).resolve()
    return world


def _organization(checker: _Checker, raw, where: str, world: World) -> None:
    spec = checker.mapping(raw, where, required=("key", "name"), optional=("members", "calendars", "grants"))
    if spec is None:
        return
    key, name = checker.text(spec.get("key"), f"{where}.key"), checker.text(spec.get("name"), f"{where}.name")
    if key is None or name is None:
        return
    if any(org.key == key for org in world.organizations):
        checker.problem(f"{where}.key", f"duplicate organization key {key!r}")
        return
    world.organizations.append(Organization(key=key, name=name))
    for index, member in enumerate(checker.listing(spec.get("members"), f"{where}.members")):
        _member(checker, member, f"{where}.members[{index}]", key, world)
    for index, calendar in enumerate(checker.listing(spec.get("calendars"), f"{where}.calendars")):
        _calendar(checker, calendar, f"{where}.calendars[{index}]", key, world)
    for index, grant in enumerate(checker.listing(spec.get("grants"), f"{where}.grants")):
        _grant(checker, grant, f"{where}.grants[{index}]", key, world)


def _member(checker: _Checker, raw, where: str, organization: str, world: World) -> None:
    spec = checker.mapping(raw, where, required=("key", "name", "role"), optional=("email",))
    if spec is None:
        return
    key, name = checker.text(spec.get("key"), f"{where}.key"), checker.text(spec.get("name"), f"{where}.name")
    role = checker.choice(spec.get("role"), f"{where}.role", ROLES)
    email = spec.get("email", f"{key}@{organization}.example")
    if "email" in spec and (checker.text(email, f"{where}.email") is None or "@" not in email):
        checker.problem(f"{where}.email", f"expected an e-mail address, got {email!r}")
    if None in (key, name, role) or not checker.unique(key, world.members, f"{where}.key", "member"):
        return
    world.members[key] = Member(key=key, name=name.strip(), email=str(email), role=role, organization=organization)


def _calendar(checker: _Checker, raw, where: str, organization: str, world: World) -> None:
    spec = checker.mapping(raw, where, required=("key", "name", "owner"))
    if spec is None:
        return
    key, name = checker.text(spec.get("key"), f"{where}.key"), checker.text(spec.get("name"), f"{where}.name")
    owner = checker.text(spec.get("owner"), f"{where}.owner")
    if owner is not None and _member_of(checker, owner, organization, world, f"{where}.owner") is None:
        owner = None
    if None in (key, name, owner) or not checker.unique(key, world.calendars, f"{where}.key", "calendar"):
        return
    world.calendars[key] = CalendarSpec(key=key, name=name.strip(), owner=owner, organization=organization)


def _grant(checker: _Checker, raw, where: str, organization: str, world: World) -> None:
    spec = checker.mapping(raw, where, required=("calendar", "member", "level"))
    if spec is None:
        return
    calendar_key = checker.text(spec.get("calendar"), f"{where}.calendar")
    member_key = checker.text(spec.get("member"), f"{where}.member")
    level = checker.choice(spec.get("level"), f"{where}.level", LEVELS)
    calendar = world.calendars.get(calendar_key) if calendar_key else None
    if calendar_key and (calendar is None or calendar.organization != organization):
        known = ", ".join(k for k, c in world.calendars.items() if c.organization == organization) or "none"
        checker.problem(f"{where}.calendar", f"no calendar {calendar_key!r} in this organization (known: {known})")
    member = _member_of(checker, member_key, organization, world, f"{where}.member") if member_key else None
    if None in (calendar, member, level) or calendar.organization != organization:
        return
    if calendar.owner == member_key:
        checker.problem(where, f"{member_key!r} owns {calendar_key!r}: an owner's access is implicit, not a grant")
    elif any(g.calendar == calendar_key and g.member == member_key for g in world.grants):
        checker.problem(where, f"a second grant of {calendar_key!r} to {member_key!r}")
    else:
        world.grants.append(GrantSpec(calendar=calendar_key, member=member_key, level=level))


def _member_of(checker: _Checker, key: str, organization: str, world: World, where: str) -> Member | None:
    member = world.members.get(key)
    if member is None or member.organization != organization:
        known = ", ".join(k for k, m in world.members.items() if m.organization == organization) or "none"
        checker.problem(where, f"no member {key!r} in this organization (known: {known})")
        return None
    return member


def _cases(checker: _Checker, raw, world: World) -> list[Case]:
    cases: list[Case] = []
    for index, item in enumerate(checker.listing(raw, "cases", allow_empty=False)):
        where = f"cases[{index}]"
        if isinstance(item, dict) and isinstance(item.get("id"), str):
            where = f"{where} ({item['id']})"
        case = _case(checker, item, where, world)
        if case is None:
            continue
        if any(other.id == case.id for other in cases):
            checker.problem(f"{where}.id", f"duplicate case id {case.id!r}")
            continue
        cases.append(case)
    return cases


def _case(checker: _Checker, raw, where: str, world: World) -> Case | None:
    spec = checker.mapping(raw, where, required=("id", "as", "turns"), optional=("expect",))
    if spec is None:
        return None
    case_id = checker.text(spec.get("id"), f"{where}.id")
    member = checker.text(spec.get("as"), f"{where}.as")
    if member is not None and member not in world.members:
        checker.problem(f"{where}.as", f"unknown member {member!r} (members: {', '.join(world.members)})")
        member = None
    turns = [
        _turn(checker, turn, f"{where}.turns[{index}]")
        for index, turn in enumerate(checker.listing(spec.get("turns"), f"{where}.turns", allow_empty=False))
    ]
    expect = _expect(checker, spec.get("expect", {}), f"{where}.expect", world)
    if case_id is None or member is None or expect is None or None in turns:
        return None
    return Case(id=case_id, member=member, turns=tuple(turns), expect=expect)


def _turn(checker: _Checker, raw, where: str) -> Turn | None:
    if not isinstance(raw, dict) or len(raw) != 1 or next(iter(raw)) not in ("say", "confirm"):
        checker.problem(where, f"a turn is exactly one of `say: text` or `confirm: true|false`, got {raw!r}")
        return None
    if "say" in raw:
        text = checker.text(raw["say"], f"{where}.say")
        return Turn(say=text) if text is not None else None
    if not isinstance(raw["confirm"], bool):
        checker.problem(f"{where}.confirm", f"expected true or false, got {raw['confirm']!r}")
        return None
    return Turn(confirm=raw["confirm"])


def _expect(checker: _Checker, raw, where: str, world: World) -> dict | None:
    if raw is None:
        return {}
    spec = checker.mapping(raw, where, optional=EXPECT_KEYS)
    if spec is None:
        return None
    count = len(checker.problems)
    expect: dict = {}
    for key in ("intent", "not_intent"):
        if key in spec:
            expect[key] = checker.choice(spec[key], f"{where}.{key}", INTENTS)
    if "handoff" in spec:
        if not isinstance(spec["handoff"], bool):
            checker.problem(f"{where}.handoff", f"expected true or false, got {spec['handoff']!r}")
        expect["handoff"] = spec["handoff"]
    for key in ("cites", "cites_any", "not_cites"):
        if key in spec:
            slugs = checker.listing(spec[key], f"{where}.{key}", allow_empty=False)
            for index, slug in enumerate(slugs):
                checker.text(slug, f"{where}.{key}[{index}]")
            expect[key] = [str(slug) for slug in slugs]
    if "grants" in spec:
        expect["grants"] = _expected_grants(checker, spec["grants"], f"{where}.grants", world)
    return expect if len(checker.problems) == count else None


def _expected_grants(checker: _Checker, raw, where: str, world: World) -> dict:
    grants: dict = {}
    if not isinstance(raw, dict) or not raw:
        checker.problem(where, f"expected a mapping {{calendar key: {{member key: level or null}}}}, got {raw!r}")
        return grants
    for calendar, levels in raw.items():
        if calendar not in world.calendars:
            checker.problem(f"{where}.{calendar}", f"unknown calendar (calendars: {', '.join(world.calendars)})")
            continue
        if not isinstance(levels, dict) or not levels:
            checker.problem(f"{where}.{calendar}", f"expected a mapping {{member key: level or null}}, got {levels!r}")
            continue
        for member, level in levels.items():
            if member not in world.members:
                checker.problem(f"{where}.{calendar}.{member}", f"unknown member (members: {', '.join(world.members)})")
            elif level is not None and level not in LEVELS:
                checker.problem(f"{where}.{calendar}.{member}", f"expected view, book, manage or null, got {level!r}")
        grants[calendar] = dict(levels)
    return grants
