"""DRF classes named in settings.REST_FRAMEWORK (kept apart: DRF imports them while it starts)."""

from __future__ import annotations

from rest_framework.exceptions import ParseError
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import JSONParser


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser, answering 400 to JSON nested too deeply for Python's decoder.

    The decoder raises RecursionError (not ValueError) past the interpreter's recursion limit,
    which DRF's parser lets through as a 500.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply") from None


class Pagination(PageNumberPagination):
    """50 rows a page by default; ``page_size`` up to MAX_PAGE_SIZE."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
