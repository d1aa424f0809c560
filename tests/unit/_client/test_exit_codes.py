"""The commands' exit code is the ``exit_code`` of the error's category, not a position in a table."""
from __future__ import annotations

import pytest

from pacifica._client import cli
from pacifica._client import exceptions as errors

#: The categories and the codes the commands document (``--help``); changing one breaks scripts.
CATEGORIES = {
    errors.PacificaError: cli.EXIT_LOCAL,
    errors.BundleError: cli.EXIT_LOCAL,
    errors.ConfigurationError: cli.EXIT_USAGE,
    errors.MetadataError: cli.EXIT_USAGE,
    errors.UnknownTransactionError: cli.EXIT_USAGE,
    errors.TransportError: cli.EXIT_SERVER,
    errors.InvalidResponseError: cli.EXIT_SERVER,
    errors.UploadRejectedError: cli.EXIT_SERVER,
    errors.CartRequestError: cli.EXIT_SERVER,
    errors.CartFailedError: cli.EXIT_SERVER,
    errors.CartTimeoutError: cli.EXIT_SERVER,
    errors.CartDownloadError: cli.EXIT_SERVER,
    errors.RecordError: cli.EXIT_FAILED,
    errors.PolicyError: cli.EXIT_FAILED,
    errors.IngestError: cli.EXIT_FAILED,
    errors.DownloadError: cli.EXIT_FAILED,
}

EVERY_ERROR = [getattr(errors, name) for name in errors.__all__
               if isinstance(getattr(errors, name), type) and issubclass(getattr(errors, name), BaseException)]


def _bare(cls: type) -> BaseException:
    """An instance of ``cls``, whatever its constructor takes: the exit code depends on the class alone."""
    shapes = ((('message',), {}), (('message', 500), {}), (('message',), {'status_code': 500}),
              (('message', 5, 4), {}), (([],), {}))
    for args, kwargs in shapes:
        try:
            return cls(*args, **kwargs)
        except (TypeError, ValueError):
            continue
    raise AssertionError('no way to make a {}'.format(cls.__name__))


def test_the_documented_codes_are_unchanged():
    assert (cli.EXIT_OK, cli.EXIT_LOCAL, cli.EXIT_USAGE, cli.EXIT_SERVER, cli.EXIT_FAILED) == (0, 1, 2, 3, 4)


@pytest.mark.parametrize('category, code', list(CATEGORIES.items()), ids=lambda value: getattr(value, '__name__', ''))
def test_each_category_carries_its_code(category, code):
    assert category.exit_code == code and cli.exit_code_for(_bare(category)) == code


@pytest.mark.parametrize('cls', EVERY_ERROR, ids=lambda cls: cls.__name__)
def test_every_error_exits_with_the_code_its_class_carries(cls):
    assert cli.exit_code_for(_bare(cls)) == cls.exit_code
    assert cli.exit_code_for(cli.Hinted(_bare(cls), 'a hint')) == cls.exit_code


@pytest.mark.parametrize('cls', EVERY_ERROR, ids=lambda cls: cls.__name__)
def test_a_class_exits_as_its_nearest_category(cls):
    """The code is the one of the first class in the method resolution order that names one."""
    nearest = next(base for base in cls.__mro__ if 'exit_code' in vars(base))
    assert cls.exit_code == nearest.exit_code


def test_a_class_of_two_categories_exits_as_its_first_base():
    class PolicyThenServer(errors.PolicyError, errors.TransportError):
        pass

    class ServerThenPolicy(errors.TransportError, errors.PolicyError):
        pass

    assert cli.exit_code_for(_bare(PolicyThenServer)) == cli.EXIT_FAILED
    assert cli.exit_code_for(_bare(ServerThenPolicy)) == cli.EXIT_SERVER


@pytest.mark.parametrize('error', [OSError('disk full'), KeyError('x'), RuntimeError('bug')], ids=repr)
def test_errors_from_outside_the_library_are_local(error):
    assert cli.exit_code_for(error) == cli.EXIT_LOCAL
