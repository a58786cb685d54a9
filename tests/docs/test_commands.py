"""Every documented command line ``python tools/<tool>.py ...`` (in README.md and the docs pages'
code blocks, also under torchrun or srun) parses with that tool's ``build_parser()``, and every
config path it names exists. Nothing runs: parse only."""
import importlib.util
import itertools
import os
import re
import shlex

import pytest

from .markdown_files import REPO, command_lines, markdown_files

TOOL = re.compile(r"^tools/(\w+)\.py$")
CONFIG = re.compile(r"configs/[\w./{},-]*\.py")
PARSERS = {}


def parser_of(tool):
    if tool not in PARSERS:
        spec = importlib.util.spec_from_file_location(f"docs_tool_{tool}", os.path.join(REPO, "tools", f"{tool}.py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        PARSERS[tool] = module.build_parser()
    return PARSERS[tool]


def expand_braces(token):
    """``a_{b,c}_{d,e}`` -> the four names, as the shell expands them."""
    parts = re.split(r"\{([^{}]*,[^{}]*)\}", token)
    choices = [[p] if i % 2 == 0 else p.split(",") for i, p in enumerate(parts)]
    return ["".join(c) for c in itertools.product(*choices)]


def drop_optional(tokens):
    """Leave out ``[--option VALUE]`` groups (documented as optional) and ``...`` placeholders."""
    kept, depth = [], 0
    for token in tokens:
        if depth == 0 and token.startswith("[-"):
            depth = token.count("[") - token.count("]")
        elif depth:
            depth += token.count("[") - token.count("]")
        elif token != "...":
            kept.append(token)
    return kept


def shell_words(line):
    """The words of ``line``'s first command: quotes and comments as the shell reads them, cut at
    the first control operator or redirection (``&``, ``&&``, ``|``, ``;``, ``>``)."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    words = list(lexer)
    cut = next((i for i, word in enumerate(words) if set(word) <= set("();<>|&")), len(words))
    if cut < len(words) and words[cut][0] in "<>" and words[cut - 1].isdigit():
        cut -= 1  # the file descriptor of "2> log"
    return words[:cut]


def documented_commands():
    """``(page, tool, argv)`` for every documented tool command line (brace patterns expanded)."""
    found = []
    for path in markdown_files():
        for line in command_lines(path):
            try:
                tokens = shell_words(line)
            except ValueError:
                continue
            at = next((i for i, t in enumerate(tokens) if TOOL.match(t)), None)
            if at is None:
                continue
            tool = TOOL.match(tokens[at]).group(1)
            argv = drop_optional(tokens[at + 1:])
            for expanded in itertools.product(*map(expand_braces, argv)):
                found.append((os.path.relpath(path, REPO), tool, list(expanded)))
    return found


COMMANDS = documented_commands()


def test_commands_are_found():
    tools = {tool for _, tool, _ in COMMANDS}
    assert {"train_cls", "eval_cls", "train", "test", "train_reid", "test_reid", "sweep_cls", "analyze_cls"} <= tools
    assert len(COMMANDS) > 50, len(COMMANDS)


@pytest.mark.parametrize("page,tool,argv", COMMANDS, ids=[f"{p}:{t}:{i}" for i, (p, t, _) in enumerate(COMMANDS)])
def test_documented_command_parses(page, tool, argv, capsys):
    try:
        parser_of(tool).parse_args(argv)
    except SystemExit:
        pytest.fail(f"{page}: python tools/{tool}.py {shlex.join(argv)}\n{capsys.readouterr().err}")
    missing = [path for arg in argv for path in CONFIG.findall(arg) if not os.path.exists(os.path.join(REPO, path))]
    assert not missing, f"{page}: python tools/{tool}.py {shlex.join(argv)}: no such config {missing}"
