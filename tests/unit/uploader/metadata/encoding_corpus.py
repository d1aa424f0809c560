"""Inputs for the byte-identical metadata_encode check against pacifica-uploader 0.3.1.

``build_corpus`` takes the MetaData/MetaObj/FileObj classes, so the same inputs
are built with this project's classes (in the test) and with 0.3.1's (by
``data/make_expected.py``, run once in a separate environment that has
pacifica-uploader 0.3.1 installed). This module imports nothing from either.
"""
from __future__ import annotations

import collections
import random
from typing import Any, Callable, List, Tuple

TEXTS = [
    '', 'plain', 'ünïcödé', '日本語のテキスト', 'emoji 😀🎉', 'line\nbreak\ttab', 'nul \x00 and \x1f',
    'quote " backslash \\ slash /', '\u2028\u2029', 'lone \ud800 surrogate', '\x7f\x80\xff', 'Ωμέγα', 'ﬁ ligature',
    '<script>&amp;</script>', ' leading and trailing ', '0', 'null', 'true',
]
NUMBERS = [0, -1, 1, 2 ** 31, 2 ** 64, -(2 ** 100), 1.0, 0.1, -0.0, 1e16, 1e-7, 123456.789, 3.141592653589793,
           1.7976931348623157e308, 5e-324, float('inf'), float('-inf'), float('nan'), True, False]


def _random_text(rng: random.Random) -> str:
    alphabet = 'abcXYZ019 _-/.:"\\\n\té€😀日\u0000\u00ff'
    return ''.join(rng.choice(alphabet) for _ in range(rng.randint(0, 24)))


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randint(0, 9 if depth < 2 else 4)
    if kind == 0:
        return _random_text(rng)
    if kind == 1:
        return rng.randint(-10 ** 12, 10 ** 12)
    if kind == 2:
        return rng.uniform(-1e6, 1e6)
    if kind == 3:
        return rng.choice([True, False, 0, '', 0.0])
    if kind == 4:
        return rng.choice(TEXTS)
    if kind in (5, 6):
        return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    if kind == 7:
        return tuple(_random_value(rng, depth + 1) for _ in range(rng.randint(0, 3)))
    return {_random_text(rng): _random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def build_corpus(MetaData: type, MetaObj: Callable[..., Any], FileObj: Callable[..., Any],  # noqa: N803
                 ) -> List[Tuple[str, Any]]:
    """Return ``(name, input)`` pairs; each input is meant for metadata_encode."""
    corpus: List[Tuple[str, Any]] = []
    add = corpus.append
    add(('empty', MetaData()))
    add(('blarg', MetaData([MetaObj(destinationTable='blarg')])))
    add(('all-none', MetaData([MetaObj()])))
    add(('doc-example', MetaData([MetaObj(
        destinationTable='Transactions.submitter', displayFormat='{_id} - {first_name} {last_name}',
        displayTitle='Currently Logged On', displayType='logged_on', metaID='logon', queryDependency={},
        queryFields=['first_name', 'last_name', '_id'], sourceTable='users', value='', valueField='_id')])))
    add(('every-meta-field', MetaData([MetaObj(
        sourceTable='projects', destinationTable='Transactions.project', metaID='project',
        displayType='select', displayTitle='Project', queryDependency={'user_id': 'logon', 'instrument': 'inst'},
        valueField='_id', queryFields=['_id', 'title'], displayFormat='{_id} {title}', key='k', value='1234a',
        directoryOrder=2, query_results=[{'_id': '1234a', 'title': 'Pröject'}, {'_id': 7, 'title': None}])])))
    add(('every-file-field', MetaData([FileObj(
        destinationTable='Files', name='data.bin', source='here', subdir='a/b', size=1024, hashtype='sha1',
        hashsum='da39a3ee5e6b4b0d3255bfef95601890afd80709', mimetype='application/octet-stream',
        ctime='2018-12-18T10:00:00', mtime='2018-12-18T10:00:01')])))
    add(('texts', MetaData([MetaObj(destinationTable='TransactionKeyValue', key=text, value=text)
                            for text in TEXTS])))
    add(('numbers', MetaData([MetaObj(destinationTable='TransactionKeyValue', key='n', value=number)
                              for number in NUMBERS])))
    add(('file-numbers', MetaData([FileObj(destinationTable='Files', name='f', size=number) for number in NUMBERS])))
    add(('nested', MetaData([MetaObj(destinationTable='x', queryDependency={
        'a': {'b': [1, {'c': None, 'd': (1, 2)}], 'e': {}}, 'f': [[], [[None]]], 'ü': {'日': '😀'}})])))
    add(('falsy-kept', MetaData([MetaObj(destinationTable='', metaID='', value=0, key=False, query_results=[])])))
    add(('non-str-keys', MetaData([MetaObj(destinationTable='x', queryDependency={
        1: 'one', 2.5: 'two and a half', False: 'false', None: 'none', -3: 'minus'})])))
    add(('colliding-keys', MetaData([MetaObj(destinationTable='x', queryDependency={
        1: 'int first', '2': 'str', '1': 'str later', 2: 'int later', 'z': {1: 'a', '1': 'b'}})])))
    add(('ordered-dict', MetaData([MetaObj(destinationTable='x', value=collections.OrderedDict(
        [('b', 1), ('a', 2)]))])))
    add(('mixed-upload', MetaData(
        [MetaObj(destinationTable='Transactions.instrument', metaID='inst', value=54)]
        + [FileObj(destinationTable='Files', name='file{}.txt'.format(index), subdir='dir/{}'.format(index % 7),
                   size=index * 37, hashtype='sha1', hashsum='{:040x}'.format(index * 7919),
                   mimetype='text/plain', ctime='2020-01-01T00:00:00', mtime='2020-01-01T00:00:00')
           for index in range(50)])))
    rng = random.Random(20181218)
    for number in range(25):
        items = []
        for _ in range(rng.randint(1, 12)):
            if rng.random() < 0.4:
                items.append(FileObj(destinationTable='Files', **{
                    field: _random_value(rng) for field in ('name', 'source', 'subdir', 'size', 'hashtype',
                                                            'hashsum', 'mimetype', 'ctime', 'mtime')
                    if rng.random() < 0.7}))
            else:
                fields = ('sourceTable', 'metaID', 'displayType', 'displayTitle', 'queryDependency', 'valueField',
                          'queryFields', 'displayFormat', 'key', 'value', 'directoryOrder', 'query_results')
                values = {field: _random_value(rng) for field in fields if rng.random() < 0.5}
                values['metaID'] = _random_text(rng) or None  # MetaData indexes it: must be hashable
                items.append(MetaObj(destinationTable=_random_text(rng), **values))
        add(('random-{}'.format(number), MetaData(items)))
    # Inputs 0.3.1 refuses with a TypeError.
    add(('error-plain-list', [MetaObj(destinationTable='x')]))
    add(('error-dict-item', MetaData([{'destinationTable': 'x'}])))
    add(('error-file-not-files', MetaData([FileObj(destinationTable='Transactions', name='a')])))
    add(('error-meta-as-files', MetaData([MetaObj(destinationTable='Files')])))
    add(('error-set-value', MetaData([MetaObj(destinationTable='x', value={1, 2})])))
    add(('error-none', None))
    return corpus
