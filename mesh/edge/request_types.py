"""Building blocks of the edge's request models (`mesh.edge.requests`): the strict base
model, bounded integers and strings, and fields accepted only with a value that changes
nothing (refused with 400 otherwise, so no parameter is silently dropped)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema
from pydantic_core import PydanticCustomError

INT32_MAX = 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def _valid_unicode(value: str) -> str:
    # pydantic refuses lone surrogates in constrained strings only, not in plain ones.
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise PydanticCustomError("string_unicode", "invalid Unicode") from None
    return value


def _integral_float(value: Any) -> Any:
    """2.0 is the integer 2 (JSON has one number type); 2.5 stays a float and is refused."""
    if isinstance(value, float) and value.is_integer() and abs(value) <= 2**64:
        return int(value)
    return value


Text = Annotated[str, AfterValidator(_valid_unicode)]


def bounded_int(lo: int, hi: int) -> Any:
    # Bounds inside the before-validator, so the JSON schema says minimum / maximum.
    return Annotated[int, Field(ge=lo, le=hi), BeforeValidator(_integral_float)]


def bounded_text(max_chars: int | None = None, min_chars: int = 0) -> Any:
    return Annotated[
        str, Field(min_length=min_chars, max_length=max_chars), AfterValidator(_valid_unicode)
    ]


class Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", allow_inf_nan=False)


def refuse(message: str) -> PydanticCustomError:
    return PydanticCustomError("unsupported", message)


def _refusing(accepted: Callable[[Any], bool], message: str) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if value is not None and not accepted(value):
            raise refuse(message)
        return value

    return check


def only(accepted: Callable[[Any], bool], message: str, schema: dict[str, Any]) -> Any:
    """A field taken for OpenAI compatibility: a value for which `accepted` holds (the one
    `schema` publishes) changes nothing here, a no-op; any other is refused with `message`
    (400 naming the field)."""
    published = {"anyOf": [schema, {"type": "null"}], "description": message}
    return Annotated[Any, AfterValidator(_refusing(accepted, message)), WithJsonSchema(published)]


def unsupported(message: str) -> Any:
    """A field refused whenever it is sent with a value (null means "not given")."""
    published = {"type": "null", "description": message}
    return Annotated[
        Any, AfterValidator(_refusing(lambda _: False, message)), WithJsonSchema(published)
    ]
