"""The exceptions of the crawler itself. What a *link* did is a value (`model.Verdict`).

CrawlerError               anything the crawler cannot do its job through
├── ConfigError            bad or missing settings             -> exit 3
├── SourceError            the article cannot be read          -> exit 1
└── StoreError             database unavailable, locked, full  -> exit 1
"""

from __future__ import annotations


class CrawlerError(Exception):
    """Base of every error the crawler raises on purpose."""

    exit_code = 1


class ConfigError(CrawlerError):
    """A setting is missing or wrong; the message names the file, the key and what was expected."""

    exit_code = 3


class SourceError(CrawlerError):
    """The article cannot be read (missing file, unreadable URL, undecodable bytes)."""


class StoreError(CrawlerError):
    """The database is unavailable, locked, full or corrupt."""


def first_crawler_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first CrawlerError inside a task group's failure, else the group itself."""
    for exc in group.exceptions:
        if isinstance(exc, CrawlerError):
            return exc
        if isinstance(exc, BaseExceptionGroup):
            inner = first_crawler_error(exc)
            if isinstance(inner, CrawlerError):
                return inner
    return group
