"""The status StrEnums say exactly what the database allows and what the API documents."""

from __future__ import annotations

import re
import typing
from enum import StrEnum
from pathlib import Path

import pytest
from pydantic import BaseModel

from booking import api_models, buyer_models
from booking.statuses import EventStatus, LineState, PaymentStatus, ReservationStatus, SeatStatus

MIGRATIONS = Path(__file__).resolve().parent.parent / "booking" / "migrations"
CHECK = re.compile(r"CHECK \(status IN \(([^)]*)\)\)")


def checked_statuses(table: str) -> set[str]:
    """The values of `table`'s CHECK (status IN (...)) in the migrations."""
    sql = "\n".join(p.read_text(encoding="utf-8") for p in sorted(MIGRATIONS.glob("*.sql")))
    create = re.search(rf"CREATE TABLE {table} \((.*?)\n\);", sql, re.S)
    assert create is not None, table
    found = CHECK.findall(create.group(1))
    assert len(found) == 1, (table, found)
    return set(re.findall(r"'([^']*)'", found[0]))


@pytest.mark.parametrize(
    ("table", "enum"),
    [("events", EventStatus), ("reservations", ReservationStatus), ("payments", PaymentStatus)],
)
def test_enum_is_the_check_constraint(table: str, enum: type[StrEnum]) -> None:
    assert {m.value for m in enum} == checked_statuses(table)


def literal_strings(annotation: object) -> set[str]:
    """The strings of a Literal, also inside `Literal[...] | None`."""
    if typing.get_origin(annotation) is typing.Literal:
        return {v for v in typing.get_args(annotation) if isinstance(v, str)}
    return set().union(*(literal_strings(a) for a in typing.get_args(annotation)))


def literal_values(model: type[BaseModel], field: str) -> set[str]:
    return literal_strings(model.model_fields[field].annotation)


@pytest.mark.parametrize(
    ("model", "field", "enum"),
    [
        (api_models.Event, "status", EventStatus),
        (api_models.Seat, "status", SeatStatus),
        (api_models.PaymentState, "status", PaymentStatus),
        (api_models.Reservation, "status", ReservationStatus),
        (api_models.PaymentAccepted, "status", PaymentStatus),
        (buyer_models.Booking, "status", ReservationStatus),
        (buyer_models.Booking, "payment_status", PaymentStatus),
        (buyer_models.LineEvent, "status", EventStatus),
        (buyer_models.LineStatus, "state", LineState),
    ],
)
def test_documented_values_are_the_enum(
    model: type[BaseModel], field: str, enum: type[StrEnum]
) -> None:
    assert literal_values(model, field) == {m.value for m in enum}


def test_a_member_is_its_text() -> None:
    # Rows from PostgreSQL (plain str) compare equal, and JSON, f-strings and dict lookups see
    # the text: nothing converts at the boundary.
    from_db: object = "held"
    assert from_db == ReservationStatus.HELD and f"{EventStatus.ON_SALE}" == "on_sale"
    assert {"sold": 3}[SeatStatus.SOLD] == 3
