"""Write metadata_0.3.1.json: what pacifica-uploader 0.3.1 encodes for each corpus input.

Run once with an interpreter that has pacifica-uploader 0.3.1 (and not this
project) installed, from the repository root::

    <that-venv>/bin/python tests/unit/uploader/metadata/data/make_expected.py

Python 3.11 built the committed file; the random corpus entries depend only on
``random.Random`` with a fixed seed.
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from encoding_corpus import build_corpus  # noqa: E402
from pacifica.uploader.metadata import FileObj, MetaData, MetaObj, metadata_encode  # noqa: E402

expected = {}
for name, md_obj in build_corpus(MetaData, MetaObj, FileObj):
    try:
        expected[name] = {'text': metadata_encode(md_obj)}
    except Exception as err:  # noqa: BLE001 - record which exception 0.3.1 raised
        expected[name] = {'error': type(err).__name__}
with open(os.path.join(HERE, 'metadata_0.3.1.json'), 'w', encoding='ascii') as out:
    json.dump(expected, out, indent=1, sort_keys=True)
    out.write('\n')
