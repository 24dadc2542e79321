"""ponder.escape: each output format's helper on hostile strings."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from rich.console import Console  # noqa: E402

from ponder import escape  # noqa: E402

HOSTILE = ["<script>alert(1)</script>", "a|b", "\\", "$x^$", "[/x]", "why?\n**Answer.** FAKE", "# heading", "`code`",
           "a & b", "_x_", "1. item", "~~gone~~", "tab\there\r\nand\x00null\u2028sep", "\u202eevil"]


@pytest.mark.parametrize("s", HOSTILE)
def test_every_helper_keeps_one_line_and_no_control_characters(s):
    for fn in (escape.md, escape.md_cell, escape.latex, escape.mpl, escape.one_line):
        out = fn(s)
        assert "\n" not in out and "\r" not in out and "\x00" not in out and "\u2028" not in out and "\u202e" not in out


def test_one_line():
    assert escape.one_line("why?\n**Answer.** FAKE") == "why? **Answer.** FAKE"
    assert escape.one_line("a\r\n\tb\x1bc\u2029d") == "a b c d"
    assert escape.one_line(3.5) == "3.5"


def test_html():
    assert escape.html("<script>alert(1)</script>") == "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert escape.html('a & "b" \'c\'') == "a &amp; &#34;b&#34; &#39;c&#39;"
    assert escape.html("[/x] $x^$ a|b \\") == "[/x] $x^$ a|b \\"


def test_md_text():
    assert escape.md("<script>alert(1)</script>") == "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert escape.md("why?\n**Answer.** FAKE") == "why? \\*\\*Answer.\\*\\* FAKE"
    assert escape.md("\\") == "\\\\"
    assert escape.md("$x^$") == "\\$x^\\$"
    assert escape.md("[/x]") == "\\[/x\\]"
    assert escape.md("`code`") == "\\`code\\`"
    assert escape.md("# heading") == "\\# heading"
    assert escape.md("1. item") == "1\\. item"
    assert escape.md("- item") == "\\- item"
    assert escape.md("3.5 is fine") == "3.5 is fine"
    assert escape.md("_x_ and torch.kaiming_normal") == "\\_x\\_ and torch.kaiming_normal"  # intraword _ cannot emphasize
    assert escape.md("a|b") == "a|b"  # outside tables a pipe is text


def test_md_cell():
    assert escape.md_cell("a|b") == "a\\|b"
    assert escape.md_cell("x\n| forged | row |") == "x \\| forged \\| row \\|"
    assert escape.md_cell("<b>&</b>") == "&lt;b&gt;&amp;&lt;/b&gt;"
    assert escape.md_cell("#1") == "\\#1"
    assert escape.md_cell("`x`") == "\\`x\\`"


def test_latex():
    assert escape.latex("\\") == r"\textbackslash{}"
    assert escape.latex("a\\b") == r"a\textbackslash{}b"
    assert escape.latex("{ } $ & # _ %") == r"\{ \} \$ \& \# \_ \%"
    assert escape.latex("^~") == r"\textasciicircum{}\textasciitilde{}"
    assert escape.latex("$x^$") == r"\$x\textasciicircum{}\$"
    assert escape.latex("<script>") == r"\textless{}script\textgreater{}"
    assert escape.latex("a|b") == r"a\textbar{}b"
    assert "\\{\\}" not in escape.latex("\\")  # the old bug: \textbackslash\{\}


def test_mpl():
    assert escape.mpl("$x^$") == "\\$x^\\$"
    assert escape.mpl("cost $5 or $6") == "cost \\$5 or \\$6"
    assert escape.mpl("_hidden") == " _hidden"  # legend() skips labels that start with '_'
    assert escape.mpl("/data/run$1.npz") == "/data/run\\$1.npz"


def test_console():
    assert escape.console("[/x]") == "\\[/x]"
    assert escape.console("[bold]x[/bold]") == "\\[bold]x\\[/bold]"
    buf = io.StringIO()
    Console(file=buf, width=200, color_system=None).print(escape.console("[/x] [bold]b[/bold] $x^$"))
    assert buf.getvalue().strip() == "[/x] [bold]b[/bold] $x^$"


def test_unescaped_mathtext_raises_and_escaped_draws():
    fig, ax = plt.subplots()
    ax.set_title("$x^$")
    with pytest.raises(ValueError):
        fig.savefig(io.BytesIO(), format="png")
    plt.close(fig)

    fig, ax = plt.subplots()
    for i, s in enumerate(HOSTILE):
        ax.plot([0, 1], [i, i], label=escape.mpl(s))
    ax.set_title(escape.mpl("$x^$ in /data/a$b.npz"))
    ax.set_xlabel(escape.mpl("$x^$"))
    ax.set_ylabel(escape.mpl("[/x] a|b \\"))
    ax.set_yticks(range(len(HOSTILE)), [escape.mpl(s) for s in HOSTILE])
    legend = ax.legend()
    fig.suptitle(escape.mpl("$x^$"))
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    fig.savefig(io.BytesIO(), format="svg")
    plt.close(fig)
    assert buf.getvalue()[:4] == b"\x89PNG"
    assert len(legend.get_texts()) == len(HOSTILE)  # no entry dropped, '_x_' included
    assert ax.title.get_text() == "\\$x^\\$ in /data/a\\$b.npz"
