"""Sharded dataset uploads: many bundles at once, each ingested exactly once, resumable.

A dataset too large for one bundle is split into shards (:mod:`.plan`), each
one ingest transaction tagged with the dataset's id and its part
(:mod:`.metadata`), sent in parallel on any ``concurrent.futures`` Executor
(:mod:`.runner`, :mod:`.worker`), with every step recorded in a manifest file
(:mod:`.manifest`) so that a second run finishes the first one's work without
sending any shard twice::

    from pacifica.uploader.dataset import upload_dataset
    report = upload_dataset('results/', metadata, 'results.manifest.json', max_files=10_000, workers=4,
                            uploader_kwargs={'upload_url': ..., 'status_url': ...})
"""
from .manifest import Manifest, ManifestError, TransitionError
from .metadata import DATASET_KEY, PART_KEY, DatasetTags, dataset_tags, shard_metadata
from .plan import DatasetChangedError, DatasetSource, EmptyDatasetError, ShardPlan, entries_under, plan, plan_shards
from .runner import RunReport, upload_dataset

__all__ = ['upload_dataset', 'RunReport', 'DatasetSource', 'ShardPlan', 'plan', 'plan_shards', 'entries_under',
           'Manifest', 'ManifestError', 'TransitionError', 'EmptyDatasetError', 'DatasetChangedError',
           'DATASET_KEY', 'PART_KEY', 'DatasetTags', 'dataset_tags', 'shard_metadata']
