"""Article files (front matter + Markdown) and the HTML they render to."""

import re
from html.parser import HTMLParser

import pytest

from knowledge.markdown import ArticleFile, ArticleFileError, article_file_read, article_file_write, render_html

GOOD_HEAD = "slug: waiting-list\ntitle: Use the waiting list\nlanguage: en\ntags: [appointments, waiting-list]\n"


def file_text(head: str = GOOD_HEAD + "status: published\n", body: str = "Patients join the list.\n") -> str:
    return f"---\n{head}---\n{body}"


def read_error(text: str) -> str:
    with pytest.raises(ArticleFileError) as error:
        article_file_read(text)
    return str(error.value)


# --- Reading -------------------------------------------------------------------------------------------------


def test_a_good_file_is_read_with_every_field():
    article = article_file_read(file_text(body="\nPatients join the list.\n\nThen they wait.\n\n"))

    assert article == ArticleFile(
        slug="waiting-list",
        title="Use the waiting list",
        language="en",
        status="published",
        body="Patients join the list.\n\nThen they wait.\n",
        tags=["appointments", "waiting-list"],
    )


def test_tags_are_optional_and_a_single_tag_becomes_a_list():
    head = "slug: a\ntitle: A\nlanguage: fr\nstatus: draft\n"
    assert article_file_read(file_text(head)).tags == []
    assert article_file_read(file_text(head + "tags: agenda\n")).tags == ["agenda"]
    assert article_file_read(file_text(head + "tags: [2024, agenda]\n")).tags == ["2024", "agenda"]


def test_a_file_without_front_matter_says_so():
    assert read_error("Just a body.\n") == "no front matter (the file must start with a '---' line)"


def test_front_matter_that_is_never_closed_says_so():
    message = read_error("---\nslug: a\ntitle: A\nlanguage: en\nstatus: draft\nThe body.\n")

    assert "not closed" in message


def test_missing_fields_are_named():
    assert read_error(file_text("slug: a\ntitle: A\n")) == "front matter misses language, status"
    assert read_error(file_text("slug: a\ntitle: ''\nlanguage: en\nstatus: draft\n")) == "front matter misses title"


def test_bad_yaml_says_the_front_matter_is_not_valid_yaml():
    message = read_error(file_text("slug: [unclosed\ntitle: A\nlanguage: en\nstatus: draft\n"))

    assert message.startswith("front matter is not valid YAML:")
    assert "line" in message  # the YAML parser's position helps to find the mistake


def test_front_matter_that_is_not_a_mapping_says_so():
    message = read_error(file_text("- slug\n- title\n"))

    assert "key: value" in message


def test_a_bad_status_lists_the_allowed_ones():
    message = read_error(file_text(GOOD_HEAD + "status: live\n"))

    assert message == "status 'live' is not one of draft, published, archived"


def test_unknown_fields_are_named():
    message = read_error(file_text(GOOD_HEAD + "status: draft\nauthor: Anna\ncategory: x\n"))

    assert message == "unknown front matter fields: author, category"


def test_tags_that_are_not_words_are_refused():
    assert read_error(file_text(GOOD_HEAD.replace("[appointments, waiting-list]", "{a: 1}") + "status: draft\n")) == (
        "tags must be a list of words"
    )


@pytest.mark.parametrize("body", ["", "\n", "   \n\n  \n"])
def test_a_file_without_body_says_so(body):
    assert read_error(file_text(body=body)) == "the article has no body"


def test_a_horizontal_rule_in_the_body_stays_in_the_body():
    article = article_file_read(file_text(body="Before.\n\n---\n\nAfter.\n"))

    assert article.body == "Before.\n\n---\n\nAfter.\n"


# --- Writing -------------------------------------------------------------------------------------------------


def test_write_then_read_gives_the_same_article():
    article = ArticleFile(
        slug="horaires-ouverture",
        title="Modifier vos horaires : « exceptionnels »",
        language="fr",
        status="archived",
        body="Dans Paramètres > Horaires, choisissez les jours.\n\n- lundi\n- mardi\n",
        tags=["agenda", "horaires", "yes", "2024"],
    )

    text = article_file_write(article)

    assert article_file_read(text) == article
    assert text.startswith("---\nslug: horaires-ouverture\ntitle: ")
    assert "Paramètres" in text  # UTF-8 as written, not escaped


def test_written_front_matter_follows_the_dataset_order():
    text = article_file_write(ArticleFile(slug="a", title="A", language="en", status="draft", body="B\n"))

    keys = [line.split(":")[0] for line in text.split("---\n")[1].splitlines()]
    assert keys == ["slug", "title", "language", "tags", "status"]
    assert text.endswith("---\nB\n")


# --- Rendering -----------------------------------------------------------------------------------------------


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


_SCHEME = re.compile(r"\s*([a-zA-Z][a-zA-Z0-9+.-]*):")


def tags_of(html: str) -> list[tuple[str, dict]]:
    """The elements of rendered HTML, as a browser would see them: (tag, attributes)."""
    parser = _Tags()
    parser.feed(html)
    return parser.tags


def assert_harmless(html: str) -> None:
    for tag, attrs in tags_of(html):
        assert tag not in ("script", "iframe", "object", "embed", "style"), html
        for name, value in attrs.items():
            assert not name.startswith("on"), html
            if name in ("href", "src"):
                scheme = _SCHEME.match(value or "")  # no scheme: a relative URL, harmless
                assert scheme is None or scheme[1].lower() in ("http", "https", "mailto"), html


def test_markdown_renders_to_html():
    html = render_html("# Title\n\nSome **bold** text.\n\n- one\n- two\n\n| a | b |\n|---|---|\n| 1 | 2 |\n")

    assert "<h1>Title</h1>" in html
    assert "<strong>bold</strong>" in html
    assert "<li>one</li>" in html
    assert "<td>1</td>" in html


def test_links_are_kept_with_a_safe_rel():
    html = render_html("[Help](https://help.example/a) and [mail](mailto:help@example.test)")

    links = [attrs for tag, attrs in tags_of(html) if tag == "a"]
    assert links == [
        {"href": "https://help.example/a", "rel": "noopener noreferrer nofollow"},
        {"href": "mailto:help@example.test", "rel": "noopener noreferrer nofollow"},
    ]


def test_script_tags_are_shown_as_text_never_run():
    html = render_html("Hello <script>alert('x')</script>\n\n<script>\nalert(1)\n</script>\n")

    assert_harmless(html)
    assert "&lt;script&gt;" in html


def test_raw_html_is_shown_as_text():
    html = render_html('<b>bold?</b> <img src="x" onerror="alert(1)"> <iframe src="https://evil.example"></iframe>')

    assert_harmless(html)
    assert [tag for tag, _ in tags_of(html)] == ["p"]
    assert "&lt;b&gt;bold?&lt;/b&gt;" in html


@pytest.mark.parametrize(
    "markdown",
    [
        "[click](javascript:alert(1))",
        "[click](JAVASCRIPT:alert(1))",
        "[click](java&#x09;script:alert(1))",
        "<javascript:alert(1)>",
        "[click][ref]\n\n[ref]: javascript:alert(1)",
        "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        "[click](vbscript:msgbox(1))",
        "![img](javascript:alert(1))",
    ],
)
def test_dangerous_link_schemes_never_become_links(markdown):
    html = render_html(markdown)

    assert_harmless(html)


def test_an_image_keeps_its_source_and_gets_no_event_handler():
    html = render_html('![a photo](https://img.example/a.png "x onerror=alert(1)") <img src=x onerror=alert(1)>')

    assert_harmless(html)
    (image,) = [attrs for tag, attrs in tags_of(html) if tag == "img"]
    assert image["src"] == "https://img.example/a.png"
    assert image["alt"] == "a photo"
