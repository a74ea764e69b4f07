"""Cutting articles into passages (heading paths, blocks, overlap, size) and splitting sentences."""

import pytest

from knowledge.chunking import MAX_CHARS, chunk_article
from knowledge.text import content_words, fold, split_sentences


def texts(pieces) -> list[tuple[str, str]]:
    return [(piece.heading_path, piece.text) for piece in pieces]


def sentence(number: int, words: int = 12) -> str:
    """A distinct sentence of about 7 * words characters."""
    return f"Sentence {number} " + " ".join(f"word{number}x{i}" for i in range(words)) + "."


# --- Headings ------------------------------------------------------------------------------------------------


def test_each_chunk_carries_its_heading_path():
    body = (
        "Intro text.\n\n# Settings\n\nSettings text.\n\n## Reminders\n\nReminder text.\n\n"
        "### SMS\n\nSMS text.\n\n## Colours\n\nColour text.\n\n# Billing\n\nBilling text.\n"
    )

    pieces = chunk_article(title="Guide", body=body)

    assert texts(pieces) == [
        ("Guide", "Intro text."),
        ("Guide › Settings", "Settings text."),
        ("Guide › Settings › Reminders", "Reminder text."),
        ("Guide › Settings › Reminders › SMS", "SMS text."),
        ("Guide › Settings › Colours", "Colour text."),  # a sibling replaces the deeper headings
        ("Guide › Billing", "Billing text."),
    ]


def test_a_first_heading_repeating_the_title_is_not_repeated_in_the_path():
    pieces = chunk_article(title="Guide", body="# Guide\n\nText.\n\n## Part\n\nMore.\n")

    assert texts(pieces) == [("Guide", "Text."), ("Guide › Part", "More.")]


def test_headings_without_text_make_no_chunk_and_marks_are_dropped_from_headings():
    pieces = chunk_article(title="Guide", body="# Empty\n\n## The `code` *part*\n\nText.\n")

    assert texts(pieces) == [("Guide › Empty › The code part", "Text.")]


def test_a_body_of_only_headings_gives_no_chunk():
    assert chunk_article(title="Guide", body="# One\n\n## Two\n") == []


# --- Blocks --------------------------------------------------------------------------------------------------


def test_list_items_are_blocks_starting_with_a_dash():
    body = "Steps:\n\n- Open **Settings**\n- Choose [Reminders](https://x.example)\n\n1. first\n2. second\n"

    (piece,) = chunk_article(title="Guide", body=body)

    assert piece.text == "Steps:\n\n- Open Settings\n\n- Choose Reminders\n\n- first\n\n- second"


def test_items_of_an_outer_list_keep_their_dash_after_a_nested_list():
    body = "- outer one\n  - inner\n- outer two\n\nAfter the list.\n"

    (piece,) = chunk_article(title="Guide", body=body)

    assert piece.text == "- outer one\n\n- inner\n\n- outer two\n\nAfter the list."


def test_code_is_kept_as_written():
    body = "Run this:\n\n```bash\npython manage.py import_articles kb/\n  --no-index\n```\n\n    indented code\n"

    (piece,) = chunk_article(title="Guide", body=body)

    assert piece.text == "Run this:\n\npython manage.py import_articles kb/\n  --no-index\n\nindented code"


def test_a_table_row_is_one_block():
    body = "| Level | Can |\n|---|---|\n| View | look |\n| Book | add and cancel |\n"

    (piece,) = chunk_article(title="Guide", body=body)

    assert piece.text == "Level | Can\n\nView | look\n\nBook | add and cancel"


def test_inline_marks_and_links_are_reduced_to_words():
    (piece,) = chunk_article(
        title="G", body="See **bold**, _it_, `code` and [the docs](https://x.example).\nNext line."
    )

    assert piece.text == "See bold, it, code and the docs. Next line."


# --- Size and overlap ----------------------------------------------------------------------------------------


def test_short_sections_stay_whole():
    body = "\n\n".join(sentence(i) for i in range(3))

    (piece,) = chunk_article(title="G", body=body)

    assert piece.text == body


def test_a_long_paragraph_is_split_between_sentences():
    paragraph = " ".join(sentence(i) for i in range(30))  # ≈ 2,700 characters, one block
    assert len(paragraph) > 3 * MAX_CHARS

    pieces = chunk_article(title="G", body=paragraph)

    assert len(pieces) >= 4
    for piece in pieces:
        assert len(piece.text) <= MAX_CHARS
        assert piece.text.startswith("Sentence ") and piece.text.endswith(".")
        assert set(split_sentences(piece.text)) <= set(split_sentences(paragraph))  # only whole sentences
    covered = {s for piece in pieces for s in split_sentences(piece.text)}
    assert covered == set(split_sentences(paragraph))  # nothing lost


def test_the_next_chunk_of_a_section_starts_with_the_last_sentence_of_the_previous_one():
    body = "\n\n".join(f"{sentence(i)} {sentence(100 + i)}" for i in range(12))

    pieces = chunk_article(title="G", body=body)

    assert len(pieces) > 2
    for previous, following in zip(pieces, pieces[1:], strict=False):
        assert following.text.startswith(split_sentences(previous.text)[-1] + "\n\n")


def test_the_overlap_is_left_out_when_it_would_not_fit():
    first, second = "F" * 59 + ".", "S" * 38 + "."  # 60 + 2 + 39 = 101 characters together

    pieces = chunk_article(title="G", body=f"{first}\n\n{second}", max_chars=100)

    assert [piece.text for piece in pieces] == [first, second]


def test_no_overlap_across_sections():
    body = "# A\n\n" + "\n\n".join(sentence(i) for i in range(10)) + "\n\n# B\n\nFresh start."

    pieces = chunk_article(title="G", body=body, max_chars=300)

    assert pieces[-1].heading_path == "G › B"
    assert pieces[-1].text == "Fresh start."


@pytest.mark.parametrize("max_chars", [120, 200, 333, 500, MAX_CHARS])
def test_no_chunk_is_over_the_limit(max_chars):
    blocks = []
    for i in range(40):
        if i % 5 == 0:
            blocks.append(f"## Part {i}")
        elif i % 3 == 0:
            blocks.append("\n".join(f"- item {i}.{j} {sentence(j, words=i % 7)}" for j in range(4)))
        else:
            blocks.append(" ".join(sentence(i * 10 + j, words=3 + (i + j) % 9) for j in range(1 + i % 6)))
    body = "\n\n".join(blocks)

    pieces = chunk_article(title="A rather long title", body=body, max_chars=max_chars)

    assert len(pieces) > 10
    for piece in pieces:
        assert len(piece.text) <= max_chars or len(split_sentences(piece.text)) == 1, piece


def test_a_single_sentence_over_the_limit_is_the_only_oversized_chunk():
    huge = "This sentence never ends " + "and goes on " * 100 + "until here."
    body = f"{sentence(1)} {sentence(2)}\n\n{huge}\n\n{sentence(3)}"

    pieces = chunk_article(title="G", body=body, max_chars=300)

    oversized = [piece.text for piece in pieces if len(piece.text) > 300]
    assert oversized == [huge]
    assert pieces[-1].text.endswith(sentence(3))


def test_positions_are_consecutive_across_sections():
    body = "\n\n".join(f"# Part {i}\n\n" + " ".join(sentence(i * 10 + j) for j in range(12)) for i in range(4))

    pieces = chunk_article(title="G", body=body)

    assert [piece.position for piece in pieces] == list(range(len(pieces)))
    assert len({piece.heading_path for piece in pieces}) == 4


# --- Sentences -----------------------------------------------------------------------------------------------


def test_sentences_end_at_end_punctuation():
    assert split_sentences("Open the menu. Choose Settings! Is it saved? Yes… It is.") == [
        "Open the menu.",
        "Choose Settings!",
        "Is it saved?",
        "Yes…",
        "It is.",
    ]


def test_abbreviations_do_not_end_a_sentence():
    text = "Ask Dr. Novak first. Use a short code, e.g. 1234. Mrs. Smith agreed, i.e. Tom too. Done."

    assert split_sentences(text) == [
        "Ask Dr. Novak first.",
        "Use a short code, e.g. 1234.",
        "Mrs. Smith agreed, i.e. Tom too.",
        "Done.",
    ]


def test_words_that_merely_end_like_an_abbreviation_do_end_a_sentence():
    text = "Open the form. Then click first. Then go to the casino. Then the system. Next step."

    assert split_sentences(text) == [
        "Open the form.",
        "Then click first.",
        "Then go to the casino.",
        "Then the system.",
        "Next step.",
    ]


def test_french_sentences():
    text = (
        "Le Dr. Martin répond. M. Dupont arrive à 9 h. Très bien ! Où est-il ? "
        "Élodie confirme. « Merci », dit-elle. Voir p.ex. le menu. 3 rendez-vous restent."
    )

    assert split_sentences(text) == [
        "Le Dr. Martin répond.",
        "M. Dupont arrive à 9 h.",
        "Très bien !",
        "Où est-il ?",
        "Élodie confirme.",
        "« Merci », dit-elle.",
        "Voir p.ex. le menu.",
        "3 rendez-vous restent.",
    ]


def test_lowercase_after_a_full_stop_does_not_start_a_sentence():
    assert split_sentences("Version 2.5 is out. see the notes.") == ["Version 2.5 is out. see the notes."]


def test_list_items_and_paragraphs_stay_apart_without_punctuation():
    text = "Steps\n- open the menu\n- pick a day\n1. first\n2) second\n\nAnother paragraph\nwrapped here."

    assert split_sentences(text) == [
        "Steps",
        "- open the menu",
        "- pick a day",
        "1. first",
        "2) second",
        "Another paragraph wrapped here.",
    ]


def test_closing_quotes_stay_with_their_sentence():
    assert split_sentences('He said "Stop." Then he left.') == ['He said "Stop."', "Then he left."]


def test_blank_text_has_no_sentences():
    assert split_sentences("  \n\n ") == []


# --- Content words -------------------------------------------------------------------------------------------


def test_content_words_drop_stop_words_and_one_letter_words():
    assert content_words("How do I change the appointment?") == content_words("change appointment")
    assert len(content_words("Où modifier les horaires d'ouverture ?")) == 3


def test_content_words_meet_across_plural_tense_and_accents():
    assert content_words("appointments") == content_words("appointment")
    assert content_words("horaires") == content_words("horaire")
    assert content_words("changes changed changing") == content_words("change change change")
    assert content_words("Réglages") == content_words("reglages")
    assert fold("Réglages") == "reglages"
