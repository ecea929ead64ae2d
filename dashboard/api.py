"""The JSON API: thin views that validate query parameters, call a selector, serialise.

Bad query parameters are a 400 with a message per field, never a 500.
"""

from __future__ import annotations

from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ingestion import selectors as ingestion_selectors
from ingestion.binance import normalize_symbol


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
    def get(self, request: Request) -> Response:
        return Response(ingestion_selectors.health())


class SymbolListApi(APIView):
    class OutputSerializer(serializers.Serializer):
        symbol = serializers.CharField(source="name")
        ticks = serializers.IntegerField(source="tick_count")
        first_tick_at = serializers.IntegerField()
        last_tick_at = serializers.IntegerField()
        last_price = serializers.FloatField()
        last_trade_id = serializers.IntegerField()

    def get(self, request: Request) -> Response:
        return Response(self.OutputSerializer(ingestion_selectors.symbols_list(), many=True).data)


class TickListApi(APIView):
    class FilterSerializer(serializers.Serializer):
        symbol = SymbolField()
        limit = serializers.IntegerField(min_value=1, max_value=1000, default=100)

    class OutputSerializer(serializers.Serializer):
        timestamp = serializers.IntegerField()
        symbol = serializers.CharField()
        price = serializers.FloatField()
        quantity = serializers.FloatField()
        trade_id = serializers.IntegerField()

    def get(self, request: Request) -> Response:
        params = self.FilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        ticks = ingestion_selectors.ticks_recent(**params.validated_data)
        return Response(self.OutputSerializer(ticks, many=True).data)
