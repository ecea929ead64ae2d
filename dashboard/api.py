"""The JSON API: thin views that validate query parameters, call a selector, serialise.

Bad query parameters are a 400 with a message per field, never a 500.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, extend_schema_serializer
from rest_framework import generics, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from alerts.models import Alert, PaperPosition
from alerts.selectors import alerts_newest
from alerts.services import alert_payload, position_payload
from analytics import selectors as analytics_selectors
from analytics import services as analytics_services
from analytics.bars import INTERVALS
from analytics.models import Backtest, Pair, ScreenerRun
from ingestion import selectors as ingestion_selectors
from ingestion.binance import normalize_symbol
from pairs_project.common.times import time_ms

from .health import system_health
from .pagination import LinkHeaderPagination, next_page_headers
from .permissions import IsStaffOrReadOnly

#: The response headers of the paged lists (``pagination``), for the schema.
NEXT_PAGE_HEADER = OpenApiParameter(
    "Link",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    response=[200],
    description='the neighbouring pages, when there are (RFC 8288), e.g. <url>; rel="next"',
)
TOTAL_COUNT_HEADER = OpenApiParameter(
    "X-Total-Count", OpenApiTypes.INT, OpenApiParameter.HEADER, response=[200], description="items on all pages"
)


class SymbolField(serializers.CharField):
    """A symbol parameter: upper-cased, and one the system has stored ticks for."""

    def to_internal_value(self, data: object) -> str:
        value = super().to_internal_value(data)
        try:
            symbol = normalize_symbol(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None
        if not ingestion_selectors.symbol_exists(symbol):
            known = ", ".join(s.name for s in ingestion_selectors.symbols_list()) or "none yet"
            raise serializers.ValidationError(f"unknown symbol {symbol!r} (known: {known})")
        return symbol


class HealthApi(APIView):
    @extend_schema(
        responses=OpenApiTypes.OBJECT,
        description="Pipeline health: status ok/degraded, mode, problems (why degraded), the feed record, "
        "gaps, the periodic tasks and each pair's newest snapshot, Redis (distributed mode).",
    )
    def get(self, request: Request) -> Response:
        return Response(system_health())


class SymbolListApi(APIView):
    @extend_schema_serializer(component_name="Symbol")
    class OutputSerializer(serializers.Serializer):
        symbol = serializers.CharField(source="name")
        ticks = serializers.IntegerField(source="tick_count")
        first_tick_at = serializers.IntegerField()
        last_tick_at = serializers.IntegerField()
        last_price = serializers.FloatField()
        last_trade_id = serializers.IntegerField()

    @extend_schema(responses=OutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        return Response(self.OutputSerializer(ingestion_selectors.symbols_list(), many=True).data)


class TickListApi(APIView):
    class FilterSerializer(serializers.Serializer):
        symbol = SymbolField()
        limit = serializers.IntegerField(min_value=1, max_value=1000, default=100)
        before = serializers.IntegerField(
            min_value=0, required=False, help_text="only ticks with a smaller trade id (the next page)"
        )

    @extend_schema_serializer(component_name="Tick")
    class OutputSerializer(serializers.Serializer):
        timestamp = serializers.IntegerField()
        symbol = serializers.CharField()
        price = serializers.FloatField()
        quantity = serializers.FloatField()
        trade_id = serializers.IntegerField()

    @extend_schema(parameters=[FilterSerializer, NEXT_PAGE_HEADER], responses=OutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        params = self.FilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        ticks = ingestion_selectors.ticks_recent(**params.validated_data)
        headers = {}
        if len(ticks) == params.validated_data["limit"]:
            headers = next_page_headers(request, before=ticks[-1].trade_id)
        return Response(self.OutputSerializer(ticks, many=True).data, headers=headers)


# -- pairs and analytics --------------------------------------------------------


@extend_schema_field({"type": "array", "items": {"type": "string"}})
class EmailRecipientsField(serializers.Field):
    """The pair's e-mail recipients as a list of addresses (the model keeps them as one text)."""

    default_error_messages = {"not_a_list": 'a list of e-mail addresses, e.g. ["desk@example.com"]'}

    def to_internal_value(self, data: object) -> str:
        if not isinstance(data, list) or not all(isinstance(a, str) for a in data):
            self.fail("not_a_list")
        return ", ".join(data)  # each address checked by ``Pair.clean``

    def to_representation(self, value: str) -> list[str]:
        return [a for a in value.split(", ") if a]


class PairSerializer(serializers.ModelSerializer):
    """Validated by ``Pair.clean`` so the API and the admin give the same messages.

    Where the pair's alerts go (``webhook_url``, ``email_recipients``,
    ``telegram_chat_id``) is staff's to read: others get the pair without them. A
    webhook is checked against the egress policy as in the admin.
    """

    # Any whole number reaches ``Pair.clean``, whose message names the window it must fit in
    # (the model field's own bounds would answer 0..2^31 in other words).
    confirm_bars = serializers.IntegerField(required=False, help_text=Pair._meta.get_field("confirm_bars").help_text)
    email_recipients = EmailRecipientsField(
        required=False,
        help_text="alerts of this pair are e-mailed to these addresses (at most 20; staff only)",
    )
    telegram_chat_id = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=40,
        help_text="alerts of this pair are sent to this Telegram chat: its numeric id (-100... for a group or "
        "channel) or a public channel's @username (staff only)",
    )

    #: Fields only staff read.
    STAFF_ONLY = ("webhook_url", "email_recipients", "telegram_chat_id")

    class Meta:
        model = Pair
        fields = [
            "id",
            "symbol_a",
            "symbol_b",
            "interval",
            "window",
            "min_bars",
            "entry_z",
            "exit_z",
            "min_correlation",
            "max_adf_pvalue",
            "max_coint_pvalue",
            "confirm_bars",
            "active",
            "webhook_url",
            "email_recipients",
            "telegram_chat_id",
        ]
        validators: list = []  # uniqueness is checked in validate(), with a readable message

    def to_representation(self, instance: Pair) -> dict:
        data = super().to_representation(instance)
        request = self.context.get("request")
        if not getattr(getattr(request, "user", None), "is_staff", False):
            for name in self.STAFF_ONLY:
                data.pop(name, None)
        return data

    def validate(self, attrs: dict) -> dict:
        # With its id, so the check knows an edit from a new pair.
        instance = Pair(pk=self.instance.pk if self.instance is not None else None, **{**self._current(), **attrs})
        try:
            instance.clean()
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from None
        # What clean settles: the symbols normalised, the default confirmation fitted to a short window,
        # the recipients and the chat id written one way.
        attrs.update(
            symbol_a=instance.symbol_a,
            symbol_b=instance.symbol_b,
            confirm_bars=instance.confirm_bars,
            email_recipients=instance.email_recipients,
            telegram_chat_id=instance.telegram_chat_id,
        )
        clash = Pair.objects.filter(symbol_a=instance.symbol_a, symbol_b=instance.symbol_b, interval=instance.interval)
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise serializers.ValidationError(
                {"non_field_errors": [f"the pair {instance} exists already (id {clash.first().pk})"]}
            )
        return attrs

    def _current(self) -> dict:
        if self.instance is None:
            return {}
        return {f: getattr(self.instance, f) for f in self.Meta.fields if f != "id"}


class WarmupSerializer(serializers.Serializer):
    bars = serializers.IntegerField(allow_null=True, help_text="bars in the window (null: nothing computed yet)")
    required = serializers.IntegerField(help_text="bars needed before statistics (min_bars)")


class ThresholdsSerializer(serializers.Serializer):
    entry_z = serializers.FloatField(help_text="|signal z| above this is an entry (with the gates confirmed)")
    exit_z = serializers.FloatField(help_text="|signal z| below this re-arms the rule and closes an entry")
    min_correlation = serializers.FloatField(help_text="returns correlation gate: correlation >= this")
    max_adf_pvalue = serializers.FloatField(help_text="ADF gate: adf_pvalue < this")
    max_coint_pvalue = serializers.FloatField(help_text="Engle-Granger gate: coint_pvalue < this")
    confirm_bars = serializers.IntegerField(help_text="related snapshots in a row an entry needs before its bar")


def _statistic(help_text: str) -> serializers.FloatField:
    return serializers.FloatField(allow_null=True, help_text=help_text)


@extend_schema_serializer(component_name="Snapshot")
class SnapshotSerializer(serializers.Serializer):
    """A pair's snapshot, as the API, the websocket and the history carry it (``analytics.snapshot``).

    Declared for the schema: the values are ``snapshot_json``'s. Every statistic is
    null until the window is ready, and when its definition does not apply.
    """

    version = serializers.IntegerField(help_text="version of this JSON form")
    pair = serializers.IntegerField()
    symbol_a = serializers.CharField(help_text="leg A, the y of the regression")
    symbol_b = serializers.CharField(help_text="leg B, the x of the regression")
    as_of = serializers.IntegerField(allow_null=True, help_text="open time of the newest closed bar, ms")
    interval = serializers.ChoiceField(choices=list(INTERVALS))
    n = serializers.IntegerField(help_text="aligned bars in the window")
    window = serializers.IntegerField(help_text="the pair's window, bars")
    ready = serializers.BooleanField(help_text="n >= min_bars: statistics computed")
    warmup = WarmupSerializer()
    stale = serializers.BooleanField(help_text="a leg's newest bar lags the window's end")
    stale_legs = serializers.ListField(child=serializers.CharField())
    price_a = _statistic("close of leg A at as_of")
    price_b = _statistic("close of leg B at as_of")
    hedge_ratio = _statistic("OLS beta of A on B")
    intercept = _statistic("OLS intercept")
    r_squared = _statistic("OLS R squared")
    spread = _statistic("A - hedge_ratio * B at as_of, quote currency")
    spread_mean = _statistic("mean of the spread over the window")
    spread_std = _statistic("standard deviation of the spread over the window (ddof 1)")
    zscore = _statistic("(spread - spread_mean) / spread_std at as_of: in-sample, descriptive")
    correlation = _statistic("correlation of the legs' log returns")
    price_correlation = _statistic("correlation of the legs' prices")
    adf_stat = _statistic("augmented Dickey-Fuller statistic of the spread")
    adf_pvalue = _statistic("its MacKinnon p-value")
    adf_lag = serializers.IntegerField(allow_null=True, help_text="lags the ADF AIC search chose")
    coint_pvalue = _statistic("Engle-Granger cointegration p-value")
    half_life = _statistic("mean-reversion half-life, bars")
    quality_score = _statistic("0..100")
    half_life_seconds = _statistic("the half-life in seconds")
    quality = serializers.DictField(allow_null=True, help_text="the quality score's parts")
    signal_zscore = _statistic(
        "the signal the alert rule acts on: the newest bar scored with the previous grid point's window "
        "model, (price_a - hedge_ratio' * price_b - spread_mean') / spread_std' (null until that window was ready)"
    )
    signal_hedge_ratio = _statistic(
        "hedge_ratio' of that model: what a trade on the signal hedges with (null when signal_zscore is)"
    )
    related = serializers.BooleanField(
        help_text="every relationship gate holds on this window: adf_pvalue < max_adf_pvalue, "
        "coint_pvalue < max_coint_pvalue, correlation >= min_correlation"
    )
    related_run = serializers.IntegerField(
        min_value=0, help_text="related snapshots in a row ending at this one (0 when not related)"
    )
    thresholds = ThresholdsSerializer(help_text="the pair's alert thresholds it was computed under")
    computed_at = serializers.IntegerField(allow_null=True, help_text="when it was computed, ms")
    source = serializers.ChoiceField(
        choices=["cycle", "history", "none"],
        help_text="the snapshot cycle, the newest history row, or nothing computed yet",
    )


def _points(help_text: str) -> serializers.ListField:
    return serializers.ListField(child=serializers.FloatField(allow_null=True), help_text=help_text)


@extend_schema_serializer(component_name="Series")
class SeriesSerializer(serializers.Serializer):
    """The chart series of a pair's window: equal-length arrays, one point per bar, oldest first.

    Declared for the schema: the values are ``analytics.services.pair_current``'s.
    """

    pair = serializers.IntegerField()
    as_of = serializers.IntegerField(allow_null=True, help_text="open time of the newest bar (null: no bar yet)")
    t = serializers.ListField(child=serializers.IntegerField(), help_text="open time of each bar, ms")
    price_a = serializers.ListField(
        child=serializers.FloatField(), help_text="close of leg A (forward-filled where it did not trade)"
    )
    price_b = serializers.ListField(
        child=serializers.FloatField(), help_text="close of leg B (forward-filled where it did not trade)"
    )
    spread = _points("price_a - hedge_ratio * price_b under the snapshot's model (null during warm-up)")
    zscore = _points(
        "(spread - spread_mean) / spread_std under the snapshot's model: in-sample, every point "
        "rescored with each snapshot (null during warm-up)"
    )
    signal_zscore = _points(
        "each bar's signal z as recorded when that bar closed, never rescored (null where none was recorded)"
    )


# -- backtests ------------------------------------------------------------------


@extend_schema_field({"oneOf": [{"type": "integer", "minimum": 0}, {"type": "string", "format": "date-time"}]})
class TimeField(serializers.Field):
    """A time as ms since the epoch or an ISO 8601 date/time (UTC unless it says)."""

    def to_internal_value(self, data: object) -> int:
        if isinstance(data, bool) or not isinstance(data, int | str):
            raise serializers.ValidationError("a time is ms since the epoch or an ISO date such as 2026-11-01")
        try:
            return time_ms(data)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None

    def to_representation(self, value: int) -> int:
        return value


class BacktestRequestSerializer(serializers.Serializer):
    """What ``POST /api/pairs/{id}/backtests/`` takes: ``manage.py backtest``'s options (docs/analytics.md)."""

    start = TimeField(required=False, help_text="ms since the epoch or an ISO date (UTC); default: days before end")
    end = TimeField(required=False, help_text="ms since the epoch or an ISO date (UTC); default now")
    days = serializers.FloatField(required=False, help_text="the range's length when start is not given")
    fee_bps = serializers.FloatField(default=5.0, help_text="taker fee per leg and side, bps")
    slippage_bps = serializers.FloatField(default=1.0, help_text="each fill moved against the trade, bps")
    notional = serializers.FloatField(default=10_000.0, help_text="quote currency of A per trade")
    delay_bars = serializers.IntegerField(default=0, help_text="fill this many bars after the signal")
    funding = serializers.BooleanField(default=True, help_text="pay and receive funding")
    grid = serializers.BooleanField(default=False, help_text="walk-forward over entry_z x exit_z")


class BacktestSerializer(serializers.Serializer):
    """A backtest (docs/analytics.md, "Backtest"); ``trades``, ``equity`` and ``grid`` once done."""

    id = serializers.IntegerField()
    pair = serializers.IntegerField()
    status = serializers.ChoiceField(choices=Backtest.Status.choices)
    progress = serializers.FloatField(help_text="0 to 1")
    error = serializers.CharField(allow_null=True, help_text="why it failed, in words")
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    params = serializers.DictField(help_text="the range (ms), the pair's settings and the costs it ran with")
    summary = serializers.DictField(allow_null=True, help_text="the metrics over the range")
    trades = serializers.ListField(child=serializers.DictField(), required=False)
    equity = serializers.DictField(allow_null=True, required=False, help_text="{t: [...], equity: [...]}")
    grid = serializers.ListField(child=serializers.DictField(), allow_null=True, required=False)


#: Backtests listed per pair (the newest).
BACKTESTS_LISTED = 50


class SeriesFilterSerializer(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, required=False, help_text="the newest N points only")


class PairViewSet(viewsets.ModelViewSet):
    """Pairs: anyone reads, staff writes (validated as in the admin)."""

    queryset = Pair.objects.order_by("id")
    serializer_class = PairSerializer
    permission_classes = [IsStaffOrReadOnly]

    @extend_schema(
        responses=SnapshotSerializer,
        description='The latest analytics snapshot (the definitions: docs/analytics.md, "Snapshots").',
    )
    @action(detail=True, methods=["get"])
    def snapshot(self, request: Request, pk: str | None = None) -> Response:
        pair = self.get_object()
        snapshot, _ = analytics_services.pair_current(pair=pair)
        return Response(snapshot)

    @extend_schema(
        methods=["GET"],
        responses=BacktestSerializer(many=True),
        description="The pair's backtests, newest first (their summaries; the whole of one at /api/backtests/{id}/).",
    )
    @extend_schema(
        methods=["POST"],
        request=BacktestRequestSerializer,
        responses={202: BacktestSerializer},
        description="Staff: backtest the pair's own rule over a range; it runs as a task (202, then poll "
        "/api/backtests/{id}/).",
    )
    @action(detail=True, methods=["get", "post"])
    def backtests(self, request: Request, pk: str | None = None) -> Response:
        pair = self.get_object()
        if request.method == "GET":
            newest = Backtest.objects.filter(pair=pair).order_by("-created_at")[:BACKTESTS_LISTED]
            return Response([analytics_services.backtest_json(b, full=False) for b in newest])
        body = BacktestRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            params = analytics_services.backtest_params(pair, **body.validated_data)
        except analytics_services.BacktestError as exc:
            raise serializers.ValidationError({"non_field_errors": [str(exc)]}) from None
        backtest = analytics_services.backtest_create(pair, params)
        return Response(analytics_services.backtest_json(backtest, full=False), status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        parameters=[SeriesFilterSerializer],
        responses=SeriesSerializer,
        description="Chart series over the window: equal-length arrays t, price_a, price_b, spread, zscore, "
        "signal_zscore.",
    )
    @action(detail=True, methods=["get"])
    def series(self, request: Request, pk: str | None = None) -> Response:
        pair = self.get_object()
        params = SeriesFilterSerializer(data=request.query_params, context={"window": pair.window})
        params.is_valid(raise_exception=True)
        _, series = analytics_services.pair_current(pair=pair)
        limit = params.validated_data.get("limit")
        if limit is not None:
            series = {k: (v[-limit:] if isinstance(v, list) else v) for k, v in series.items()}
        return Response(series)


class BacktestApi(APIView):
    """One backtest, with its progress while it runs and its result once done."""

    @extend_schema(responses=BacktestSerializer)
    def get(self, request: Request, backtest_id: int) -> Response:
        backtest = get_object_or_404(Backtest.objects.select_related("pair"), pk=backtest_id)
        return Response(analytics_services.backtest_json(backtest))


class BarListApi(APIView):
    class FilterSerializer(serializers.Serializer):
        symbol = SymbolField()
        interval = serializers.ChoiceField(choices=list(INTERVALS))
        start = serializers.IntegerField(min_value=0, required=False)
        end = serializers.IntegerField(min_value=0, required=False)
        limit = serializers.IntegerField(min_value=1, max_value=5000, default=500)

        def validate(self, attrs: dict) -> dict:
            if "start" in attrs and "end" in attrs and attrs["start"] > attrs["end"]:
                raise serializers.ValidationError({"end": ["end must not be before start"]})
            return attrs

    @extend_schema_serializer(component_name="Bar")
    class OutputSerializer(serializers.Serializer):
        t = serializers.IntegerField(source="open_time")
        open = serializers.FloatField()
        high = serializers.FloatField()
        low = serializers.FloatField()
        close = serializers.FloatField()
        volume = serializers.FloatField()
        trades = serializers.IntegerField()

    @extend_schema(parameters=[FilterSerializer, NEXT_PAGE_HEADER], responses=OutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        params = self.FilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        bars = list(analytics_selectors.bars_for_symbol(**params.validated_data))
        headers = {}
        if "start" in params.validated_data and len(bars) == params.validated_data["limit"]:
            headers = next_page_headers(request, start=bars[-1].open_time + 1)
        return Response(self.OutputSerializer(bars, many=True).data, headers=headers)


# -- alerts ---------------------------------------------------------------------


class AlertListApi(generics.ListAPIView):
    """Alerts newest first, optionally of one pair; paginated with a Link header."""

    pagination_class = LinkHeaderPagination

    class FilterSerializer(serializers.Serializer):
        pair = serializers.PrimaryKeyRelatedField(queryset=Pair.objects.all(), required=False)

    @extend_schema_serializer(component_name="Alert")
    class OutputSerializer(serializers.Serializer):
        """The fields are declared for the schema; the values are ``alert_payload``'s, as pushed."""

        id = serializers.IntegerField()
        pair = serializers.IntegerField()
        kind = serializers.ChoiceField(choices=Alert.Kind.choices)
        direction = serializers.ChoiceField(choices=Alert.Direction.choices)
        reason = serializers.ChoiceField(choices=Alert.Reason.choices)
        created_at = serializers.IntegerField(help_text="ms since the epoch")
        bar_time = serializers.IntegerField(help_text="as_of of the snapshot that fired it, ms")
        signal_zscore = serializers.FloatField(
            allow_null=True, help_text="the signal z that fired it (null on alerts recorded before signals)"
        )
        zscore = serializers.FloatField(allow_null=True, help_text="the in-sample z of the same bar (descriptive)")
        adf_pvalue = serializers.FloatField(allow_null=True)
        coint_pvalue = serializers.FloatField(allow_null=True, help_text="Engle-Granger p-value of its window")
        correlation = serializers.FloatField(allow_null=True)
        related_run = serializers.IntegerField(
            allow_null=True, help_text="related snapshots in a row before its bar (the confirmation an entry had)"
        )
        hedge_ratio = serializers.FloatField(allow_null=True)
        message = serializers.CharField()

        def to_representation(self, instance: Alert) -> dict:
            return alert_payload(instance)

    serializer_class = OutputSerializer

    @extend_schema(parameters=[FilterSerializer, NEXT_PAGE_HEADER, TOTAL_COUNT_HEADER])
    def get(self, request: Request, *args: object, **kwargs: object) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        params = self.FilterSerializer(data=self.request.query_params)
        params.is_valid(raise_exception=True)
        pair = params.validated_data.get("pair")
        return alerts_newest(pair_id=pair.pk if pair else None)


class PositionListApi(generics.ListAPIView):
    """Paper positions (each live entry alert, booked as a backtest trade), newest first; paginated."""

    pagination_class = LinkHeaderPagination

    class FilterSerializer(serializers.Serializer):
        pair = serializers.PrimaryKeyRelatedField(queryset=Pair.objects.all(), required=False)
        # Without a default, DRF reads a boolean missing from a query string as False (an unticked checkbox).
        open = serializers.BooleanField(
            required=False,
            allow_null=True,
            default=None,
            help_text="1: the open ones only; 0: the closed ones only; absent: both",
        )

    @extend_schema_serializer(component_name="PaperPosition")
    class OutputSerializer(serializers.Serializer):
        """The fields are declared for the schema; the values are ``position_payload``'s."""

        id = serializers.IntegerField()
        pair = serializers.IntegerField()
        open = serializers.BooleanField()
        direction = serializers.ChoiceField(choices=Alert.Direction.choices)
        hedge_ratio = serializers.FloatField(help_text="beta' of the entry's signal: the position's own hedge")
        qty_a = serializers.FloatField(help_text="signed: + bought, - sold at entry")
        qty_b = serializers.FloatField(help_text="signed: + bought, - sold at entry")
        opened_at = serializers.IntegerField(help_text="the entry alert's bar, ms")
        closed_at = serializers.IntegerField(allow_null=True, help_text="the exit alert's bar, ms (null while open)")
        entry_price_a = serializers.FloatField(help_text="fill, slippage included")
        entry_price_b = serializers.FloatField(help_text="fill, slippage included")
        entry_fees = serializers.FloatField()
        fee_bps = serializers.FloatField()
        slippage_bps = serializers.FloatField()
        notional = serializers.FloatField(help_text="quote currency of A at entry")
        mark_time = serializers.IntegerField(allow_null=True, help_text="the newest bar it was marked at, ms")
        mark_price_a = serializers.FloatField(allow_null=True)
        mark_price_b = serializers.FloatField(allow_null=True)
        unrealised_pnl = serializers.FloatField(allow_null=True, help_text="at the mark, net of the entry's fees")
        unrealised_pct = serializers.FloatField(allow_null=True, help_text="unrealised_pnl, % of notional")
        spread = serializers.FloatField(
            allow_null=True, help_text="its own spread at the mark: price_a - beta' price_b"
        )
        exit_price_a = serializers.FloatField(allow_null=True)
        exit_price_b = serializers.FloatField(allow_null=True)
        fees = serializers.FloatField(allow_null=True, help_text="entry and exit, once closed")
        funding = serializers.FloatField(help_text="not tracked live: 0")
        realised_pnl = serializers.FloatField(allow_null=True, help_text="net, once closed")
        reason = serializers.CharField(help_text="why it closed (empty while open)")
        entry_alert = serializers.IntegerField()
        exit_alert = serializers.IntegerField(allow_null=True)

        def to_representation(self, instance: PaperPosition) -> dict:
            return position_payload(instance)

    serializer_class = OutputSerializer

    @extend_schema(parameters=[FilterSerializer, NEXT_PAGE_HEADER, TOTAL_COUNT_HEADER])
    def get(self, request: Request, *args: object, **kwargs: object) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        params = self.FilterSerializer(data=self.request.query_params)
        params.is_valid(raise_exception=True)
        rows = PaperPosition.objects.order_by("-entry_time", "-id")
        if (pair := params.validated_data.get("pair")) is not None:
            rows = rows.filter(pair=pair)
        if (is_open := params.validated_data.get("open")) is not None:
            rows = rows.filter(exit_time__isnull=is_open)
        return rows


# -- the screener -----------------------------------------------------------------


class ScreenerRequestSerializer(serializers.Serializer):
    """What ``POST /api/screener/runs/`` takes: ``manage.py screen``'s options."""

    symbols = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="the universe (default: the top N)"
    )
    top = serializers.IntegerField(required=False, help_text="the N USDT perpetuals with the most 24 h quote volume")
    interval = serializers.ChoiceField(choices=["1m", "5m"], default="5m")
    window = serializers.IntegerField(default=1000, help_text="closed bars per pair")
    fdr = serializers.FloatField(default=0.05, help_text="false-discovery rate of the q-values")


class ScreenedPairSerializer(serializers.Serializer):
    symbol_a = serializers.CharField(help_text="y: the leg of the order with the smaller Engle-Granger p-value")
    symbol_b = serializers.CharField()
    n = serializers.IntegerField(help_text="aligned bars tested")
    coint_pvalue = serializers.FloatField(allow_null=True, help_text="the larger of coint(A, B) and coint(B, A)")
    qvalue = serializers.FloatField(allow_null=True, help_text="Benjamini-Hochberg over the run's tested pairs")
    significant = serializers.BooleanField(help_text="qvalue < fdr")
    hedge_ratio = serializers.FloatField(allow_null=True)
    half_life = serializers.FloatField(allow_null=True, help_text="bars")
    correlation = serializers.FloatField(allow_null=True, help_text="of the log returns")
    adf_pvalue = serializers.FloatField(allow_null=True)


class ScreenerRunSerializer(serializers.Serializer):
    """A screener run (docs/analytics.md, "Screener"): ``pairs`` ranked by q-value, then half-life."""

    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=ScreenerRun.Status.choices)
    progress = serializers.FloatField()
    error = serializers.CharField(allow_null=True, help_text="why it failed, in words")
    as_of = serializers.IntegerField(allow_null=True, help_text="open time of the newest closed bar screened, ms")
    interval = serializers.CharField()
    window = serializers.IntegerField()
    fdr = serializers.FloatField()
    symbols = serializers.ListField(child=serializers.CharField())
    skipped = serializers.DictField(child=serializers.CharField(), help_text="symbol -> why it was left out")
    took_ms = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    pairs = ScreenedPairSerializer(many=True)


class ScreenerApi(APIView):
    """The newest screener run that finished (a failed run never hides the last good one)."""

    @extend_schema(responses=ScreenerRunSerializer)
    def get(self, request: Request) -> Response:
        run = analytics_services.screener_latest()
        if run is None:
            raise NotFound("no screener run has finished yet")
        return Response(analytics_services.screener_json(run))


class ScreenerRunsApi(APIView):
    """The newest screener runs, without their pairs (GET); staff: start one, run as a task (POST: 202, then poll
    /api/screener/runs/{id}/)."""

    class FilterSerializer(serializers.Serializer):
        limit = serializers.IntegerField(min_value=1, max_value=50, default=10)

    @extend_schema_serializer(component_name="ScreenerRunListed")
    class ListedSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        status = serializers.ChoiceField(choices=ScreenerRun.Status.choices)
        progress = serializers.FloatField()
        interval = serializers.CharField()
        window = serializers.IntegerField()
        created_at = serializers.DateTimeField()
        finished_at = serializers.DateTimeField(allow_null=True)

    @extend_schema(parameters=[FilterSerializer], responses=ListedSerializer(many=True))
    def get(self, request: Request) -> Response:
        params = self.FilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        runs = ScreenerRun.objects.order_by("-created_at", "-pk").only(
            "id", "status", "progress", "interval", "window", "created_at", "finished_at"
        )[: params.validated_data["limit"]]
        return Response(self.ListedSerializer(runs, many=True).data)

    @extend_schema(request=ScreenerRequestSerializer, responses={202: ScreenerRunSerializer})
    def post(self, request: Request) -> Response:
        body = ScreenerRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            requested = analytics_services.screener_request(**body.validated_data)
        except analytics_services.ScreenerError as exc:
            raise serializers.ValidationError({"non_field_errors": [str(exc)]}) from None
        run = analytics_services.screener_create(requested)
        return Response(analytics_services.screener_json(run), status=status.HTTP_202_ACCEPTED)


class ScreenerRunApi(APIView):
    """One screener run, with its progress while it runs."""

    @extend_schema(responses=ScreenerRunSerializer)
    def get(self, request: Request, run_id: int) -> Response:
        return Response(analytics_services.screener_json(get_object_or_404(ScreenerRun, pk=run_id)))
