"""Article Markdown: reading and writing files with front matter, and rendering to safe HTML.

Rendering is CommonMark with raw HTML disabled (it is shown as text), then sanitized by nh3 (ammonia):
an article can never run a script in the console preview, the reader page or the chat.
"""

from dataclasses import dataclass, field

import frontmatter
import nh3
import yaml
from markdown_it import MarkdownIt

STATUSES = ("draft", "published", "archived")
REQUIRED_FIELDS = ("slug", "title", "language", "status")

_parser = MarkdownIt("commonmark", {"html": False}).enable("table")
_ALLOWED_URL_SCHEMES = {"http", "https", "mailto"}


class ArticleFileError(ValueError):
    """A Markdown file whose front matter is missing, malformed or invalid. The message names the problem."""


@dataclass(frozen=True)
class ArticleFile:
    slug: str
    title: str
    language: str
    status: str
    body: str
    tags: list[str] = field(default_factory=list)


def parse_markdown(markdown: str) -> list:
    """The block tokens of a Markdown text (markdown-it), for the chunker."""
    return _parser.parse(markdown)


def render_html(markdown: str) -> str:
    """Markdown → sanitized HTML (links get rel="noopener noreferrer nofollow")."""
    html = _parser.render(markdown)
    return nh3.clean(html, url_schemes=_ALLOWED_URL_SCHEMES, link_rel="noopener noreferrer nofollow")


def article_file_read(text: str) -> ArticleFile:
    """Parse one article file. Raises ArticleFileError saying what is wrong (the caller adds the file name)."""
    if not text.lstrip().startswith("---"):
        raise ArticleFileError("no front matter (the file must start with a '---' line)")
    try:
        head, content = frontmatter.YAMLHandler().split(text.strip())
    except ValueError:
        raise ArticleFileError("front matter is not closed (a second '---' line must end it)") from None
    try:
        meta = yaml.safe_load(head) or {}
    except yaml.YAMLError as error:
        raise ArticleFileError(f"front matter is not valid YAML: {error}") from error
    if not isinstance(meta, dict):
        raise ArticleFileError("front matter must be 'key: value' lines")
    missing = [name for name in REQUIRED_FIELDS if not meta.get(name)]
    if missing:
        raise ArticleFileError(f"front matter misses {', '.join(missing)}")
    unknown = sorted(set(meta) - {*REQUIRED_FIELDS, "tags"})
    if unknown:
        raise ArticleFileError(f"unknown front matter fields: {', '.join(unknown)}")
    status = str(meta["status"])
    if status not in STATUSES:
        raise ArticleFileError(f"status {status!r} is not one of {', '.join(STATUSES)}")
    tags = meta.get("tags") or []
    if isinstance(tags, str):
        tags = [tags]
    if not isinstance(tags, list) or not all(isinstance(tag, str | int) for tag in tags):
        raise ArticleFileError("tags must be a list of words")
    if not content.strip():
        raise ArticleFileError("the article has no body")
    return ArticleFile(
        slug=str(meta["slug"]),
        title=str(meta["title"]),
        language=str(meta["language"]),
        status=status,
        body=content.strip() + "\n",
        tags=[str(tag) for tag in tags],
    )


def article_file_write(article: ArticleFile) -> str:
    """The file text of an article: front matter (in the order of the dataset format), then the body."""
    meta = {
        "slug": article.slug,
        "title": article.title,
        "language": article.language,
        "tags": list(article.tags),
        "status": article.status,
    }
    head = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, default_flow_style=None).strip()
    return f"---\n{head}\n---\n{article.body.strip()}\n"
