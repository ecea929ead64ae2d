"""The admin bases the apps share: numbers and times as a trader reads them, and records the system writes.

Every ModelAdmin of the project derives from ``DisplayAdmin``. Its ``columns`` name
how a field is shown (``ms_time()``, ``price("symbol")``, ``pvalue("ADF p")``...):
on the list, in a column of the field's own name, sorted by the field; on the detail
page, wherever the field is read-only. A field it does not name is shown by its type:
a float without float noise, a datetime in UTC to the second, JSON indented with its
numbers to 8 significant digits. Editable fields stay the form's inputs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from operator import attrgetter
from typing import TYPE_CHECKING, Any, ClassVar

from django.contrib import admin
from django.contrib.admin.utils import display_for_field
from django.db import models
from django.db.models import Model
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString

from . import display

# ModelAdmin is generic only in django-stubs; at run time it takes no type argument.
if TYPE_CHECKING:
    _ModelAdmin = admin.ModelAdmin[Model]
else:
    _ModelAdmin = admin.ModelAdmin

#: What the admin shows where a value is missing (the pages' dash).
EMPTY = "—"


@dataclasses.dataclass(frozen=True)
class Column:
    """How one model field is shown: ``text(obj, value)`` of a value that is not None (None: as Django shows
    it), and a short header for the list (None: the field's verbose name). ``detail``: shown so on the detail
    page too (else as Django shows it there: a choice's full label, say), by ``detail_text`` when it says
    more than the list."""

    text: Callable[[Any, Any], str | SafeString] | None
    header: str | None = None
    detail: bool = True
    detail_text: Callable[[Any, Any], str | SafeString] | None = None


def column(text: Callable[[Any], str], header: str | None = None, *, detail: bool = True) -> Column:
    """A column whose text depends on the value alone."""
    return Column(lambda obj, value: text(value), header, detail)


def as_is(header: str) -> Column:
    """The value as Django shows it (a choice's label), under a shorter header."""
    return Column(None, header)


def _time(ms: int, text: str) -> SafeString:
    # A <time>, which machines read as well.
    return format_html('<time datetime="{}">{} UTC</time>', display.iso_utc(ms), text)


def ms_time(header: str | None = None, *, millis: bool = False) -> Column:
    """A time in ms since the epoch: "2026-11-30 06:15:07 UTC" (``millis``: "06:15:07.123 UTC"); on the
    detail page with the ms too, as the API and the CSVs write it."""

    def text(obj: Any, ms: int) -> SafeString:
        return _time(ms, display.utc_text(ms, millis=millis))

    return Column(
        text, header, detail_text=lambda obj, ms: format_html('{} <span class="quiet">{} ms</span>', text(obj, ms), ms)
    )


def utc_time(header: str | None = None) -> Column:
    """A datetime in UTC to the second: "2026-11-30 06:15:07 UTC"."""
    return column(lambda moment: _time(int(moment.timestamp() * 1000), display.datetime_text(moment)), header)


def price(symbol: str, header: str | None = None, *, extra: int = 0) -> Column:
    """A price of the instrument named by attribute ``symbol`` ("symbol", "pair.symbol_a"): to its tick,
    ``extra`` decimals more (a fill with slippage is off the tick)."""
    symbol_of = attrgetter(symbol)
    return Column(
        lambda obj, value: display.number_text(value, display.price_decimals(symbol_of(obj), value) + extra), header
    )


def pvalue(header: str | None = None) -> Column:
    """A p-value: 4 decimals, "<0.0001" below that."""
    return column(display.pvalue_text, header)


def zscore(header: str | None = None) -> Column:
    """A z-score: signed, 2 decimals."""
    return column(display.signed_text, header)


def fixed(decimals: int, header: str | None = None) -> Column:
    """A number to ``decimals`` decimals (a correlation: 2)."""
    return column(lambda value: display.number_text(value, decimals), header)


def duration(header: str | None = None, *, unit_ms: bool = False) -> Column:
    """A duration as the pages write it: "1m 24s" (``unit_ms``: the value is in ms, else seconds)."""
    return column(lambda value: display.duration_text(value / 1000 if unit_ms else value), header)


def ratio(header: str | None = None) -> Column:
    """A hedge ratio: 6 significant digits, zeros kept (20.0000)."""
    return column(display.ratio_text, header)


def money(header: str | None = None, *, signed: bool = False) -> Column:
    """An amount in quote currency: 2 decimals, thousands separated; ``signed`` for a PnL ("+1,234.50")."""
    return column(lambda value: display.number_text(value, 2, signed=signed), header)


def quantity(header: str | None = None, *, signed: bool = False) -> Column:
    """A quantity without float noise; ``signed``: + bought, - sold, 6 significant digits."""
    return column(display.qty_text if signed else display.plain_number, header)


def threshold(header: str | None = None) -> Column:
    """A threshold as the pages' gates show it: "0.05", "2.00"."""
    return column(display.threshold_text, header)


def percent(header: str | None = None, *, decimals: int = 4) -> Column:
    """A fraction as a percentage: a funding rate of 0.0001 is "0.0100 %"."""
    return column(lambda value: f"{display.number_text(100 * value, decimals)} %", header)


def yes_no(header: str | None = None) -> Column:
    """A flag as "yes" or "no"."""
    return column(lambda value: "yes" if value else "no", header)


def words(header: str | None = None, *, detail: bool = False) -> Column:
    """A code as words: "long_spread" is "long spread"; on the list only unless ``detail`` (a choice has its
    full label on the detail page)."""
    return column(lambda value: str(value).replace("_", " "), header, detail=detail)


def clipped(length: int, header: str | None = None) -> Column:
    """A long text cut to ``length`` characters on the list, where it may wrap (whole on the detail page)."""
    return column(
        lambda value: format_html(
            '<span class="wraps">{}</span>', value if len(value) <= length else value[: length - 1] + "…"
        ),
        header,
        detail=False,
    )


def json_block() -> Column:
    """JSON indented, its numbers to 8 significant digits."""
    return column(lambda value: format_html('<pre class="json">{}</pre>', display.json_text(value)))


def json_entry(field: str, key: str, shown: Column) -> Callable[[Model], str]:
    """A list column of one entry of a JSON field (a stored snapshot's hedge ratio, a backtest's net PnL), shown
    by ``shown``; not sortable (the database does not order by it)."""

    def entry(obj: Model) -> str:
        value = (getattr(obj, field) or {}).get(key)
        if value is None:
            return EMPTY
        return shown.text(obj, value) if shown.text else str(value)

    entry.__name__ = key
    return admin.display(description=shown.header or key)(entry)


def _default(field: models.Field[Any, Any]) -> Column | None:
    """How a field no ``columns`` entry names is shown: by its type (None: as Django shows it)."""
    if isinstance(field, models.FloatField):
        return column(display.plain_number)
    if isinstance(field, models.DateTimeField):
        return utc_time()
    if isinstance(field, models.JSONField):
        return json_block()
    return None


class DisplayAdmin(_ModelAdmin):
    """A ModelAdmin whose lists and detail pages show numbers and times as a trader reads them (see the module)."""

    #: field name -> how it is shown; the rest by type.
    columns: ClassVar[Mapping[str, Column]] = {}
    empty_value_display = EMPTY

    class Media:
        css = {"all": ["pairs/admin.css"]}

    def __init__(self, model: type[Model], admin_site: admin.AdminSite) -> None:
        super().__init__(model, admin_site)
        #: field -> the list's display (named as the field) and the detail page's (an attribute of this admin).
        self._listed: dict[str, Callable[[Model], str]] = {}
        self._detailed: dict[str, str] = {}
        self._help_texts: dict[str, str] = {}
        for field in model._meta.concrete_fields:
            shown = self.columns.get(field.name) or _default(field)
            if shown is None:
                continue
            self._listed[field.name] = self._display(field, shown.text, shown.header)
            if shown.detail:
                name = f"{field.name}_text"
                setattr(self, name, self._display(field, shown.detail_text or shown.text, str(field.verbose_name)))
                self._detailed[field.name] = name
                if field.help_text:
                    self._help_texts[name] = str(field.help_text)

    @staticmethod
    def _display(
        field: models.Field[Any, Any], shown: Callable[[Any, Any], str | SafeString] | None, header: str | None
    ) -> Callable[[Model], str]:
        def text(obj: Model) -> str:
            value = getattr(obj, field.attname)
            if value is None:
                return EMPTY
            return shown(obj, value) if shown else display_for_field(value, field, EMPTY)

        text.__name__ = field.name  # the list's column-<field> class, as the field's own column has
        return admin.display(description=header or str(field.verbose_name), ordering=field.name)(text)

    def get_list_display(self, request: HttpRequest) -> list[Any]:
        return [
            self._listed.get(name, name) if isinstance(name, str) else name
            for name in super().get_list_display(request)
        ]

    def get_list_display_links(self, request: HttpRequest, list_display: Any) -> Any:
        links = super().get_list_display_links(request, list_display)
        return [self._listed.get(name, name) if isinstance(name, str) else name for name in links] if links else links

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> list[str]:
        # The detail displays beside the fields they show: the form leaves out both.
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, *(self._detailed[name] for name in fields if name in self._detailed)]

    def get_form(self, request: HttpRequest, obj: Model | None = None, change: bool = False, **kwargs: Any) -> Any:
        # A field's help text stays under its display.
        kwargs.setdefault("help_texts", self._help_texts)
        return super().get_form(request, obj, change, **kwargs)

    def get_fieldsets(self, request: HttpRequest, obj: Model | None = None) -> list[Any]:
        """The fields, each read-only one by its display (all of them where the user may only view)."""
        shown_all = obj is not None and not self.has_change_permission(request, obj)
        read_only = set(super().get_readonly_fields(request, obj))

        def shown(name: Any) -> Any:
            if isinstance(name, list | tuple):  # a line of several fields
                return tuple(shown(n) for n in name)
            if isinstance(name, str) and name in self._detailed and (shown_all or name in read_only):
                return self._detailed[name]
            return name

        fieldsets = []
        for title, options in super().get_fieldsets(request, obj):
            # Without declared fields Django lists the read-only ones after the form's, displays included.
            fields = list(dict.fromkeys(shown(name) for name in options["fields"]))
            fieldsets.append((title, {**options, "fields": fields}))
        return fieldsets


class ReadOnlyAdmin(DisplayAdmin):
    """For records the system writes (ticks, bars, alerts): viewable, never edited by hand."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False
