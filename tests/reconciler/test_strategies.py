"""Anonymisation strategies keep the column's type, length, NOT NULL and UNIQUE constraints."""

from __future__ import annotations

import datetime as dt

import pytest

from reconciler.strategies import (
    ColumnInfo,
    Fixed,
    Hash,
    Null,
    Redact,
    SetFakeFromKey,
    SetHash,
    SetValue,
    SetYear,
    Year,
    hash_value,
    is_hashed,
    parse_strategy,
)


def column(kind: str = "string", *, length: int | None = 80, nullable: bool = True,
           unique: bool = False, name: str = "c") -> ColumnInfo:
    return ColumnInfo(name=name, kind=kind, length=length,  # type: ignore[arg-type]
                      nullable=nullable, unique=unique)


@pytest.mark.parametrize(
    ("raw", "strategy"),
    [(None, Null()), ("null", Null()), ("redact", Redact()), ("hash", Hash()), ("year", Year()),
     ({"fixed": "Erased"}, Fixed("Erased")), ({"fixed": 0}, Fixed(0))],
)
def test_parse_strategy(raw: object, strategy: object) -> None:
    assert parse_strategy(raw) == strategy


@pytest.mark.parametrize(
    ("raw", "message"),
    [("erase", "unknown strategy 'erase'"), ("fixed", "strategy 'fixed' needs a value"),
     ({"fixed": [1]}, "fixed value must be a string, number or boolean"),
     ({"scramble": 1}, "unknown strategy this value")],
)
def test_parse_strategy_refuses(raw: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_strategy(raw)


def test_null_refuses_a_not_null_column() -> None:
    assert Null().assignment(column()) == SetValue(None)
    with pytest.raises(ValueError, match="strategy 'null' but the column is NOT NULL"):
        Null().assignment(column(nullable=False))


def test_fixed_refuses_unique_columns_and_values_longer_than_the_column() -> None:
    assert Fixed("Erased").assignment(column()) == SetValue("Erased")
    with pytest.raises(ValueError, match="UNIQUE"):
        Fixed("Erased").assignment(column(unique=True))
    with pytest.raises(ValueError, match=r"longer than the column \(3\)"):
        Fixed("Erased").assignment(column(length=3))


def test_redact_keeps_length_and_gives_unique_columns_distinct_fake_values() -> None:
    assert Redact().assignment(column(length=4)) == SetValue("eras")
    assert Redact().assignment(column(unique=True, name="email", length=120)) == (
        SetFakeFromKey("erased-", "@erased.invalid"))
    assert Redact().assignment(column(unique=True, name="username")) == (
        SetFakeFromKey("erased-", ""))
    with pytest.raises(ValueError, match="at least 12 characters"):
        Redact().assignment(column(unique=True, length=8))


def test_redact_non_strings_become_null_or_a_neutral_value() -> None:
    assert Redact().assignment(column("date")) == SetValue(None)
    assert Redact().assignment(column("date", nullable=False)) == SetValue(dt.date(1900, 1, 1))
    assert Redact().assignment(column("integer", nullable=False)) == SetValue(0)
    with pytest.raises(ValueError, match="UNIQUE NOT NULL non-string"):
        Redact().assignment(column("integer", nullable=False, unique=True))


def test_hash_is_keyed_stable_and_recognisable() -> None:
    assert Hash().assignment(column(length=40)) == SetHash(40)
    one = hash_value(b"k" * 32, " C-1001 ", 40)
    assert one == hash_value(b"k" * 32, "C-1001", 40)
    assert one != hash_value(b"x" * 32, "C-1001", 40)
    assert len(one) == 40
    assert is_hashed(one)
    assert not is_hashed("C-1001")
    with pytest.raises(ValueError, match="needs a string column"):
        Hash().assignment(column("integer"))


def test_year_needs_a_date() -> None:
    assert Year().assignment(column("date")) == SetYear(datetime=False)
    assert Year().assignment(column("datetime")) == SetYear(datetime=True)
    with pytest.raises(ValueError, match="needs a date or timestamp column"):
        Year().assignment(column())
