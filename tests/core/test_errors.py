from core import errors


def test_status_round_trip_keeps_type_and_causes() -> None:
    err = errors.Invalid(
        message='Pod "x" is invalid', kind="Pod", name="x",
        causes=[errors.Cause(field="metadata.name", message="Invalid value")],
    )
    body = err.status()
    assert body["code"] == 422 and body["reason"] == "Invalid"
    assert body["details"]["causes"][0]["field"] == "metadata.name"
    again = errors.from_status(body, 422)
    assert isinstance(again, errors.Invalid)
    assert again.causes == err.causes


def test_unknown_reason_falls_back_to_http_code() -> None:
    err = errors.from_status({"message": "nope"}, 404)
    assert isinstance(err, errors.NotFound)
    assert err.message == "nope"
