"""A progress bar (tqdm) over reindex jobs run in this process, for the management commands."""

from tqdm import tqdm

from knowledge.indexing import articles_to_reindex, reindex_job_run
from knowledge.models import ReindexJob


def jobs_run_with_progress(jobs: list[ReindexJob], *, stream) -> list[ReindexJob]:
    """Run jobs here, one bar over all their articles. Returns the jobs that failed."""
    failed = []
    with tqdm(total=len(jobs), desc="indexing", unit="article", file=_raw(stream), dynamic_ncols=True) as bar:
        for job in jobs:
            job = reindex_job_run(job)
            bar.update(1)
            if job.state == ReindexJob.State.FAILED:
                failed.append(job)
    return failed


def job_run_with_progress(job: ReindexJob, *, stream, everything: bool) -> ReindexJob:
    total = len(articles_to_reindex(everything=everything)) if not job.article_id else 1
    with tqdm(total=total, desc="indexing", unit="article", file=_raw(stream), dynamic_ncols=True) as bar:

        def advance(current: ReindexJob) -> None:
            bar.total = current.total
            bar.n = current.done
            bar.refresh()

        return reindex_job_run(job, on_progress=advance)


def _raw(stream):
    """The stream under a command's OutputWrapper: the wrapper would end each of tqdm's "\r" redraws with a
    newline (a new line per article instead of one bar) and colour it as an error."""
    return getattr(stream, "_out", stream)
