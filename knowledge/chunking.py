"""Cut an article into passages by headings and paragraphs, with overlap.

Each chunk belongs to one section (its heading path: "Title › Section › Subsection"), holds whole blocks
(paragraphs, list items, table rows) up to `max_chars`, and starts with the last sentence of the previous
chunk of the same section so that a fact spanning the cut is still found in one piece.
"""

from dataclasses import dataclass

from knowledge.markdown import parse_markdown
from knowledge.text import split_sentences

MAX_CHARS = 800  # ≈ 180 tokens: all-MiniLM-L6-v2 reads 256 at most
OVERLAP_SENTENCES = 1
HEADING_SEPARATOR = " › "


@dataclass(frozen=True)
class Piece:
    position: int
    heading_path: str
    text: str


def chunk_article(*, title: str, body: str, max_chars: int = MAX_CHARS) -> list[Piece]:
    pieces: list[Piece] = []
    for heading_path, blocks in _sections(title, body):
        for text in _pack(blocks, max_chars):
            pieces.append(Piece(position=len(pieces), heading_path=heading_path, text=text))
    return pieces


def _sections(title: str, body: str) -> list[tuple[str, list[str]]]:
    """(heading path, blocks of text) for every section that has text, in order."""
    headings: list[tuple[int, str]] = []
    sections: list[tuple[str, list[str]]] = []
    tokens = parse_markdown(body)
    lists = 0  # depth of lists: their items start with "- "
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token.type == "heading_open":
            level = int(token.tag[1])
            text = _inline_text(tokens[index + 1])
            headings = [(lvl, name) for lvl, name in headings if lvl < level] + [(level, text)]
            index += 3
            continue
        if token.type in ("bullet_list_open", "ordered_list_open"):
            lists += 1
        elif token.type in ("bullet_list_close", "ordered_list_close"):
            lists -= 1
        block = ""
        if token.type == "tr_open":  # a table row is one block: "cell | cell"
            end = next(i for i in range(index, len(tokens)) if tokens[i].type == "tr_close")
            block = " | ".join(_inline_text(t) for t in tokens[index:end] if t.type == "inline")
            index = end
        elif token.type == "inline":
            block = ("- " if lists else "") + _inline_text(token)
        elif token.type in ("fence", "code_block"):
            block = token.content.strip()
        if block.strip():
            path = HEADING_SEPARATOR.join([title] + [name for _, name in headings if name != title])
            if sections and sections[-1][0] == path:
                sections[-1][1].append(block)
            else:
                sections.append((path, [block]))
        index += 1
    return sections


def _inline_text(token) -> str:
    """The readable text of an inline token: no Markdown marks, links reduced to their words."""
    parts = []
    for child in token.children or []:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif child.type == "image":
            parts.append(child.content)
    return " ".join("".join(parts).split())


def _pack(blocks: list[str], max_chars: int) -> list[str]:
    """Whole blocks (or, for a block longer than max_chars, whole sentences) packed into chunks, with overlap."""
    units: list[tuple[str, bool]] = []  # (text, starts a new block)
    for block in blocks:
        if len(block) <= max_chars:
            units.append((block, True))
        else:
            units.extend((sentence, i == 0) for i, sentence in enumerate(split_sentences(block)))
    chunks: list[str] = []
    current: list[tuple[str, bool]] = []
    for unit in units:
        if current and _length(current + [unit]) > max_chars:
            chunks.append(_join(current))
            last_sentences = split_sentences(current[-1][0])[-OVERLAP_SENTENCES:]
            overlap = " ".join(last_sentences)
            current = [(overlap, True)] if overlap and _length([(overlap, True), unit]) <= max_chars else []
        current.append(unit)
    if current:
        chunks.append(_join(current))
    return chunks


def _join(units: list[tuple[str, bool]]) -> str:
    text = ""
    for unit, new_block in units:
        text = unit if not text else text + ("\n\n" if new_block else " ") + unit
    return text


def _length(units: list[tuple[str, bool]]) -> int:
    return len(_join(units))
