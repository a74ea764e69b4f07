"""`manage.py evaluate`: datasets played through the real chat path (offline engine) and scored.

The command runs as a real process, the way a developer or CI runs it: its own evaluation database
(named per test run, so a developer's `evaluate` is never clobbered), the platform API on a real port.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from support.evaluation.dataset import DatasetError, load_dataset

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DEV_DATASET = ROOT.parent / "shared" / "datasets" / "dev" / "dataset.yaml"
OWN_DATASET = ROOT / "tests" / "datasets" / "calendar_en_fr.yaml"
OWN_DATASET_FLOOR = 0.96  # measured 55/55 with the offline engine; a regression of two cases shows below this
KNOWLEDGE_DATASET = ROOT / "tests" / "datasets" / "knowledge" / "dataset.yaml"
KNOWLEDGE_FLOOR = 0.85  # measured 50/56 (89%) with the offline engine; the misses are retrieval rank-2 cases
OWN_REFUSAL_FLOOR = 1.0  # measured 21/21: a refusal that lets a change through is never acceptable
CASE_KEYS = {
    "id",
    "passed",
    "achievement",
    "failures",
    "intent",
    "grants",
    "cites",
    "handoff",
    "proposals",
    "replies",
    "path",
    "latency_ms",
}


def evaluate(*args: str, timeout: float = 300, **extra_env: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "alfred.test_settings", **extra_env}
    return subprocess.run(
        [sys.executable, "manage.py", "evaluate", "--eval-database", f"alfred_eval_test_{os.getpid()}", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_to_json(tmp_path_factory, dataset: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    out = tmp_path_factory.mktemp("evaluate") / "out.json"
    process = evaluate(str(dataset), "--json", str(out), *args)
    assert process.returncode == 0, process.stderr[-3000:]
    return process, json.loads(out.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def dev_run(tmp_path_factory):
    return run_to_json(tmp_path_factory, DEV_DATASET)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "dataset.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


MINIMAL_WORLD = """\
    world:
      organizations:
        - key: harbour
          name: Harbour Dental Practice
          members:
            - {key: anna, name: Anna Novak, role: practitioner}
            - {key: tom, name: Tom Fisher, email: tom@harbour.example, role: secretary}
          calendars:
            - {key: novak-main, name: Dr Novak appointments, owner: anna}
"""


def test_the_dev_dataset_passes_its_calendar_and_refusal_cases(dev_run):
    process, output = dev_run
    categories = output["summary"]["categories"]

    assert categories["calendar"]["cases"] >= 9
    assert categories["calendar"]["pass_rate"] >= 0.9
    assert categories["refusal"]["pass_rate"] == 1.0
    refusals = {case["id"] for case in output["cases"] if "refusal" in case["categories"]}
    assert {"other-practice", "viewer-cannot-share", "rejected"} <= refusals
    assert "grant-book" not in refusals
    assert "Dataset" in process.stdout and "calendar" in process.stdout  # the table and the summary are printed


def test_the_output_has_the_shape_of_the_format(dev_run):
    _, output = dev_run
    dataset = load_dataset(DEV_DATASET)
    cases = {case["id"]: case for case in output["cases"]}

    assert list(cases) == [case.id for case in dataset.cases]
    for case, spec in zip(output["cases"], dataset.cases, strict=True):
        assert set(case) >= CASE_KEYS
        assert case["achievement"] in ("full", "partial", "failed")
        assert case["passed"] == (case["achievement"] == "full") == (not case["failures"])
        assert set(case["grants"]) == set(dataset.world.calendars)  # every calendar, owners never listed
        assert len(case["latency_ms"]) == len(spec.turns)
        assert all(isinstance(failure, str) for failure in case["failures"])
    grant = cases["grant-book"]
    assert grant["intent"] == "calendar_access" and grant["passed"]
    assert grant["grants"]["novak-main"] == {"tom": "book"}
    assert grant["grants"]["okafor-main"] == {"lea": "manage"} and grant["grants"]["walsh-main"] == {}
    assert [p["status"] for p in grant["proposals"]] == ["executed"]
    assert grant["replies"][-1].startswith("Done")
    assert grant["path"][:3] == ["triage", "extract", "resolve"] and "execute" in grant["path"]
    assert cases["handoff"]["handoff"] is True and cases["grant-book"]["handoff"] is False
    kb = cases["kb-permissions"]
    assert kb["passed"] and kb["cites"] == ["calendar-permissions"] and kb["path"][:2] == ["triage", "retrieve"]
    summary = output["summary"]
    assert summary["provider"] == "offline"
    assert summary["cases"] == len(dataset.cases) and 0 <= summary["pass_rate"] <= 1
    assert {"mean", "p50", "p95"} <= set(summary["latency_ms"])
    assert summary["latency_ms"]["p50"] <= summary["latency_ms"]["p95"]


def test_the_dev_dataset_answers_its_knowledge_cases_with_citations(dev_run):
    _, output = dev_run
    cases = {case["id"]: case for case in output["cases"]}

    assert output["summary"]["categories"]["knowledge"]["pass_rate"] == 1.0
    assert output["summary"]["articles"]["loaded"] is True
    assert cases["kb-french"]["cites"] == ["horaires-ouverture"]
    assert "[1]" in cases["kb-no-show"]["replies"][0]
    assert cases["kb-draft"]["cites"] == []  # the only article about it is a draft


def test_own_knowledge_dataset_runs_above_its_measured_floor(tmp_path_factory):
    process, output = run_to_json(tmp_path_factory, KNOWLEDGE_DATASET)
    summary = output["summary"]
    cases = {case["id"]: case for case in output["cases"]}
    print(f"\nknowledge: pass rate {summary['pass_rate']:.1%}")

    assert summary["cases"] >= 50
    assert summary["pass_rate"] >= KNOWLEDGE_FLOOR, process.stdout[-4000:]
    for case_id in ("en-poisoned-printing", "en-draft-whatsapp", "fr-draft-acompte", "en-archived-connector"):
        assert cases[case_id]["passed"], cases[case_id]["failures"]  # never cited, never obeyed


def test_retrieval_on_own_knowledge_dataset_reaches_its_target(tmp_path):
    out = tmp_path / "retrieval.json"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "alfred.test_settings"}
    process = subprocess.run(
        [sys.executable, "manage.py", "evaluate_retrieval", str(KNOWLEDGE_DATASET), "--json", str(out)]
        + ["--eval-database", f"alfred_eval_retrieval_test_{os.getpid()}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    summary = json.loads(out.read_text(encoding="utf-8"))["summary"]
    print(f"\nretrieval: {summary}")

    assert summary["questions"] >= 40
    assert summary["hit_at_3"] >= 0.9  # the target; measured 0.962 (hit@1 0.788) with all-MiniLM-L6-v2
    assert summary["hit_at_1"] <= summary["hit_at_3"] <= summary["hit_at_5"]
    assert "hit@3" in process.stdout


def test_evaluate_retrieval_refuses_a_dataset_without_articles(tmp_path):
    case = "    cases:\n      - {id: q, as: anna, turns: [{say: 'How do I print?'}], expect: {cites: [some-article]}}\n"
    dataset = write(tmp_path, MINIMAL_WORLD + case)
    with pytest.raises(CommandError, match="has no articles"):
        call_command("evaluate_retrieval", str(dataset))


def test_a_case_never_sees_another_cases_changes(dev_run):
    _, output = dev_run
    cases = {case["id"]: case for case in output["cases"]}

    # `revoke` removed Tom's access earlier in the run: the next cases start from the world as written.
    assert cases["revoke"]["grants"]["novak-main"] == {}
    assert cases["rejected"]["grants"]["novak-main"] == {"tom": "view"}


def test_own_dataset_runs_above_its_measured_floor(tmp_path_factory):
    process, output = run_to_json(tmp_path_factory, OWN_DATASET)
    summary = output["summary"]
    print(f"\ncalendar_en_fr: pass rate {summary['pass_rate']:.1%}, {summary['categories']}")

    assert summary["categories"]["calendar"]["cases"] >= 30
    assert summary["pass_rate"] >= OWN_DATASET_FLOOR, process.stdout[-4000:]
    assert summary["categories"]["refusal"]["pass_rate"] >= OWN_REFUSAL_FLOOR


def unreachable_default_database() -> str:
    """A DATABASE_URL on the real server naming a database that does not exist: a process that opened its
    default (development) database would fail."""
    database = settings.DATABASES["default"]
    credentials = f"{quote(database['USER'] or '', safe='')}:{quote(database.get('PASSWORD') or '', safe='')}"
    host = quote(database["HOST"] or "localhost", safe="")
    return f"postgres://{credentials}@{host}:{database['PORT'] or 5432}/alfred_no_such_development_database"


def test_a_filtered_run_on_its_own_database_with_a_minimum_pass_rate(tmp_path):
    dataset = write(
        tmp_path,
        MINIMAL_WORLD
        + """\
    cases:
      - id: says-hello
        as: tom
        turns: [{say: "Hello!"}]
        expect: {grants: {novak-main: {tom: manage}}}
      - id: asks-for-a-person
        as: anna
        turns: [{say: "Can I speak to someone from support?"}, {confirm: true}]
        expect: {intent: handoff, handoff: true, not_intent: calendar_access}
      - id: not-played
        as: anna
        turns: [{say: "Give Tom view access."}]
""",
    )
    out = tmp_path / "out.json"

    # The default (development) database does not even exist: the run works on its own database only.
    process = evaluate(
        str(dataset),
        *("--case", "asks-for-a-person", "says-hello", "--json", str(out), "--min-pass-rate", "0.9"),
        DATABASE_URL=unreachable_default_database(),
        DEBUG="1",  # development keys with a DATABASE_URL
    )

    assert process.returncode == 3, process.stderr  # ran, but below the minimum pass rate
    assert "below the minimum" in process.stderr
    output = json.loads(out.read_text(encoding="utf-8"))
    assert [case["id"] for case in output["cases"]] == ["says-hello", "asks-for-a-person"]
    hello, person = output["cases"]
    assert hello["achievement"] == "failed" and hello["failures"] == [
        "grants: novak-main/tom expected manage, got no access"
    ]
    assert person["passed"] and person["handoff"] is True
    assert person["turns"][1]["note"] == "nothing to confirm"
    assert output["summary"]["pass_rate"] == 0.5
    assert "[1/2]" in process.stdout and "[2/2]" in process.stdout  # one progress line per case


def test_a_malformed_dataset_is_refused_with_the_field_named(tmp_path):
    dataset = write(
        tmp_path,
        MINIMAL_WORLD
        + """\
          grants:
            - {calendar: novak-main, member: tom, level: edit}
    cases:
      - id: bad
        as: tim
        turns: [{say: "Hi", confirm: true}]
        expect: {grants: {novak-main: {tomas: book}}, intnet: other}
""",
    )

    process = evaluate(str(dataset))

    assert process.returncode != 0
    for field in (
        "world.organizations[0].grants[0].level",
        "cases[0] (bad).as: unknown member 'tim'",
        "cases[0] (bad).turns[0]",
        "cases[0] (bad).expect.intnet: unknown key",
    ):
        assert field in process.stderr
    assert "Traceback" not in process.stderr


def test_unreadable_or_unknown_inputs_are_refused_before_anything_runs(tmp_path):
    not_yaml = tmp_path / "broken.yaml"
    not_yaml.write_text("world: [unclosed\n", encoding="utf-8")

    with pytest.raises(CommandError, match="cannot read the file"):
        call_command("evaluate", str(tmp_path / "missing.yaml"))
    with pytest.raises(CommandError, match="not valid YAML"):
        call_command("evaluate", str(not_yaml))
    with pytest.raises(CommandError, match="no-such-case"):
        call_command("evaluate", str(DEV_DATASET), "--case", "no-such-case")
    with pytest.raises(CommandError, match="alfred_eval"):  # it drops and re-creates it: never a database in use
        call_command("evaluate", str(DEV_DATASET), "--eval-database", "alfred")
    with pytest.raises(CommandError, match="min-pass-rate"):
        call_command("evaluate", str(DEV_DATASET), "--min-pass-rate", "-1")


@pytest.mark.parametrize(
    ("snippet", "message"),
    [
        ("cases: []", "cases: expected at least one item"),
        ("cases: [{id: a, as: anna, turns: []}]", "cases[0] (a).turns: expected at least one item"),
        ("cases: [{id: a, as: anna, turns: [{confirm: yes please}]}]", "cases[0] (a).turns[0].confirm"),
        (
            "cases: [{id: a, as: anna, turns: [{say: x}], expect: {grants: {nope: {tom: view}}}}]",
            "cases[0] (a).expect.grants.nope: unknown calendar",
        ),
        (
            "cases: [{id: a, as: anna, turns: [{say: x}], expect: {grants: {novak-main: {tom: edit}}}}]",
            "cases[0] (a).expect.grants.novak-main.tom: expected view, book, manage or null",
        ),
        ("cases: [{id: a, as: anna, turns: [{say: x}], expect: {intent: chat}}]", "cases[0] (a).expect.intent"),
        (
            "cases: [{id: a, as: anna, turns: [{say: x}]}, {id: a, as: tom, turns: [{say: y}]}]",
            "duplicate case id 'a'",
        ),
    ],
)
def test_dataset_problems_name_their_field(tmp_path, snippet, message):
    path = write(tmp_path, MINIMAL_WORLD + textwrap.indent(snippet + "\n", "    "))

    with pytest.raises(DatasetError) as error:
        load_dataset(path)

    assert any(message in problem for problem in error.value.problems), error.value.problems


def test_any_dataset_in_the_format_loads(tmp_path):
    path = write(
        tmp_path,
        MINIMAL_WORLD
        + """\
          grants:
            - {calendar: novak-main, member: tom, level: view}
      articles: kb
    cases:
      - id: grant
        as: anna
        turns: [{say: "Let Tom book."}, {say: "Tom Fisher"}, {confirm: true}]
        expect:
          intent: calendar_access
          grants: {novak-main: {tom: book}}
          cites: [some-slug]
          cites_any: [a, b]
          not_cites: [draft]
          handoff: false
          not_intent: knowledge
""",
    )

    dataset = load_dataset(path)

    assert dataset.world.level("novak-main", "tom") == "view"
    assert dataset.world.level("novak-main", "anna") == "manage"  # the owner, implicitly
    assert dataset.world.articles == (tmp_path / "kb").resolve()
    (case,) = dataset.cases
    assert [turn.kind for turn in case.turns] == ["say", "say", "confirm"]
    assert case.expect["grants"] == {"novak-main": {"tom": "book"}}
