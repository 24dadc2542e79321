"""Escaping by construction: one function per output format ponder writes user text into.

A study's question, its name, factor levels, arm names and file paths are user text. Every
writer passes them through the function for its format before it joins them with markup:

- :func:`html` for HTML built in Python (Jinja templates autoescape on their own);
- :func:`md` for Markdown text and :func:`md_cell` for a cell of a Markdown table;
- :func:`latex` for LaTeX text (``table.tex``);
- :func:`mpl` for matplotlib titles, labels, legends and tick labels;
- :func:`console` for rich console markup;
- :func:`one_line` where a value must stay on one line.

Each takes any object (``str()`` is applied) and returns a ``str``. None of them is idempotent:
escape once, at the point where text meets markup.
"""

from __future__ import annotations

import re

import markupsafe
from rich.markup import escape as _rich_escape

__all__ = ["html", "md", "md_cell", "latex", "mpl", "console", "one_line"]

# Runs of line breaks and other control characters (Unicode category Cc, the line and paragraph
# separators) become one space; bidirectional overrides, which can reorder what a reader sees, go.
_BREAKS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_BIDI = re.compile(r"[\u202a-\u202e\u2066-\u2069]")

# Markdown: characters that can start inline markup anywhere in a line (CommonMark 6, GFM).
_MD_INLINE = {"\\": "\\\\", "`": "\\`", "*": "\\*", "[": "\\[", "]": "\\]", "~": "\\~", "$": "\\$",
              "&": "&amp;", "<": "&lt;", ">": "&gt;"}
# Markdown: a line that starts with one of these can open a block (heading, quote, list, rule).
_MD_BLOCK_START = re.compile(r"^(\d{1,9}(?=[.)](?:\s|$))|(?=[#+=-]))(.)")
_MD_UNDERSCORE = re.compile(r"(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")

# LaTeX: text-mode replacements, applied in one pass so that inserted braces are never re-escaped.
_LATEX = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&", "#": r"\#",
          "^": r"\textasciicircum{}", "_": r"\_", "%": r"\%", "~": r"\textasciitilde{}",
          "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}"}


def one_line(s: object) -> str:
    """Collapse line breaks and control characters into single spaces.

    Args:
        s: Any text; ``str()`` is applied.

    Returns:
        The text on one line: each run of line breaks or control characters is one space,
        bidirectional-override characters are removed, and the ends are stripped.
    """
    return _BREAKS.sub(" ", _BIDI.sub("", str(s))).strip()


def html(s: object) -> str:
    """Escape text for HTML element content and quoted attribute values.

    Args:
        s: Any text; ``str()`` is applied.

    Returns:
        The text with ``& < > " '`` as character references (line breaks are kept).
    """
    return str(markupsafe.escape(str(s)))


def md(s: object) -> str:
    """Escape text for Markdown so that it renders as itself, on one line.

    Inline markup (emphasis, code, links, images, strikethrough, math, raw HTML, entities) is escaped
    everywhere; a leading heading, quote, list or rule marker is escaped too. An underscore
    inside a word (``kaiming_normal``) cannot open emphasis and is left as it is.

    Args:
        s: Any text; ``str()`` is applied.

    Returns:
        One line of Markdown that displays ``s``.
    """
    text = "".join(_MD_INLINE.get(c, c) for c in one_line(s))
    text = _MD_UNDERSCORE.sub(r"\\_", text)
    return _MD_BLOCK_START.sub(r"\1\\\2", text, count=1)


def md_cell(s: object) -> str:
    """Escape text for one cell of a Markdown (GFM) table.

    Args:
        s: Any text; ``str()`` is applied.

    Returns:
        :func:`md` of the text with ``|`` escaped, so the cell cannot split the row.
    """
    return md(s).replace("|", "\\|")


def latex(s: object) -> str:
    """Escape text for LaTeX text mode.

    ``\\`` becomes ``\\textbackslash{}``; ``{ } $ & # _ %`` get a backslash; ``^ ~ < > |`` become
    their text commands, which print the same in every font encoding.

    Args:
        s: Any text; ``str()`` is applied.

    Returns:
        One line of LaTeX that typesets ``s``.
    """
    return "".join(_LATEX.get(c, c) for c in one_line(s))


def mpl(s: object) -> str:
    """Escape text for a matplotlib title, axis label, legend entry or tick label.

    Every ``$`` is escaped, so mathtext never parses user text (an unbalanced ``$x^$`` would
    raise while drawing); a leading ``_``, which makes ``legend`` skip an entry, gets a space
    before it.

    Args:
        s: Any text; ``str()`` is applied.

    Returns:
        One line of text that matplotlib draws as itself.
    """
    text = one_line(s).replace("$", r"\$")
    return " " + text if text.startswith("_") else text


def console(s: object) -> str:
    """Escape text for rich console markup, so ``[bold]`` or ``[/x]`` in user text prints as itself.

    Args:
        s: Any text; ``str()`` is applied.

    Returns:
        The text with rich's markup brackets escaped (line breaks are kept).
    """
    return _rich_escape(str(s))
