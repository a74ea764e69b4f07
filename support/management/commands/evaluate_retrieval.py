"""Measure retrieval on a dataset's knowledge questions: hit@1, hit@3, hit@5, MRR.

    python manage.py evaluate_retrieval DATASET.yaml [--json OUT.json]

The dataset's articles are imported and indexed in a fresh evaluation database (never the development one),
then every case whose first message is a question expecting `cites`/`cites_any` is searched once
(support/evaluation/retrieval.py). The chat and the model are not involved: this isolates retrieval.
"""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from knowledge.embeddings import embedder
from knowledge.files import ImportFailed
from support.evaluation.dataset import DatasetError, load_dataset
from support.evaluation.environment import (
    EvaluationEnvironment,
    EvaluationSetupError,
    add_evaluation_arguments,
    evaluation_database_name,
)
from support.evaluation.retrieval import evaluate_retrieval, retrieval_summary
from support.evaluation.world import articles_load


class Command(BaseCommand):
    help = "Retrieval quality (hit@1, hit@3, MRR) of a dataset's knowledge questions against its articles."

    def add_arguments(self, parser):
        add_evaluation_arguments(parser, default_database="alfred_eval_retrieval")

    def handle(self, *args, dataset, json_out, eval_database, **options):
        try:
            evaluation_database_name(eval_database)
            loaded = load_dataset(dataset)
        except (DatasetError, EvaluationSetupError) as error:
            raise CommandError(str(error)) from error
        if loaded.world.articles is None:
            raise CommandError(f"{dataset} has no articles (world.articles).")
        try:
            with EvaluationEnvironment(database_name=eval_database):
                articles_load(loaded.world)
                results = evaluate_retrieval(loaded)
        except (EvaluationSetupError, DatabaseError, ImportFailed) as error:
            raise CommandError(f"The evaluation could not run: {error}") from error
        if not results:
            raise CommandError(f"{dataset} has no case whose first message expects citations.")
        summary = {**retrieval_summary(results), "dataset": str(loaded.path), "embedding_model": embedder().name}
        for result in results:
            if result.rank() != 1:
                where = f"rank {result.rank()}" if result.rank() else "not found"
                self.stdout.write(
                    f"{result.id:<28} {where:<10} expected {', '.join(result.expected)}; "
                    f"got {', '.join(result.ranked[:3])}"
                )
        self.stdout.write(
            f"\n{summary['questions']} questions · hit@1 {summary['hit_at_1']:.1%} · hit@3 {summary['hit_at_3']:.1%} · "
            f"hit@5 {summary['hit_at_5']:.1%} · MRR {summary['mrr']:.3f} · "
            f"right article passes the relevance filter {summary['relevant']:.1%} ({summary['embedding_model']})"
        )
        if json_out:
            try:
                Path(json_out).write_text(
                    json.dumps({"cases": [r.as_dict() for r in results], "summary": summary}, indent=1)
                )
            except OSError as error:
                raise CommandError(f"Could not write {json_out}: {error}") from error
