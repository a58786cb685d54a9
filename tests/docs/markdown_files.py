"""What the docs tests read: the Markdown files (README.md and docs/**/*.md), their links and
images, their headings' anchors and the command lines in their code blocks."""
import glob
import os
import re

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOCS = os.path.join(REPO, "docs")

FENCE = re.compile(r"^ {0,3}(```|~~~)\s*(\S*)")
SHELL = ("bash", "sh", "shell", "console", "")  # the fences whose lines are command lines
LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
INLINE_CODE = re.compile(r"``.*?``|`[^`]*`")


def markdown_files():
    """README.md and every Markdown page under docs/ (not the build output)."""
    pages = sorted(p for p in glob.glob(os.path.join(DOCS, "**", "*.md"), recursive=True)
                   if os.sep + "_build" + os.sep not in p)
    return [os.path.join(REPO, "README.md")] + pages


def split_blocks(text):
    """``(prose_lines, code_blocks)``: the lines outside fenced code, and ``(info, lines)`` of each
    fenced block (``info``: its language, or ``{directive}``)."""
    prose, blocks, block = [], [], None
    for line in text.splitlines():
        fence = FENCE.match(line)
        if fence:
            if block is None:
                info, block = fence.group(2), []
            else:
                blocks.append((info, block))
                block = None
        elif block is None:
            prose.append(line)
        else:
            block.append(line)
    return prose, blocks


def links(path):
    """Every link and image target in the prose of ``path`` (not in code), with its line."""
    prose, _ = split_blocks(open(path, encoding="utf-8").read())
    found = []
    for line in prose:
        for target in LINK.findall(INLINE_CODE.sub("", line)):
            found.append((target, line.strip()))
    return found


def slug(title):
    """The anchor MyST (``myst_heading_anchors``, GitHub's rule) gives a heading: its text, code
    marks removed."""
    from myst_parser.mdit_to_docutils.base import default_slugify
    return default_slugify(INLINE_CODE.sub(lambda m: m.group(0).strip("`"), title.strip()))


def anchors(path):
    """The heading anchors of the Markdown file ``path``."""
    prose, _ = split_blocks(open(path, encoding="utf-8").read())
    return {slug(m.group(2)) for m in map(re.compile(r"^(#{1,6})\s+(.*)$").match, prose) if m}


def command_lines(path):
    """The lines of ``path``'s shell code blocks, continuation lines joined."""
    _, blocks = split_blocks(open(path, encoding="utf-8").read())
    lines = []
    for info, block in blocks:
        if info not in SHELL:
            continue
        pending = ""
        for line in block:
            if line.rstrip().endswith("\\"):
                pending += line.rstrip()[:-1] + " "
                continue
            lines.append(pending + line)
            pending = ""
    return lines
