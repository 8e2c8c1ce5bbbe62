"""Every command the documentation shows still runs as written (issue 24): documented commands cannot rot.

Reads README.md, docs/*.md, configs/*.py (docstrings and comments) and colab/make_notebooks.py (its
cells are strings), finds each command in them (fenced shell blocks, inline `code`, a docstring's
indented lines, a comment; backslash continuations joined, `# ...` comments and `$ ` prompts dropped)
and checks it against the code, without running it:

- `mer-jax SUBCOMMAND ...` (also `python -m mer_jax.cli ...`): the subcommand exists and takes every
  flag given (mer_jax/cli.py's own parser, make_parser()); a `--config configs/FILE.py[:ROW]` file exists
  and loads; each `--config.KEY=VALUE` override names a key of that config (and the value applies); a
  `build` names a known dataset and one of its builder configs.
- `python FILE.py ...`: the file exists and its argparse parser (read from its source, not imported)
  takes every flag given. `python -m MODULE`: the module exists (package layout moves rot these).
  `python -c CODE`: what it imports from the project exists and the keywords it passes are accepted.
  `python -m pytest PATH`: the path exists. `pip install -e '.[EXTRA]'`: pyproject.toml has the extra.
- A `--config.KEY` outside a command names a key of some config (in configs/FILE.py: of FILE's).

Placeholders (DIR, OUT, FOLDER_OR_VIDEO, `...`, `[--seed N]`, `{casme2|samm}`) stand for values and are
not checked. Every failure is collected, so one run lists every rotten command with file:line.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import functools
import importlib
import importlib.util
import inspect
import io
import re
import shlex
import tokenize
from dataclasses import dataclass
from pathlib import Path

import pytest

# ml_collections loads each config file with importlib's load_module, deprecated.
pytestmark = pytest.mark.filterwarnings("ignore:the load_module:DeprecationWarning")

REPO = Path(__file__).resolve().parents[1]
LOCAL_PACKAGES = ("mer_jax", "benchmarks", "data_builders", "colab", "tests", "configs")
PROGRAMS = {"mer-jax", "python", "python3", "pip", "pip3", "pytest"}
WRAPPERS = {"$", "srun", "sudo", "env", "exec", "nohup"}
SEPARATORS = {"&&", "||", "|", ";", "&"}
SHELL_FENCES = {"", "bash", "sh", "shell", "console", "zsh"}
# The generic form of an override in prose: `[--config.key=value ...]`, `--config.a.b=value`.
PLACEHOLDER_KEYS = {"key", "KEY", "a.b", "xxx"}
# pytest options whose next argument is their value (not a path).
PYTEST_VALUE_OPTIONS = {"-k", "-m", "-p", "-c", "-o", "-n", "--deselect", "--ignore", "--maxfail", "--durations"}


def sources() -> list[Path]:
    files = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), *sorted((REPO / "configs").glob("*.py"))]
    return [*files, REPO / "colab" / "make_notebooks.py"]


@dataclass(frozen=True)
class Snippet:
    """Text that may hold a command: where it starts, and the raw text (its newlines kept for line numbers)."""

    path: str  # relative to the repository
    line: int
    text: str


# ---------------------------------------------------------------------------------------------------------------
# Extraction


CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)((?:(?!\n[ \t]*\n).)+?)(?<!`)\1(?!`)", re.DOTALL)
FENCE = re.compile(r"^\s*(```+|~~~+)\s*([\w+-]*)")


def code_spans(text: str, path: str, first_line: int) -> list[Snippet]:
    """Inline `code` spans (which may wrap over lines of a paragraph)."""
    return [
        Snippet(path, first_line + text.count("\n", 0, match.start(2)), match.group(2))
        for match in CODE_SPAN.finditer(text)
    ]


def join_continued(lines: list[tuple[int, str]], path: str) -> list[Snippet]:
    """Logical lines: one ending in a backslash goes on in the next."""
    snippets, start, parts = [], None, []
    for number, line in lines:
        if start is None:
            start = number
        parts.append(line)
        if not line.rstrip().endswith("\\"):
            snippets.append(Snippet(path, start, "\n".join(parts)))
            start, parts = None, []
    if parts:
        snippets.append(Snippet(path, start, "\n".join(parts)))
    return snippets


def markdown_text_snippets(text: str, path: str, first_line: int) -> list[Snippet]:
    """The lines of fenced shell blocks, and the inline code spans of the rest (other fences skipped)."""
    prose, fenced, fence, shell = [], [], None, False
    for number, line in enumerate(text.split("\n"), first_line):
        match = FENCE.match(line)
        if fence is None and match:
            fence, shell = match.group(1), match.group(2).lower() in SHELL_FENCES
            prose.append("")
        elif fence is not None and line.strip().startswith(fence) and not line.strip().strip(fence[0]):
            fence = None
            prose.append("")
        elif fence is not None:
            prose.append("")
            if shell:
                fenced.append((number, line))
        else:
            prose.append(line)
    return join_continued(fenced, path) + code_spans("\n".join(prose), path, first_line)


def markdown_snippets(path: Path) -> list[Snippet]:
    return markdown_text_snippets(path.read_text(), str(path.relative_to(REPO)), 1)


def python_snippets(path: Path) -> list[Snippet]:
    """In strings (docstrings, notebook cells in markdown): as in markdown, and a docstring's indented lines;
    in comments: the comment."""
    name = str(path.relative_to(REPO))
    snippets = []
    for token in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
        row = token.start[0]
        if token.type == tokenize.STRING:
            snippets += markdown_text_snippets(token.string, name, row)
            indented = [  # a docstring's example lines; a notebook cell's `!command` lines
                (row + offset, line)
                for offset, line in enumerate(token.string.split("\n"))
                if offset and re.match(r"( {4,}|\t)\S|\s*!\S", line)
            ]
            snippets += join_continued(indented, name)
            snippets += subprocess_snippets(token.string, name, row)
        elif token.type == tokenize.COMMENT:
            comment = token.string.lstrip("#").strip()
            snippets.append(Snippet(name, row, comment))
            snippets += code_spans(comment, name, row)
    return snippets


def argument_word(node: ast.expr) -> str | None:
    """A subprocess argument as the shell word it stands for; a computed one as a {placeholder}."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Starred):
        return None
    if isinstance(node, ast.Attribute) and ast.unparse(node) == "sys.executable":
        return "python"
    if isinstance(node, ast.JoinedStr):
        return "".join(
            part.value if isinstance(part, ast.Constant) else f"{{{ast.unparse(part.value)}}}" for part in node.values
        )
    return "{" + ast.unparse(node) + "}"


def subprocess_snippets(literal: str, path: str, row: int) -> list[Snippet]:
    """The argument lists of `subprocess.run([...])` (call, check_call, check_output, Popen) in a string
    holding Python code (a notebook cell), each as one command line."""
    try:
        value = ast.parse(literal.strip(), mode="eval").body
        # An f-string (a cell template the generator fills in): its fields become {placeholders}.
        code = argument_word(value) if isinstance(value, (ast.Constant, ast.JoinedStr)) else None
        tree = ast.parse(code) if isinstance(code, str) else None
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return []
    if tree is None:
        return []
    body = literal.strip().lstrip("rRbBuUfF")
    body = body[3:] if body[:3] in ('"""', "'''") else body[1:]
    first = row + body.startswith("\\\n")  # quotes, a backslash, a newline: the code starts a line later
    snippets = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("run", "call", "check_call", "check_output", "Popen")
            and node.args
            and isinstance(node.args[0], ast.List)
        ):
            words = [word for element in node.args[0].elts if (word := argument_word(element)) is not None]
            snippets.append(Snippet(path, first + node.lineno - 1, shlex.join(words)))
    return snippets


@functools.cache
def all_snippets() -> tuple[Snippet, ...]:
    snippets = []
    for path in sources():
        snippets += markdown_snippets(path) if path.suffix == ".md" else python_snippets(path)
    return tuple(snippets)


def strip_comment(text: str) -> str:
    """Drops shell comments (`#` after a blank, outside quotes) and the prose after a command (a ` (`)."""
    text = text.replace("\\\n", " ")
    out, quote, i = [], None, 0
    while i < len(text):
        char = text[i]
        if quote:
            quote = None if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "#(" and (i == 0 or text[i - 1].isspace()):
            end = text.find("\n", i)
            if char == "(" or end < 0:  # '(' is no shell word outside quotes: the command has ended
                break
            i = end
            continue
        out.append(char)
        i += 1
    return "".join(out)


def split_words(text: str) -> list[str]:
    text = re.sub(r"\n\s*", " ", strip_comment(text))  # one command line (a code span wraps like prose)
    try:
        return shlex.split(text)
    except ValueError:  # an unbalanced quote (a command quoted inside another's, over several lines)
        return shlex.split(text.replace('"', " ").replace("'", " "))


def segments(words: list[str]) -> list[list[str]]:
    parts, current = [], []
    for word in words:
        if word in SEPARATORS:
            parts.append(current)
            current = []
        else:
            current.append(word)
    return [*parts, current]


def program(words: list[str]) -> tuple[str, list[str]] | None:
    """(program, its arguments) where the words run one of PROGRAMS (after a prompt, env or srun, time)."""
    i = 0
    while i < len(words):
        word = words[i]
        if word in WRAPPERS or re.fullmatch(r"[A-Za-z_]\w*=\S*", word):
            i += 1
        elif word.rsplit("/", 1)[-1] == "time":
            i += 1
            while i < len(words) and words[i].startswith("-"):
                i += 2 if words[i] in ("-f", "-o", "--format", "--output") else 1
        else:
            break
    if i >= len(words):
        return None
    name = words[i].lstrip("!").rsplit("/", 1)[-1]  # !command: a notebook's shell escape
    if re.fullmatch(r"python3(\.\d+)?", name):
        name = "python"
    return (name, words[i + 1 :]) if name in PROGRAMS else None


# ---------------------------------------------------------------------------------------------------------------
# What the code accepts


def is_placeholder(word: str) -> bool:
    """DIR, OUT, FOLDER_OR_VIDEO, $RANK, <name>, ..., M...: a value the reader fills in."""
    word = word.strip("[]{}")
    capitals_only = re.search(r"[A-Z]", word) and not re.search(r"[a-z]", word)
    return not word or "..." in word or "<" in word or "$" in word or bool(capitals_only)


def clean(word: str) -> str:
    """`[--seed` -> `--seed`, `N]` -> `N`: the optional-argument brackets of a usage line."""
    return word.lstrip("[").rstrip("]")


@functools.cache
def cli_subcommands() -> dict[str, argparse.ArgumentParser]:
    from mer_jax.cli import make_parser

    parser = make_parser()
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def argparse_options(parser: argparse.ArgumentParser) -> tuple[dict[str, object], int]:
    """{option: how many values it takes (0, 1, n, '+', '*', '?')}, and how many positionals."""
    options = {}
    positionals = 0
    for action in parser._actions:
        if not action.option_strings:
            positionals += 1
        for option in action.option_strings:
            options[option] = 1 if action.nargs is None else action.nargs
    return options, positionals


@functools.cache
def script_options(path: Path) -> tuple[dict[str, object], int] | None:
    """A script's argparse options read from its source (`add_argument` calls); None: it reads no argparse."""
    tree = ast.parse(path.read_text())
    options, positionals, found = {"-h": 0, "--help": 0}, 0, False
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr != "add_argument":
            continue
        found = True
        names = [arg.value for arg in node.args if isinstance(arg, ast.Constant) and isinstance(arg.value, str)]
        keywords = {keyword.arg: keyword.value for keyword in node.keywords}
        nargs = 1
        action = keywords.get("action")
        if isinstance(action, ast.Constant) and action.value in ("store_true", "store_false", "count", "help"):
            nargs = 0
        elif isinstance(action, ast.Attribute) and action.attr == "BooleanOptionalAction":
            nargs = 0
            names += ["--no-" + name[2:] for name in names if name.startswith("--")]
        elif isinstance(keywords.get("nargs"), ast.Constant):
            nargs = keywords["nargs"].value
        if names and not names[0].startswith("-"):
            positionals += 1
        for name in names:
            options[name] = nargs
    if not found:
        source = path.read_text()
        return None if "sys.argv" in source or "absl" in source else ({"-h": 0, "--help": 0}, 0)
    return options, positionals


@functools.cache
def builders() -> dict[str, tuple[str, ...]]:
    from mer_jax.data.clips.build import BUILDERS

    return {name: tuple(config.name for config in builder.BUILDER_CONFIGS) for name, builder in BUILDERS.items()}


@functools.cache
def load(config: str, override: str | None = None):
    """The config `configs/FILE.py[:ROW]` (with one override), or the error's text."""
    from mer_jax.cli import load_config

    try:
        return load_config(str(REPO / config), [override] if override else [])
    except Exception as error:  # noqa: BLE001 - any failure to load is the finding
        return f"{type(error).__name__}: {error}"


def has_key(config, key: str) -> bool:
    import ml_collections

    node = config
    for part in key.split("."):
        if not isinstance(node, ml_collections.ConfigDict) or part not in node:
            return False
        node = node[part]
    return True


@functools.cache
def every_config() -> tuple:
    loaded = [load(str(path.relative_to(REPO))) for path in sorted((REPO / "configs").glob("*.py"))]
    return tuple(config for config in loaded if not isinstance(config, str))


def key_in_some_config(key: str) -> bool:
    return any(has_key(config, key) for config in every_config())


@functools.cache
def pyproject_extras() -> frozenset[str]:
    import tomllib

    return frozenset(tomllib.loads((REPO / "pyproject.toml").read_text())["project"].get("optional-dependencies", {}))


def module_exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


# ---------------------------------------------------------------------------------------------------------------
# Checks: each returns (offending word, message) pairs


def suggest(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def check_options(words: list[str], options: dict[str, object], positionals: int, what: str):
    """Flags of a parser: each known, values consumed; returns (problems, {flag: value}, positional words)."""
    problems, values, loose = [], {}, []
    i = 0
    while i < len(words):
        word = clean(words[i])
        i += 1
        if not word or word == "..." or word == "…":
            continue
        if word.startswith("-") and not re.fullmatch(r"-\d.*", word):
            name, equals, value = word.partition("=")
            if name.startswith("--config.") and "--config" in options:
                override = (words[i - 1], name[len("--config.") :], value if equals else None)
                values.setdefault("--config.", []).append(override)
                continue
            if name not in options:
                problems.append((words[i - 1], f"{what} takes no flag {name}{suggest(name, options)}"))
                if not equals and i < len(words) and not words[i].startswith("-"):
                    i += 1  # its value, most likely: not a loose argument too
                continue
            nargs = options[name]
            if equals:
                values[name] = value
            elif nargs == 0:
                continue
            elif nargs in (1, "?"):
                if i < len(words) and (nargs == 1 or not words[i].startswith("-")):
                    values[name] = clean(words[i])
                    i += 1
            else:
                count = nargs if isinstance(nargs, int) else len(words)
                taken = []
                while i < len(words) and len(taken) < count and not clean(words[i]).startswith("--"):
                    taken.append(clean(words[i]))
                    i += 1
                values[name] = " ".join(taken)
        else:
            loose.append((words[i - 1], word))
    if len(loose) > positionals:
        for raw, word in loose[positionals:]:
            if not is_placeholder(word):
                problems.append((raw, f"{what} takes no argument {word!r} here"))
    return problems, values, [word for _, word in loose]


def check_mer_jax(args: list[str]):
    subcommands = cli_subcommands()
    while args and clean(args[0]) in ("-h", "--help"):
        args = args[1:]
    if not args:
        return []
    command = clean(args[0])
    if command not in subcommands:
        if is_placeholder(command) or "|" in command:
            return []
        return [(args[0], f"mer-jax has no subcommand {command!r}{suggest(command, subcommands)}")]
    options, positionals = argparse_options(subcommands[command])
    problems, values, loose = check_options(args[1:], options, positionals, f"mer-jax {command}")

    if command == "build":
        known = builders()
        names = [name for word in loose[:1] for name in re.split(r"[|{},]", word) if name and not is_placeholder(name)]
        for name in names:
            if name not in known:
                problems.append((name, f"mer-jax build knows no dataset {name!r}{suggest(name, known)}"))
        config = values.get("--builder_config")
        if config:
            allowed = {c for name in names if name in known for c in known[name]}
            allowed = allowed or {c for configs in known.values() for c in configs}  # no dataset named
            for name in re.split(r"[|{},]", config):
                if name and not is_placeholder(name) and name not in allowed:
                    problems.append((name, f"no builder config {name!r} for {'|'.join(names) or 'any dataset'}"))

    config_path = values.get("--config")
    config = None
    if config_path and config_path.startswith("configs/"):
        file = config_path.split(":", 1)[0]
        if not (REPO / file).is_file():
            files = [f"configs/{path.name}" for path in (REPO / "configs").glob("*.py")]
            return [*problems, (config_path, f"no config file {file}{suggest(file, files)}")]
        config = load(config_path)
        if isinstance(config, str):
            return [*problems, (config_path, f"{config_path} does not load: {config}")]
    for raw, key, value in values.get("--config.", []):
        if key in PLACEHOLDER_KEYS or is_placeholder(key):
            continue
        if config is None:
            if not key_in_some_config(key):
                problems.append((raw, f"no config in configs/ has the key {key}"))
        elif not has_key(config, key):
            problems.append((raw, f"{config_path} has no key {key}"))
        elif value is not None and not is_placeholder(value):
            applied = load(config_path, f"--config.{key}={value}")
            if isinstance(applied, str):
                problems.append((raw, f"{config_path}: --config.{key}={value} does not apply: {applied}"))
    return problems


def check_python_code(code: str):
    try:
        tree = ast.parse(code)
    except SyntaxError as error:
        return [(code[:30], f"python -c code does not parse: {error}")]
    problems, bound = [], {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in LOCAL_PACKAGES:
            try:
                module = importlib.import_module(node.module)
            except ImportError as error:
                problems.append((node.module, f"python -c imports a missing module {node.module}: {error}"))
                continue
            for alias in node.names:
                if hasattr(module, alias.name):
                    bound[alias.asname or alias.name] = getattr(module, alias.name)
                elif not module_exists(f"{node.module}.{alias.name}"):
                    problems.append((alias.name, f"python -c imports {alias.name}, which {node.module} lacks"))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in LOCAL_PACKAGES and not module_exists(alias.name):
                    problems.append((alias.name, f"python -c imports a missing module {alias.name}"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and callable(bound.get(node.func.id)):
            try:
                parameters = inspect.signature(bound[node.func.id]).parameters
            except (TypeError, ValueError):
                continue
            if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
                continue
            for keyword in node.keywords:
                if keyword.arg and keyword.arg not in parameters:
                    message = f"python -c passes {keyword.arg}=, which {node.func.id} does not take"
                    problems.append((keyword.arg, message))
    return problems


def check_pytest(args: list[str]):
    problems, value_next = [], False
    for word in args:
        if value_next or word.startswith("-"):
            value_next = word in PYTEST_VALUE_OPTIONS
            continue
        path = word.split("::", 1)[0]
        if (path.endswith(".py") or "/" in path) and not is_placeholder(path) and not (REPO / path).exists():
            problems.append((word, f"pytest is given a missing path {path}"))
    return problems


def check_python(args: list[str]):
    i = 0
    while i < len(args) and args[i] in ("-u", "-B", "-O", "-OO", "-E", "-s", "-S", "-I", "-q", "-X", "-W"):
        i += 2 if args[i] in ("-X", "-W") else 1
    args = args[i:]
    if not args:
        return []
    first = clean(args[0])
    if first == "-m" and len(args) > 1:
        module, rest = args[1], args[2:]
        if module == "mer_jax.cli":
            return check_mer_jax(rest)
        if not module_exists(module):
            return [(module, f"python -m names a missing module {module}")]
        if module == "pytest":
            return check_pytest(rest)
        if module == "pip":
            return check_pip(rest)
        return []
    if first == "-c" and len(args) > 1:
        return check_python_code(args[1])
    if first.endswith(".py") and not is_placeholder(first):
        path = REPO / first
        if not path.is_file():
            return [(args[0], f"no script {first}")]
        parsed = script_options(path)
        if parsed is None:
            return []
        return check_options(args[1:], *parsed, f"python {first}")[0]
    return []


def check_pip(args: list[str]):
    """`pip install -e '.[EXTRA]'` (or CHECKOUT[EXTRA], a placeholder for the checkout): pyproject.toml has EXTRA."""
    problems = []
    for word in args:
        match = re.fullmatch(r"(.+)\[([\w,\s-]+)\]", word)
        if not match or not (match.group(1) == "." or is_placeholder(match.group(1))):
            continue  # another package's extras (jax[tpu])
        for extra in match.group(2).split(","):
            if extra.strip() not in pyproject_extras():
                problems.append((word, f"pyproject.toml has no extra {extra.strip()!r}"))
    return problems


CHECKS = {"mer-jax": check_mer_jax, "python": check_python, "pip": check_pip, "pip3": check_pip, "pytest": check_pytest}


def commands_in(snippet: Snippet):
    """The (program, arguments) of each command in the snippet."""
    return [found for part in segments(split_words(snippet.text)) if (found := program(part))]


def where(snippet: Snippet, word: str) -> str:
    offset = snippet.text.find(word)
    line = snippet.line + (snippet.text.count("\n", 0, offset) if offset >= 0 else 0)
    return f"{snippet.path}:{line}"


OVERRIDE = re.compile(r"(?<![\w.-])--config\.([A-Za-z_][\w.]*\w)(?:=(\S+))?")


def override_mentions(covered: set[tuple[str, int]]):
    """`--config.KEY` outside a command (lines not in `covered`): in configs/FILE.py a key of FILE's config,
    elsewhere of some config."""
    problems = []
    for path in sources():
        name = str(path.relative_to(REPO))
        own = load(name) if name.startswith("configs/") else None
        own = None if isinstance(own, str) else own  # a table file needing its row: any config then
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if (name, number) in covered:
                continue
            for match in OVERRIDE.finditer(line):
                key = match.group(1)
                if key in PLACEHOLDER_KEYS or is_placeholder(key):
                    continue
                if own is not None and not has_key(own, key):
                    problems.append(f"{name}:{number}: --config.{key}: {name} has no key {key}")
                elif own is None and not key_in_some_config(key):
                    problems.append(f"{name}:{number}: --config.{key}: no config in configs/ has the key {key}")
    return problems


@functools.cache
def findings() -> tuple[tuple[str, ...], int]:
    """(each failure as 'file:line: problem', how many commands were checked)."""
    problems, checked, covered = [], 0, set()
    for snippet in all_snippets():
        for name, args in commands_in(snippet):
            checked += 1
            covered.update((snippet.path, snippet.line + k) for k in range(snippet.text.count("\n") + 1))
            for word, message in CHECKS[name](args):
                problems.append(f"{where(snippet, word)}: {message}")
    problems += override_mentions(covered)
    return tuple(dict.fromkeys(problems)), checked


# ---------------------------------------------------------------------------------------------------------------
# Tests


def test_documented_commands_match_the_code():
    problems, checked = findings()
    assert not problems, f"{len(problems)} documented command(s) out of date:\n" + "\n".join(problems)


def test_the_commands_are_found():
    """The extraction itself must not rot into finding nothing: the README's quick start and each subcommand."""
    found = [(snippet.path, name, args) for snippet in all_snippets() for name, args in commands_in(snippet)]
    assert findings()[1] >= 60, len(found)
    subcommands = {args[0] for _, name, args in found if name == "mer-jax" and args}
    assert set(cli_subcommands()) <= subcommands, set(cli_subcommands()) - subcommands
    readme = [args for path, name, args in found if path == "README.md" and name == "mer-jax"]
    assert ["train", "--config", "configs/rcn_synth_megc2019.py", "--workdir", "runs/synth_megc2019"] in readme
    assert any(path.startswith("configs/") for path, _, _ in found)
    assert any(path == "colab/make_notebooks.py" for path, _, _ in found)
    pips = [args for path, name, args in found if path == "colab/make_notebooks.py" and args[:2] == ["-m", "pip"]]
    assert any(arg.endswith("[data]") for args in pips for arg in args), pips  # the Colab install's subprocess list


def test_a_notebook_cells_subprocess_list_is_a_command():
    cell = repr('import subprocess, sys\nsubprocess.run([sys.executable, "-m", "mer_jax.cli", "synth", "--outdir", X])')
    (snippet,) = subprocess_snippets(cell, "cell.py", 7)
    assert snippet.line == 8
    ((name, args),) = commands_in(snippet)
    assert (name, args) == ("python", ["-m", "mer_jax.cli", "synth", "--outdir", "{X}"])
    assert ["takes no flag --outdir" in message for _, message in check_python(args)] == [True]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("mer-jax train --config configs/quickstart.py --workdir DIR [--config.key=value ...]", []),
        ("$ mer-jax predict --workdir W --frames F --json   # --bogus in a comment", []),
        ("mer-jax train --config configs/quickstart.py --work_dir W", ["takes no flag --work_dir"]),
        ("mer-jax train --config configs/nowhere.py --workdir W", ["no config file configs/nowhere.py"]),
        ("mer-jax train --config configs/quickstart.py --config.train.epoch=5 \\\n --workdir W", ["no key train.ep"]),
        ("mer-jax build kdef --builder_config tim32 --manual_dir DIR", ["no builder config 'tim32'"]),
        ("mer-jax bild megc2019", ["no subcommand 'bild'"]),
        ("mer-jax train --config configs/quickstart.py --config.train.epochs=many", ["does not apply"]),
        ("mer-jax describe --config configs/rcn_tip2020.py:table9_rcn_z", ["does not load"]),
        ("python benchmarks/fold_parallel.py --compare --batch_size 64", ["takes no flag --batch_size"]),
        ("python benchmarks/nowhere.py", ["no script benchmarks/nowhere.py"]),
        ("python -m mer_jax.nowhere", ["missing module mer_jax.nowhere"]),
        ("python -c \"from mer_jax.cli import nothing\"", ["mer_jax.cli lacks"]),
        (".venv/bin/pip install -e '.[nothing]' 'jax[tpu]'", ["no extra 'nothing'"]),
        ("!mer-jax synth --out runs/synth --seeds 3", ["takes no flag --seeds"]),
    ],
)
def test_the_checks_catch_rot(text, expected):
    """Each check on a made-up command: placeholders pass, each kind of rot is reported."""
    snippet = Snippet("example.md", 1, text)
    messages = [message for name, args in commands_in(snippet) for _, message in CHECKS[name](args)]
    assert len(messages) == len(expected), messages
    for message, part in zip(messages, expected):
        assert part in message, messages
