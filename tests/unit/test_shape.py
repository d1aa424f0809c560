"""The shape limits of issue 14: every module of ``pacifica/`` short, every function simple.

No module over :data:`MAX_LINES` lines; no function, method or closure with a
radon cyclomatic complexity over :data:`MAX_COMPLEXITY` (radon's grade D or
worse, what ``radon cc -n D pacifica`` prints). A failure lists every
offender, so one run shows all the work left.
"""
from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Iterable, Iterator, List, Tuple

from radon.complexity import cc_visit
from radon.visitors import Class, Function

PACKAGE = Path(__file__).resolve().parents[2] / 'pacifica'
MAX_LINES = 450
MAX_COMPLEXITY = 20


def modules() -> List[Path]:
    """Every Python module of this project's ``pacifica/`` folder (the namespace may hold others' too)."""
    return sorted(PACKAGE.rglob('*.py'))


def line_count(path: Path) -> int:
    return len(path.read_text(encoding='utf-8').splitlines())


def functions(blocks: Iterable[object], prefix: str = '') -> Iterator[Tuple[str, int, int]]:
    """(qualified name, line, complexity) of every function, method and closure among radon's blocks.

    radon lists a module's functions and its classes' methods as blocks of
    their own; the methods of nested classes and the closures hang below.
    """
    for block in blocks:
        if isinstance(block, Function):
            name = prefix + block.fullname
            yield name, block.lineno, block.complexity
            yield from functions(block.closures, name + '.')
        elif isinstance(block, Class):
            for inner in block.inner_classes:
                yield from functions([*inner.methods, inner], prefix + block.name + '.')


def too_complex(source: str) -> List[Tuple[str, int, int]]:
    """The functions of ``source`` over the complexity limit."""
    return sorted({found for found in functions(cc_visit(source)) if found[2] > MAX_COMPLEXITY})


def relative(path: Path) -> str:
    return path.relative_to(PACKAGE.parent).as_posix()


def test_the_package_is_found() -> None:
    found = {relative(path) for path in modules()}
    assert {'pacifica/uploader/uploader.py', 'pacifica/downloader/downloader.py',
            'pacifica/_client/config.py'} <= found
    assert len(found) >= 30


def test_no_module_is_over_the_line_limit() -> None:
    long = ['{} ({} lines)'.format(relative(path), count) for path in modules()
            if (count := line_count(path)) > MAX_LINES]
    assert not long, 'modules over {} lines: {}'.format(MAX_LINES, ', '.join(long))


def test_no_function_is_over_the_complexity_limit() -> None:
    found = ['{}:{} {} ({})'.format(relative(path), line, name, complexity) for path in modules()
             for name, line, complexity in too_complex(path.read_text(encoding='utf-8'))]
    assert not found, 'functions with a cyclomatic complexity over {}: {}'.format(MAX_COMPLEXITY, ', '.join(found))


def _branches(count: int, indent: str = '    ') -> str:
    return ''.join('{0}if x == {1}:\n{0}    return {1}\n'.format(indent, n) for n in range(count))


def test_the_complexity_check_sees_functions_methods_and_closures() -> None:
    """A complexity of 21 is flagged wherever the function sits; 20 is not."""
    source = textwrap.dedent('''\
        def plain(x):
        {c20}
        def over(x):
        {c21}
        class Outer:
            def method(self, x):
        {c21m}
            class Inner:
                def deep(self, x):
        {c21d}
        def holder():
            def closure(x):
        {c21m}
            return closure
        ''').format(**{'c20': _branches(19), 'c21': _branches(20), 'c21m': _branches(20, ' ' * 8),
                       'c21d': _branches(20, ' ' * 12)})
    assert [(name, complexity) for name, _line, complexity in too_complex(source)] == [
        ('Outer.Inner.deep', 21), ('Outer.method', 21), ('holder.closure', 21), ('over', 21)]
