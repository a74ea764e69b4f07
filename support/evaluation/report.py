"""What `evaluate` prints: a line per case as it completes, then a table of the cases and the summary."""

from support.evaluation.world import KNOWLEDGE_UNAVAILABLE

RESULT_WORDS = {"full": "PASS", "partial": "PARTIAL", "failed": "FAIL"}
FAILURE_WIDTH = 90


def progress_line(position: int, total: int, result: dict) -> str:
    width = len(str(total))
    seconds = sum(result["latency_ms"]) / 1000
    return f"[{position:>{width}}/{total}] {RESULT_WORDS[result['achievement']]:<7} {result['id']}  ({seconds:.1f} s)"


def cases_table(results: list[dict]) -> str:
    id_width = max([len("case"), *(len(result["id"]) for result in results)])
    lines = [f"{'case':<{id_width}}  {'result':<7}  {'intent':<15}  {'turn ms':<20}  failures"]
    lines.append("-" * len(lines[0]))
    for result in results:
        turns = " ".join(f"{latency:.0f}" for latency in result["latency_ms"])
        failures = "; ".join(result["failures"])
        if len(failures) > FAILURE_WIDTH:
            failures = failures[: FAILURE_WIDTH - 1] + "…"
        lines.append(
            f"{result['id']:<{id_width}}  {RESULT_WORDS[result['achievement']]:<7}  {result['intent'] or '-':<15}  "
            f"{turns:<20}  {failures}"
        )
    return "\n".join(lines)


def summary_text(summary: dict) -> str:
    counts = summary["achievement"]
    lines = [
        f"Dataset {summary['dataset']} · provider {summary['provider']}",
        f"{summary['passed']}/{summary['cases']} cases passed ({_percent(summary['pass_rate'])}) · "
        f"full {counts['full']}, partial {counts['partial']}, failed {counts['failed']}",
    ]
    for category, figures in summary["categories"].items():
        lines.append(
            f"  {category:<10} {figures['passed']:>3}/{figures['cases']:<3} {_percent(figures['pass_rate']):>7}"
        )
    articles = summary.get("articles") or {}
    if articles.get("folder") and not articles.get("loaded"):
        lines.append(f"Articles in {articles['folder']} not loaded: {KNOWLEDGE_UNAVAILABLE} (citations fail)")
    latency = summary["latency_ms"]
    if latency["turns"]:
        lines.append(
            f"Turn latency over {latency['turns']} turns: mean {latency['mean']:.0f} ms, "
            f"p50 {latency['p50']:.0f} ms, p95 {latency['p95']:.0f} ms · total {summary['duration_s']:.1f} s"
        )
    return "\n".join(lines)


def _percent(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate * 100:.1f}%"
