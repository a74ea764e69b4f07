"""Play an evaluation dataset through the chat and score it (format: ../shared/DATASET.md).

    python manage.py evaluate DATASET.yaml [--json OUT.json] [--min-pass-rate 0.9] [--case ID ...]

Each case runs on its own copy of the dataset's world, in a fresh evaluation database (never the
development one), through the real graph, the configured LLM provider, the tools and the platform API
served over HTTP by this process (see support/evaluation/). Exit status: 0 when it ran, whatever the
cases scored; 1 when it could not run (a bad dataset, a database error); 3 when --min-pass-rate is not met.

Pass rates are given per category (support/evaluation/scoring.py): `calendar` (cases expecting grants),
`refusal` (calendar cases whose expected grants are the world unchanged for every member they name),
`knowledge` (expecting citations or the knowledge intent) and `handoff`.
"""

import json
import logging
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError
from django.test import override_settings

from agents.providers import get_chat_model
from knowledge.files import ImportFailed
from support.evaluation import report
from support.evaluation.dataset import Dataset, DatasetError, load_dataset
from support.evaluation.environment import (
    EvaluationEnvironment,
    EvaluationSetupError,
    add_evaluation_arguments,
    evaluation_database_name,
)
from support.evaluation.play import play_case
from support.evaluation.scoring import case_result, crashed_result, summarize
from support.evaluation.world import world_build, world_reset

logger = logging.getLogger(__name__)
QUALITY_EXIT = 3


class Command(BaseCommand):
    help = "Play an evaluation dataset (YAML) through the chat, each case on a fresh copy of its world, and score it."

    def add_arguments(self, parser):
        add_evaluation_arguments(parser)
        parser.add_argument(
            "--min-pass-rate",
            type=float,
            metavar="X",
            help="exit with status 3 when the pass rate is below X (0–1, or a percentage above 1)",
        )
        parser.add_argument(
            "--case", dest="case_ids", action="extend", nargs="+", metavar="ID", help="play only these cases"
        )

    def handle(self, *args, **options):
        try:
            evaluation_database_name(options["eval_database"])
        except EvaluationSetupError as error:
            raise CommandError(str(error)) from error
        dataset = self._dataset(options["dataset"], options["case_ids"])
        threshold = _threshold(options["min_pass_rate"])
        if options["verbosity"] < 2:
            _quiet_logs()
        started = time.monotonic()
        try:
            # The offline engine's reply pacing is for people watching; an evaluation measures the agent.
            with (
                EvaluationEnvironment(database_name=options["eval_database"]),
                override_settings(OFFLINE_REPLY_WORDS_PER_SECOND=0),
            ):
                model = get_chat_model()
                self.stdout.write(
                    f"Evaluating {len(dataset.cases)} case(s) of {dataset.path} with the {model.name} provider "
                    f"on the database {options['eval_database']}"
                )
                self.stdout.flush()
                if hasattr(model, "warm_up"):
                    model.warm_up()  # the embedding model loads once here, not inside the first case's latency
                results = self._play_all(dataset)
        except (EvaluationSetupError, DatabaseError, ImportFailed) as error:
            raise CommandError(f"The evaluation could not run: {error}") from error
        summary = summarize(
            results, provider=model.name, dataset=str(dataset.path), duration_s=time.monotonic() - started
        )
        summary["articles"] = {
            "folder": str(dataset.world.articles) if dataset.world.articles else None,
            "loaded": self.articles_loaded,
        }
        self.stdout.write("\n" + report.cases_table(results) + "\n\n" + report.summary_text(summary))
        if options["json_out"]:
            _write_json(options["json_out"], {"cases": results, "summary": summary})
        if threshold is not None and (summary["pass_rate"] or 0) < threshold:
            raise CommandError(
                f"Pass rate {summary['pass_rate']:.1%} is below the minimum {threshold:.1%}.", returncode=QUALITY_EXIT
            )

    def _dataset(self, path: str, case_ids: list[str] | None) -> Dataset:
        try:
            dataset = load_dataset(path)
        except DatasetError as error:
            raise CommandError(str(error)) from error
        if case_ids:
            unknown = [case_id for case_id in case_ids if case_id not in {case.id for case in dataset.cases}]
            if unknown:
                raise CommandError(f"No case {', '.join(map(repr, unknown))} in {path}.")
            dataset.cases = [case for case in dataset.cases if case.id in case_ids]
        return dataset

    def _play_all(self, dataset: Dataset) -> list[dict]:
        results = []
        self.articles_loaded = False
        for position, case in enumerate(dataset.cases, start=1):
            world_reset()
            built = world_build(dataset.world)
            self.articles_loaded = built.knowledge
            try:
                result = case_result(case, play_case(case, built), built)
            except DatabaseError:
                raise  # the evaluation database is gone or broken: nothing after this can be trusted
            except Exception as error:  # noqa: BLE001 — one case that crashes is reported failed; the others still run
                logger.exception("evaluation case crashed", extra={"case": case.id})
                result = crashed_result(case, dataset.world, repr(error))
            results.append(result)
            self.stdout.write(report.progress_line(position, len(dataset.cases), result))
            self.stdout.flush()
        return results


def _threshold(value: float | None) -> float | None:
    if value is None:
        return None
    rate = value / 100 if value > 1 else value
    if not 0 <= rate <= 1:
        raise CommandError(f"--min-pass-rate must be between 0 and 1 (or a percentage), got {value}.")
    return rate


def _quiet_logs() -> None:
    """Keep the output to the cases: the API's 4xx answers are expected (a viewer may not share), and each
    eager task and the embedding model's loading would otherwise print a line. `-v 2` shows them all."""
    logging.getLogger("django.request").setLevel(logging.ERROR)
    logging.getLogger("celery.app.trace").setLevel(logging.WARNING)
    logging.getLogger("sentence_transformers").setLevel(logging.WARNING)


def _write_json(path: str, content: dict) -> None:
    try:
        Path(path).write_text(json.dumps(content, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    except OSError as error:
        raise CommandError(f"Could not write {path}: {error}") from error
